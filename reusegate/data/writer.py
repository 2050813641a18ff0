"""Result masks as indexed palette PNGs in the DAVIS results layout ``<out>/<sequence>/<frame>.png``.

Pixel value = object id (0 = background) with the PASCAL-VOC colour map, as davis2017-evaluation's
``save_mask`` writes them, so the official script and ours read the same ids. Every file is written to a
temporary name in the same folder and renamed into place: an interrupted run never leaves a truncated PNG
that a later evaluation would read.

Public API::

    write_palette_png(path, labels)          # HxW integer ids 0..255
    davis_palette() -> list[int]             # 768 entries (R, G, B per index)
    ResultWriter(out_dir).write(sequence, frame_name, labels) -> Path
    atomic_write_bytes(path, data)           # temp file + os.replace
    check_writable(folder)                   # fail early on a folder that cannot take files
    check_output_files(path, ...)            # ... or on output files that could not be written at the end
"""
from __future__ import annotations

import io
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

__all__ = ["write_palette_png", "davis_palette", "ResultWriter", "atomic_write_bytes", "atomic_write_text",
           "atomic_torch_save",
           "check_writable", "check_output_files"]


@lru_cache(maxsize=1)
def _palette() -> tuple[int, ...]:
    out = []
    for i in range(256):
        r = g = b = 0
        c = i
        for bit in range(8):  # spread the id's bits over the high bits of R, G, B
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        out += [r, g, b]
    return tuple(out)


def davis_palette() -> list[int]:
    """The PASCAL-VOC colour map: id 1 = (128, 0, 0), 2 = (0, 128, 0), 3 = (128, 128, 0), ..."""
    return list(_palette())


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj, path)`` through :func:`atomic_write_bytes`: a stopped or failed save (a full disk) leaves
    neither a truncated file nor a stray temporary one."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def check_writable(folder: str | os.PathLike) -> Path:
    """Prove a file can be written in ``folder``, before any long computation. Folders created for the probe
    are removed again, so a command that fails later leaves no trace of its output."""
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write to the output folder {folder} ({exc.strerror})") from None
    finally:
        for p in created:  # deepest first
            try:
                p.rmdir()
            except OSError:  # never created, or filled meanwhile
                pass
    return folder


def check_output_files(*paths: str | os.PathLike | None) -> None:
    """Fail before a long computation on an output file that could not be written at its end (``None``
    entries are options left unset)."""
    for path in paths:
        if path is None:
            continue
        if Path(path).is_dir():
            raise ValueError(f"output file {path} is a folder; pass a file name")
        check_writable(Path(path).parent)


def write_palette_png(path: str | os.PathLike, labels: np.ndarray) -> Path:
    """Save an HxW map of object ids (0..255) as an indexed PNG with the DAVIS palette, atomically."""
    arr = np.asarray(labels)
    if arr.ndim != 2:
        raise ValueError(f"labels for {path} must be a 2-D map of object ids, got shape {arr.shape}")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"labels for {path} must be integers (object ids), got {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        raise ValueError(f"labels for {path} must lie in 0..255, got {arr.min()}..{arr.max()}")
    img = Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8))  # mode L ...
    img.putpalette(davis_palette())  # ... becomes P with the ids as indices
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return atomic_write_bytes(path, buf.getvalue())


class ResultWriter:
    """Writes ``<out_dir>/<sequence>/<frame_name>.png``; the layout both DAVIS evaluators read."""

    def __init__(self, out_dir: str | os.PathLike) -> None:
        self.out_dir = Path(out_dir)

    def path(self, sequence: str, frame_name: str) -> Path:
        return self.out_dir / sequence / f"{frame_name}.png"

    def write(self, sequence: str, frame_name: str, labels: np.ndarray) -> Path:
        return write_palette_png(self.path(sequence, frame_name), labels)
