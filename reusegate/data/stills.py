"""Pseudo-video from still images: photographs with object masks become training clips with exact ground truth.

Video data are few (DAVIS-2016 train: 30 objects); still images with masks are many. STM, STCN, XMem and Cutie
pre-train on them by warping one image into a short clip; here the same, with the paper's "Syn" generator
(:class:`~reusegate.data.clips.SyntheticClipGenerator`) extended to what that recipe needs:

* every chosen object moves on its own smooth affine path (the parent's trajectories) and deforms by a smooth
  elastic field (a coarse grid of displacements, bicubically upsampled, that drifts a little each frame);
* objects are layered in a random depth order, so they touch and occlude, and each frame's id map holds the
  visible (front-most) object per pixel;
* the background is the same image with the objects inpainted, or ANOTHER image (``background=``);
* a pasted copy of an object can join as a same-class distractor, labelled background (it is not tracked);
* brightness, contrast and saturation drift over the clip.

Image and masks are warped with the same sampling maps (images bilinear, masks nearest), so the masks say
exactly which object's pixels each frame shows. Everything is drawn from the ``numpy`` Generator passed in:
a seed gives the same clip, another seed another clip.

Layout read by :class:`StillImageReader` (``../shared/data/still-images``, see its README)::

    <set>/JPEGImages/<name>.jpg     <set>/Annotations/<name>.png   (palette: 0 background, 1..K objects)

Public API::

    StillImageReader(root, sets=None, close_holes=0)   .items -> [StillImage];  .load(i) -> (image, labels)
    close_small_holes(labels, size) -> labels
    PseudoVideoGenerator(num_frames=6, size=(240, 432), ...).make_clip(image, labels, rng, background=None,
                                                                         num_objects=1, distractor=False) -> dict
    mask_ious(masks, num_objects) -> [T, K] IoU of each object's mask with frame 0's
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from reusegate.data.clips import SyntheticClipGenerator
from reusegate.data.colour import scale_colour
from reusegate.data.readers import _header_size, decode_mask, read_image, read_raw_mask

__all__ = ["StillImage", "StillImageReader", "PseudoVideoGenerator", "close_small_holes", "mask_ious",
           "STILL_SETS"]

STILL_SETS = ("ecssd", "pennfudan", "ccp")
"""The sets of ``../shared/data/still-images`` (README there: sources, licences, caveats)."""


@dataclass(frozen=True)
class StillImage:
    """One photograph and its palette mask."""

    set: str
    name: str
    image: Path
    annotation: Path


def close_small_holes(labels: np.ndarray, size: int) -> np.ndarray:
    """A morphological closing of each object with a ``size`` x ``size`` ellipse, filling background only: coarse
    super-pixel masks (ccp) have holes and cracks that would teach the decoder a ragged object."""
    if size <= 1:
        return labels
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(size), int(size)))
    out = labels.copy()
    for oid in np.unique(labels):
        if oid == 0:
            continue
        closed = cv2.morphologyEx((labels == oid).astype(np.uint8), cv2.MORPH_CLOSE, kernel)
        out[(closed > 0) & (out == 0)] = oid
    return out


class StillImageReader:
    """The still-image sets under ``root``: file pairs listed up front (a missing partner fails on open, naming
    it), pixels decoded by :meth:`load` (a damaged file or a mask of another size fails there, naming it).

    Args:
        root: the folder holding one sub-folder per set.
        sets: which sets (default: every folder under ``root`` with ``JPEGImages``).
        close_holes: closing size for every set, or ``{set: size}`` (the README suggests it for ``ccp``); 0 = off.
    """

    def __init__(self, root: str | os.PathLike, sets: Sequence[str] | None = None,
                 close_holes: int | Mapping[str, int] = 0) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"still-image root {self.root} does not exist; pass the folder that holds "
                                    f"ecssd/, pennfudan/, ccp/ (or set REUSEGATE_DATA)")
        if sets is None:
            sets = sorted(p.name for p in self.root.iterdir() if (p / "JPEGImages").is_dir())
        self.sets = [str(s) for s in sets]
        if not self.sets:
            raise ValueError(f"{self.root} holds no <set>/JPEGImages folder")
        self.close_holes = ({s: int(close_holes.get(s, 0)) for s in self.sets} if isinstance(close_holes, Mapping)
                            else {s: int(close_holes) for s in self.sets})
        self.items: list[StillImage] = []
        for s in self.sets:
            self.items += self._list(s)

    def _list(self, name: str) -> list[StillImage]:
        images, annots = self.root / name / "JPEGImages", self.root / name / "Annotations"
        for folder in (images, annots):
            if not folder.is_dir():
                raise FileNotFoundError(f"{folder} does not exist; a still-image set needs JPEGImages/ and "
                                        f"Annotations/ (see the README of {self.root})")
        jpgs = sorted(p for p in images.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        pngs = {p.stem: p for p in annots.iterdir() if p.suffix.lower() == ".png"}
        if not jpgs:
            raise ValueError(f"{images} holds no image")
        items = []
        for jpg in jpgs:
            if jpg.stem not in pngs:
                raise FileNotFoundError(f"{annots / (jpg.stem + '.png')} does not exist for image {jpg}; "
                                        f"restore the mask or remove the image")
            items.append(StillImage(name, jpg.stem, jpg, pngs.pop(jpg.stem)))
        if pngs:
            extra = min(pngs.values())
            raise FileNotFoundError(f"mask {extra} has no image {images / (extra.stem + '.jpg')}; restore the image "
                                    f"or remove the mask")
        return items

    def __len__(self) -> int:
        return len(self.items)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(HxWx3 uint8 image, HxW uint8 object ids) of item ``i``; palette 255 (void) reads as background."""
        item = self.items[i]
        image = read_image(item.image)
        raw, mode = read_raw_mask(item.annotation)
        if raw.shape != image.shape[:2]:
            raise ValueError(f"mask {item.annotation} is {raw.shape[1]}x{raw.shape[0]} but image {item.image} is "
                             f"{image.shape[1]}x{image.shape[0]}; re-export the mask at the image size")
        labels = decode_mask(raw, "ids", mode)[0]
        return image, close_small_holes(labels, self.close_holes[item.set])

    def size(self, i: int) -> tuple[int, int]:
        """(H, W) of item ``i`` from its header (no decoding)."""
        return _header_size(self.items[i].image)


