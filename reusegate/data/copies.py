"""Fixed augmented copies of a sequence, for training on cached taps of a frozen backbone.

A frozen backbone's taps are cached once per sequence, so per-clip random augmentation
(:mod:`reusegate.data.transforms`) would mean recomputing the backbone on every sample. Instead each
:class:`AugmentedSequence` is one deterministic variant of a real sequence -- mirrored, zoomed in on a crop
window that pans across the video (a synthetic camera motion on top of the real one), colour-shifted -- cached
like any other sequence. A few copies multiply the looks the decoder sees at the cost of a cache pass each.

A copy is described by a small dict (``flip``, ``zoom``, ``pan``, ``color``, ``seed``); :func:`copy_tag` names
it, and the copy of ``bear`` tagged ``z1.3-p0.2-s1`` is the virtual sequence ``bear@z1.3-p0.2-s1``.
:class:`PastedSequence` makes new videos out of two real ones: one's objects cut out and pasted, moving, on the
other's frames (``hike+boat@paste-d0.2-s0``).
"""
from __future__ import annotations

import zlib
from typing import Any, Mapping

import cv2
import numpy as np

from .colour import scale_colour

__all__ = ["AugmentedSequence", "PastedSequence", "COPY_KEYS", "check_copy", "check_pasted", "copy_tag"]

COPY_KEYS = ("flip", "zoom", "pan", "color", "seed")
_SHARED = frozenset({"object_ids", "start_frames", "size", "annotated_indices", "has_mask", "new_objects",
                     "frame_names"})


def check_copy(spec: Mapping[str, Any]) -> dict:
    """The copy's settings with defaults filled in; a clear error for unknown keys or out-of-range values."""
    unknown = sorted(set(spec) - set(COPY_KEYS))
    if unknown:
        raise ValueError(f"augmented copy {dict(spec)}: unknown keys {unknown}; use {list(COPY_KEYS)}")
    out = dict(flip=bool(spec.get("flip", False)), zoom=float(spec.get("zoom", 1.0)),
               pan=float(spec.get("pan", 0.0)), color=float(spec.get("color", 0.0)), seed=int(spec.get("seed", 0)))
    if not 1.0 <= out["zoom"] <= 3.0:
        raise ValueError(f"augmented copy: zoom must lie in [1, 3] (1 = whole frame), got {out['zoom']}")
    if not 0.0 <= out["pan"] <= 1.0:
        raise ValueError(f"augmented copy: pan is the crop's travel as a fraction of the frame, in [0, 1]; "
                         f"got {out['pan']}")
    if out["pan"] and out["zoom"] == 1.0:
        raise ValueError("augmented copy: pan moves a zoomed crop window; with zoom=1 there is no room to pan")
    if not 0.0 <= out["color"] < 1.0:
        raise ValueError(f"augmented copy: color must lie in [0, 1), got {out['color']}")
    if out == dict(flip=False, zoom=1.0, pan=0.0, color=0.0, seed=out["seed"]):
        raise ValueError(f"augmented copy {dict(spec)} changes nothing; set flip, zoom or color")
    return out


def check_pasted(spec: Mapping[str, Any]) -> dict:
    """``pasted=`` settings of a frozen-tap dataset (how many :class:`PastedSequence`, their drift and seed) with
    defaults filled in; a clear error for unknown keys or no count."""
    unknown = sorted(set(spec) - {"count", "drift", "seed"})
    if unknown:
        raise ValueError(f"pasted={dict(spec)}: unknown keys {unknown}; use count, drift and seed")
    out = dict(count=int(spec.get("count", 0)), drift=float(spec.get("drift", 0.2)), seed=int(spec.get("seed", 0)))
    if out["count"] < 1:
        raise ValueError(f"pasted needs count >= 1 (how many pasted sequences to make), got {out['count']}")
    return out


def copy_tag(spec: Mapping[str, Any]) -> str:
    """A short, unique name of the copy's settings (part of its virtual sequence name and cache key)."""
    s = check_copy(spec)
    parts = ["flip"] if s["flip"] else []
    parts += [f"{k[0]}{s[k]:g}" for k in ("zoom", "pan", "color") if s[k] != (1.0 if k == "zoom" else 0.0)]
    return "-".join(parts + [f"s{s['seed']}"])


