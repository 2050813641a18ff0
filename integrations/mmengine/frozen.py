"""Training clips of precomputed host taps, for hosts whose backbone is frozen (FRTM, G-FRTM).

A frozen backbone gives the same features every epoch, so computing them once saves most of a CPU training
run (MobileNetV2 at 240x427 is ~45 ms a frame; the decoder's forward and backward on a whole batch is of the
same order). FRTM's own training caches its (also frozen) target models the same way. The dataset runs each
sequence through the host once -- ``adapter.deep(adapter.shallow(adapter.preprocess(frame)))``, exactly the
inference path -- keeps the taps in float16 on disk and in memory, and samples one-object clips from them as
:class:`~reusegate.integrations.mmengine.datasets.DavisClipDataset` does.

``precompute_score=True`` also stores, per object, the host's coarse score of every frame from a state
started on the object's first frame (``adapter.start_object`` then ``adapter.score``; no ``learn``), as tap
``'score'``. That is FRTM's training setting: target models are fitted once and frozen during a sequence
(as in the released Reuse_VOS training code). An adapter that accepts a ``'score'`` tap (FRTM's does) then uses
it instead of running its score model; a host whose score depends on earlier outputs must not use it.

Cache files are named by a hash of everything that shapes them (host and adapter settings, sequence,
resolution, data root); each is written atomically, so a stopped build leaves no half file and a
re-run continues with the missing sequences.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Union

import numpy as np
import torch
from mmengine.structures import BaseDataElement
from torch import Tensor

from reusegate.core.host import resize
from reusegate.core.session import as_image
from reusegate.data.writer import atomic_torch_save
from reusegate.registry import DATASETS, build
from reusegate.zoo.safe_load import load_weights

from .datasets import DavisClipDataset
from .model import _plain

__all__ = ["FrozenFeatureClipDataset", "ProceduralFrozenClipDataset", "SIZE_TAP"]

SIZE_TAP = "image"
"""The input image's tap, stored with zero channels: the decoder only reads its size."""


@DATASETS.register_module()
class FrozenFeatureClipDataset(DavisClipDataset):
    """One-object DAVIS clips of precomputed taps (``inputs`` = ``{tap: [T, ...]}``; masks at the host's input size).

    Args:
        host: the host's config (built from ``MODELS``; its frozen part must equal the trained model's, e.g. the
            same ImageNet backbone).
        adapter: the adapter's name or ``dict(type=name, **settings)`` (its ``preprocess`` sets the input size).
        cache_dir: where the per-sequence cache files go.
        precompute_score: also store each object's frozen coarse score (see the module doc).
        progress: show a progress bar while building the cache.
        data_root, year, resolution, sequences, split, clip_length, samples_per_object, sampling, max_skip,
        frames: as for :class:`DavisClipDataset` (frames keep their stored size: the adapter resizes).
    """

    def __init__(self, data_root: Union[str, os.PathLike], host: Mapping[str, Any],
                 adapter: Union[str, Mapping[str, Any]], cache_dir: Union[str, os.PathLike] = "work_dirs/.frozen_taps",
                 precompute_score: bool = False, progress: bool = True, **kwargs: Any) -> None:
        if "size" in kwargs and kwargs["size"] is not None:
            raise ValueError("FrozenFeatureClipDataset reads frames at their stored size (the adapter resizes); "
                             "drop size=")
        self.host_cfg, self.adapter_cfg = dict(host), adapter
        self.cache_dir = Path(cache_dir)
        self.precompute_score, self.progress = bool(precompute_score), bool(progress)
        self._taps: Dict[str, Dict[str, Any]] = {}
        super().__init__(data_root, **kwargs)

    # ------------------------------------------------------------------ cache
    def _key(self, name: str) -> str:
        spec = json.dumps([_plain(self.host_cfg), _plain(self.adapter_cfg), name, self.reader.resolution,
                           os.fspath(Path(self.data_root).resolve()), self.precompute_score], sort_keys=True)
        return hashlib.sha1(spec.encode()).hexdigest()[:12]

    def load_data_list(self) -> List[dict]:
        items = super().load_data_list()
        names = list(dict.fromkeys(i["sequence"] for i in items))
        todo = [n for n in names if not self._path(n).is_file()]
        if todo:
            self._build(todo)
        for name in names:
            self._taps[name] = load_weights(self._path(name))
        return items

    def _path(self, name: str) -> Path:
        return self.cache_dir / f"{name}-{self._key(name)}.pt"

    @torch.no_grad()
    def _build(self, names: Sequence[str]) -> None:
        from tqdm import tqdm

        host = build("host", dict(self.host_cfg)).eval()
        adapter = build("adapter", self.adapter_cfg, model=host)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        total = sum(len(self.sequence(n)) for n in names)
        with tqdm(total=total, unit="frame", desc="caching frozen taps", disable=not self.progress) as bar:
            for name in names:
                atomic_torch_save(_sequence_taps(adapter, self.sequence(name), self.precompute_score, bar),
                                  self._path(name))

    # ------------------------------------------------------------------ samples
    def prepare_data(self, idx: int) -> Dict[str, Any]:
        info = self.get_data_info(idx)
        name, oid = info["sequence"], info["object_id"]
        cached = self._taps[name]
        frames = self._pick(name, oid)
        index = torch.tensor(frames)
        inputs = {k: v[index].float() for k, v in cached["taps"].items()}
        if self.precompute_score:
            inputs["score"] = cached["scores"][str(oid)][index].float()
        sample = BaseDataElement(metainfo=dict(sequence=name, object_id=oid, frame_indices=frames))
        sample.gt_masks = cached["masks"][str(oid)][index].float()
        return dict(inputs=inputs, data_samples=sample)


