"""Per-frame J and F and the per-object statistics, with the semantics of davis2017-evaluation.

The rules are spelled out in ``research/jf-evaluation.md``; the code is our own. The boundary F-measure is
computed on the bounding box of the two boundary maps only: dilation reads nothing outside the box that
could change a pixel inside it, so the numbers are identical to a full-frame dilation, only faster.

Public API::

    jaccard(pred, gt, void=None) -> float          # region similarity J of two binary masks
    f_measure(pred, gt, void=None, bound_th=0.008) -> float   # boundary F
    seg2bmap(mask) -> bool array                   # 1-pixel boundary map (D. Martin, 2003)
    boundary_radius(shape, bound_th=0.008) -> int  # ceil(0.008 * diagonal) pixels
    disk(radius) -> uint8 array                    # skimage.morphology.disk equivalent
    db_statistics(values) -> (mean, recall, decay) # per-object statistics over the kept frames
"""
from __future__ import annotations

import math
import warnings
from functools import lru_cache

import cv2
import numpy as np

__all__ = ["jaccard", "f_measure", "seg2bmap", "boundary_radius", "disk", "db_statistics"]


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
    """|pred ∩ gt| / |pred ∪ gt| over non-void pixels; 1.0 when the object is absent from both."""
    pred, gt = _pair(pred, gt, void)
    union = np.count_nonzero(pred | gt)
    if union == 0:
        return 1.0
    return np.count_nonzero(pred & gt) / union


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
