"""Per-frame J and F and the per-object statistics, with the semantics of davis2017-evaluation.

The code is our own; ``tests/test_eval_vos_benchmark.py`` checks it against the ``vos-benchmark`` package. The boundary F-measure is
computed on the bounding box of the two boundary maps only: dilation reads nothing outside the box that
could change a pixel inside it, so the numbers are identical to a full-frame dilation, only faster.

Public API::

    jaccard(pred, gt, void=None) -> float          # region similarity J of two binary masks
    batch_iou(a, b, threshold=0.5) -> Tensor       # J of mask batches in torch (gate targets, oracle gate)
    f_measure(pred, gt, void=None, bound_th=0.008) -> float   # boundary F
    scored_frames(n) -> range                      # the frames the semi-supervised protocol scores
    frame_jf(pred_labels, gt_labels, ids) -> {id: (J, F)}      # one frame, every object
    sequence_jf(pred_labels, gt_labels, ids) -> {id: (J array, F array)}   # a video's scored frames
    seg2bmap(mask) -> bool array                   # 1-pixel boundary map (D. Martin, 2003)
    boundary_radius(shape, bound_th=0.008) -> int  # ceil(0.008 * diagonal) pixels
    disk(radius) -> uint8 array                    # skimage.morphology.disk equivalent
    db_statistics(values) -> (mean, recall, decay) # per-object statistics over the kept frames
"""
from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import TYPE_CHECKING, Iterable, Sequence

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["EMPTY_IOU", "jaccard", "batch_iou", "f_measure", "seg2bmap", "boundary_radius", "disk", "db_statistics",
           "scored_frames", "frame_jf", "sequence_jf"]

EMPTY_IOU = 1.0
"""J (IoU) of two empty masks, everywhere in reusegate: the benchmark's J&F (davis2017-evaluation's rule), the
gate-probability loss's target and the oracle gate. An object absent from both frames has not changed, so
reusing is right; statistics about moving objects (``consecutive_ious``) leave such pairs out instead."""


