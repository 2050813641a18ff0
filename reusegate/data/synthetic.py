"""Procedural, licence-clean video clips with exact ground truth: the embedded demo clip and training data.

A textured background and one or more textured objects that move along a schedule of speeds. Everything
is generated from a seed, so the package ships no image files and every clip can be regenerated exactly.
The default demo schedule moves slowly, pauses, then moves fast: the case the reuse gate is built for.
"""
from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Tuple, Union

import numpy as np

__all__ = ["SyntheticClip", "DEMO_SCHEDULE", "DEMO_SEED", "GATE_SPEEDS", "make_clip", "demo_clip",
           "gate_training_clips", "write_davis"]

DEMO_SCHEDULE: Tuple[Tuple[int, float], ...] = ((16, 1.5), (14, 0.0), (18, 9.0))
"""(frames, speed in pixels per frame at 432 px width): slow, pause, fast."""

DEMO_SEED = 2021
"""The demo clip's seed; training clips never use it."""

GATE_SPEEDS: Tuple[float, ...] = (0.0, 0.5, 1.5, 3.0, 6.0, 9.0, 12.0)
"""Speeds (px/frame at 432 px width) the gate's procedural training clips switch between."""


@dataclass
class SyntheticClip:
    """Frames ``[T, H, W, 3]`` uint8 and label maps ``[T, H, W]`` uint8 (0 = background, 1..K objects)."""

    frames: np.ndarray
    labels: np.ndarray
    speeds: np.ndarray  # per frame, pixels per frame of the fastest object (0 on frame 0)

    def __len__(self) -> int:
        return len(self.frames)


def _texture(rng: np.random.Generator, h: int, w: int, base: np.ndarray, contrast: float) -> np.ndarray:
    """Smooth colour texture: a few random plane waves around ``base`` plus fine noise."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.repeat(base[None, None, :].astype(np.float32), h, 0).repeat(w, 1)
    for _ in range(4):
        fy, fx = rng.uniform(-0.08, 0.08, size=2)
        phase = rng.uniform(0, 2 * math.pi)
        colour = rng.uniform(-1, 1, size=3).astype(np.float32)
        out += contrast * np.sin(fy * yy + fx * xx + phase)[..., None] * colour
    out += rng.normal(0, 6, size=out.shape).astype(np.float32)
    return out


def make_clip(
    schedule: Sequence[Tuple[int, float]] = DEMO_SCHEDULE,
    size: Tuple[int, int] = (240, 432),
    n_objects: int = 1,
    seed: int = 0,
) -> SyntheticClip:
    """Generate a clip: each object is a textured ellipse moving along a smooth random path.

    Args:
        schedule: ``(frames, speed)`` segments after the first frame; speed in px/frame at 432 px width.
        size: ``(H, W)`` of the frames.
        n_objects: number of objects (ids 1..K, later ids drawn on top).
        seed: everything random (textures, shapes, paths) comes from this seed.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    scale = w / 432.0
    background = _texture(rng, h, w, rng.uniform(60, 190, size=3), 45)
    objects = []
    for _ in range(n_objects):
        ry, rx = rng.uniform(0.12, 0.22) * h, rng.uniform(0.08, 0.16) * w
        tex = _texture(rng, int(2 * ry) + 3, int(2 * rx) + 3, rng.uniform(30, 225, size=3), 60)
        objects.append(dict(ry=ry, rx=rx, tex=tex, y=rng.uniform(ry, h - ry), x=rng.uniform(rx, w - rx),
                            heading=rng.uniform(0, 2 * math.pi), turn=rng.uniform(-0.15, 0.15)))
    speeds = [0.0] + [s * scale for n, s in schedule for _ in range(n)]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    frames, labels = [], []
    for speed in speeds:
        img = background.copy()
        lab = np.zeros((h, w), np.uint8)
        for k, o in enumerate(objects, start=1):
            o["heading"] += o["turn"] if speed else 0.0
            o["y"] += speed * math.sin(o["heading"])
            o["x"] += speed * math.cos(o["heading"])
            for axis, r, lim, ang in (("y", o["ry"], h, "sin"), ("x", o["rx"], w, "cos")):
                if not r <= o[axis] <= lim - r:  # bounce off the frame border
                    o[axis] = min(max(o[axis], r), lim - r)
                    o["heading"] = math.pi - o["heading"] if ang == "cos" else -o["heading"]
            inside = ((yy - o["y"]) / o["ry"]) ** 2 + ((xx - o["x"]) / o["rx"]) ** 2 <= 1.0
            ys, xs = np.nonzero(inside)
            ty = np.clip((ys - o["y"] + o["ry"]).astype(int), 0, o["tex"].shape[0] - 1)
            tx = np.clip((xs - o["x"] + o["rx"]).astype(int), 0, o["tex"].shape[1] - 1)
            img[ys, xs] = o["tex"][ty, tx]
            lab[inside] = k
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
        labels.append(lab)
    return SyntheticClip(np.stack(frames), np.stack(labels), np.asarray(speeds, np.float32))


