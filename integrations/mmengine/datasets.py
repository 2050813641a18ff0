"""Datasets for the Runner: one-object training clips and whole videos for validation / prediction.

DAVIS is read through :class:`reusegate.data.DavisReader` (2016 0/255 masks or 2017 palette ids), YouTube-VOS
through :class:`reusegate.data.YouTubeVOSReader` (sparse annotations, objects starting late); samples are packed
as ``dict(inputs=uint8 [T, 3, H, W], data_samples=BaseDataElement)``.

Training clips follow the released Reuse_VOS recipe (docs/upstream-differences.md): one object per clip,
relabelled to 1; the reference frame is a random frame where the object is visible; the other ``T - 1``
frames are drawn without replacement from the whole video, in random order (``sampling='random'``).
``sampling='ordered'`` takes them in temporal order after the reference, within ``max_skip * (T - 1)``
frames of it; ``frames=[...]`` fixes the indices (for overfitting checks and debugging).
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dataset import BaseDataset
from mmengine.structures import BaseDataElement
from PIL import Image

from reusegate.data import DavisReader, YouTubeVOSReader
from reusegate.data.clips import ClipSampler
from reusegate.registry import DATASETS

__all__ = ["DavisClipDataset", "DavisVideoDataset", "YouTubeVOSClipDataset", "resize_frame", "resize_labels"]

SAMPLINGS = ("random", "ordered")


def resize_frame(frame: np.ndarray, size: Optional[Sequence[int]]) -> np.ndarray:
    """Bilinear resize of an HxWx3 uint8 frame to ``size = (H, W)`` (``None`` keeps it)."""
    if size is None or tuple(frame.shape[:2]) == tuple(size):
        return frame
    return np.asarray(Image.fromarray(frame).resize((int(size[1]), int(size[0])), Image.BILINEAR))


def resize_labels(labels: np.ndarray, size: Optional[Sequence[int]]) -> np.ndarray:
    """Nearest-neighbour resize of an HxW id map (ids must not blend)."""
    if size is None or tuple(labels.shape[:2]) == tuple(size):
        return labels
    return np.asarray(Image.fromarray(labels).resize((int(size[1]), int(size[0])), Image.NEAREST))


def _check_size(size: Optional[Sequence[int]]) -> Optional[tuple]:
    if size is None:
        return None
    if len(size) != 2 or any(int(s) <= 0 for s in size):
        raise ValueError(f"size must be (H, W) with positive ints or None, got {size!r}")
    return (int(size[0]), int(size[1]))


class _SequenceCache:
    """Opens each sequence of ``self.reader`` once per worker process and keeps it."""

    _sequences: Dict[str, Any]

    def sequence(self, name: str):
        if name not in self._sequences:
            self._sequences[name] = self.reader.sequence(name)
        return self._sequences[name]


class _DavisBase(_SequenceCache, BaseDataset):
    """Shared reader handling; sequences are opened lazily and cached per worker process."""

    def __init__(self, data_root: Union[str, os.PathLike], year: Optional[int] = 2016, resolution: str = "480p",
                 sequences: Union[Sequence[str], str, None] = None, split: Optional[str] = None,
                 size: Optional[Sequence[int]] = None, **kwargs: Any) -> None:
        self.reader = DavisReader(data_root, year=year, resolution=resolution, sequences=sequences, split=split,
                                  check=False)
        self.size = _check_size(size)
        self._sequences: Dict[str, Any] = {}
        kwargs.setdefault("serialize_data", False)
        super().__init__(data_root=os.fspath(data_root), **kwargs)



@DATASETS.register_module()
class DavisClipDataset(_DavisBase):
    """One-object training clips of ``clip_length`` frames (paper: 6), ``samples_per_object`` per epoch.

    Args:
        data_root: DAVIS root (``JPEGImages/<resolution>``, ``Annotations/<resolution>``).
        year: 2016 (0/255 masks), 2017 (palette ids) or ``None`` (detect).
        sequences, split: which sequences (list, list file, or ``ImageSets/<year>/<split>.txt``); default all.
        clip_length: frames per clip, the reference frame included.
        size: ``(H, W)`` every frame is resized to (paper: 480 x 854); ``None`` keeps the stored size.
        samples_per_object: clips per (sequence, object) and epoch (Reuse_VOS: 8 on DAVIS).
        sampling: ``'random'`` (the paper's) or ``'ordered'``.
        max_skip: ``'ordered'`` only: the clip spans at most ``max_skip * (clip_length - 1)`` frames.
        frames: fixed frame indices for every clip (overrides ``sampling``).
        pipeline: extra transforms on ``dict(imgs=[HxWx3], masks=[HxW])`` before packing.
    """

    def __init__(self, data_root: Union[str, os.PathLike], year: Optional[int] = 2016, resolution: str = "480p",
                 sequences: Union[Sequence[str], str, None] = None, split: Optional[str] = None,
                 clip_length: int = 6, size: Optional[Sequence[int]] = None, samples_per_object: int = 8,
                 sampling: str = "random", max_skip: int = 5, frames: Optional[Sequence[int]] = None,
                 **kwargs: Any) -> None:
        if clip_length < 2:
            raise ValueError(f"clip_length must be >= 2 (a reference frame and one more), got {clip_length}")
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        if samples_per_object < 1:
            raise ValueError(f"samples_per_object must be >= 1, got {samples_per_object}")
        if frames is not None and len(frames) != clip_length:
            raise ValueError(f"frames lists {len(frames)} indices but clip_length is {clip_length}")
        self.clip_length, self.samples_per_object = int(clip_length), int(samples_per_object)
        self.sampling, self.max_skip = sampling, max(1, int(max_skip))
        self.fixed_frames = None if frames is None else [int(f) for f in frames]
        self._visible: Dict[tuple, List[int]] = {}
        super().__init__(data_root, year=year, resolution=resolution, sequences=sequences, split=split, size=size,
                         **kwargs)

    def load_data_list(self) -> List[dict]:
        items = []
        for name in self.reader.sequences:
            seq = self.sequence(name)
            if len(seq.annotated_indices) < len(seq):
                raise ValueError(f"sequence {name} is not annotated on every frame; training clips need "
                                 "dense masks (use DAVIS train/val, not test-dev)")
            if len(seq) < self.clip_length:
                continue  # too short for a clip without repeating frames
            for oid in seq.object_ids:
                items += [dict(sequence=name, object_id=oid)] * self.samples_per_object
        if not items:
            raise ValueError(f"no sequence has {self.clip_length} frames; lower clip_length")
        return items

    def _visible_frames(self, name: str, oid: int) -> List[int]:
        key = (name, oid)
        if key not in self._visible:
            seq = self.sequence(name)
            self._visible[key] = [i for i in range(len(seq)) if (seq.load_mask(i) == oid).any()] or [0]
        return self._visible[key]

    def _pick(self, name: str, oid: int) -> List[int]:
        n = len(self.sequence(name))
        if self.fixed_frames is not None:
            bad = [f for f in self.fixed_frames if not 0 <= f < n]
            if bad:
                raise ValueError(f"frames {bad} are out of range for {name} ({n} frames)")
            return self.fixed_frames
        visible = self._visible_frames(name, oid)
        if self.sampling == "random":
            ref = int(np.random.choice(visible))
            rest = np.random.choice([i for i in range(n) if i != ref], self.clip_length - 1, replace=False)
            return [ref] + [int(i) for i in rest]
        starts = [v for v in visible if v + self.clip_length - 1 < n] or [0]
        start = int(np.random.choice(starts))
        window = range(start + 1, min(n, start + self.max_skip * (self.clip_length - 1) + 1))
        rest = np.random.choice(list(window), self.clip_length - 1, replace=False)
        return [start] + sorted(int(i) for i in rest)

    def prepare_data(self, idx: int) -> Dict[str, Any]:
        info = self.get_data_info(idx)
        name, oid = info["sequence"], info["object_id"]
        seq = self.sequence(name)
        frames = self._pick(name, oid)
        results = dict(
            imgs=[resize_frame(seq.load_frame(i), self.size) for i in frames],
            masks=[resize_labels((seq.load_mask(i) == oid).astype(np.uint8), self.size) for i in frames],
            frame_indices=frames, sequence=name, object_id=oid,
        )
        results = self.pipeline(results)
        return _pack_clip(results)


def _pack_clip(results: Dict[str, Any]) -> Dict[str, Any]:
    imgs = np.stack([np.asarray(i) for i in results["imgs"]])
    masks = np.stack([np.asarray(m) for m in results["masks"]]).astype(np.float32)
    sample = BaseDataElement(metainfo=dict(sequence=results["sequence"], object_id=results["object_id"],
                                           frame_indices=list(results["frame_indices"])))
    sample.gt_masks = torch.from_numpy(masks)[:, None]
    return dict(inputs=torch.from_numpy(np.ascontiguousarray(imgs)).permute(0, 3, 1, 2).contiguous(),
                data_samples=sample)


@DATASETS.register_module()
class DavisVideoDataset(_DavisBase):
    """Whole videos for validation and prediction: every frame, the ground truth and the object start frames.

    Args:
        data_root, year, resolution, sequences, split: as for :class:`DavisClipDataset`.
        size: ``(H, W)`` frames and ground truth are resized to; ``None`` (the benchmark setting) keeps them.
        max_frames: only the first ``max_frames`` frames of each video (quick checks).
    """

    def __init__(self, data_root: Union[str, os.PathLike], year: Optional[int] = 2016, resolution: str = "480p",
                 sequences: Union[Sequence[str], str, None] = None, split: Optional[str] = None,
                 size: Optional[Sequence[int]] = None, max_frames: Optional[int] = None, **kwargs: Any) -> None:
        if max_frames is not None and max_frames < 2:
            raise ValueError(f"max_frames must be >= 2 or None, got {max_frames}")
        self.max_frames = max_frames
        super().__init__(data_root, year=year, resolution=resolution, sequences=sequences, split=split, size=size,
                         **kwargs)

    def load_data_list(self) -> List[dict]:
        return [dict(sequence=name) for name in self.reader.sequences]

    def prepare_data(self, idx: int) -> Dict[str, Any]:
        name = self.get_data_info(idx)["sequence"]
        seq = self.sequence(name)
        n = len(seq) if self.max_frames is None else min(len(seq), self.max_frames)
        if any(not seq.has_mask(i) for i in range(n)):
            raise ValueError(f"sequence {name} lacks annotations after frame 0; the video dataset scores every "
                             "frame, so it needs dense masks")
        frames = np.stack([resize_frame(seq.load_frame(i), self.size) for i in range(n)])
        labels = np.stack([resize_labels(seq.load_mask(i), self.size) for i in range(n)])
        sample = BaseDataElement(metainfo=dict(
            sequence=name, frame_names=seq.frame_names[:n], ori_shape=tuple(seq.size),
            start_frames={int(o): int(s) for o, s in seq.start_frames.items() if s < n}))
        sample.gt_labels = torch.from_numpy(labels)
        return dict(inputs=torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(), data_samples=sample)


@DATASETS.register_module()
class YouTubeVOSClipDataset(_SequenceCache, BaseDataset):
    """One-object training clips from YouTube-VOS, drawn from the annotated frames only (every 5th in train).

    Reuse_VOS draws 4000 random (video, object) pairs per epoch from videos with at least ``clip_length + 2``
    annotated frames; here the epoch cycles through the videos for ``samples_per_epoch`` items (the sampler
    shuffles them) and :class:`reusegate.data.clips.ClipSampler` picks the object and the frames.

    Args:
        data_root: the YouTube-VOS root (or its split folder) with ``meta.json``, ``JPEGImages``, ``Annotations``.
        split: ``'train'`` (the only split with more than one annotation per object).
        sequences: restrict to these videos (list or list file).
        clip_length: frames per clip; size: ``(H, W)`` to resize to (``None`` keeps the stored size).
        samples_per_epoch: clips per epoch (Reuse_VOS: 4000).
        order: ``'random'`` (what Reuse_VOS does) or ``'sorted'`` (temporal order, ``max_skip`` apart at most,
            counted in annotated frames).
        min_length: leave out videos with fewer annotated frames (Reuse_VOS: clip_length + 2).
        pipeline: extra transforms on ``dict(imgs=[HxWx3], masks=[HxW])`` before packing.
    """

    def __init__(self, data_root: Union[str, os.PathLike], split: str = "train",
                 sequences: Union[Sequence[str], str, None] = None, clip_length: int = 6,
                 size: Optional[Sequence[int]] = None, samples_per_epoch: int = 4000, order: str = "random",
                 max_skip: int = 5, min_length: Optional[int] = None, **kwargs: Any) -> None:
        if clip_length < 2:
            raise ValueError(f"clip_length must be >= 2 (a reference frame and one more), got {clip_length}")
        if samples_per_epoch < 1:
            raise ValueError(f"samples_per_epoch must be >= 1, got {samples_per_epoch}")
        self.reader = YouTubeVOSReader(data_root, split=split, sequences=sequences, check=False)
        self.sampler = ClipSampler(num_frames=clip_length, max_skip=max_skip, num_objects=1,
                                   order=order)
        self.size = _check_size(size)
        self.samples_per_epoch = int(samples_per_epoch)
        self.min_length = clip_length + 2 if min_length is None else int(min_length)
        self._sequences: Dict[str, Any] = {}
        kwargs.setdefault("serialize_data", False)
        super().__init__(data_root=os.fspath(data_root), **kwargs)


    def load_data_list(self) -> List[dict]:
        names = [n for n in self.reader.sequences if len(self.sequence(n).annotated_indices) >= self.min_length]
        if not names:
            raise ValueError(f"no video has {self.min_length} annotated frames; lower min_length or clip_length")
        return [dict(sequence=names[i % len(names)]) for i in range(self.samples_per_epoch)]

    def prepare_data(self, idx: int) -> Dict[str, Any]:
        name = self.get_data_info(idx)["sequence"]
        clip = self.sampler.sample(self.sequence(name), np.random.default_rng(np.random.randint(2**31)))
        results = dict(
            imgs=[resize_frame(im, self.size) for im in clip["imgs"]],
            masks=[resize_labels(m, self.size) for m in clip["masks"]],
            frame_indices=clip["frame_indices"], sequence=name, object_id=clip["object_ids"][0],
        )
        return _pack_clip(self.pipeline(results))