def mask_ious(masks: Sequence[np.ndarray], num_objects: int) -> np.ndarray:
    """``[T, K]`` float32: IoU of object ``k + 1``'s mask on each frame with its frame-0 mask (1 if both empty).
    The overlap of an object with where it was: the quantity the reuse gate predicts."""
    first = [masks[0] == k for k in range(1, num_objects + 1)]
    out = np.ones((len(masks), num_objects), np.float32)
    for t, m in enumerate(masks):
        for k, ref in enumerate(first):
            cur = m == k + 1
            union = np.count_nonzero(cur | ref)
            if union:
                out[t, k] = np.count_nonzero(cur & ref) / union
    return out


def _cover(image: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random window of ``image`` scaled to cover ``size`` (another photo as background)."""
    h, w = size
    ih, iw = image.shape[:2]
    s = max(h / ih, w / iw) * float(rng.uniform(1.0, 1.3))
    x0, y0 = rng.uniform(0, iw * s - w), rng.uniform(0, ih * s - h)
    m = np.array([[s, 0, -x0], [0, s, -y0]], np.float64)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _h(m: np.ndarray) -> np.ndarray:
    """A 2x3 affine as 3x3."""
    return np.vstack([m, [0.0, 0.0, 1.0]])


@dataclass
class PseudoVideoGenerator(SyntheticClipGenerator):
    """Clips of ``size`` = (H, W) from one still image: its objects move, scale, rotate and deform independently.

    Motion limits per frame are the parent's (``max_shift``, ``max_rotation``, ``max_scale``, ``jitter``,
    ``background_motion``). Added:

    Args:
        size: output (H, W); the image is scaled so the chosen objects fit, by a factor drawn in ``zoom``.
        zoom: range of the extra scale on top of "the objects fill ~70 % of the shorter side" (capped so they fit).
        max_deform: per-frame drift of the elastic field's control points, in fractions of the shorter side.
        deform_grid: control points per side of the elastic field (few: the warp stays smooth).
        colour_drift: per-frame drift of brightness, contrast and saturation factors (0 = none).
        min_visible: an object must keep this fraction of its area visible on frame 0 (else the distractor copy is
            sent behind everything).
    """

    size: tuple[int, int] = (240, 432)
    zoom: tuple[float, float] = (0.6, 1.2)
    max_deform: float = 0.006
    deform_grid: int = 4
    colour_drift: float = 0.03
    min_visible: float = 0.5

    def _base(self, labels: np.ndarray, chosen: Sequence[int], rng: np.random.Generator) -> np.ndarray:
        """3x3 source -> canvas transform at rest: the chosen objects fit, at a random place of the canvas."""
        h, w = self.size
        ys, xs = np.nonzero(np.isin(labels, chosen))
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        bw, bh = x1 - x0, y1 - y0
        fit = 0.95 * min(h / bh, w / bw)
        s = min(fit, 0.7 * min(h, w) / max(bh, bw) * float(rng.uniform(*self.zoom)))
        cx = rng.uniform(min(w / 2, s * bw / 2), max(w / 2, w - s * bw / 2))
        cy = rng.uniform(min(h / 2, s * bh / 2), max(h / 2, h - s * bh / 2))
        return np.array([[s, 0, cx - s * (x0 + x1) / 2], [0, s, cy - s * (y0 + y1) / 2], [0, 0, 1]])

    def _deformations(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Per frame, an HxWx2 float32 displacement field (frame 0: zero) with smoothly drifting control points."""
        h, w = self.size
        g, amp = self.deform_grid, self.max_deform * min(h, w)
        ctrl = np.zeros((g, g, 2), np.float32)
        vel = rng.uniform(-1, 1, ctrl.shape).astype(np.float32) * amp
        fields = [np.zeros((h, w, 2), np.float32)]
        for _ in range(1, self.num_frames):
            vel = np.clip(vel + rng.normal(0, self.jitter, ctrl.shape).astype(np.float32) * amp, -amp, amp)
            ctrl = ctrl + vel
            fields.append(cv2.resize(ctrl, (w, h), interpolation=cv2.INTER_CUBIC) if amp else fields[0])
        return fields

    def _maps(self, to_canvas: np.ndarray, field: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Source sampling maps of one layer: canvas pixel -> its rest position (inverse motion) -> displaced by the
        elastic field there -> source pixel (inverse of ``base``, a scale and a shift)."""
        h, w = self.size
        xx = np.arange(w, dtype=np.float32)[None, :]
        yy = np.arange(h, dtype=np.float32)[:, None]
        a = np.linalg.inv(to_canvas).astype(np.float32)
        px = a[0, 0] * xx + a[0, 1] * yy + a[0, 2]
        py = a[1, 0] * xx + a[1, 1] * yy + a[1, 2]
        if field.any():
            d = cv2.remap(field, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            px += d[..., 0]
            py += d[..., 1]
        b = np.linalg.inv(base).astype(np.float32)
        return b[0, 0] * px + b[0, 2], b[1, 1] * py + b[1, 2]

    def _colour_path(self, rng: np.random.Generator) -> np.ndarray:
        """(num_frames, 3) brightness, contrast, saturation factors: 1 on frame 0, then a clipped random walk."""
        path = np.ones((self.num_frames, 3))
        vel = rng.uniform(-1, 1, 3) * self.colour_drift
        for t in range(1, self.num_frames):
            vel = vel + rng.normal(0, self.jitter, 3) * self.colour_drift
            path[t] = np.clip(path[t - 1] + vel, 0.6, 1.4)
        return path

    def make_clip(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator | None = None,
                  background: np.ndarray | None = None, num_objects: int = 1, distractor: bool = False) -> dict:
        """A clip dict (:mod:`reusegate.data.clips`) plus ``iou_to_first`` ([T, K], :func:`mask_ious`), ``layers``
        (bottom to top: clip ids, 0 for the distractor copy) and ``source_ids`` (each layer's id in ``mask``).

        ``num_objects`` objects (at most those in ``mask``) are drawn and relabelled 1..k in the order of their
        ids, so a mask whose ids are all chosen keeps them. ``background``: another image to paste onto (else
        this image, inpainted where the objects were). ``distractor``: add a moving copy of one chosen object,
        labelled background."""
        rng = rng or np.random.default_rng()
        image, labels = np.asarray(image), np.asarray(mask).astype(np.uint8)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be HxWx3 uint8, got {image.shape} {image.dtype}")
        if labels.shape != image.shape[:2]:
            raise ValueError(f"mask shape {labels.shape} differs from image size {image.shape[:2]}")
        present = [int(o) for o in np.unique(labels) if o]
        if not present:
            raise ValueError("the mask has no object; a pseudo-clip needs something to move")
        k = min(max(1, int(num_objects)), len(present))
        chosen = sorted(int(o) for o in rng.choice(present, size=k, replace=False))
        h, w = self.size
        base = self._base(labels, chosen, rng)
        if background is None:
            scene = self._inpaint(image, np.isin(labels, chosen))
            corners = base[:2] @ np.array([[0, 0, 1], [image.shape[1], image.shape[0], 1]], np.float64).T
            if corners[0, 0] <= 0 and corners[1, 0] <= 0 and corners[0, 1] >= w and corners[1, 1] >= h:
                scene = cv2.warpAffine(scene, base[:2], (w, h), flags=cv2.INTER_LINEAR)
            else:  # the objects' scale leaves the canvas uncovered: mirrored borders would copy them, so zoom in
                scene = _cover(scene, self.size, rng)
        else:
            scene = _cover(np.asarray(background), self.size, rng)
        # Layers: (clip id, source id, extra rest transform); the distractor is a shifted, rescaled copy.
        layers = [(i, oid, np.eye(3)) for i, oid in enumerate(chosen, start=1)]
        if distractor:
            oid = int(rng.choice(chosen))
            cx, cy = self._rest_centre(labels, oid, base)
            s = float(rng.uniform(0.7, 1.2))
            # Its centre: the farthest of a few draws over the canvas's middle, so it is seen and rarely on top.
            spots = rng.uniform([0.15 * w, 0.3 * h], [0.85 * w, 0.7 * h], size=(4, 2))
            tx, ty = spots[np.argmax(np.hypot(spots[:, 0] - cx, spots[:, 1] - cy))]
            copy = np.array([[s, 0, tx - s * cx], [0, s, ty - s * cy], [0, 0, 1]])
            layers.append((0, oid, copy))
        order = [int(j) for j in rng.permutation(len(layers))]
        paths = [self._trajectory(rng) for _ in layers]
        fields = [self._deformations(rng) for _ in layers]
        camera = self._trajectory(rng) * self.background_motion
        colours = self._colour_path(rng)
        centre = (w / 2.0, h / 2.0)
        rests = [self._rest_centre(labels, oid, extra @ base) for _, oid, extra in layers]  # rotation centres

        def render(t: int, order: list[int]) -> tuple[np.ndarray, np.ndarray]:
            cam = _h(self._matrix(camera[t], centre, self.size))
            frame = cv2.warpAffine(scene, cam[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            ids = np.zeros((h, w), np.uint8)
            for j in order:
                clip_id, oid, extra = layers[j]
                to_canvas = cam @ _h(self._matrix(paths[j][t], rests[j], self.size)) @ extra
                mx, my = self._maps(to_canvas, fields[j][t], base)
                lab = cv2.remap(labels, mx, my, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                on = lab == oid
                pix = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
                frame[on] = pix[on]
                ids[on] = clip_id
            return frame, ids

        first, ids0 = render(0, order)
        if distractor and any(np.count_nonzero(ids0 == i) < self.min_visible * self._alone(layers, base, i, labels)
                              for i in range(1, k + 1)):
            order = [len(layers) - 1] + [j for j in order if j != len(layers) - 1]
            first, ids0 = render(0, order)
        imgs, masks = [first], [ids0]
        for t in range(1, self.num_frames):
            frame, ids = render(t, order)
            imgs.append(frame)
            masks.append(ids)
        imgs = [scale_colour(im, *colours[t]) if t else im for t, im in enumerate(imgs)]
        return {"imgs": imgs, "masks": masks, "frame_indices": list(range(self.num_frames)), "object_ids": chosen,
                "sequence": "pseudo", "iou_to_first": mask_ious(masks, k),
                "layers": [layers[j][0] for j in order], "source_ids": [layers[j][1] for j in order]}

    def _inpaint(self, image: np.ndarray, objects: np.ndarray) -> np.ndarray:
        """The image with ``objects`` (dilated) filled in from their surroundings; Telea's method at half
        resolution (4x cheaper, and a background under a moving object needs no detail)."""
        hole = cv2.dilate(objects.astype(np.uint8), np.ones((7, 7), np.uint8))
        h, w = hole.shape
        small = cv2.resize(image, (max(1, w // 2), max(1, h // 2)), interpolation=cv2.INTER_AREA)
        small_hole = cv2.resize(hole, small.shape[1::-1], interpolation=cv2.INTER_NEAREST)
        filled = cv2.inpaint(small, small_hole, max(1, self.inpaint_radius // 2), cv2.INPAINT_TELEA)
        up = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
        return np.where(hole[..., None] > 0, up, image)

    @staticmethod
    def _rest_centre(labels: np.ndarray, oid: int, to_canvas: np.ndarray) -> tuple[float, float]:
        """Canvas position of object ``oid``'s centroid under ``to_canvas``."""
        ys, xs = np.nonzero(labels == oid)
        c = to_canvas @ [xs.mean(), ys.mean(), 1.0]
        return float(c[0]), float(c[1])

    def _alone(self, layers: list, base: np.ndarray, clip_id: int, labels: np.ndarray) -> int:
        """Frame-0 area of object ``clip_id`` with nothing in front of it."""
        h, w = self.size
        oid = layers[clip_id - 1][1]
        lab = cv2.warpAffine(labels, base[:2], (w, h), flags=cv2.INTER_NEAREST, borderValue=0)
        return int(np.count_nonzero(lab == oid))
