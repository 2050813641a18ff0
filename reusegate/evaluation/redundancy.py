"""How redundant are consecutive frames? The paper's Fig. 1a histogram and the oracle reuse bound.

* :func:`consecutive_ious`: per object, the IoU between the ground truth of each annotated frame and the
  previous annotated one; pairs where the object is absent from both are skipped (their IoU says nothing).
* :func:`oracle_bound`: for each τ, walk the video keeping an anchor (the last "computed" frame); when the
  anchor's ground truth has IoU ≥ τ with the current ground truth, copy the anchor's mask (reuse), else
  take the current ground truth (compute) and move the anchor there. The J&F of that prediction (semi-
  supervised protocol, per object, as :mod:`.davis` aggregates) and the reuse rate bound what a perfect
  gate with a copy-only reuse path could reach — the paper's g_IoU curve. Objects are gated independently
  and scored on their own binary masks.

Public API::

    consecutive_ious(seq) -> {object_id: np.ndarray}
    redundancy_report(reader, processes=None) -> RedundancyReport  (.counts .n_pairs .fraction_above(0.7))
    oracle_bound(seq, taus) -> {tau: OracleScore}     oracle_bounds(reader, taus) -> {tau: OracleScore}
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from reusegate.data.readers import VideoSequence
from reusegate.evaluation._parallel import parallel_map
from reusegate.evaluation.metrics import db_statistics, f_measure, jaccard

__all__ = ["consecutive_ious", "RedundancyReport", "redundancy_report", "OracleScore", "oracle_bound",
           "oracle_bounds", "BIN_EDGES"]

BIN_EDGES = np.round(np.linspace(0.0, 1.0, 11), 10)


def consecutive_ious(seq: VideoSequence) -> dict[int, np.ndarray]:
    """Per object, IoU of consecutive annotated frames from the object's start (both-empty pairs skipped)."""
    idx = seq.annotated_indices
    out: dict[int, list[float]] = {o: [] for o in seq.object_ids}
    prev = seq.load_mask(idx[0])
    for cur_i, i in enumerate(idx[1:], start=1):
        cur = seq.load_mask(i)
        for o in seq.object_ids:
            if idx[cur_i - 1] < seq.start_frames.get(o, 0):
                continue
            a, b = prev == o, cur == o
            if a.any() or b.any():  # a statistic of moving objects: frames where it is absent from both say nothing
                out[o].append(jaccard(a, b))
        prev = cur
    return {o: np.asarray(v, dtype=np.float64) for o, v in out.items()}


@dataclass
class RedundancyReport:
    """Histogram of consecutive-frame IoU over all objects of all sequences, bins of 0.1 (last bin closed)."""

    ious: dict[str, dict[int, np.ndarray]]

    @property
    def values(self) -> np.ndarray:
        parts = [v for per in self.ious.values() for v in per.values()]
        return np.concatenate(parts) if parts else np.zeros(0)

    @property
    def n_pairs(self) -> int:
        return int(self.values.size)

    @property
    def counts(self) -> np.ndarray:
        return np.histogram(self.values, bins=BIN_EDGES)[0]

    def fraction_above(self, threshold: float = 0.7) -> float:
        v = self.values
        return float(np.mean(v > threshold)) if v.size else float("nan")

    @property
    def mean(self) -> float:
        return float(self.values.mean()) if self.n_pairs else float("nan")

    def table(self) -> str:
        counts, n = self.counts, max(self.n_pairs, 1)
        lines = ["IoU bin     pairs  percent"]
        for k, c in enumerate(counts):
            lo, hi = BIN_EDGES[k], BIN_EDGES[k + 1]
            lines.append(f"[{lo:.1f}, {hi:.1f}{']' if k == len(counts) - 1 else ')'}  {c:6d}  {100 * c / n:6.1f}%")
        lines.append(f"pairs: {self.n_pairs}  mean IoU: {self.mean:.3f}")
        lines.append(f"IoU>0.7: {100 * self.fraction_above(0.7):.1f}%")
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike) -> None:
        """Bar chart of the histogram (fraction of pairs per bin), written atomically as PNG."""
        import io

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from reusegate.data.writer import atomic_write_bytes

        fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
        frac = self.counts / max(self.n_pairs, 1)
        ax.bar(BIN_EDGES[:-1] + 0.05, frac, width=0.09, color="#4477aa")
        ax.set_xlabel("IoU of consecutive ground-truth masks")
        ax.set_ylabel("fraction of pairs")
        ax.set_xticks(BIN_EDGES)
        ax.set_title(f"{self.n_pairs} pairs, IoU>0.7: {100 * self.fraction_above(0.7):.1f}%")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        atomic_write_bytes(path, buf.getvalue())


