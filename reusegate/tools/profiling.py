"""Where a frame's time goes: per-stage milliseconds for computed and for reused frames.

The gate can only save what it skips, so the useful question on a new CPU or host is which stages are never
skipped and how much they cost. :func:`profile_stages` answers it for any host: it times the adapter's interface
methods (the three taps) and the gate's layers on one session at ``tau = 1`` (every frame computed) and one at
``tau = 0`` (every frame after the first reused), interleaved frame by frame so that both see the same machine
state; each session has its own config, the gate is left as it was. Times are exclusive (a stage's time excludes
the stages it calls); whatever the core does between them is reported as its own row, so the rows add up to the
measured step time.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, Callable, Dict, Iterator, List, Sequence, Tuple

import torch
from torch import Tensor

from reusegate.core.device import module_device, synchronize
from reusegate.core.gate import ReuseGate
from reusegate.core.session import COPYING_VARIANTS, Session

# (row label, where the callable lives, attribute names) in the order a frame runs them.
STAGES: Tuple[Tuple[str, str, Tuple[str, ...]], ...] = (
    ("frame conversion + checks", "session", ("_prepare",)),
    ("preprocess", "adapter", ("preprocess",)),
    ("shallow backbone", "adapter", ("shallow",)),
    ("match feature", "adapter", ("match_feature",)),
    ("template matching + gate", "layers", ("match_and_gate", "reuse_probability", "template_match")),
    ("deep backbone", "adapter", ("deep",)),
    ("score", "adapter", ("score",)),
    ("online update (amortised)", "adapter", ("learn", "advance")),
    ("deep decoder", "adapter", ("refine_deep",)),
    ("delta", "layers", ("delta",)),
    ("translator", "layers", ("refine_translator",)),
    ("shallow decoder + head", "adapter", ("refine_shallow", "refine_reused")),
    ("merge / argmax / resize", "session", ("_finish", "_output")),
)
REST = "core bookkeeping (rest)"
_ABSENT = object()


class StageTimer:
    """Exclusive wall-clock time per stage: time spent in a nested timed call is charged to that call only. On an
    accelerator (``device``) each stage boundary waits for the queued kernels, so a stage is charged its own."""

    def __init__(self, device: torch.device = torch.device("cpu")) -> None:
        self.device = device
        self.totals: Dict[str, float] = {}
        self._stack: List[List[float]] = []  # [start, time charged to children]

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        synchronize(self.device)
        self._stack.append([time.perf_counter(), 0.0])
        try:
            yield
        finally:
            synchronize(self.device)
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
    owners = {"session": session, "adapter": session.adapter, "layers": session.layers}
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


KINDS = {"computed": (1.0, "decode"), "reused": (0.0, "decode"), "copied": (0.0, "copy")}
"""The profiled kinds of frame as (tau, variant): every frame computed, every frame reused through the gate's
reuse path (decoded from the caches), and -- for a gate whose variant copies -- every frame's previous mask copied."""


def profile_stages(gate: ReuseGate, clips: Sequence[Tuple[Sequence[Tensor], Tensor]]) -> Dict[str, Any]:
    """Per-stage milliseconds per frame for computed (``tau = 1``) and reused (``tau = 0``) frames, and for a
    ``copy`` or ``fusion`` gate copied ones too (:data:`KINDS`).

    Args:
        gate: the model; each kind of frame runs a session with its config, the gate's with ``tau`` and ``variant``
            replaced.
        clips: ``(frames, first_labels)`` pairs: ``[3, H, W]`` uint8 frames and the first frame's ``[H, W]`` ids.

    Returns:
        ``{"stages": [{"stage", "computed_ms", "reused_ms"[, "copied_ms"]}, ...], "computed_ms", "reused_ms"
        [, "copied_ms"], "frames"}``; the first frame of each clip (object start) is excluded, and the stage rows
        add up to the totals.
    """
    kinds = [k for k in KINDS if k != "copied" or gate.config.variant in COPYING_VARIANTS]
    configs = {k: replace(gate.config, tau=KINDS[k][0], variant=KINDS[k][1]) for k in kinds}
    timer = StageTimer(module_device(gate))
    sums: Dict[str, Dict[str, float]] = {k: {} for k in kinds}
    steps = dict.fromkeys(kinds, 0.0)
    frames = 0
    for clip_frames, first in clips:
        sessions = {}
        for kind in kinds:
            sessions[kind] = gate.session(configs[kind])
            sessions[kind].step(clip_frames[0], first)
        for frame in clip_frames[1:]:
            for kind, session in sessions.items():
                with _instrumented(session, timer):
                    start = time.perf_counter()
                    session.step(frame)
                    synchronize(session.device)
                    steps[kind] += time.perf_counter() - start
                for name, seconds in timer.take().items():
                    sums[kind][name] = sums[kind].get(name, 0.0) + seconds
            frames += 1
    if frames == 0:
        raise ValueError("profiling needs clips of at least 2 frames (the first one only starts the objects)")
    per_frame = {k: {n: 1000 * s / frames for n, s in v.items()} for k, v in sums.items()}
    totals = {k: 1000 * s / frames for k, s in steps.items()}
    rows = []
    for label, _, _ in STAGES:
        rows.append({"stage": label, **{f"{k}_ms": per_frame[k].get(label, 0.0) for k in kinds}})
    rows.append({"stage": REST, **{f"{k}_ms": totals[k] - sum(per_frame[k].values()) for k in kinds}})
    return {"stages": rows, **{f"{k}_ms": totals[k] for k in kinds}, "frames": frames}


def profile_lines(report: Dict[str, Any]) -> List[str]:
    """The profile as a text table: milliseconds per frame and share of the frame, computed, reused (and
    copied, when profiled)."""
    kinds = [k for k in KINDS if f"{k}_ms" in report]
    totals = {k: report[f"{k}_ms"] for k in kinds}
    lines = [f"{'stage':<28}" + "".join(f"{k + ' ms':>12}{'share':>8}" for k in kinds)]
    for row in report["stages"]:
        lines.append(f"{row['stage']:<28}" + "".join(
            f"{row[f'{k}_ms']:>12.2f}{row[f'{k}_ms'] / totals[k]:>8.1%}" for k in kinds))
    lines.append(f"{'total per frame':<28}" + "".join(f"{totals[k]:>12.2f}{1:>8.0%}" for k in kinds))
    comp, reused = totals["computed"], totals["reused"]
    lines.append(f"c = reused / computed = {reused / comp:.3f} over {report['frames']} frames "
                 f"(all-reuse speed-up at most x{comp / reused:.2f})")
    if "copied" in totals:
        lines.append(f"a copied frame costs {totals['copied'] / comp:.3f} of a computed one")
    return lines
