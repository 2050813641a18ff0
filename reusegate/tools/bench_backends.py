"""``reusegate bench --backends A B ...``: the same model on several backends, interleaved frame by frame in one run.

Each backend runs the model at ``tau = 1`` and at each further threshold; all (backend, tau) sessions step through
the same decoded frames in a rotating order, so a slow phase of a loaded machine hits every backend alike and each
ratio is taken within one run. Against the first backend at the same tau it reports the speed ratio, the share of
pixels whose label agrees, and the gate decisions that differ (with how far each ``p_reuse`` lay from tau: a
near-tie flips on rounding).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Sequence

import numpy as np

from reusegate.core.config import GateConfig
from reusegate.core.gate import ReuseGate
from reusegate.tools.bench import BenchClip, ObjectScores, davis_object_ids, warm_up

__all__ = ["bench_backends", "backend_lines"]


@dataclass
class _Run:
    backend: str
    tau: float
    ms: List[float] = field(default_factory=list)
    j: List[float] = field(default_factory=list)
    f: List[float] = field(default_factory=list)
    reused: int = 0
    object_frames: int = 0
    pixels: int = 0
    agree: int = 0
    flips: List[float] = field(default_factory=list)  # |p_reuse - tau| where the decision differs from the first

    @property
    def name(self) -> str:
        return f"{self.backend} tau={self.tau:g}"


def _config(gate: ReuseGate, tau: float) -> GateConfig:
    return replace(gate.config, tau=tau)


def bench_backends(gates: Dict[str, ReuseGate], clips: Sequence[BenchClip], taus: Sequence[float]) -> Dict[str, Any]:
    """Time each backend's gate (``gates``, the first the reference) at each of ``taus`` on ``clips``."""
    names = list(gates)
    runs = [_Run(b, t) for t in taus for b in names]
    for gate in gates.values():
        warm_up(gate, clips[0], configs=[_config(gate, tau) for tau in taus])
    for clip in clips:
        ids = davis_object_ids(clip.gt[0])
        sessions = {r.name: gates[r.backend].session(_config(gates[r.backend], r.tau)) for r in runs}
        for r in runs:
            sessions[r.name].step(clip.frames[0], clip.gt[0].astype(np.int64))
        scores = {r.name: ObjectScores(ids, len(clip.frames)) for r in runs}
        for t in range(1, len(clip.frames)):
            k = t % len(runs)
            results = {}
            for r in runs[k:] + runs[:k]:
                t0 = time.perf_counter()
                results[r.name] = sessions[r.name].step(clip.frames[t])
                r.ms.append(1000 * (time.perf_counter() - t0))
            for r in runs:
                res, ref = results[r.name], results[f"{names[0]} tau={r.tau:g}"]
                r.reused += sum(res.reused.values())
                r.object_frames += len(res.reused)
                r.pixels += res.labels.numel()
                r.agree += int((res.labels == ref.labels).sum())
                r.flips += [abs(res.p_reuse[o] - r.tau) for o in res.reused
                            if res.reused[o] != ref.reused.get(o) and not math.isnan(res.p_reuse[o])]
                scores[r.name].add(t, res.labels.cpu().numpy(), clip.gt[t])
        for r in runs:
            js, fs = scores[r.name].means()
            r.j += js
            r.f += fs
    rows = []
    for r in runs:
        ref = next(x for x in runs if x.tau == r.tau and x.backend == names[0])
        ms = float(np.mean(r.ms))
        rows.append({"backend": r.backend, "tau": r.tau, "ms_per_frame": ms, "fps": 1000 / ms,
                     "speedup_vs_first": float(np.mean(ref.ms)) / ms,
                     "jf": (float(np.mean(r.j)) + float(np.mean(r.f))) / 2,
                     "reuse_rate": r.reused / r.object_frames if r.object_frames else 0.0,
                     "pixel_agreement": r.agree / r.pixels if r.pixels else 1.0,
                     "decision_flips": len(r.flips), "flip_max_distance_to_tau": max(r.flips, default=None)})
    return {"backends": names, "taus": list(taus), "sequences": [c.name for c in clips],
            "timed_frames_per_run": len(runs[0].ms), "runs": rows}


def backend_lines(report: Dict[str, Any]) -> List[str]:
    """The comparison table, as ``reusegate bench --backends`` prints it."""
    first = report["backends"][0]
    lines = [f"{'backend':<12} {'tau':>5} {'ms/frame':>9} {'FPS':>7} {'x ' + first:>14} {'J&F':>6} {'reuse':>6} "
             f"{'pixels agree':>13} {'flips':>6}"]
    for r in report["runs"]:
        flips = f"{r['decision_flips']}" + (f" (|p-tau| <= {r['flip_max_distance_to_tau']:.2g})"
                                            if r["decision_flips"] else "")
        lines.append(f"{r['backend']:<12} {r['tau']:>5g} {r['ms_per_frame']:>9.1f} {r['fps']:>7.2f} "
                     f"{r['speedup_vs_first']:>14.2f} {100 * r['jf']:>6.1f} {100 * r['reuse_rate']:>5.1f}% "
                     f"{100 * r['pixel_agreement']:>12.3f}% {flips:>6}")
    lines.append(f"{report['timed_frames_per_run']} timed frames per (backend, tau), interleaved frame by frame; "
                 f"ratios, pixel agreement and flips against {first} at the same tau")
    return lines
