"""Small synthetic VOS datasets on disk for the data and evaluation tests (not a test module)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from reusegate.data.writer import write_palette_png


def square(shape: tuple[int, int], y: int, x: int, size: int, value: int = 1) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    m[y : y + size, x : x + size] = value
    return m


def write_gray(path: Path, arr: np.ndarray, mode: str = "L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(arr.astype(np.uint8))
    if mode == "LA":
        img = Image.merge("LA", (img, Image.new("L", img.size, 255)))
    img.save(path)


def write_frames(folder: Path, n: int, shape: tuple[int, int], seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{i:05d}.jpg"
        Image.fromarray(rng.integers(0, 255, (*shape, 3), dtype=np.uint8)).save(p, quality=90)
        paths.append(p)
    return paths


def make_davis(root: Path, sequences: dict[str, list[np.ndarray]], binary: bool = False,
               jpeg: bool = True) -> Path:
    """DAVIS layout; ``binary`` writes 0/255 grayscale (DAVIS 2016), else palette ids (DAVIS 2017)."""
    for name, masks in sequences.items():
        shape = masks[0].shape
        if jpeg:
            write_frames(root / "JPEGImages" / "480p" / name, len(masks), shape)
        for i, m in enumerate(masks):
            p = root / "Annotations" / "480p" / name / f"{i:05d}.png"
            if binary:
                write_gray(p, (m > 0).astype(np.uint8) * 255)
            else:
                write_palette_png(p, m)
    return root


def make_predictions(folder: Path, sequences: dict[str, list[np.ndarray]]) -> Path:
    for name, masks in sequences.items():
        for i, m in enumerate(masks):
            write_palette_png(folder / name / f"{i:05d}.png", m)
    return folder


def make_youtube(root: Path, n_frames: int = 12, step: int = 5, shape: tuple[int, int] = (24, 32)) -> Path:
    """A YouTube-VOS 'valid'-style split: object 1 from frame 0, object 2 starting at the third frame."""
    split = root / "valid"
    stems = [f"{i * step:05d}" for i in range(n_frames)]
    fdir = split / "JPEGImages" / "vid1"
    fdir.mkdir(parents=True)
    for s in stems:
        Image.fromarray(np.full((*shape, 3), 100, np.uint8)).save(fdir / f"{s}.jpg")
    write_palette_png(split / "Annotations" / "vid1" / f"{stems[0]}.png", square(shape, 2, 2, 5, 1))
    write_palette_png(split / "Annotations" / "vid1" / f"{stems[2]}.png", square(shape, 10, 10, 6, 2))
    meta = {"videos": {"vid1": {"objects": {
        "1": {"category": "cat", "frames": stems},
        "2": {"category": "dog", "frames": stems[2:]},
    }}}}
    (split / "meta.json").write_text(json.dumps(meta))
    return root


def write_clip_folder(root: Path, clip, ext: str = ".jpg") -> tuple[Path, Path]:
    """A synthetic clip (``reusegate.data.synthetic.make_clip``) as ``root/clip/00000<ext>`` ... frames plus its first
    frame's id mask ``root/first.png``: the input of ``reusegate run --input ... --first-mask ...``."""
    folder = root / "clip"
    folder.mkdir()
    for i, frame in enumerate(clip.frames):
        Image.fromarray(frame).save(folder / f"{i:05d}{ext}", **({"quality": 95} if ext == ".jpg" else {}))
    mask = root / "first.png"
    Image.fromarray(clip.labels[0]).save(mask)
    return folder, mask