def demo_clip() -> SyntheticClip:
    """The embedded demo clip: 49 frames at 240x432, one object: slow, pause, fast."""
    return make_clip(DEMO_SCHEDULE, (240, 432), n_objects=1, seed=DEMO_SEED)


def training_clips(n: int, length: int, size: Tuple[int, int], seed: int = 1000) -> List[SyntheticClip]:
    """``n`` random clips for training a host on synthetic data (speeds mixed from still to fast)."""
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        segments = [(int(length - 1), float(rng.choice([0.0, 1.0, 3.0, 6.0, 10.0])))]
        clips.append(make_clip(segments, size, n_objects=int(rng.integers(1, 3)), seed=seed + i))
    return clips


def gate_training_clips(n: int, length: int = 40, size: Tuple[int, int] = (240, 427),
                        seed: int = 5000) -> List[SyntheticClip]:
    """``n`` one-object clips whose speed switches every 6-15 frames among :data:`GATE_SPEEDS`.

    The default size is DAVIS's 480p at half scale, so that a batch can mix these clips with DAVIS clips (the
    taps of both have the same shape at the default working height of 240).

    A gate trained only on real video never saw this texture statistics and stays closed on the demo clip;
    these clips teach it that still and slow stretches reuse well and fast ones do not. The seeds
    (``seed .. seed + n - 1``) must not include :data:`DEMO_SEED`, so the demo stays unseen.
    """
    if seed <= DEMO_SEED < seed + n:
        raise ValueError(f"seeds {seed}..{seed + n - 1} include the demo clip's ({DEMO_SEED}); pick another seed")
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        segments, left = [], length - 1
        while left > 0:
            frames = int(min(left, rng.integers(6, 16)))
            segments.append((frames, float(rng.choice(GATE_SPEEDS))))
            left -= frames
        clips.append(make_clip(segments, size, n_objects=1, seed=seed + i))
    return clips


def write_davis(clips: Sequence[SyntheticClip], root: Union[str, os.PathLike], resolution: str = "480p",
                prefix: str = "procedural") -> Path:
    """Write ``clips`` in the DAVIS-2017 layout (PNG frames, palette PNG labels) as ``<prefix>-<k>`` under
    ``root``; a finished ``root`` is left as it is, and a stopped write leaves no partial folder."""
    from PIL import Image

    from reusegate.data.writer import write_palette_png

    root = Path(root)
    if root.is_dir():
        return root
    tmp = root.with_name(f"{root.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    for k, clip in enumerate(clips):
        name = f"{prefix}-{k:03d}"
        frames_dir = tmp / "JPEGImages" / resolution / name
        frames_dir.mkdir(parents=True)
        for t, (frame, labels) in enumerate(zip(clip.frames, clip.labels)):
            Image.fromarray(frame).save(frames_dir / f"{t:05d}.png")
            write_palette_png(tmp / "Annotations" / resolution / name / f"{t:05d}.png", labels)
    os.replace(tmp, root)
    return root
