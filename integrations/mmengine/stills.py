"""Pseudo-video from still images (:mod:`reusegate.data.stills`) as an mmengine dataset, in the sample format of
:class:`~reusegate.integrations.mmengine.datasets.DavisClipDataset`, so a config can concatenate the two.

Every index is a fresh clip: its generator is seeded from the dataset's ``seed``, the index and a draw from
numpy's global generator, which :class:`~reusegate.integrations.mmengine.hooks.EpochSeedHook` re-seeds from
``(runner seed, epoch)``; in a DataLoader worker the worker's per-epoch torch seed joins too, since mmengine seeds
a re-created worker's numpy generator identically every epoch. So an epoch is reproducible (a resumed run sees
the clips of an unbroken one), and no two epochs repeat a clip. That also means frozen taps cannot be cached for
these clips: every sample costs a backbone pass (``benchmarks/bench_still_images.py`` measures it).
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dataset import BaseDataset

from reusegate.data.stills import STILL_SETS, PseudoVideoGenerator, StillImageReader, mask_ious
from reusegate.registry import DATASETS

from .datasets import _pack_clip

__all__ = ["StillImageClipDataset"]


@DATASETS.register_module()
class StillImageClipDataset(BaseDataset):
    """Pseudo-clips of ``clip_length`` frames from the still-image sets, ``samples_per_epoch`` per epoch.

    A sample is DavisClipDataset's: ``inputs`` uint8 ``[T, 3, H, W]``, and ``data_samples`` with ``gt_masks``
    ``[T, 1, H, W]`` of ONE tracked object (``object_id``, drawn among the clip's objects; the others move and
    occlude as look-alike distractors) and metainfo ``sequence`` (``'<set>/<name>'``), ``object_id``,
    ``frame_indices``. Two extra fields carry the whole clip: ``gt_labels`` ``[T, H, W]`` uint8 (every object's
    id, 1..k) and ``gt_iou`` ``[T, k]`` (each object's IoU with its frame-0 mask, after the pipeline).

    Args:
        data_root: the folder holding ``ecssd/``, ``pennfudan/``, ``ccp/``.
        sets: which sets to draw from.
        set_weights: ``{set: weight}``, the share of clips from each set (default: its share of the images; e.g.
            raise ``pennfudan``, the one multi-object set, which holds 170 of the 2,173 images).
        clip_length: frames per clip; size: ``(H, W)`` of the frames.
        num_objects: ``(low, high)``: objects per clip drawn in this range, capped by the image's (only
            ``pennfudan`` has several).
        paste_prob: probability of pasting the objects on another image of the sets (else their own, inpainted).
        distractor_prob: probability of adding a moving copy of an object, labelled background.
        samples_per_epoch: clips per epoch (default: one per image); each draws its image afresh.
        seed: mixed into every clip's seed (keeps two such datasets in one config apart).
        close_holes: closing size, or ``{set: size}``; default ``{'ccp': 5}`` (coarse masks), see
            :class:`~reusegate.data.stills.StillImageReader`.
        motion: other :class:`~reusegate.data.stills.PseudoVideoGenerator` settings (``max_shift``, ...).
        pipeline: extra transforms on ``dict(imgs=[HxWx3], masks=[HxW ids])`` before packing.
    """

    def __init__(self, data_root: Union[str, os.PathLike], sets: Sequence[str] = STILL_SETS, clip_length: int = 6,
                 size: Sequence[int] = (240, 432), num_objects: Tuple[int, int] = (1, 3), paste_prob: float = 0.5,
                 distractor_prob: float = 0.3, samples_per_epoch: Optional[int] = None, seed: int = 0,
                 set_weights: Optional[Mapping[str, float]] = None,
                 close_holes: Union[int, Mapping[str, int], None] = None, motion: Optional[Mapping[str, Any]] = None,
                 **kwargs: Any) -> None:
        if clip_length < 2:
            raise ValueError(f"clip_length must be >= 2 (a reference frame and one more), got {clip_length}")
        lo, hi = (int(num_objects[0]), int(num_objects[1]))
        if not 1 <= lo <= hi:
            raise ValueError(f"num_objects must be (low, high) with 1 <= low <= high, got {num_objects}")
        for name, p in (("paste_prob", paste_prob), ("distractor_prob", distractor_prob)):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {p}")
        if samples_per_epoch is not None and samples_per_epoch < 1:
            raise ValueError(f"samples_per_epoch must be >= 1 or None, got {samples_per_epoch}")
        closing = {"ccp": 5} if close_holes is None else close_holes
        self.reader = StillImageReader(data_root, sets=list(sets), close_holes=closing)
        self.generator = PseudoVideoGenerator(num_frames=int(clip_length), size=(int(size[0]), int(size[1])),
                                              **dict(motion or {}))
        self.num_objects, self.paste_prob, self.distractor_prob = (lo, hi), float(paste_prob), float(distractor_prob)
        self.samples_per_epoch = len(self.reader) if samples_per_epoch is None else int(samples_per_epoch)
        self.seed = int(seed)
        self.image_probs = self._image_probs(set_weights)
        kwargs.setdefault("serialize_data", False)
        super().__init__(data_root=os.fspath(data_root), **kwargs)

    def _image_probs(self, set_weights: Optional[Mapping[str, float]]) -> np.ndarray:
        """Each image's probability: its set's weight shared among the set's images."""
        sets = np.array([it.set for it in self.reader.items])
        if set_weights is None:
            return np.full(len(sets), 1.0 / len(sets))
        unknown = sorted(set(set_weights) - set(self.reader.sets))
        if unknown or any(w < 0 for w in set_weights.values()) or not sum(set_weights.values()) > 0:
            raise ValueError(f"set_weights must give non-negative weights (not all 0) to sets among "
                             f"{self.reader.sets}, got {dict(set_weights)}")
        weights = np.array([set_weights.get(s, 0.0) / np.count_nonzero(sets == s) for s in sets])
        return weights / weights.sum()

    def load_data_list(self) -> List[dict]:
        return [dict(clip=i) for i in range(self.samples_per_epoch)]

    def _rng(self, idx: int) -> np.random.Generator:
        """This draw's generator: fixed by the global numpy state (EpochSeedHook) and, in a worker, its torch seed."""
        entropy = [self.seed, idx, int(np.random.randint(2**31))]
        worker = torch.utils.data.get_worker_info()
        if worker is not None:
            entropy.append(int(worker.seed) % 2**63)
        return np.random.default_rng(entropy)

    def make_clip(self, idx: int) -> Dict[str, Any]:
        """A fresh clip for item ``idx`` (before the pipeline): an image, a background, objects, motion, all drawn
        from :meth:`_rng`; ``sequence`` (``'<set>/<name>'``), ``image`` (its index) and ``object_id`` set."""
        rng = self._rng(idx)
        i = int(rng.choice(len(self.image_probs), p=self.image_probs))
        image, labels = self.reader.load(i)
        background = None
        if rng.random() < self.paste_prob and len(self.reader) > 1:
            other = int(rng.integers(len(self.reader) - 1))
            background = self.reader.load(other + (other >= i))[0]
        clip = self.generator.make_clip(image, labels, rng, background=background,
                                        num_objects=int(rng.integers(self.num_objects[0], self.num_objects[1] + 1)),
                                        distractor=bool(rng.random() < self.distractor_prob))
        item = self.reader.items[i]
        target = int(rng.integers(1, len(clip["object_ids"]) + 1))
        clip.update(sequence=f"{item.set}/{item.name}", image=i, object_id=target)
        return clip

    def prepare_data(self, idx: int) -> Dict[str, Any]:
        clip = self.pipeline(self.make_clip(idx))
        k, target = len(clip["object_ids"]), clip["object_id"]
        labels = [np.asarray(m) for m in clip["masks"]]
        packed = _pack_clip(dict(clip, masks=[(m == target).astype(np.uint8) for m in labels]))
        sample = packed["data_samples"]
        sample.gt_labels = torch.from_numpy(np.stack(labels))
        sample.gt_iou = torch.from_numpy(mask_ious(labels, k))
        return packed
