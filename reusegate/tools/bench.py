"""The speed / accuracy benchmark behind ``reusegate bench``.

It times every variant on the same decoded frames: the bare host (:class:`~reusegate.core.session.HostRunner`),
``tau = 1``, each ``tau`` of a list, and all-reuse (``tau = 0``), each gated one a session of the same gate with its
own :class:`~reusegate.core.config.GateConfig`. Variants are interleaved frame by frame
(in a rotating order), so a slow phase of a loaded machine hits all of them alike; every figure that is a
ratio is taken within one run. FLOPs are counted in a second pass (``FlopCounterMode`` slows a step down).
J and F follow :mod:`reusegate.evaluation` (the scored frames and the empty-mask rule of every J&F here).

For every learnt-gate variant it also checks the gate against what it was trained to predict (eq. 4): the IoU
of each object's ground truth with its ground truth on the last frame it computed. The rank correlation
(Spearman) says how well ``p_reuse`` orders frames, which alone decides J&F at a given reuse rate; the mean
``|p_reuse - IoU|`` says how well it is calibrated, which decides which ``tau`` gives that rate.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from reusegate.core.config import GateConfig
from reusegate.core.controller import window_shares
from reusegate.core.device import synchronize
from reusegate.core.gate import ReuseGate
from reusegate.core.session import COPYING_VARIANTS, HostRunner, copies_previous_mask, frame_tensor
from reusegate.data.readers import DavisReader
from reusegate.data.writer import atomic_write_bytes
from reusegate.evaluation.metrics import frame_jf, jaccard, scored_frames
from reusegate.tools.load import PHASES, CompetingLoad, load_phase

__all__ = ["BenchClip", "ObjectScores", "warm_up", "davis_clips", "demo_clips", "bench", "bench_lines", "bench_plot",
           "davis_object_ids", "DEFAULT_TAUS", "OTHER_VARIANTS"]

DEFAULT_TAUS = (1.0, 0.9, 0.8, 0.7, 0.5)


@dataclass
class BenchClip:
    """Decoded frames (``[3, H, W]`` uint8) and ground-truth label maps of one benchmark sequence."""

    name: str
    frames: List[torch.Tensor]
    gt: List[np.ndarray]


def davis_clips(root: Path, sequences: Optional[Path | Iterable[str]] = None, frames: Optional[int] = None,
                resolution: str = "480p") -> List[BenchClip]:
    """The first ``frames`` frames of DAVIS sequences, decoded up front so decoding is never timed."""
    reader = DavisReader(root, year=None, resolution=resolution, sequences=sequences)
    clips = []
    for name in reader.sequences:
        seq = reader.sequence(name)
        if len(seq.annotated_indices) != len(seq):
            raise ValueError(f"sequence {name} is not annotated on every frame; bench scores J&F on every "
                             f"frame, so it needs the full ground truth (a train or val set)")
        n = len(seq) if frames is None else min(frames, len(seq))
        clips.append(BenchClip(name, [frame_tensor(seq.load_frame(i)) for i in range(n)],
                               [seq.load_mask(i) for i in range(n)]))
    return clips


def demo_clips(frames: Optional[int] = None) -> List[BenchClip]:
    """The embedded synthetic demo clip, for a bench without a dataset."""
    from reusegate.data.synthetic import demo_clip

    clip = demo_clip()
    n = len(clip) if frames is None else min(frames, len(clip))
    return [BenchClip("demo", [frame_tensor(f) for f in clip.frames[:n]], list(clip.labels[:n]))]


@dataclass
class _Variant:
    """One timed configuration and what the bench collects about it."""

    name: str
    config: Optional[GateConfig]  # None: the bare host
    ms: List[float] = field(default_factory=list)
    skipped: int = 0  # frames where the host's deep part did not run
    object_frames: int = 0
    reused: int = 0  # (object, frame) pairs that reused
    copied: int = 0  # of those, pairs whose previous mask was copied (copy, fusion)
    flops: List[int] = field(default_factory=list)
    decisions: List[bool] = field(default_factory=list)  # deep computed per timed frame (timing pass)
    flop_decisions: List[bool] = field(default_factory=list)
    j: List[float] = field(default_factory=list)  # per object of every clip
    f: List[float] = field(default_factory=list)
    per_clip: Dict[str, Dict[str, float]] = field(default_factory=dict)
    gate_vs_iou: List[tuple[float, float]] = field(default_factory=list)  # (p_reuse, true IoU) per object-frame
    target_fps: Optional[float] = None  # a latency-budget session (tau moves; config.tau is where it starts)
    tau_min: Optional[float] = None  # its floor (None: the config's, reusegate.core.controller.tau_floor)
    tau_start: float = 1.0  # where its next clip's controller starts: where the last one ended
    taus: List[float] = field(default_factory=list)  # the tau of every timed frame
    windows: List[int] = field(default_factory=lambda: [0, 0])  # 1-second windows within +-15 % of target, all
    unreachable: List[str] = field(default_factory=list)  # clips whose budget was out of reach at tau_min
    phases: List[int] = field(default_factory=list)  # per timed frame: its third of the video (tools.load.PHASES)
    phase_seconds: Dict[int, List[float]] = field(default_factory=dict)  # per phase: step times (budgets)


def _tau_name(tau: float) -> str:
    return f"tau={tau:g}"


OTHER_VARIANTS = ("copy", "fusion", "oracle")
"""Variants ``bench`` can add at one threshold besides ``decode`` over the taus (paper §4.2 / Table 3)."""


def _variants(base: GateConfig, taus: Sequence[float], others: Sequence[str] = (),
              others_tau: Union[float, Sequence[float]] = 0.7, precisions: Sequence[str] = ()) -> List[_Variant]:
    """The host, then ``base`` with the ``decode`` variant at 1, each of ``taus`` (descending) and 0, then each of
    ``others`` at each of ``others_tau`` (fusion with ``base``'s ``tau2``); each row that reuses comes once in each
    of ``precisions`` (default: ``base``'s ``reuse_precision``), named with the precision where it is not float32.
    Each config is checked when made."""
    bad = [o for o in others if o not in OTHER_VARIANTS]
    if bad:
        raise ValueError(f"unknown variants {bad}; choose from {OTHER_VARIANTS}")
    decode = [replace(base, tau=t, variant="decode") for t in taus]
    middle = sorted({c.tau for c in decode} - {0.0, 1.0}, reverse=True)
    kinds = list(dict.fromkeys(precisions or [base.reuse_precision]))

    def each(name: str, config: GateConfig) -> List[_Variant]:
        return [_Variant(name + ("" if p == "float32" else f" {p}"), replace(config, reuse_precision=p))
                for p in kinds]

    return ([_Variant("host", None), _Variant(_tau_name(1.0), replace(base, tau=1.0, variant="decode"))]
            + [v for t in (*middle, 0.0) for v in each(_tau_name(t), replace(base, tau=t, variant="decode"))]
            + [v for o in dict.fromkeys(others) for t in _floats(others_tau)
               for v in each(f"{o}@{t:g}", replace(base, tau=t, variant=o))])


def _floats(value: Union[float, Sequence[float]]) -> List[float]:
    """One threshold or several, as a list without repeats (descending, as the tau rows)."""
    return sorted({float(v) for v in ((value,) if isinstance(value, (int, float)) else value)}, reverse=True)


def _session(gate: ReuseGate, v: _Variant, count_flops: bool = False):
    """A video session of the bare host (no config; the gate config's window, a setting of the merge, applies to it
    too) or of ``gate`` with ``v``'s config (and target), on the same weights."""
    if v.config is None:
        return HostRunner(gate.adapter, gate.config.window)
    if v.target_fps is not None:
        return gate.session(v.config, count_flops, target_fps=v.target_fps, tau_min=v.tau_min, tau_start=v.tau_start)
    return gate.session(v.config, count_flops)


def _budget_figures(v: _Variant, session: Any, clip: str) -> None:
    """What a latency-budget variant adds after a clip: its taus, its 1-second windows, an unreachable budget."""
    times = [t for t in session.step_seconds if t is not None]
    within, windows = window_shares(times, v.target_fps)
    v.windows[0] += within
    v.windows[1] += windows
    n = len(session.step_seconds)
    for i, seconds in enumerate(session.step_seconds[1:], start=1):
        v.phase_seconds.setdefault(load_phase(i, n), []).append(seconds)
    v.taus += session.taus[1:]
    v.tau_start = session.controller.tau
    v.per_clip[clip]["tau_mean"] = float(np.mean(session.taus[1:]))
    if session.controller.unreachable is not None:
        v.unreachable.append(clip)


def _oracle(v: _Variant) -> bool:
    return v.config is not None and v.config.variant == "oracle"


def _step(session, v: _Variant, frame: torch.Tensor, gt: np.ndarray):
    """One step; the oracle variant reads the frame's ground truth."""
    return session.step(frame, gt=gt.astype(np.int64)) if _oracle(v) else session.step(frame)


def _step_flops(session, v: _Variant, frame: torch.Tensor, gt: np.ndarray):
    """One step with its executed FLOPs (the host runner does not count them itself)."""
    if isinstance(session, HostRunner):
        with FlopCounterMode(display=False) as counter:
            result = session.step(frame)
        return result, counter.get_total_flops()
    result = _step(session, v, frame, gt)
    return result, result.flops


def davis_object_ids(gt0: np.ndarray) -> List[int]:
    """Object ids as the DAVIS protocol counts them: 1..max of the first ground truth."""
    return list(range(1, int(gt0.max(initial=0)) + 1))


class ObjectScores:
    """J and F of each object over one clip's scored frames (the DAVIS protocol's: not the first, not the last)."""

    def __init__(self, ids: List[int], frames: int) -> None:
        self.ids, self.scored = ids, scored_frames(frames)
        self.j: Dict[int, List[float]] = {oid: [] for oid in ids}
        self.f: Dict[int, List[float]] = {oid: [] for oid in ids}

    def add(self, t: int, labels: np.ndarray, gt: np.ndarray) -> None:
        """Score frame ``t``'s label map against its ground truth, if ``t`` is a scored frame."""
        if t in self.scored:
            for oid, (j, f) in frame_jf(labels, gt, self.ids).items():
                self.j[oid].append(j)
                self.f[oid].append(f)

    def means(self) -> tuple[List[float], List[float]]:
        """Per object, in id order: mean J and mean F over the scored frames."""
        return ([float(np.mean(self.j[o])) for o in self.ids], [float(np.mean(self.f[o])) for o in self.ids])


def _check_clips(clips: Sequence[BenchClip]) -> None:
    if not clips:
        raise ValueError("no sequence to benchmark")
    for c in clips:
        if len(c.frames) < 3:
            raise ValueError(f"sequence {c.name} has {len(c.frames)} frames; J&F drops the first and last frame, "
                             f"so bench needs at least 3 (raise --frames)")
        if not davis_object_ids(c.gt[0]):
            raise ValueError(f"the first ground-truth frame of {c.name} holds no object")


def _first_step(session, v: _Variant, clip: BenchClip) -> None:
    first = clip.gt[0].astype(np.int64)
    if _oracle(v):
        session.step(clip.frames[0], first, gt=first)
    else:
        session.step(clip.frames[0], first)


def _timing_pass(gate: ReuseGate, variants: List[_Variant], clip: BenchClip,
                 load: Optional[CompetingLoad] = None) -> None:
    """Every variant on ``clip``, interleaved frame by frame; latency, gate decisions and J / F per object. With
    ``load``, a competing CPU load runs during the middle third of the clip."""
    sessions = {v.name: _session(gate, v) for v in variants}
    for v in variants:
        _first_step(sessions[v.name], v, clip)
    ids = davis_object_ids(clip.gt[0])
    n = len(clip.frames)
    scores = {v.name: ObjectScores(ids, n) for v in variants}
    anchors = {v.name: dict.fromkeys(ids, 0) for v in variants}  # each object's last computed frame
    pairs_before = {v.name: len(v.gate_vs_iou) for v in variants}
    for t in range(1, n):
        k = t % len(variants)
        if load is not None:
            load.set(load_phase(t, n) == 1)
        for v in variants[k:] + variants[:k]:  # rotate, so no variant always runs right after the same one
            t0 = time.perf_counter()
            result = _step(sessions[v.name], v, clip.frames[t], clip.gt[t])
            synchronize(sessions[v.name].device)
            v.ms.append(1000 * (time.perf_counter() - t0))
            v.phases.append(load_phase(t, n))
            v.decisions.append(result.deep_computed)
            v.skipped += not result.deep_computed
            v.object_frames += len(result.reused)
            v.reused += sum(result.reused.values())
            v.copied += sum(r and copies_previous_mask(v.config, result.p_reuse[oid])
                            for oid, r in result.reused.items())
            _compare_gate(v, result, clip, t, anchors[v.name])
            scores[v.name].add(t, result.labels.cpu().numpy(), clip.gt[t])
    for v in variants:
        js, fs = scores[v.name].means()
        v.j += js
        v.f += fs
        v.per_clip[clip.name] = {"jf": (float(np.mean(js)) + float(np.mean(fs))) / 2,
                                 "ms_per_frame": float(np.mean(v.ms[-(n - 1):])),
                                 "per_object": {str(o): {"j": j, "f": f} for o, j, f in zip(ids, js, fs)},
                                 **_gate_figures(v.gate_vs_iou[pairs_before[v.name]:])}
        if v.target_fps is not None:
            _budget_figures(v, sessions[v.name], clip.name)


def _compare_gate(v: _Variant, result: Any, clip: BenchClip, t: int, anchors: Dict[int, int]) -> None:
    """Record the learnt gate's ``p_reuse`` against the true IoU to each object's last computed frame."""
    for oid, p in result.p_reuse.items():
        if oid in anchors and not _oracle(v) and not math.isnan(p):
            v.gate_vs_iou.append((p, jaccard(clip.gt[t] == oid, clip.gt[anchors[oid]] == oid)))
    for oid, reused in result.reused.items():
        if oid in anchors and not reused:
            anchors[oid] = t


def _ranks(a: np.ndarray) -> np.ndarray:
    """0-based ranks, tied values sharing their average rank."""
    order = np.argsort(a, kind="stable")
    _, first, counts = np.unique(a[order], return_index=True, return_counts=True)
    ranks = np.empty(len(a))
    ranks[order] = np.repeat(first + (counts - 1) / 2, counts)
    return ranks


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Rank correlation; NaN when either side is constant."""
    rx, ry = _ranks(x), _ranks(y)
    if rx.std() == 0 or ry.std() == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def _gate_figures(pairs: List[tuple[float, float]]) -> Dict[str, Any]:
    """Rank correlation and mean absolute difference of (p_reuse, true IoU) pairs (None without pairs)."""
    if not pairs:
        return {"gate_pairs": 0, "gate_iou_spearman": None, "gate_iou_mae": None}
    p, iou = (np.asarray(a, dtype=np.float64) for a in zip(*pairs))
    return {"gate_pairs": len(p), "gate_iou_spearman": _spearman(p, iou),
            "gate_iou_mae": float(np.mean(np.abs(p - iou)))}


def _flop_pass(gate: ReuseGate, variants: List[_Variant], clip: BenchClip) -> None:
    """FLOPs executed per frame, and the gate decisions, which must match the timing pass's (not for a latency
    budget: its decisions follow the clock)."""
    for v in [v for v in variants if v.target_fps is None]:
        session = _session(gate, v, count_flops=True)
        _first_step(session, v, clip)
        for frame, gt in zip(clip.frames[1:], clip.gt[1:]):
            result, flops = _step_flops(session, v, frame, gt)
            v.flops.append(flops)
            v.flop_decisions.append(result.deep_computed)


def warm_up(gate: ReuseGate, clip: BenchClip, variants: Sequence[_Variant] = (),
            configs: Sequence[GateConfig] = ()) -> None:
    """First calls allocate memory, pick kernels and (ONNX backends) compile graphs per working size: each of
    ``variants`` (the bench's rows) and ``configs`` runs on a few frames of ``clip``, untimed."""
    for v in [*variants, *(_Variant(c.variant, c) for c in configs)]:
        session = _session(gate, v)
        _first_step(session, v, clip)
        for frame, gt in zip(clip.frames[1:3], clip.gt[1:3]):
            _step(session, v, frame, gt)


def bench(gate: ReuseGate, clips: Sequence[BenchClip], taus: Sequence[float] = DEFAULT_TAUS,
          flops: bool = True, progress: bool = True, others: Sequence[str] = (),
          others_tau: Union[float, Sequence[float]] = 0.7, targets: Sequence[float] = (),
          target_config: Optional[GateConfig] = None, tau_min: Optional[float] = None, load: Optional[int] = None,
          precisions: Sequence[str] = ()) -> Dict[str, Any]:
    """Measure ``gate`` on ``clips``: latency, FLOPs, reuse rate and J&F per variant, speedups and Amdahl.

    Returns a JSON-ready dict; ``variants`` lists the host, ``tau=1``, the other taus (descending) and
    ``tau=0``. ``reuse_cost`` is c = (reused-frame cost) / (computed-frame cost) from the ``tau=0`` and
    ``tau=1`` latencies, corrected for the frames ``tau=0`` still computed; the Amdahl ideal of a variant
    with skip rate r (fraction of frames whose deep part did not run) is 1 / (1 - r (1 - c)). ``others``
    adds the ``copy``, ``fusion`` (with the gate's ``tau2``) and ``oracle`` variants at each of ``others_tau``.
    ``targets`` adds one latency-budget session per frame rate, starting from ``target_config`` (default: the
    gate's) with its ``tau`` floor at ``tau_min`` (default: the config's): its row holds the mean ``tau``, the share
    of 1-second windows of its own step time within 15 % of the target, the sequences whose budget was out of
    reach, and ``frontier_jf``, the J&F of the fixed-``tau`` rows interpolated at its frame rate: rows of the
    budget's own variant (with ``tau = 1``) where ``others`` measured it, else the ``decode`` rows, named in
    ``frontier_variant``. ``load`` runs a
    competing CPU load of that many busy processes (0: one per core; :class:`~reusegate.tools.load.CompetingLoad`)
    during the middle third of every clip; each
    row then holds its figures per third (``phases``: FPS, and for a budget the mean ``tau`` and the windows).
    """
    from tqdm import tqdm

    _check_clips(clips)
    variants = _variants(gate.config, taus, others, others_tau, precisions) + [
        _Variant(f"fps={f:g}", target_config or gate.config, target_fps=f, tau_min=tau_min) for f in targets]
    warm_up(gate, clips[0], variants)
    with CompetingLoad(load or None) if load is not None else contextlib.nullcontext() as hog:
        for clip in tqdm(clips, desc="timing", unit="seq", disable=not progress):
            _timing_pass(gate, variants, clip, hog)
    if flops:
        for clip in tqdm(clips, desc="FLOPs", unit="seq", disable=not progress):
            _flop_pass(gate, variants, clip)

    base = next(v for v in variants if v.name == _tau_name(1.0))
    all_reuse = {v.config.reuse_precision: v for v in variants  # the tau=0 row of each precision
                 if v.config is not None and v.config.tau == 0.0 and v.config.variant == "decode"}
    ms = {v.name: float(np.mean(v.ms)) for v in variants}
    timed = len(base.ms)

    def cost(reuse_value: float, compute_value: float, skipped: int) -> Optional[float]:
        """Per-frame cost ratio of a reused frame, with tau=0's computed frames taken out."""
        s = skipped / timed
        if s == 0:
            return None
        return (reuse_value / compute_value - (1 - s)) / s

    c_times = {p: cost(ms[v.name], ms[base.name], v.skipped) for p, v in all_reuse.items()}
    first = next(iter(all_reuse.values()))
    c_time = c_times[first.config.reuse_precision]
    c_flops = None
    if flops:
        c_flops = cost(float(np.mean(first.flops)), float(np.mean(base.flops)), first.skipped)
    rows = []
    for v in variants:
        skip = v.skipped / len(v.ms)
        c_own = None if v.config is None else c_times.get(v.config.reuse_precision, c_time)
        ideal = None if c_own is None else 1 / (1 - skip * (1 - c_own))
        speedup = ms[base.name] / ms[v.name]
        rows.append({
            "name": v.name,
            "tau": None if v.config is None else v.config.tau,
            "variant": None if v.config is None else v.config.variant,
            "reuse_precision": None if v.config is None else v.config.reuse_precision,
            "ms_per_frame": ms[v.name],
            "ms_median": float(np.median(v.ms)),
            "fps": 1000 / ms[v.name],
            "speedup": speedup,
            "flops_per_frame": float(np.mean(v.flops)) if flops and v.flops else None,
            "reuse_rate": v.reused / v.object_frames if v.object_frames else 0.0,
            "copy_rate": v.copied / v.object_frames if v.object_frames else 0.0,
            "skip_rate": skip,
            "j": float(np.mean(v.j)),
            "f": float(np.mean(v.f)),
            "jf": (float(np.mean(v.j)) + float(np.mean(v.f))) / 2,
            "amdahl_ideal": ideal,
            "amdahl_ratio": None if ideal is None else speedup / ideal,
            "flop_pass_same_decisions": (v.decisions == v.flop_decisions) if flops and v.flops else None,
            **_gate_figures(v.gate_vs_iou),
            "per_sequence": v.per_clip,
        })
        if v.target_fps is not None:
            rows[-1].update(_target_figures(v))
        if load is not None:
            rows[-1]["phases"] = _phase_figures(v)
    own = target_config or gate.config
    fixed_rows = [r for r in rows if "target_fps" not in r and r["reuse_precision"] == own.reuse_precision]
    frontier = own.variant if own.variant != "decode" and any(r["variant"] == own.variant for r in fixed_rows) \
        else "decode"
    fixed = sorted((r["fps"], r["jf"]) for r in rows if r["name"] == _tau_name(1.0) or (
        r in fixed_rows and r["variant"] == frontier))
    for r in rows:
        if "target_fps" in r:
            r["frontier_variant"] = frontier
            if fixed[0][0] <= r["fps"] <= fixed[-1][0]:
                r["frontier_jf"] = float(np.interp(r["fps"], *zip(*fixed)))
    return {
        "sequences": [c.name for c in clips],
        "frames": {c.name: len(c.frames) for c in clips},
        "frame_size": list(clips[0].frames[0].shape[-2:]),
        "timed_frames_per_variant": timed,
        "threads": torch.get_num_threads(),
        "reuse_cost": c_time,
        **({"reuse_cost_by_precision": c_times} if len(c_times) > 1 else {}),
        "reuse_cost_flops": c_flops,
        "overhead_tau1": ms[base.name] / ms["host"] - 1,
        "variants": rows,
    }


def _target_figures(v: _Variant) -> Dict[str, Any]:
    """A latency-budget row's own figures (``frontier_jf`` is added once every row is known)."""
    return {"target_fps": v.target_fps, "tau_mean": float(np.mean(v.taus)), "tau_lowest": float(np.min(v.taus)),
            "fps_error": 1000 / float(np.mean(v.ms)) / v.target_fps - 1,
            "windows": v.windows[1], "windows_within_15pct": v.windows[0] / v.windows[1] if v.windows[1] else None,
            "unreachable": v.unreachable, "frontier_jf": None}


def _phase_figures(v: _Variant) -> Dict[str, Dict[str, Any]]:
    """A row's FPS per third of the clips (before, under and after the load); for a budget also its mean ``tau``
    and the share of 1-second windows within 15 % of the target (the third's step times of every clip in a row:
    a third of a DAVIS sequence is about a second)."""
    out = {}
    phases = np.asarray(v.phases)
    for k, name in enumerate(PHASES):
        ms = np.asarray(v.ms)[phases == k]
        out[name] = {"fps": 1000 / float(np.mean(ms)) if len(ms) else None}
        if v.target_fps is not None:
            within, windows = window_shares(v.phase_seconds.get(k, []), v.target_fps)
            taus = np.asarray(v.taus)[phases == k]
            out[name].update(tau_mean=float(np.mean(taus)) if len(taus) else None,
                             windows=windows, windows_within_15pct=within / windows if windows else None)
    return out


def bench_lines(report: Dict[str, Any]) -> List[str]:
    """The bench table and its derived figures, as printed by ``reusegate bench``."""

    def num(value: Optional[float], fmt: str) -> str:
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)

    width = max(10, *(len(r["name"]) + 1 for r in report["variants"]))
    head = (f"{'variant':<{width}}{'ms/frame':>10}{'FPS':>8}{'speedup':>9}{'GFLOP/fr':>10}{'reuse %':>9}"
            f"{'J&F':>7}{'Amdahl':>8}{'ach/ideal':>10}")
    lines = [f"{len(report['sequences'])} sequences ({', '.join(report['sequences'])}), "
             f"{report['timed_frames_per_variant']} timed frames per variant at "
             f"{report['frame_size'][1]}x{report['frame_size'][0]}, {report['threads']} threads"
             + (f", window {report['window']:g}" if report.get("window") is not None else ""), head]
    for r in report["variants"]:
        gflops = None if r["flops_per_frame"] is None else r["flops_per_frame"] / 1e9
        lines.append(f"{r['name']:<{width}}{r['ms_per_frame']:>10.1f}{r['fps']:>8.2f}{r['speedup']:>9.3f}"
                     f"{num(gflops, '.3f'):>10}{100 * r['reuse_rate']:>9.1f}{100 * r['jf']:>7.1f}"
                     f"{num(r['amdahl_ideal'], '.3f'):>8}{num(r['amdahl_ratio'], '.3f'):>10}")
    lines.append(f"c = reused / computed frame cost: {num(report['reuse_cost'], '.3f')} (time), "
                 f"{num(report['reuse_cost_flops'], '.3f')} (FLOPs)"
                 + "".join(f"; {p} reuse {num(c, '.3f')} (time)"
                           for p, c in list(report.get("reuse_cost_by_precision", {}).items())[1:]))
    lines.append(f"wrapper overhead at tau=1 vs bare host: {100 * report['overhead_tau1']:+.2f} %")
    copying = [r for r in report["variants"] if r["variant"] in COPYING_VARIANTS]
    if copying:
        lines.append("object-frames whose previous mask was copied: " + ", ".join(
            f"{r['name']} {100 * r.get('copy_rate', 0.0):.1f} %" for r in copying))
    gated = [r for r in report["variants"] if r.get("gate_pairs")]
    if gated:
        lines.append("learnt gate against the true IoU to the last computed frame (Spearman / mean |p - IoU|): "
                     + ", ".join(f"{r['name']} {num(r['gate_iou_spearman'], '.3f')} / {r['gate_iou_mae']:.3f}"
                                 for r in gated))
    for r in report["variants"]:
        if "target_fps" in r:
            missed = f"; out of reach at tau_min in {', '.join(r['unreachable'])}" if r["unreachable"] else ""
            within = r["windows_within_15pct"]
            lines.append(f"target {r['target_fps']:g} FPS ({r['variant']}): achieved {r['fps']:.2f} FPS "
                         f"({100 * r['fps_error']:+.1f} %), J&F {100 * r['jf']:.1f} "
                         f"(fixed-tau {r.get('frontier_variant', 'decode')} frontier at that FPS: "
                         f"{num(None if r['frontier_jf'] is None else 100 * r['frontier_jf'], '.1f')}), reuse "
                         f"{100 * r['reuse_rate']:.1f} %, mean tau {r['tau_mean']:.3f} (lowest {r['tau_lowest']:.3f}), "
                         f"1-s windows within 15 %: {num(None if within is None else 100 * within, '.0f')} % of "
                         f"{r['windows']}{missed}")
    def phase(ph: Dict[str, Any]) -> str:
        text = f"{num(ph['fps'], '.2f')} FPS"
        if "tau_mean" in ph:
            share = None if ph["windows_within_15pct"] is None else 100 * ph["windows_within_15pct"]
            text += (f" (tau {num(ph['tau_mean'], '.3f')}, {num(share, '.0f')} % of {ph['windows']} windows "
                     f"within 15 %)")
        return text

    lines += [f"{r['name']} before / under / after the load: " + " / ".join(map(phase, r["phases"].values()))
              for r in report["variants"] if "phases" in r]
    return lines


def bench_plot(report: Dict[str, Any], path: Path) -> Path:
    """J&F against FPS over tau (the paper's Fig. 6), the bare host as a separate point; PNG, written atomically."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gated = [r for r in report["variants"] if r["tau"] is not None and r["variant"] == "decode"
             and "target_fps" not in r]
    others = [r for r in report["variants"] if r["tau"] is not None and r not in gated]  # + latency budgets
    host = next(r for r in report["variants"] if r["tau"] is None)
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
    ax.plot([r["fps"] for r in gated], [100 * r["jf"] for r in gated], marker="o", label="reuse gate over tau")
    for r in gated:
        ax.annotate(f"τ={r['tau']:g}", (r["fps"], 100 * r["jf"]), textcoords="offset points", xytext=(4, 4),
                    fontsize=8)
    for r in others:
        ax.plot([r["fps"]], [100 * r["jf"]], marker="s", ls="", label=r["name"])
    ax.plot([host["fps"]], [100 * host["jf"]], marker="*", ms=12, ls="", color="k", label="bare host")
    ax.set_xlabel("FPS")
    ax.set_ylabel("J&F (%)")
    ax.set_title(f"J&F vs FPS over tau ({len(report['sequences'])} sequences)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
