"""The YouTube-VOS submission layout: ``Annotations/<video>/<frame>.png`` for every frame of the split's
JPEGImages, zipped with ``Annotations/`` at the archive root (what the CodaLab server expects).

YouTube-VOS has no public validation ground truth, so there is no local J&F: this module only checks that
a results folder is complete and packs it. Results are written with :class:`reusegate.data.writer.ResultWriter`
under ``<out>/Annotations``.

Public API::

    submission_frames(reader) -> {video: [frame names]}
    check_submission(pred_dir, reader)            # raises naming the first missing / wrong-size file
    write_youtube_vos_submission(pred_dir, reader, zip_path) -> Path
"""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

from reusegate.data.readers import YouTubeVOSReader, _header_size
from reusegate.data.writer import atomic_write_bytes

__all__ = ["submission_frames", "check_submission", "write_youtube_vos_submission"]


def submission_frames(reader: YouTubeVOSReader) -> dict[str, list[str]]:
    """Every frame stem of every video the server scores (all frames of the split's JPEGImages)."""
    return {name: reader.sequence(name).frame_names for name in reader.sequences}


def _annotations_root(pred_dir: Path) -> Path:
    return pred_dir / "Annotations" if (pred_dir / "Annotations").is_dir() else pred_dir


def check_submission(pred_dir: str | os.PathLike, reader: YouTubeVOSReader) -> dict[str, list[str]]:
    """Raise on the first missing or wrong-size result; return the frames that will be packed."""
    root = _annotations_root(Path(pred_dir))
    frames = submission_frames(reader)
    for video, names in frames.items():
        size = reader.sequence(video).size
        for name in names:
            path = root / video / f"{name}.png"
            if not path.is_file():
                raise FileNotFoundError(f"submission is missing {path}; YouTube-VOS scores every frame of "
                                        f"JPEGImages — write a mask for it")
            got = _header_size(path)
            if got != size:
                raise ValueError(f"result {path} is {got[1]}x{got[0]} but the video is {size[1]}x{size[0]}; "
                                 f"write results at the frame size")
    return frames


def write_youtube_vos_submission(pred_dir: str | os.PathLike, reader: YouTubeVOSReader,
                                 zip_path: str | os.PathLike) -> Path:
    """Check the results and pack them as ``Annotations/<video>/<frame>.png`` into ``zip_path`` atomically."""
    root = _annotations_root(Path(pred_dir))
    frames = check_submission(pred_dir, reader)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:  # PNGs are already compressed
        for video, names in frames.items():
            for name in names:
                zf.write(root / video / f"{name}.png", f"Annotations/{video}/{name}.png")
    return atomic_write_bytes(zip_path, buf.getvalue())
