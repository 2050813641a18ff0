"""Procedural training clips (:mod:`reusegate.data.synthetic`) as an mmengine dataset: licence-clean data that
needs no download, used to train the embedded demo model and to smoke-test recipes."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence

import numpy as np
from mmengine.dataset import BaseDataset

from reusegate.registry import DATASETS
from reusegate.data.synthetic import make_clip

from .datasets import _pack_clip

__all__ = ["SyntheticClipDataset"]


@DATASETS.register_module()
class SyntheticClipDataset(BaseDataset):
    """``num_clips`` one-object clips of ``clip_length`` frames, each regenerated from its index on demand.

    Within a clip the object's speed changes once, drawn from ``speeds`` (px/frame at 432 px width), so the
    consecutive-frame IoU covers still, slow and fast motion: what the gate must learn to tell apart.

    Args:
        num_clips: clips per epoch (clip ``i`` is always the same clip).
        clip_length: frames per clip, the reference frame included.
        size: ``(H, W)`` of the generated frames.
        speeds: the speeds to draw from.
        seed: offset of the per-clip seeds (keep training and demo clips apart).
    """

    def __init__(self, num_clips: int = 256, clip_length: int = 6, size: Sequence[int] = (240, 432),
                 speeds: Sequence[float] = (0.0, 0.5, 1.5, 3.0, 6.0, 10.0), seed: int = 10_000,
                 **kwargs: Any) -> None:
        if clip_length < 2:
            raise ValueError(f"clip_length must be >= 2, got {clip_length}")
        self.num_clips, self.clip_length = int(num_clips), int(clip_length)
        self.size, self.speeds, self.seed = (int(size[0]), int(size[1])), tuple(speeds), int(seed)
        kwargs.setdefault("serialize_data", False)
        super().__init__(**kwargs)

    def load_data_list(self) -> List[dict]:
        return [dict(clip=i) for i in range(self.num_clips)]

    def prepare_data(self, idx: int) -> Dict[str, Any]:
        i = self.get_data_info(idx)["clip"]
        rng = np.random.default_rng(self.seed + i)
        cut = int(rng.integers(1, self.clip_length))
        schedule = [(cut, float(rng.choice(self.speeds))), (self.clip_length - 1 - cut, float(rng.choice(self.speeds)))]
        clip = make_clip([s for s in schedule if s[0] > 0], self.size, n_objects=1, seed=self.seed + i)
        results = dict(imgs=list(clip.frames), masks=list((clip.labels == 1).astype(np.uint8)),
                       frame_indices=list(range(self.clip_length)), sequence=f"synthetic-{i}", object_id=1)
        return _pack_clip(self.pipeline(results))
