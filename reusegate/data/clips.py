"""Training clips: N frames of one or several objects from a video, or synthesised from a still image.

A clip is the dict the clip transforms (:mod:`reusegate.data.transforms`) and the mmengine datasets
consume::

    {'imgs': [HxWx3 uint8] * N, 'masks': [HxW uint8] * N,   # objects relabelled 1..k, rest 0
     'frame_indices': [...], 'object_ids': [original ids], 'sequence': name}

:class:`ClipSampler` follows the paper's recipe: a reference frame where the chosen objects are visible,
then later frames, each at most ``max_skip`` annotated frames after the previous one (``order='sorted'``).
``order='random'`` reproduces what the released Reuse_VOS training code actually does (docs/upstream-differences.md):
the other frames are random draws from the whole video, in random order.

:class:`SyntheticClipGenerator` makes the paper's "Syn" clips from a saliency image and its mask: the
object is cut out and moves by a smooth random affine motion (translation, rotation, scale with a
random velocity that drifts a little each frame) over a background that was inpainted where the object
was and drifts more gently (camera motion).

Public API::

    ClipSampler(num_frames=6, max_skip=5, num_objects=1, order='sorted').sample(seq, rng) -> dict
    SyntheticClipGenerator(num_frames=6, ...).make_clip(image, mask, rng) -> dict
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from reusegate.data.readers import VideoSequence

__all__ = ["ClipSampler", "SyntheticClipGenerator"]


@dataclass
class ClipSampler:
    """Sample clips of ``num_frames`` annotated frames with up to ``num_objects`` objects.

    ``max_skip``: largest step, in annotated frames, between consecutive clip frames (``None``: any later
    frame). ``min_pixels``: an object counts as visible on the reference frame from this many pixels.
    """

    num_frames: int = 6
    max_skip: int | None = 5
    num_objects: int = 1
    order: str = "sorted"
    min_pixels: int = 1

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.max_skip is not None and self.max_skip < 1:
            raise ValueError(f"max_skip must be >= 1 or None, got {self.max_skip}")
        if self.num_objects < 1:
            raise ValueError(f"num_objects must be >= 1, got {self.num_objects}")
        if self.order not in ("sorted", "random"):
            raise ValueError(f"order must be 'sorted' or 'random', got {self.order!r}")
        self._visible: dict[str, list[dict[int, int]]] = {}

    def visible_objects(self, seq: VideoSequence) -> list[dict[int, int]]:
        """Per annotated frame, {object id: pixel count} (read once per sequence and cached)."""
        key = f"{seq.name}@{seq.mask_paths[0]}"
        if key not in self._visible:
            table = []
            for i in seq.annotated_indices:
                ids, counts = np.unique(seq.load_mask(i), return_counts=True)
                table.append({int(o): int(c) for o, c in zip(ids, counts) if o != 0})
            self._visible[key] = table
        return self._visible[key]

    def _frames(self, n_ann: int, ref: int, rng: np.random.Generator) -> list[int]:
        rest = self.num_frames - 1
        if self.order == "random":
            others = [i for i in range(n_ann) if i != ref]
            return [ref] + [int(i) for i in rng.choice(others, size=rest, replace=False)]
        picks, cur = [ref], ref
        for k in range(rest):
            left = rest - k - 1  # frames still to place after this one
            hi = n_ann - 1 - left
            if self.max_skip is not None:
                hi = min(hi, cur + self.max_skip)
            cur = int(rng.integers(cur + 1, hi + 1))
            picks.append(cur)
        return picks

    def sample(self, seq: VideoSequence, rng: np.random.Generator | None = None) -> dict:
        rng = rng or np.random.default_rng()
        ann = seq.annotated_indices
        if len(ann) < self.num_frames:
            raise ValueError(f"sequence {seq.name} has {len(ann)} annotated frames; a clip needs "
                             f"{self.num_frames} — lower num_frames or leave the sequence out")
        visible = self.visible_objects(seq)
        last_ref = len(ann) - self.num_frames if self.order == "sorted" else len(ann) - 1
        refs = [r for r in range(last_ref + 1)
                if any(c >= self.min_pixels and seq.start_frames.get(o, 0) <= ann[r]
                       for o, c in visible[r].items())]
        if not refs:
            raise ValueError(f"sequence {seq.name}: no frame shows an object with >= {self.min_pixels} "
                             f"pixels early enough for a {self.num_frames}-frame clip")
        ref = int(rng.choice(refs))
        candidates = sorted(o for o, c in visible[ref].items()
                            if c >= self.min_pixels and seq.start_frames.get(o, 0) <= ann[ref])
        k = min(self.num_objects, len(candidates))
        chosen = [int(o) for o in rng.choice(candidates, size=k, replace=False)]
        picks = self._frames(len(ann), ref, rng)
        frame_indices = [ann[p] for p in picks]
        lut = np.zeros(256, np.uint8)
        for new, old in enumerate(chosen, start=1):
            lut[old] = new
        return {
            "imgs": [seq.load_frame(i) for i in frame_indices],
            "masks": [lut[seq.load_mask(i)] for i in frame_indices],
            "frame_indices": frame_indices,
            "object_ids": chosen,
            "sequence": seq.name,
        }


@dataclass
class SyntheticClipGenerator:
    """Smooth random affine motion of a still image's object over its inpainted background.

    Per frame limits: ``max_shift`` (fraction of the image side), ``max_rotation`` (degrees), ``max_scale``
    (relative). The velocity starts uniform in those limits and drifts by ``jitter`` of them each frame.
    ``background_motion`` scales the camera's motion relative to the object's (0 = static background).
    """

    num_frames: int = 6
    max_shift: float = 0.03
    max_rotation: float = 3.0
    max_scale: float = 0.03
    jitter: float = 0.3
    background_motion: float = 0.3
    inpaint_radius: int = 5

    def _trajectory(self, rng: np.random.Generator) -> np.ndarray:
        """(num_frames, 4) cumulative (dx, dy, angle, log-scale); frame 0 is the identity."""
        limits = np.array([self.max_shift, self.max_shift, self.max_rotation, self.max_scale])
        vel = rng.uniform(-1, 1, 4) * limits
        pos = np.zeros((self.num_frames, 4))
        for t in range(1, self.num_frames):
            vel = np.clip(vel + rng.normal(0, self.jitter, 4) * limits, -limits, limits)
            pos[t] = pos[t - 1] + vel
        return pos

    @staticmethod
    def _matrix(p: np.ndarray, center: tuple[float, float], size: tuple[int, int]) -> np.ndarray:
        m = cv2.getRotationMatrix2D(center, float(p[2]), float(np.exp(p[3])))
        m[0, 2] += p[0] * size[1]
        m[1, 2] += p[1] * size[0]
        return m

    def make_clip(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator | None = None) -> dict:
        rng = rng or np.random.default_rng()
        image = np.asarray(image)
        mask = np.asarray(mask)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"image must be HxWx3 uint8, got {image.shape} {image.dtype}")
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask shape {mask.shape} differs from image size {image.shape[:2]}")
        labels = mask.astype(np.uint8)
        if not labels.any():
            raise ValueError("the mask has no object; a synthetic clip needs something to move")
        h, w = labels.shape
        hole = cv2.dilate((labels > 0).astype(np.uint8), np.ones((7, 7), np.uint8))
        background = cv2.inpaint(image, hole, self.inpaint_radius, cv2.INPAINT_TELEA)
        ys, xs = np.nonzero(labels)
        obj_center = (float(xs.mean()), float(ys.mean()))
        img_center = (w / 2.0, h / 2.0)
        fg_path, bg_path = self._trajectory(rng), self._trajectory(rng) * self.background_motion
        imgs, masks = [], []
        for t in range(self.num_frames):
            bg = cv2.warpAffine(background, self._matrix(bg_path[t], img_center, (h, w)), (w, h),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            # The object rides on the camera motion plus its own.
            m_bg = np.vstack([self._matrix(bg_path[t], img_center, (h, w)), [0, 0, 1]])
            m_fg = np.vstack([self._matrix(fg_path[t], obj_center, (h, w)), [0, 0, 1]])
            m = (m_bg @ m_fg)[:2]
            fg = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            lab = cv2.warpAffine(labels, m, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                                 borderValue=0)
            imgs.append(np.where(lab[..., None] > 0, fg, bg))
            masks.append(lab)
        return {"imgs": imgs, "masks": masks, "frame_indices": list(range(self.num_frames)),
                "object_ids": sorted(int(o) for o in np.unique(labels) if o), "sequence": "syn"}