def _ious_job(seq: VideoSequence) -> tuple[str, dict[int, np.ndarray]]:
    return seq.name, consecutive_ious(seq)


def redundancy_report(sequences: Iterable[VideoSequence], processes: int | None = None,
                      progress: bool = False) -> RedundancyReport:
    """The consecutive-IoU histogram over every object of every sequence (e.g. a ``DavisReader``)."""
    seqs = list(sequences)
    return RedundancyReport(dict(parallel_map(_ious_job, seqs, processes, "IoU", progress)))


@dataclass
class OracleScore:
    """Oracle-gate J&F (davis2017 aggregation: mean over objects) and the fraction of frames reused."""

    tau: float
    j_means: list[float]
    f_means: list[float]
    reused: int
    frames: int

    @property
    def j_mean(self) -> float:
        return float(np.mean(self.j_means))

    @property
    def f_mean(self) -> float:
        return float(np.mean(self.f_means))

    @property
    def jf_mean(self) -> float:
        return (self.j_mean + self.f_mean) / 2

    @property
    def reuse_rate(self) -> float:
        return self.reused / self.frames if self.frames else 0.0

    def merge(self, other: OracleScore) -> OracleScore:
        return OracleScore(self.tau, self.j_means + other.j_means, self.f_means + other.f_means,
                           self.reused + other.reused, self.frames + other.frames)


def oracle_bound(seq: VideoSequence, taus: Sequence[float]) -> dict[float, OracleScore]:
    """Copy-the-anchor oracle for one fully annotated sequence, for every τ (see the module docstring)."""
    n = len(seq)
    if len(seq.annotated_indices) != n or n < 3:
        raise ValueError(f"sequence {seq.name}: the oracle bound needs every frame annotated and at least "
                         f"3 frames")
    masks = [seq.load_mask(i) for i in range(n)]
    scores = {float(t): OracleScore(float(t), [], [], 0, 0) for t in taus}
    for o in seq.object_ids:
        gt = [m == o for m in masks]
        pair_iou: dict[tuple[int, int], float] = {}
        pair_jf: dict[tuple[int, int], tuple[float, float]] = {}
        for tau, score in scores.items():
            anchor, j, f, reused = 0, [], [], 0
            for t in range(1, n):
                key = (anchor, t)
                if key not in pair_iou:
                    pair_iou[key] = jaccard(gt[anchor], gt[t])
                reuse = pair_iou[key] >= tau
                if reuse:
                    reused += 1
                else:
                    anchor = t
                if t == n - 1:
                    continue  # the last frame is not scored (semi-supervised protocol)
                if not reuse:
                    j.append(1.0)
                    f.append(1.0)
                    continue
                if key not in pair_jf:
                    pair_jf[key] = (jaccard(gt[key[0]], gt[t]), f_measure(gt[key[0]], gt[t]))
                j.append(pair_jf[key][0])
                f.append(pair_jf[key][1])
            score.j_means.append(db_statistics(np.asarray(j))[0])
            score.f_means.append(db_statistics(np.asarray(f))[0])
            score.reused += reused
            score.frames += n - 1
    return scores


def _oracle_job(args: tuple[VideoSequence, tuple[float, ...]]) -> dict[float, OracleScore]:
    return oracle_bound(*args)


def oracle_bounds(sequences: Iterable[VideoSequence], taus: Sequence[float], processes: int | None = None,
                  progress: bool = False) -> dict[float, OracleScore]:
    """:func:`oracle_bound` over many sequences, objects pooled as in the global J&F."""
    taus = tuple(float(t) for t in taus)
    parts = parallel_map(_oracle_job, [(s, taus) for s in sequences], processes, "oracle", progress)
    total = {t: OracleScore(t, [], [], 0, 0) for t in taus}
    for part in parts:
        for t in taus:
            total[t] = total[t].merge(part[t])
    return total
