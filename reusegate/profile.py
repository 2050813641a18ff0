"""Where a frame's time goes: per-stage milliseconds for computed and for reused frames.

The gate can only save what it skips, so the useful question on a new CPU or host is which stages are never
skipped and how much they cost. :func:`profile_stages` answers it for any host: it times the adapter's interface
methods (the three taps) and the gate modules on one session at ``tau = 1`` (every frame computed) and one at
``tau = 0`` (every frame after the first reused), interleaved frame by frame so that both see the same machine
state. Times are exclusive (a stage's time excludes the stages it calls); whatever the core does between them
is reported as its own row, so the rows add up to the measured step time.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Sequence, Tuple

import torch
from torch import Tensor

from .gate import ReuseGate, Session

# (row label, where the callable lives, attribute names) in the order a frame runs them.
STAGES: Tuple[Tuple[str, str, Tuple[str, ...]], ...] = (
    ("frame conversion + checks", "session", ("_prepare",)),
    ("preprocess", "adapter", ("preprocess",)),
    ("shallow backbone", "adapter", ("shallow",)),
    ("match feature", "adapter", ("match_feature",)),
    ("template matching + gate", "modules", ("match", "decide", "matched")),
    ("motion estimate", "modules", ("motion",)),
    ("deep backbone", "adapter", ("deep",)),
    ("score", "adapter", ("score",)),
    ("online update (amortised)", "adapter", ("learn", "advance")),
    ("deep decoder", "adapter", ("refine_deep",)),
    ("delta", "modules", ("delta",)),
    ("translator", "modules", ("refine_translator",)),
    ("shallow decoder + head", "adapter", ("refine_shallow",)),
    ("merge / argmax / resize", "session", ("_finish", "_output")),
)
REST = "core bookkeeping (rest)"
_ABSENT = object()


class StageTimer:
    """Exclusive wall-clock time per stage: time spent in a nested timed call is charged to that call only."""

    def __init__(self) -> None:
        self.totals: Dict[str, float] = {}
        self._stack: List[List[float]] = []  # [start, time charged to children]

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self._stack.append([time.perf_counter(), 0.0])
        try:
            yield
        finally:
            start, children = self._stack.pop()
            elapsed = time.perf_counter() - start
            self.totals[name] = self.totals.get(name, 0.0) + elapsed - children
            if self._stack:
                self._stack[-1][1] += elapsed

    def take(self) -> Dict[str, float]:
        """The totals so far, then start afresh."""
        out, self.totals = self.totals, {}
        return out


def _wrap(fn: Callable[..., Any], timer: StageTimer, name: str) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        with timer.stage(name):
            return fn(*args, **kwargs)
    return timed


@contextmanager
def _instrumented(session: Session, timer: StageTimer) -> Iterator[None]:
    """Time the stages of one session by shadowing its callables on the instances (restored on exit)."""
    owners = {"session": session, "adapter": session.adapter, "modules": session.gate.gate_modules}
    undo: List[Callable[[], None]] = []
    for label, owner_name, attrs in STAGES:
        owner = owners[owner_name]
        for attr in attrs:
            target = getattr(owner, attr, None)
            if target is None:
                continue
            if isinstance(target, torch.nn.Module):  # a submodule: time its forward with hooks
                ctx: Dict[str, Any] = {}

                def pre(module: torch.nn.Module, inputs: Any, ctx: Dict[str, Any] = ctx, label: str = label) -> None:
                    ctx["cm"] = timer.stage(label)
                    ctx["cm"].__enter__()

                def post(module: torch.nn.Module, inputs: Any, output: Any, ctx: Dict[str, Any] = ctx) -> None:
                    ctx.pop("cm").__exit__(None, None, None)

                handles = (target.register_forward_pre_hook(pre), target.register_forward_hook(post))
                undo.append(lambda handles=handles: [h.remove() for h in handles])
            else:  # a method (or an instance attribute already): shadow it on the instance, then put back
                before = vars(owner).get(attr, _ABSENT)
                object.__setattr__(owner, attr, _wrap(target, timer, label))
                undo.append(lambda owner=owner, attr=attr, before=before: object.__delattr__(owner, attr)
                            if before is _ABSENT else object.__setattr__(owner, attr, before))
    try:
        yield
    finally:
        for step in reversed(undo):
            step()


def profile_stages(gate: ReuseGate, clips: Sequence[Tuple[Sequence[Tensor], Tensor]]) -> Dict[str, Any]:
    """Per-stage milliseconds per frame for computed (``tau = 1``) and reused (``tau = 0``) frames.

    Args:
        gate: the model; its ``tau`` is restored afterwards.
        clips: ``(frames, first_labels)`` pairs: ``[3, H, W]`` uint8 frames and the first frame's ``[H, W]`` ids.

    Returns:
        ``{"stages": [{"stage", "computed_ms", "reused_ms"}, ...], "computed_ms", "reused_ms", "frames"}``; the
        first frame of each clip (object start) is excluded, and the stage rows add up to the totals.
    """
    tau = gate.tau
    timer = StageTimer()
    sums = {"computed": {}, "reused": {}}
    steps = {"computed": 0.0, "reused": 0.0}
    frames = 0
    try:
        for clip_frames, first in clips:
            sessions = {}
            for kind, t in (("computed", 1.0), ("reused", 0.0)):
                gate.tau = t
                sessions[kind] = gate.session()
                sessions[kind].step(clip_frames[0], first)
            for frame in clip_frames[1:]:
                for kind, session in sessions.items():
                    gate.tau = 1.0 if kind == "computed" else 0.0
                    with _instrumented(session, timer):
                        start = time.perf_counter()
                        session.step(frame)
                        steps[kind] += time.perf_counter() - start
                    for name, seconds in timer.take().items():
                        sums[kind][name] = sums[kind].get(name, 0.0) + seconds
                frames += 1
    finally:
        gate.tau = tau
    if frames == 0:
        raise ValueError("profiling needs clips of at least 2 frames (the first one only starts the objects)")
    per_frame = {k: {n: 1000 * s / frames for n, s in v.items()} for k, v in sums.items()}
    totals = {k: 1000 * s / frames for k, s in steps.items()}
    rows = []
    for label, _, _ in STAGES:
        rows.append({"stage": label, "computed_ms": per_frame["computed"].get(label, 0.0),
                     "reused_ms": per_frame["reused"].get(label, 0.0)})
    rows.append({"stage": REST, **{f"{k}_ms": totals[k] - sum(per_frame[k].values()) for k in totals}})
    return {"stages": rows, "computed_ms": totals["computed"], "reused_ms": totals["reused"], "frames": frames}


def profile_lines(report: Dict[str, Any]) -> List[str]:
    """The profile as a text table: milliseconds per frame and share of the frame, computed and reused."""
    comp, reused = report["computed_ms"], report["reused_ms"]
    lines = [f"{'stage':<28}{'computed ms':>12}{'share':>8}{'reused ms':>12}{'share':>8}"]
    for row in report["stages"]:
        c, r = row["computed_ms"], row["reused_ms"]
        lines.append(f"{row['stage']:<28}{c:>12.2f}{c / comp:>8.1%}{r:>12.2f}{r / reused:>8.1%}")
    lines.append(f"{'total per frame':<28}{comp:>12.2f}{1:>8.0%}{reused:>12.2f}{1:>8.0%}")
    lines.append(f"c = reused / computed = {reused / comp:.3f} over {report['frames']} frames "
                 f"(all-reuse speed-up at most x{comp / reused:.2f})")
    return lines
