"""The one way masks are drawn over frames, for the demo's GIF and ``run --overlay``'s MP4: each object tinted in a
colour unlike DAVIS's reds and browns and outlined in white, the frame marked green (computed) or orange (reused)."""
from __future__ import annotations

import numpy as np

__all__ = ["COMPUTED", "REUSED", "TINTS", "outline", "draw_masks"]

COMPUTED, REUSED = (40, 190, 70), (255, 150, 0)
TINTS = np.array([(0, 200, 255), (255, 230, 0), (255, 0, 200), (120, 255, 120), (160, 120, 255)], np.float32)
"""Mask tints, by object id: cyan, yellow, magenta, ..."""


def outline(mask: np.ndarray) -> np.ndarray:
    """The mask's boundary pixels (inside the mask, next to a pixel outside it)."""
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def draw_masks(frame: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``frame`` (``H x W x 3`` RGB) as float32 with every object of ``labels`` tinted and outlined."""
    img = frame.astype(np.float32)
    for oid in np.unique(labels[labels > 0]):
        mask = labels == oid
        img[mask] = 0.45 * img[mask] + 0.55 * TINTS[(int(oid) - 1) % len(TINTS)]
        img[outline(mask)] = 255
    return img