def _as_bool(mask: np.ndarray, name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{name} must be a 2-D mask, got shape {mask.shape}")
    return mask.astype(bool, copy=False)


def _pair(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Both masks as bool arrays of one shape, with void pixels cleared from both."""
    pred, gt = _as_bool(pred, "pred"), _as_bool(gt, "gt")
    if pred.shape != gt.shape:
        raise ValueError(f"pred shape {pred.shape} differs from gt shape {gt.shape}")
    if void is not None:
        keep = ~_as_bool(void, "void")
        pred, gt = pred & keep, gt & keep
    return pred, gt


def jaccard(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None) -> float:
    """|pred ∩ gt| / |pred ∪ gt| over non-void pixels; :data:`EMPTY_IOU` when the object is absent from both."""
    pred, gt = _pair(pred, gt, void)
    union = np.count_nonzero(pred | gt)
    if union == 0:
        return EMPTY_IOU
    return np.count_nonzero(pred & gt) / union


def batch_iou(a: "torch.Tensor", b: "torch.Tensor", threshold: float = 0.5) -> "torch.Tensor":
    """Per-sample J of two mask batches ``[B, ...]`` binarised at ``threshold``, as :func:`jaccard`, in torch
    (the gate's training target and the oracle gate run inside the model)."""
    import torch

    a = (a > threshold).flatten(1)
    b = (b > threshold).flatten(1)
    inter = (a & b).sum(1).float()
    union = (a | b).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.full_like(union, EMPTY_IOU))


def scored_frames(n: int) -> range:
    """Frames of an ``n``-frame video that the semi-supervised protocol scores: not the first (it is given) and
    not the last (davis2017-evaluation drops it); a 2-frame video keeps its second frame."""
    return range(1, n - 1) if n > 2 else range(1, n)


def frame_jf(pred: np.ndarray, gt: np.ndarray, ids: "Iterable[int]") -> dict[int, tuple[float, float]]:
    """J and F of each object id on one frame, from two label maps."""
    return {int(o): (jaccard(pred == o, gt == o), f_measure(pred == o, gt == o)) for o in ids}


def sequence_jf(pred: "Sequence[np.ndarray]", gt: "Sequence[np.ndarray]",
                ids: "Iterable[int]") -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per object, the J and F arrays over a video's :func:`scored_frames` (label maps per frame)."""
    if len(pred) != len(gt):
        raise ValueError(f"{len(pred)} predicted frames but {len(gt)} ground-truth frames")
    ids = [int(o) for o in ids]
    per_frame = [frame_jf(pred[t], gt[t], ids) for t in scored_frames(len(gt))]
    return {o: (np.array([s[o][0] for s in per_frame]), np.array([s[o][1] for s in per_frame])) for o in ids}


def seg2bmap(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a binary mask: a pixel differs from its east, south or south-east neighbour.

    Pixels past the image edge count as equal, so the last row compares east only, the last column south
    only, and the bottom-right pixel is never a boundary (half-pixel offset toward the origin).
    """
    m = _as_bool(mask, "mask")
    b = np.zeros_like(m)
    b[:, :-1] |= m[:, :-1] ^ m[:, 1:]
    b[:-1, :] |= m[:-1, :] ^ m[1:, :]
    b[:-1, :-1] |= m[:-1, :-1] ^ m[1:, 1:]
    return b


@lru_cache(maxsize=16)
def disk(radius: int) -> np.ndarray:
    """(2r+1)² uint8 disk, 1 where dx² + dy² <= r² (skimage.morphology.disk's definition)."""
    r = int(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    out = ((xx * xx + yy * yy) <= r * r).astype(np.uint8)
    out.setflags(write=False)
    return out


def boundary_radius(shape: tuple[int, ...], bound_th: float = 0.008) -> int:
    """Match tolerance in pixels: ceil(bound_th * diagonal) when bound_th < 1, else bound_th itself."""
    if bound_th >= 1:
        return int(bound_th)
    return int(math.ceil(bound_th * math.hypot(shape[0], shape[1])))


def _bbox(*maps: np.ndarray) -> tuple[slice, slice] | None:
    rows = np.zeros(maps[0].shape[0], dtype=bool)
    cols = np.zeros(maps[0].shape[1], dtype=bool)
    for m in maps:
        rows |= m.any(axis=1)
        cols |= m.any(axis=0)
    r, c = np.flatnonzero(rows), np.flatnonzero(cols)
    if r.size == 0:
        return None
    return slice(r[0], r[-1] + 1), slice(c[0], c[-1] + 1)


def f_measure(pred: np.ndarray, gt: np.ndarray, void: np.ndarray | None = None,
              bound_th: float = 0.008) -> float:
    """Boundary F: precision/recall of boundary pixels matched within a disk of ``boundary_radius``."""
    pred, gt = _pair(pred, gt, void)
    pb, gb = seg2bmap(pred), seg2bmap(gt)
    box = _bbox(pb, gb)
    if box is None:  # no boundary on either side
        return 1.0
    pb, gb = np.ascontiguousarray(pb[box]), np.ascontiguousarray(gb[box])
    n_pred, n_gt = np.count_nonzero(pb), np.count_nonzero(gb)
    if n_pred == 0:
        return 0.0  # P = 1, R = 0
    if n_gt == 0:
        return 0.0  # P = 0, R = 1
    kernel = disk(boundary_radius(pred.shape, bound_th))
    pd = cv2.dilate(pb.view(np.uint8), kernel).view(bool)
    gd = cv2.dilate(gb.view(np.uint8), kernel).view(bool)
    precision = np.count_nonzero(pb & gd) / n_pred
    recall = np.count_nonzero(gb & pd) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _decay_bins(n: int) -> np.ndarray:
    # Four bins over the kept frames, inclusive ends. The official code casts these ids to uint8, which
    # wraps past 255 frames; wrap the same way so long sequences get the same (odd) numbers.
    ids = np.round(np.linspace(1, n, 5) + 1e-10) - 1
    return ids.astype(np.int64) % 256


def db_statistics(values: np.ndarray) -> tuple[float, float, float]:
    """Mean, recall (fraction > 0.5) and decay (first-quarter mean minus last-quarter mean) of a series."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size == 0:
        raise ValueError("db_statistics needs a non-empty 1-D series of per-frame values")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = float(np.nanmean(v))
        recall = float(np.nanmean(v > 0.5))
        ids = _decay_bins(v.size)
        first, last = v[ids[0] : ids[1] + 1], v[ids[3] : ids[4] + 1]
        decay = float(np.nanmean(first) - np.nanmean(last))
    return mean, recall, decay
