"""Readers for VOS data: DAVIS 2016/2017, YouTube-VOS, a plain folder of frames, a video file.

Everything becomes a :class:`VideoSequence`: frame paths in temporal order, an annotation path (or ``None``)
per frame, and the object ids with the frame where each one starts. Pixels are decoded lazily, so opening
a whole dataset is cheap; file headers (existence, size, format) are checked up front, so a broken dataset
fails on open with one message naming the file instead of half-way through a run.

Annotation encodings (as the DAVIS and YouTube-VOS releases store them):

* ``'binary'`` — DAVIS 2016: 8-bit grayscale 0/255 (one file, ``bear/00077.png``, is grayscale+alpha);
  object = pixel > 128 → id 1.
* ``'ids'`` — DAVIS 2017 / YouTube-VOS: palette PNG whose index is the object id; 255 is void and reads
  as background (0), exactly like davis2017-evaluation. ``load_void`` gives the void pixels.
* ``'auto'`` — per sequence from the first annotation: palette → ids; grayscale with only {0, 255} →
  binary (otherwise a 0/255 object would silently become void); other grayscale → ids.

Public API::

    DavisReader(root, year=2016|2017, resolution='480p', sequences=None, split=None)
        .sequences -> list[str];  .sequence(name) -> VideoSequence
    YouTubeVOSReader(root, split='valid')      # meta.json, sparse annotations, objects starting late
    open_sequence(path, first_mask)            # plain folder of frames or a video file (inference)
    VideoSequence: .name .frames .frame_names .mask_paths .object_ids .start_frames .size
                   load_frame(i) -> HxWx3 uint8;  load_mask(i) -> HxW uint8 ids;  .masks[i] == load_mask(i)
                   load_void(i) -> bool | None;   has_mask(i);  annotated_indices;  new_objects(i)
    read_image(path), read_mask(path, encoding='auto'), read_sequence_list(path)
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = [
    "DavisReader",
    "YouTubeVOSReader",
    "VideoSequence",
    "VideoFileSequence",
    "open_sequence",
    "read_image",
    "read_mask",
    "read_raw_mask",
    "decode_mask",
    "detect_encoding",
    "read_sequence_list",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
VOID = 255
_FIX = "re-extract or re-download it"


def _natural_key(path: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.stem)]


def _list_files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes),
                  key=_natural_key)


def _open(path: Path) -> Image.Image:
    """Open an image, turning every failure into one message that names the file."""
    try:
        img = Image.open(path)
        img.load()
        return img
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist; {_FIX} or fix the dataset path") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"cannot read {path} ({exc}); the file is damaged or not an image: {_FIX}") from None


def _header_size(path: Path) -> tuple[int, int]:
    """(H, W) from the file header, without decoding pixels."""
    try:
        with Image.open(path) as img:
            w, h = img.size
            return h, w
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist; {_FIX} or fix the dataset path") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ValueError(f"cannot read {path} ({exc}); the file is damaged or not an image: {_FIX}") from None


def read_image(path: str | os.PathLike) -> np.ndarray:
    """An RGB frame as HxWx3 uint8: grayscale, palette, RGBA (alpha dropped), CMYK and 16-bit frames are
    converted (16-bit values scaled to 8 bits, where PIL's own conversion would clip them to white)."""
    path = Path(path)
    img = _open(path)
    if img.mode == "F":
        raise ValueError(f"{path} is a 32-bit float image; save frames as 8-bit (or 16-bit) RGB or grayscale")
    if img.mode.startswith("I"):  # I;16*: 16-bit grayscale; I: 32-bit, read as 16-bit data
        gray = np.asarray(img).astype(np.int64)
        gray = np.clip(gray >> 8 if img.mode != "I" or gray.max(initial=0) > 255 else gray, 0, 255)
        return np.repeat(gray.astype(np.uint8)[..., None], 3, axis=2)
    return np.asarray(img.convert("RGB"))


def read_raw_mask(path: str | os.PathLike) -> tuple[np.ndarray, str]:
    """The stored indices / gray values of an annotation PNG (first channel of LA) and the PIL mode."""
    path = Path(path)
    img = _open(path)
    mode = img.mode
    if mode in ("P", "L", "1"):
        arr = np.asarray(img)
    elif mode in ("LA", "PA"):
        arr = np.asarray(img)[..., 0]
    elif mode in ("I", "I;16", "I;16B", "I;16L"):
        arr = np.asarray(img)
        if arr.max(initial=0) > 255:
            raise ValueError(f"{path} holds label values above 255; save masks as 8-bit palette PNGs")
    else:
        raise ValueError(f"{path} is a {mode} image; an annotation must be a single-channel palette or "
                         f"grayscale PNG (pixel value = object id)")
    return np.ascontiguousarray(arr, dtype=np.uint8), mode


def detect_encoding(raw: np.ndarray, mode: str) -> str:
    """'binary' for grayscale 0/255 masks (DAVIS 2016), else 'ids'."""
    if mode in ("P", "PA"):
        return "ids"
    values = np.unique(raw)
    if values.size and values.max() == 255 and np.isin(values, (0, 255)).all():
        return "binary"
    return "ids"


def decode_mask(raw: np.ndarray, encoding: str, mode: str = "L") -> tuple[np.ndarray, np.ndarray | None]:
    """(ids, void): binary → (raw > 128) as id 1 and no void; ids → 255 becomes 0 and is reported as void.

    A palette file read as binary (DAVIS-2016 sequences from a DAVIS-2017 download) merges every id into 1.
    """
    if encoding == "binary":
        if mode in ("P", "PA"):
            return ((raw > 0) & (raw != VOID)).astype(np.uint8), None
        return (raw > 128).astype(np.uint8), None
    if encoding == "ids":
        void = raw == VOID
        if not void.any():
            return raw, None
        labels = raw.copy()
        labels[void] = 0
        return labels, void
    raise ValueError(f"unknown annotation encoding {encoding!r}; use 'binary', 'ids' or 'auto'")


def read_mask(path: str | os.PathLike, encoding: str = "auto") -> np.ndarray:
    """An annotation as an HxW uint8 map of object ids (0 = background, void read as 0)."""
    raw, mode = read_raw_mask(path)
    if encoding == "auto":
        encoding = detect_encoding(raw, mode)
    return decode_mask(raw, encoding, mode)[0]


def read_sequence_list(path: str | os.PathLike) -> list[str]:
    """Sequence names, one a line (blank lines and '#' comments ignored)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sequence list {path} does not exist; pass a text file with one name a line")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ValueError(f"sequence list {path} is not a text file; write one sequence name a line") from None
    names = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    names = [n for n in names if n]
    if not names:
        raise ValueError(f"sequence list {path} names no sequence; write one sequence name a line")
    return names


def _resolve_names(sequences: Iterable[str] | str | os.PathLike | None) -> list[str] | None:
    if sequences is None:
        return None
    if isinstance(sequences, (str, os.PathLike)):
        return read_sequence_list(sequences)
    return list(sequences)


class _LazyMasks(Sequence):
    """``seq.masks[i]`` loads annotation i on access, so a sequence never holds all masks in memory."""

    def __init__(self, seq: VideoSequence) -> None:
        self._seq = seq

    def __len__(self) -> int:
        return len(self._seq)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._seq.load_mask(j) for j in range(*i.indices(len(self)))]
        return self._seq.load_mask(i)


class VideoSequence:
    """One video: frames in temporal order and a (possibly sparse) annotation per frame.

    ``mask_paths[i]`` is ``None`` for frames without an annotation (YouTube-VOS, inference). ``start_frames``
    maps each object id to the first frame index where it is annotated; objects may start late.
    """

    def __init__(self, name: str, frames: Sequence[Path], mask_paths: Sequence[Path | None],
                 object_ids: Sequence[int] | None = None, start_frames: dict[int, int] | None = None,
                 encoding: str = "auto", check: bool = True) -> None:
        if len(frames) != len(mask_paths):
            raise ValueError(f"sequence {name}: {len(frames)} frames but {len(mask_paths)} annotation slots")
        if not frames:
            raise ValueError(f"sequence {name} has no frames")
        self.name = name
        self.frames = [Path(f) for f in frames]
        self.mask_paths = [None if m is None else Path(m) for m in mask_paths]
        if self.mask_paths[0] is None:
            raise ValueError(f"sequence {name}: no annotation for the first frame {self.frames[0]}; "
                             f"semi-supervised VOS needs the first frame's mask — add it")
        self._encoding = encoding
        self._object_ids = None if object_ids is None else [int(o) for o in object_ids]
        self._start_frames = start_frames
        self._size: tuple[int, int] | None = None
        if check:
            self.check_sizes()

    def __len__(self) -> int:
        return len(self.frames)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {len(self)} frames, objects={self.object_ids})"

    @property
    def frame_names(self) -> list[str]:
        """File stems ('00000', ...): the names results are written under."""
        return [f.stem for f in self.frames]

    @property
    def annotated_indices(self) -> list[int]:
        return [i for i, m in enumerate(self.mask_paths) if m is not None]

    @property
    def masks(self) -> Sequence[np.ndarray]:
        return _LazyMasks(self)

    def has_mask(self, i: int) -> bool:
        return self.mask_paths[i] is not None

    def frame_size(self, i: int) -> tuple[int, int]:
        return _header_size(self.frames[i])

    def check_sizes(self) -> None:
        """Every frame and annotation has the first frame's size (header reads only)."""
        size = self.frame_size(0)
        for i in range(len(self)):
            for path, what in ((self.frames[i], "frame"), (self.mask_paths[i], "annotation")):
                if path is None or (what == "frame" and i == 0):
                    continue
                got = _header_size(path)
                if got != size:
                    raise ValueError(f"{what} {path} is {got[1]}x{got[0]} but {self.frames[0]} is "
                                     f"{size[1]}x{size[0]}; all frames and masks of a sequence must share "
                                     f"one size — resize or re-export the file")
        self._size = size

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the frames."""
        if self._size is None:
            self._size = self.frame_size(0)
        return self._size

    @property
    def encoding(self) -> str:
        if self._encoding == "auto":
            raw, mode = read_raw_mask(self.mask_paths[0])
            self._encoding = detect_encoding(raw, mode)
        return self._encoding

    def load_frame(self, i: int) -> np.ndarray:
        return read_image(self.frames[i])

    def _load(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        path = self.mask_paths[i]
        if path is None:
            raise ValueError(f"sequence {self.name}: frame {i} ({self.frames[i].name}) has no annotation; "
                             f"check has_mask(i) or use annotated_indices")
        raw, mode = read_raw_mask(path)
        if raw.shape != self.size:
            raise ValueError(f"annotation {path} is {raw.shape[1]}x{raw.shape[0]} but the frames are "
                             f"{self.size[1]}x{self.size[0]}; re-export it at the frame size")
        return decode_mask(raw, self.encoding, mode)

    def load_mask(self, i: int) -> np.ndarray:
        """HxW uint8 object ids of frame i (void pixels read as background)."""
        return self._load(i)[0]

    def load_void(self, i: int) -> np.ndarray | None:
        """Boolean void pixels (palette 255) of frame i, or None when there are none."""
        return self._load(i)[1]

    @property
    def object_ids(self) -> list[int]:
        """Object ids; by default those in the first annotation (davis2017-evaluation counts 1..max)."""
        if self._object_ids is None:
            first = self.load_mask(0)
            n = int(first.max(initial=0))
            if n == 0:
                raise ValueError(f"first annotation {self.mask_paths[0]} contains no object; the first "
                                 f"frame must show every object to track")
            self._object_ids = list(range(1, n + 1))
        return self._object_ids

    @property
    def start_frames(self) -> dict[int, int]:
        if self._start_frames is None:
            self._start_frames = {o: 0 for o in self.object_ids}
        return self._start_frames

    def new_objects(self, i: int) -> list[int]:
        """Objects whose first annotation is on frame i (feed their masks to the tracker then)."""
        return [o for o, s in self.start_frames.items() if s == i]


class _Reader:
    """A dataset of named sequences (subclasses define ``sequence(name)``): ``len()`` and iteration go over
    ``self.sequences`` in order."""

    sequences: list[str]

    def __len__(self) -> int:
        return len(self.sequences)

    def __iter__(self):
        return (self.sequence(n) for n in self.sequences)


class DavisReader(_Reader):
    """DAVIS layout: ``<root>/JPEGImages/<res>/<seq>/*.jpg`` and ``<root>/Annotations/<res>/<seq>/*.png``.

    ``year=2016`` reads 0/255 masks as one object, ``year=2017`` palette ids (255 void); ``year=None`` detects
    per sequence. Sequences: an explicit list or list file, else ``ImageSets/<year>/<split>.txt`` when
    ``split`` is given, else every folder under Annotations. Annotations must cover every frame, or only the
    first frame (test-dev style).
    """

    def __init__(self, root: str | os.PathLike, year: int | None = 2016, resolution: str = "480p",
                 sequences: Iterable[str] | str | os.PathLike | None = None, split: str | None = None,
                 check: bool = True) -> None:
        self.root = Path(root)
        if year not in (2016, 2017, None):
            raise ValueError(f"year must be 2016, 2017 or None, got {year!r}")
        self.year = year
        self.resolution = resolution
        self.check = check
        self.frames_dir = self.root / "JPEGImages" / resolution
        self.annotations_dir = self.root / "Annotations" / resolution
        for d in (self.frames_dir, self.annotations_dir):
            if not d.is_dir():
                raise FileNotFoundError(f"{d} does not exist; pass the DAVIS root that holds "
                                        f"JPEGImages/{resolution} and Annotations/{resolution}")
        names = _resolve_names(sequences)
        if names is None and split is not None:
            names = read_sequence_list(self.root / "ImageSets" / str(year or 2017) / f"{split}.txt")
        if names is None:
            names = sorted(p.name for p in self.annotations_dir.iterdir() if p.is_dir())
        if not names:
            raise ValueError(f"{self.annotations_dir} holds no sequence folder")
        self.sequences: list[str] = names

    @property
    def encoding(self) -> str:
        return {2016: "binary", 2017: "ids", None: "auto"}[self.year]

    def sequence(self, name: str) -> VideoSequence:
        fdir, adir = self.frames_dir / name, self.annotations_dir / name
        for d in (fdir, adir):
            if not d.is_dir():
                raise FileNotFoundError(f"sequence folder {d} does not exist; fix the sequence list or the "
                                        f"DAVIS root")
        frames = _list_files(fdir, IMAGE_SUFFIXES)
        annots = _list_files(adir, (".png",))
        if not frames:
            raise ValueError(f"{fdir} holds no image; {_FIX}")
        _check_numbering(frames)
        by_stem = {p.stem: p for p in annots}
        frame_stems = {f.stem for f in frames}
        for a in annots:
            if a.stem not in frame_stems:
                raise ValueError(f"annotation {a} has no frame {fdir / (a.stem + '.jpg')}; restore the frame "
                                 f"or remove the annotation")
        if frames[0].stem not in by_stem:
            raise ValueError(f"sequence {name}: no annotation for the first frame ({adir / (frames[0].stem + '.png')}); "
                             f"semi-supervised VOS needs it — add it")
        if len(annots) not in (1, len(frames)):
            missing = next(f for f in frames if f.stem not in by_stem)
            raise ValueError(f"sequence {name}: {len(frames)} frames but {len(annots)} annotations; "
                             f"{adir / (missing.stem + '.png')} is missing — annotate every frame or only "
                             f"the first")
        return VideoSequence(name, frames, [by_stem.get(f.stem) for f in frames], encoding=self.encoding,
                             check=self.check)


def _check_numbering(frames: list[Path]) -> None:
    """Numbered frames (00000, 00001, ...) must not skip a number: a gap means a lost file."""
    if not all(f.stem.isdigit() for f in frames):
        return
    nums = [int(f.stem) for f in frames]
    for prev, cur, path in zip(nums, nums[1:], frames[1:]):
        if cur != prev + 1:
            width = len(path.stem)
            lost = path.with_name(f"{prev + 1:0{width}d}{path.suffix}")
            raise ValueError(f"frame {lost} is missing (frames jump from {prev} to {cur}); {_FIX}")


class YouTubeVOSReader(_Reader):
    """YouTube-VOS 2018/2019: ``<split>/meta.json``, ``JPEGImages/<vid>/*.jpg``, sparse ``Annotations``.

    Annotations come every 5th frame (train) or only on the frame where each object first appears (valid);
    ``start_frames`` says where each object starts. ``root`` is the dataset root or the split folder.
    """

    def __init__(self, root: str | os.PathLike, split: str = "valid",
                 sequences: Iterable[str] | str | os.PathLike | None = None,
                 frames_dir: str | os.PathLike | None = None, check: bool = True) -> None:
        root = Path(root)
        self.root = root if (root / "meta.json").is_file() else root / split
        meta_path = self.root / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"{meta_path} does not exist; pass the YouTube-VOS root or its split folder")
        try:
            self.meta = json.loads(meta_path.read_text())["videos"]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{meta_path} is not a YouTube-VOS meta.json ({exc}); {_FIX}") from None
        self.frames_dir = Path(frames_dir) if frames_dir else self.root / "JPEGImages"
        self.annotations_dir = self.root / "Annotations"
        self.check = check
        names = _resolve_names(sequences)
        self.sequences: list[str] = sorted(self.meta) if names is None else names
        for n in self.sequences:
            if n not in self.meta:
                raise ValueError(f"video {n} is not in {meta_path}; fix the sequence list")

    def sequence(self, name: str) -> VideoSequence:
        fdir, adir = self.frames_dir / name, self.annotations_dir / name
        if not fdir.is_dir():
            raise FileNotFoundError(f"{fdir} does not exist; {_FIX}")
        frames = _list_files(fdir, IMAGE_SUFFIXES)
        if not frames:
            raise ValueError(f"{fdir} holds no image; {_FIX}")
        index = {f.stem: i for i, f in enumerate(frames)}
        annots = _list_files(adir, (".png",)) if adir.is_dir() else []
        for a in annots:
            if a.stem not in index:
                raise ValueError(f"annotation {a} has no frame in {fdir}; restore the frame or remove it")
        mask_paths: list[Path | None] = [None] * len(frames)
        for a in annots:
            mask_paths[index[a.stem]] = a
        start: dict[int, int] = {}
        for oid, obj in self.meta[name].get("objects", {}).items():
            listed = obj.get("frames") or []
            if not listed:
                continue
            first = listed[0]
            if first not in index:
                raise ValueError(f"meta.json says object {oid} of {name} starts at frame {first}, but "
                                 f"{fdir / (first + '.jpg')} does not exist; {_FIX}")
            if mask_paths[index[first]] is None:
                raise ValueError(f"object {oid} of {name} starts at frame {first} but "
                                 f"{adir / (first + '.png')} does not exist; {_FIX}")
            start[int(oid)] = index[first]
        if not start:
            raise ValueError(f"meta.json lists no object for video {name}")
        start = dict(sorted(start.items()))
        return VideoSequence(name, frames, mask_paths, object_ids=sorted(start), start_frames=start,
                             encoding="ids", check=self.check)


class VideoFileSequence(VideoSequence):
    """Frames decoded from a video file with OpenCV; ``frames`` holds ``<video>#<index>`` pseudo-paths."""

    def __init__(self, video: Path, first_mask: Path, name: str | None = None) -> None:
        import cv2

        self.video = Path(video)
        cap = cv2.VideoCapture(str(self.video))
        if not cap.isOpened():
            raise ValueError(f"cannot open video {self.video}; is it a video file OpenCV can decode? "
                             f"Convert it to mp4/avi or extract the frames into a folder")
        count = 0
        while cap.grab():
            count += 1
        cap.release()
        if count == 0:
            raise ValueError(f"video {self.video} has no decodable frame; re-encode it or extract the frames")
        self._cap = None
        self._next = 0
        frames = [Path(f"{self.video}#{i:05d}") for i in range(count)]
        super().__init__(name or self.video.stem, frames, [Path(first_mask)] + [None] * (count - 1),
                         check=False)
        self._size = self._decode(0).shape[:2]
        self._check_first_mask()

    def _check_first_mask(self) -> None:
        got = _header_size(self.mask_paths[0])
        if got != self._size:
            raise ValueError(f"first-frame mask {self.mask_paths[0]} is {got[1]}x{got[0]} but video "
                             f"{self.video} is {self._size[1]}x{self._size[0]}; make them the same size")

    @property
    def frame_names(self) -> list[str]:
        return [f"{i:05d}" for i in range(len(self))]

    def frame_size(self, i: int) -> tuple[int, int]:
        return self.size

    def _decode(self, i: int) -> np.ndarray:
        import cv2

        if self._cap is None or i != self._next:
            if self._cap is None:
                self._cap = cv2.VideoCapture(str(self.video))
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, bgr = self._cap.read()
        if not ok:
            raise ValueError(f"cannot decode frame {i} of {self.video}; the file may be truncated — "
                             f"re-encode it or extract the frames into a folder")
        self._next = i + 1
        return np.ascontiguousarray(bgr[..., ::-1])

    def load_frame(self, i: int) -> np.ndarray:
        if not 0 <= i < len(self):
            raise IndexError(f"frame {i} out of range for {self.video} ({len(self)} frames)")
        return self._decode(i)


def open_sequence(source: str | os.PathLike, first_mask: str | os.PathLike, name: str | None = None,
                  encoding: str = "auto") -> VideoSequence:
    """An inference sequence from a folder of frames or a video file, plus the first frame's mask."""
    source, first_mask = Path(source), Path(first_mask)
    if not first_mask.is_file():
        raise FileNotFoundError(f"first-frame mask {first_mask} does not exist; pass the PNG mask of frame 0")
    if source.is_dir():
        frames = _list_files(source, IMAGE_SUFFIXES)
        frames = [f for f in frames if f.resolve() != first_mask.resolve()]
        if not frames:
            raise ValueError(f"{source} holds no image (looked for {', '.join(IMAGE_SUFFIXES)})")
        return VideoSequence(name or source.name, frames, [first_mask] + [None] * (len(frames) - 1),
                             encoding=encoding)
    if source.is_file():
        if source.suffix.lower() not in VIDEO_SUFFIXES:
            raise ValueError(f"{source} is neither a folder of frames nor a video ({', '.join(VIDEO_SUFFIXES)})")
        return VideoFileSequence(source, first_mask, name)
    raise FileNotFoundError(f"{source} does not exist; pass a folder of frames or a video file")
