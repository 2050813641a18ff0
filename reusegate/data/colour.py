"""Brightness, contrast and saturation scaling of an RGB frame, the rule of the clip augmentation
(:class:`reusegate.data.transforms.ClipColorJitter`); numpy only, so data code without mmcv can use it too."""
from __future__ import annotations

import numpy as np

__all__ = ["scale_colour"]

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def scale_colour(img: np.ndarray, brightness: float, contrast: float, saturation: float) -> np.ndarray:
    """HxWx3 uint8 RGB with every pixel times ``brightness``, the luma's spread about its mean times ``contrast``
    and each pixel's distance from its own luma times ``saturation`` (factors, 1 = unchanged); uint8 out."""
    x = img.astype(np.float32) * brightness
    mean = (x @ _LUMA).mean()
    x = (x - mean) * contrast + mean
    gray = (x @ _LUMA)[..., None]
    return np.clip((x - gray) * saturation + gray, 0, 255).astype(np.uint8)
