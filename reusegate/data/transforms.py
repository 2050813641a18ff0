"""Clip-consistent augmentations as mmcv ``BaseTransform``s in the ``reusegate`` TRANSFORMS registry.

They act on a clip dict (``imgs``: list of HxWx3 uint8, ``masks``: list of HxW uint8 ids; see
:mod:`reusegate.data.clips`) and draw ONE set of random parameters per clip, so every frame gets the
same scale, crop window, flip and colour change: the motion between frames — what the reuse gate learns
from — stays the real motion. ``img_shape`` is kept up to date. Randomness comes from ``np.random``, so
mmengine's ``randomness=dict(seed=...)`` makes pipelines reproducible.

In a config (``default_scope='reusegate'``)::

    pipeline = [dict(type='ClipRandomScale', scale_range=(0.8, 1.2)),
                dict(type='ClipRandomCrop', size=(384, 384)),
                dict(type='ClipRandomFlip', prob=0.5),
                dict(type='ClipColorJitter', brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02),
                dict(type='ClipResize', size=(240, 432))]
"""
from __future__ import annotations

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from reusegate.data.colour import scale_colour
from reusegate.registry import TRANSFORMS

__all__ = ["ClipResize", "ClipRandomScale", "ClipRandomCrop", "ClipRandomFlip", "ClipColorJitter"]


def _check(results: dict) -> tuple[list[np.ndarray], list[np.ndarray]]:
    imgs, masks = results.get("imgs"), results.get("masks")
    if not imgs or masks is None or len(imgs) != len(masks):
        raise ValueError("a clip needs 'imgs' and 'masks' lists of the same, non-zero length")
    return imgs, masks


def _resize(results: dict, h: int, w: int) -> dict:
    imgs, masks = _check(results)
    results["imgs"] = [cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR) for im in imgs]
    results["masks"] = [cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST) for m in masks]
    results["img_shape"] = (h, w)
    return results


@TRANSFORMS.register_module()
class ClipResize(BaseTransform):
    """Resize every frame to ``size`` = (H, W): images bilinear, masks nearest (ids stay ids)."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = (int(size[0]), int(size[1]))

    def transform(self, results: dict) -> dict:
        return _resize(results, *self.size)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


@TRANSFORMS.register_module()
class ClipRandomScale(BaseTransform):
    """Scale the whole clip by one factor drawn uniformly from ``scale_range``."""

    def __init__(self, scale_range: tuple[float, float] = (0.8, 1.2)) -> None:
        lo, hi = scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must satisfy 0 < low <= high, got {scale_range}")
        self.scale_range = (float(lo), float(hi))

    def transform(self, results: dict) -> dict:
        imgs, _ = _check(results)
        s = np.random.uniform(*self.scale_range)
        h, w = imgs[0].shape[:2]
        return _resize(results, max(1, round(h * s)), max(1, round(w * s)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale_range={self.scale_range})"


@TRANSFORMS.register_module()
class ClipRandomCrop(BaseTransform):
    """One crop window of ``size`` = (H, W) for the whole clip; smaller clips are zero-padded first.

    Up to ``max_tries`` windows are drawn and the first that keeps at least ``min_object_pixels`` object
    pixels on the first (reference) frame is used; otherwise the window with the most object pixels.
    """

    def __init__(self, size: tuple[int, int], min_object_pixels: int = 1, max_tries: int = 10) -> None:
        self.size = (int(size[0]), int(size[1]))
        self.min_object_pixels = int(min_object_pixels)
        self.max_tries = max(1, int(max_tries))

    def transform(self, results: dict) -> dict:
        imgs, masks = _check(results)
        ch, cw = self.size
        h, w = imgs[0].shape[:2]
        ph, pw = max(0, ch - h), max(0, cw - w)
        if ph or pw:
            imgs = [np.pad(im, ((0, ph), (0, pw), (0, 0))) for im in imgs]
            masks = [np.pad(m, ((0, ph), (0, pw))) for m in masks]
            h, w = h + ph, w + pw
        ref = masks[0] > 0
        best, best_count = (0, 0), -1
        for _ in range(self.max_tries):
            y, x = np.random.randint(0, h - ch + 1), np.random.randint(0, w - cw + 1)
            count = int(np.count_nonzero(ref[y : y + ch, x : x + cw]))
            if count > best_count:
                best, best_count = (y, x), count
            if count >= self.min_object_pixels:
                break
        y, x = best
        results["imgs"] = [np.ascontiguousarray(im[y : y + ch, x : x + cw]) for im in imgs]
        results["masks"] = [np.ascontiguousarray(m[y : y + ch, x : x + cw]) for m in masks]
        results["img_shape"] = (ch, cw)
        results["crop_box"] = (x, y, x + cw, y + ch)
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, min_object_pixels={self.min_object_pixels})"


@TRANSFORMS.register_module()
class ClipRandomFlip(BaseTransform):
    """Flip every frame horizontally with probability ``prob`` (one draw per clip)."""

    def __init__(self, prob: float = 0.5) -> None:
        if not 0 <= prob <= 1:
            raise ValueError(f"prob must lie in [0, 1], got {prob}")
        self.prob = float(prob)

    def transform(self, results: dict) -> dict:
        imgs, masks = _check(results)
        flip = bool(np.random.rand() < self.prob)
        if flip:
            results["imgs"] = [np.ascontiguousarray(im[:, ::-1]) for im in imgs]
            results["masks"] = [np.ascontiguousarray(m[:, ::-1]) for m in masks]
        results["flip"] = flip
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prob={self.prob})"


@TRANSFORMS.register_module()
class ClipColorJitter(BaseTransform):
    """Brightness, contrast, saturation (factors in 1 ± value) and hue (± value of a full turn), drawn once
    per clip and applied to every frame; masks are untouched."""

    def __init__(self, brightness: float = 0.2, contrast: float = 0.2, saturation: float = 0.2,
                 hue: float = 0.0) -> None:
        for name, v in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if not 0 <= v < 1:
                raise ValueError(f"{name} must lie in [0, 1), got {v}")
        if not 0 <= hue <= 0.5:
            raise ValueError(f"hue must lie in [0, 0.5], got {hue}")
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue

    def transform(self, results: dict) -> dict:
        imgs, _ = _check(results)
        b = np.random.uniform(1 - self.brightness, 1 + self.brightness)
        c = np.random.uniform(1 - self.contrast, 1 + self.contrast)
        s = np.random.uniform(1 - self.saturation, 1 + self.saturation)
        hshift = np.random.uniform(-self.hue, self.hue)
        out = []
        for im in imgs:
            x = scale_colour(im, b, c, s)
            if hshift:
                hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV_FULL)
                hsv[..., 0] = (hsv[..., 0].astype(np.int16) + round(hshift * 256)) % 256
                x = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)
            out.append(x)
        results["imgs"] = out
        results["color_jitter"] = (b, c, s, hshift)
        return results

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, hue={self.hue})")
