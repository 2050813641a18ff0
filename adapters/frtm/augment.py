"""First-frame augmentation for FRTM's target model: K-1 synthetic frames from the one annotated frame.

Follows a description of the released FRTM code's scheme (re-implemented with OpenCV; that GPL code was not
consulted): the object is cut out, the hole it leaves is inpainted (Telea), and the
object is pasted back after a random rotation (5-45 degrees either way), scale (0.5-2.5, log-uniform), horizontal
flip, skew and motion blur; the background gets a mild rescale and blur. The target model thus sees the object
in poses it may take later and on background that no longer holds the object's silhouette.

The exact distributions upstream draws from are not documented; the ranges above are the documented ones and
the choices made here (uniform angle magnitude, log-uniform scale, shear up to 0.2, blur length 1-9 px, background
scale 0.9-1.1 and Gaussian blur sigma up to 1 px) are ours.
"""
from __future__ import annotations

import math
from typing import Tuple

import cv2
import numpy as np
import torch
from torch import Tensor

__all__ = ["augment_first_frame"]


def _motion_kernel(length: int, angle: float) -> np.ndarray:
    """A normalised line kernel: blur along one direction, as a moving camera or object would."""
    k = np.zeros((length, length), np.float32)
    c = (length - 1) / 2
    dx, dy = math.cos(angle) * c, math.sin(angle) * c
    cv2.line(k, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1)
    return k / k.sum()


def _object_affine(rng: np.random.Generator, center: Tuple[float, float]) -> np.ndarray:
    """2x3 matrix: flip, skew, scale and rotate the object about its centroid (which stays put)."""
    angle = math.radians(rng.uniform(5, 45) * rng.choice((-1.0, 1.0)))
    scale = math.exp(rng.uniform(math.log(0.5), math.log(2.5)))
    flip = rng.choice((-1.0, 1.0))
    shear = rng.uniform(-0.2, 0.2)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    lin = scale * rot @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([flip, 1.0])
    c = np.asarray(center)
    return np.hstack([lin, (c - lin @ c)[:, None]]).astype(np.float32)


def augment_first_frame(image: Tensor, mask: Tensor, count: int, generator: torch.Generator) -> Tuple[Tensor, Tensor]:
    """``count`` synthetic copies of a first frame with the object re-posed on an inpainted background.

    Args:
        image: ``[1, 3, H, W]`` float image (any normalisation; it is inpainted and warped channel by channel).
        mask: ``[1, 1, H, W]`` 0/1 object mask.
        count: number of copies to make (K - 1).
        generator: seeds the random draws, so runs are reproducible.
    Returns:
        ``([count, 3, H, W], [count, 1, H, W])`` images in ``image``'s dtype and 0/1 masks.
    """
    if count <= 0:
        return image.new_zeros(0, *image.shape[1:]), mask.new_zeros(0, *mask.shape[1:])
    rng = np.random.default_rng(int(torch.randint(0, 2 ** 31 - 1, (1,), generator=generator)))
    img = image[0].detach().permute(1, 2, 0).to(torch.float32).cpu().numpy().copy()
    obj = (mask[0, 0].detach().cpu().numpy() > 0.5).astype(np.float32)
    h, w = obj.shape
    ys, xs = np.nonzero(obj)
    if ys.size == 0:  # nothing to re-pose: only the background changes
        center, hole = (w / 2, h / 2), np.zeros((h, w), np.uint8)
    else:
        center = (float(xs.mean()), float(ys.mean()))
        hole = cv2.dilate((obj > 0).astype(np.uint8), np.ones((7, 7), np.uint8))
    background = np.stack([cv2.inpaint(np.ascontiguousarray(img[..., ch]), hole, 5, cv2.INPAINT_TELEA)
                           for ch in range(img.shape[2])], axis=-1)
    images, masks = [], []
    for _ in range(count):
        s = rng.uniform(0.9, 1.1)
        bg_warp = cv2.getRotationMatrix2D((w / 2, h / 2), 0.0, s)
        bg = cv2.warpAffine(background, bg_warp, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        sigma = rng.uniform(0.0, 1.0)
        if sigma > 0.3:
            bg = cv2.GaussianBlur(bg, (0, 0), sigma)
        warp = _object_affine(rng, center)
        layer = cv2.warpAffine(img * obj[..., None], warp, (w, h), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT)
        alpha = cv2.warpAffine(obj, warp, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        length = int(rng.integers(1, 10))
        if length > 1:
            kernel = _motion_kernel(length, rng.uniform(0, math.pi))
            layer, alpha = cv2.filter2D(layer, -1, kernel), cv2.filter2D(alpha, -1, kernel)
        # the object layer is premultiplied by alpha, so compositing is layer + (1 - alpha) * background
        out = layer + (1.0 - alpha[..., None]) * bg
        images.append(torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1))
        masks.append(torch.from_numpy((alpha > 0.5).astype(np.float32))[None])
    return torch.stack(images).to(image), torch.stack(masks).to(mask.dtype)