class AugmentedSequence:
    """A deterministic augmented view of a sequence (same frames, objects and size; see the module doc).

    The crop window of ``zoom`` starts centred on the first annotation's objects (so every object's first mask
    survives the crop as far as the zoom allows) and travels ``pan`` of the frame width in a direction drawn from
    ``seed`` and the sequence name. ``color`` scales brightness, contrast and saturation by factors in
    ``1 ± color``, drawn once per copy.
    """

    def __init__(self, base: Any, **spec: Any) -> None:
        self.base, self.spec = base, check_copy(spec)
        self.name = f"{base.name}@{copy_tag(self.spec)}"
        rng = np.random.default_rng([self.spec["seed"], zlib.crc32(base.name.encode())])
        self._factors = rng.uniform(1 - self.spec["color"], 1 + self.spec["color"], 3)
        h, w = base.size
        self._crop = (h / self.spec["zoom"], w / self.spec["zoom"])
        first = base.load_mask(0) > 0
        ys, xs = np.nonzero(first)
        centre = np.array([ys.mean(), xs.mean()]) if len(ys) else np.array([h / 2, w / 2])
        angle = rng.uniform(0, 2 * np.pi)
        travel = self.spec["pan"] * w * np.array([np.sin(angle), np.cos(angle)])
        self._start, self._travel = centre, travel

    def __len__(self) -> int:
        return len(self.base)

    def __repr__(self) -> str:
        return f"AugmentedSequence({self.name!r}, {len(self)} frames)"

    def __getattr__(self, name: str) -> Any:
        # What a copy leaves unchanged comes from the base sequence; anything else (e.g. load_void) would
        # silently skip the augmentation, so it is refused.
        if name in _SHARED:
            return getattr(self.base, name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def _window(self, i: int) -> tuple[int, int, int, int]:
        """(top, left, height, width) of frame i's crop, kept inside the frame."""
        h, w = self.base.size
        ch, cw = self._crop
        t = i / max(len(self) - 1, 1)
        cy, cx = self._start + t * self._travel
        top = int(round(min(max(cy - ch / 2, 0), h - ch)))
        left = int(round(min(max(cx - cw / 2, 0), w - cw)))
        return top, left, int(round(ch)), int(round(cw))

    def _geometry(self, img: np.ndarray, i: int, interpolation: int) -> np.ndarray:
        if self.spec["zoom"] != 1.0:
            top, left, ch, cw = self._window(i)
            h, w = img.shape[:2]
            img = cv2.resize(img[top:top + ch, left:left + cw], (w, h), interpolation=interpolation)
        if self.spec["flip"]:
            img = img[:, ::-1]
        return np.ascontiguousarray(img)

    def load_frame(self, i: int) -> np.ndarray:
        img = self._geometry(np.asarray(self.base.load_frame(i)), i, cv2.INTER_LINEAR)
        if not self.spec["color"]:
            return img
        return scale_colour(img, *self._factors)

    def load_mask(self, i: int) -> np.ndarray:
        return self._geometry(self.base.load_mask(i), i, cv2.INTER_NEAREST)


class PastedSequence:
    """A synthetic video: the objects of ``fg`` cut out of its frames and pasted, moving, onto ``bg``'s frames.

    The cut-out keeps the objects' real deformation and motion, adds a drift of ``drift`` of the frame's size over
    the clip (direction drawn from ``seed`` and the two names; each axis scaled by its own length) and puts them
    on another video's background and camera motion: new object/background pairs from the same 30 sequences.
    ``fg``'s frames are resized to ``bg``'s size; the clip is as long as the shorter of the two.
    """

    def __init__(self, fg: Any, bg: Any, drift: float = 0.2, seed: int = 0) -> None:
        if fg.name == bg.name:
            raise ValueError(f"a pasted sequence needs two different sequences, got {fg.name!r} twice")
        if not 0.0 <= drift <= 1.0:
            raise ValueError(f"drift is the objects' extra travel as a fraction of the frame width, in [0, 1]; "
                             f"got {drift}")
        self.fg, self.bg, self.drift, self.seed = fg, bg, float(drift), int(seed)
        self.name = f"{fg.name}+{bg.name}@paste-d{self.drift:g}-s{self.seed}"
        rng = np.random.default_rng([self.seed, zlib.crc32(self.name.encode())])
        angle = rng.uniform(0, 2 * np.pi)
        self._travel = self.drift * np.array(bg.size) * np.array([np.sin(angle), np.cos(angle)])
        self.size, self.object_ids, self.start_frames = bg.size, fg.object_ids, {o: 0 for o in fg.object_ids}
        self.annotated_indices = list(range(len(self)))

    def __len__(self) -> int:
        return min(len(self.fg), len(self.bg))

    def __repr__(self) -> str:
        return f"PastedSequence({self.name!r}, {len(self)} frames)"

    def _shift(self, img: np.ndarray, i: int, interpolation: int) -> np.ndarray:
        """``fg``'s frame i at ``bg``'s size, moved by its share of the drift (zeros where nothing moves in)."""
        h, w = self.size
        img = cv2.resize(img, (w, h), interpolation=interpolation)
        dy, dx = self._travel * i / max(len(self) - 1, 1)
        warp = np.float32([[1, 0, dx], [0, 1, dy]])
        return cv2.warpAffine(img, warp, (w, h), flags=interpolation, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def load_mask(self, i: int) -> np.ndarray:
        return self._shift(self.fg.load_mask(i), i, cv2.INTER_NEAREST)

    def load_frame(self, i: int) -> np.ndarray:
        frame = np.array(self.bg.load_frame(i))
        keep = self.load_mask(i) > 0
        frame[keep] = self._shift(np.asarray(self.fg.load_frame(i)), i, cv2.INTER_LINEAR)[keep]
        return frame