@DATASETS.register_module()
class ProceduralFrozenClipDataset(FrozenFeatureClipDataset):
    """:class:`FrozenFeatureClipDataset` over procedural clips (:func:`reusegate.data.synthetic.gate_training_clips`).

    The clips are written once, in the DAVIS layout, to ``<cache_root>/n<N>-len<L>-seed<S>-<H>x<W>``; mix this dataset
    with real video (``ConcatDataset``) so the gate also learns the still / slow / fast stretches of clips
    like the demo's.

    Args:
        num_clips, length, seed, size: as for :func:`~reusegate.data.synthetic.gate_training_clips` (``size``
            ``(H, W)``; keep DAVIS's aspect to batch them with DAVIS clips).
        cache_root: where the clips' folder goes.
        **kwargs: as for :class:`FrozenFeatureClipDataset` (``data_root``, ``year`` are set here).
    """

    def __init__(self, num_clips: int = 12, length: int = 40, seed: int = 5000, size: Sequence[int] = (240, 427),
                 cache_root: Union[str, os.PathLike] = "work_dirs/.procedural", **kwargs: Any) -> None:
        from reusegate.data.synthetic import gate_training_clips, write_davis

        for key in ("data_root", "year"):
            if key in kwargs:
                raise ValueError(f"ProceduralFrozenClipDataset sets {key} itself; drop {key}=")
        h, w = (int(v) for v in size)
        root = Path(cache_root) / f"n{num_clips}-len{length}-seed{seed}-{h}x{w}"
        if not root.is_dir():
            write_davis(gate_training_clips(num_clips, length, (h, w), seed=seed), root)
        super().__init__(root, year=2017, **kwargs)


def _sequence_taps(adapter: Any, seq: Any, precompute_score: bool, bar: Any) -> Dict[str, Any]:
    """Every frame's taps (float16), each object's masks at the input size and (optionally) frozen scores."""
    per_frame: List[Dict[str, Tensor]] = []
    size = None
    for i in range(len(seq)):
        x = adapter.preprocess(as_image(np.array(seq.load_frame(i))))  # the session's conversion (a writable copy)
        size = tuple(x.shape[-2:])
        per_frame.append(adapter.deep(adapter.shallow(x)))
        bar.update(1)
    trained = (SIZE_TAP, *getattr(adapter.model, "trainable_taps", ()))  # a fine-tuned stage computes its own
    taps = {k: torch.cat([f[k] for f in per_frame]).half() for k in per_frame[0] if k not in trained}
    if SIZE_TAP in per_frame[0]:  # a host that carries its input as a tap: keep only the size
        taps[SIZE_TAP] = torch.zeros(len(per_frame), 0, *size, dtype=torch.float16)
    labels = [torch.from_numpy(seq.load_mask(i).astype(np.int64)) for i in range(len(seq))]
    masks, scores = {}, {}
    for oid in seq.object_ids:
        full = torch.stack([(lab == oid).float() for lab in labels])[:, None]
        masks[str(oid)] = resize(full, size, "bilinear").half()
        if precompute_score:
            start = seq.start_frames.get(oid, 0)
            first = resize(full[start:start + 1], size, "nearest")  # as a session starts an object
            state = adapter.start_object(per_frame[start], first)
            scores[str(oid)] = torch.cat([adapter.score(state, f) for f in per_frame]).half()
    return {"taps": taps, "masks": masks, "scores": scores}

