"""Per-video inference: :class:`Session` (the gated host, Cutie-style ``step()``) and :class:`HostRunner` (the bare
host, the reference that ``tau = 1`` equals bit for bit). Create a session with ``ReuseGate.session()``::

    session = gate.session()
    result = session.step(frame0, new_object_masks=labels0)   # objects start with their masks
    for frame in frames[1:]:
        result = session.step(frame)                          # result.labels, .reused, .p_reuse
    print(session.stats())

Rules kept here, for every host: one gate per object; the host's deep features are computed at most once a
frame and only when some object computes; online learning only on computed frames; ``delta`` and ``R`` are
always relative to the last computed frame. The per-object paths are :mod:`reusegate.core.paths`, shared with
training; a session reads its settings from one :class:`~reusegate.core.config.GateConfig`, which it never changes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from reusegate.core.config import GateConfig
from reusegate.core.device import module_device
from reusegate.core.host import HostAdapter, label_map, resize
from reusegate.core.layers import GateLayers
from reusegate.core.paths import compute_path, decode_shallow, start_caches, translate_path
from reusegate.evaluation.metrics import batch_iou

__all__ = ["Session", "HostRunner", "FrameResult", "FrameLike", "as_image", "frame_tensor", "copies_previous_mask",
           "COPYING_VARIANTS", "object_window", "WINDOW_FLOOR"]

FrameLike = Union[Tensor, np.ndarray]


@dataclass
class FrameResult:
    """What one ``step`` returns.

    Attributes:
        index: frame index within the session (0-based).
        labels: ``[H, W]`` int64 label map at the frame's size (0 = background, object ids 1..K).
        probs: ``[K + 1, H, W]`` merged probabilities, slot 0 = background, slot k = object k.
        reused: per object id, whether the host's expensive part was skipped for it on this frame.
        p_reuse: per object id, the gate's reuse probability (NaN where the gate was not evaluated:
            an object's first frame, or ``tau >= 1``, where no gate can fire). Oracle: the GT IoU.
        deep_computed: whether the host's deep features ran on this frame.
        flops: FLOPs executed on this frame when the session counts them, else ``None``.

    ``labels`` and ``probs`` are on the model's device (``.cpu()`` before ``.numpy()`` on a GPU).
    """

    index: int
    labels: Tensor
    probs: Tensor
    reused: Dict[int, bool]
    p_reuse: Dict[int, float]
    deep_computed: bool
    flops: Optional[int] = None


COPYING_VARIANTS = ("copy", "fusion")
"""The variants whose reuses may copy the previous mask (:func:`copies_previous_mask`)."""


def copies_previous_mask(config: GateConfig, p_reuse: float) -> bool:
    """Whether a reuse with this ``p_reuse`` copies the object's previous mask instead of decoding: every reuse
    of ``copy``, those above ``tau2`` of ``fusion`` (paper §4.2); sessions, the bench and the demo share it."""
    return config.variant == "copy" or (config.variant == "fusion" and p_reuse > config.tau2)


WINDOW_FLOOR = 0.04
"""The margin every window (``GateConfig.window``) keeps whatever the object's size, as a share of the working
frame's longer side: a small object moves by more than its own size between frames more often than a large one."""


@dataclass(frozen=True)
class _Extent:
    """Where an object's mask lies on one frame: its bounding box ``[y0, y1) x [x0, x1)`` and its centroid."""

    y0: int
    y1: int
    x0: int
    x1: int
    cy: float
    cx: float


def _extent(prob: Tensor) -> Optional[_Extent]:
    """The extent of ``prob > 0.5`` (``[1, 1, H, W]``), or ``None`` under 4 pixels: the object is lost, or left."""
    inside = prob[0, 0] > 0.5
    rows, cols = inside.sum(1), inside.sum(0)
    count = int(rows.sum())
    if count < 4:
        return None
    ys, xs = torch.nonzero(rows).flatten(), torch.nonzero(cols).flatten()
    cy = float((rows * torch.arange(len(rows), device=rows.device)).sum()) / count
    cx = float((cols * torch.arange(len(cols), device=cols.device)).sum()) / count
    return _Extent(int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1, cy, cx)


def object_window(previous: Tensor, margin: float, before: Optional[Tensor] = None) -> Optional[Tensor]:
    """The ``[1, 1, H, W]`` 0/1 box in which an object may be on this frame, from ``previous``, its merged
    probability on the previous frame: that mask's bounding box grown on each side by ``margin`` times its height
    and width, plus :data:`WINDOW_FLOOR`, plus how far the mask's centroid moved from ``before`` (the frame before
    that) along each axis, so a fast object keeps room ahead of it. ``None`` where the object covered under 4
    pixels (lost, or it left the frame): it is then searched for everywhere."""
    now = _extent(previous)
    if now is None:
        return None
    return _window_box(now, None if before is None else _extent(before), margin, previous)


def _window_box(now: _Extent, then: Optional[_Extent], margin: float, like: Tensor) -> Tensor:
    """:func:`object_window` from the extents of the two previous frames (a session keeps them, so each mask is
    measured once), as a tensor shaped like ``like``."""
    height, width = like.shape[-2:]
    floor = WINDOW_FLOOR * max(height, width)
    grow_y, grow_x = margin * (now.y1 - now.y0) + floor, margin * (now.x1 - now.x0) + floor
    if then is not None:
        grow_y, grow_x = grow_y + abs(now.cy - then.cy), grow_x + abs(now.cx - then.cx)
    box = torch.zeros_like(like)
    box[..., max(0, math.floor(now.y0 - grow_y)):math.ceil(now.y1 + grow_y),
        max(0, math.floor(now.x0 - grow_x)):math.ceil(now.x1 + grow_x)] = 1
    return box


@dataclass
class _Object:
    state: Any
    score: Optional[Tensor] = None  # S(t-n): last computed frame's coarse score
    refined: Optional[Tensor] = None  # R(t-n): last computed frame's refined feature
    template: Optional[Tensor] = None
    anchor_match: Optional[Tensor] = None  # match feature of the last computed frame (change gate)
    anchor_mask: Optional[Tensor] = None  # merged probability on the last computed frame (change_mask gate)
    anchor_gt: Optional[Tensor] = None  # oracle: GT of the last computed frame
    last_prob: Optional[Tensor] = None  # previous frame's probability (copy variant)
    frames: int = 0  # frames tracked after the start frame
    reused: int = 0


# ---------------------------------------------------------------------------------------------- input checks
def _writable(array: np.ndarray) -> np.ndarray:
    """A contiguous, writable view of ``array``, copied only when needed: arrays from PIL images are read-only,
    and ``torch.from_numpy`` warns about those."""
    return np.require(array, requirements=["C", "W"])


def frame_tensor(frame: np.ndarray) -> Tensor:
    """``[3, H, W]`` view of an ``H x W x 3`` array (copied only when the array is read-only, as PIL's are): the one
    conversion of a decoded frame, for sessions and for callers that decode frames ahead (bench, run)."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(
            f"a numpy frame must be H x W x 3 (RGB), got shape {frame.shape}; convert grey or RGBA images "
            "to RGB first"
        )
    return torch.from_numpy(_writable(frame)).permute(2, 0, 1)


def as_image(frame: FrameLike, device: Optional[torch.device] = None) -> Tensor:
    """``[1, 3, H, W]`` float in [0, 1] on ``device`` (``None``: where the frame is) from a ``[3, H, W]`` tensor or
    an ``H x W x 3`` uint8 array; a uint8 frame moves before it is widened (a quarter of the bytes)."""
    if isinstance(frame, np.ndarray):
        frame = frame_tensor(frame)
    if not isinstance(frame, Tensor):
        raise ValueError(f"frame must be a torch.Tensor or numpy array, got {type(frame).__name__}")
    if frame.ndim != 3 or frame.shape[0] != 3:
        raise ValueError(
            f"frame must have shape [3, H, W] (RGB, channels first), got {tuple(frame.shape)}; "
            "use frame.permute(2, 0, 1) for H x W x 3 data"
        )
    if frame.numel() == 0:
        raise ValueError(f"frame is empty (shape {tuple(frame.shape)}); a frame needs at least one pixel")
    if frame.dtype == torch.uint8:
        return frame.to(device).unsqueeze(0).float().div_(255.0)
    if not frame.is_floating_point():
        raise ValueError(f"frame dtype must be uint8 (0..255) or floating point (0..1), got {frame.dtype}")
    if not torch.isfinite(frame).all():  # NaN would spread through every later frame's cached state
        raise ValueError("frame holds NaN or infinite values; pass pixel values in 0..1 (float) or 0..255 (uint8)")
    return frame.to(device).unsqueeze(0).float()


def _as_labels(masks: FrameLike, size: tuple[int, int], what: str, device: torch.device) -> Tensor:
    """``[H, W]`` int64 label map on ``device``, checked for dtype and size."""
    if isinstance(masks, np.ndarray):
        masks = torch.from_numpy(_writable(masks))
    if not isinstance(masks, Tensor):
        raise ValueError(f"{what} must be a torch.Tensor or numpy array, got {type(masks).__name__}")
    if masks.is_floating_point() or masks.is_complex():
        raise ValueError(
            f"{what} must be an integer label map (0 = background, 1..K = object ids), got dtype {masks.dtype}; "
            "for a single 0/1 mask use mask.long()"
        )
    if masks.ndim != 2:
        raise ValueError(f"{what} must be an [H, W] label map, got shape {tuple(masks.shape)}")
    if tuple(masks.shape) != tuple(size):
        raise ValueError(
            f"{what} has size {tuple(masks.shape)} but the frame is {tuple(size)}; resize the mask with "
            "nearest-neighbour interpolation to the frame size"
        )
    return masks.to(device=device, dtype=torch.long)


# ---------------------------------------------------------------------------------------------- sessions
class _VideoSession:
    """Shared per-video bookkeeping: frame counting, input checks, new objects, windows, merge and output size.

    ``window``: :attr:`GateConfig.window <reusegate.core.config.GateConfig.window>` (``None``: none)."""

    def __init__(self, adapter: HostAdapter, window: Optional[float] = None) -> None:
        self.adapter = adapter
        self.window = window
        # where each object's merged mask lay on the previous frame and on the one before (windows only; None: lost)
        self._previous: Dict[int, Optional[_Extent]] = {}
        self._before: Dict[int, Optional[_Extent]] = {}
        self.device = module_device(adapter.model)  # frames, masks and caches are made where the weights are
        # the [B] flags advance() reads, on that device like every other tensor an adapter is given
        self._computed, self._reused = (torch.tensor([flag], device=self.device) for flag in (True, False))
        self.objects: Dict[int, _Object] = {}
        self.index = 0
        self._size: Optional[tuple[int, int]] = None

    def _prepare(self, frame: FrameLike, new_object_masks: Optional[FrameLike]) -> tuple[Tensor, Dict[int, Tensor]]:
        image = as_image(frame, self.device)
        size = tuple(image.shape[-2:])
        if self._size is not None and size != self._size:
            raise ValueError(
                f"frame {self.index} has size {size} but the session started at {self._size}; "
                "all frames of a video must have the same size (start a new session for a new video)"
            )
        new: Dict[int, Tensor] = {}
        if new_object_masks is not None:
            labels = _as_labels(new_object_masks, size, "new_object_masks", self.device)
            ids = sorted(int(i) for i in torch.unique(labels).tolist() if i != 0)
            clash = [i for i in ids if i in self.objects]
            if clash:
                raise ValueError(
                    f"object ids {clash} already exist in this video; new_object_masks must hold only "
                    "objects that start on this frame (set earlier objects to 0)"
                )
            every = sorted(set(self.objects) | set(ids))
            if every != list(range(1, len(every) + 1)):
                raise ValueError(
                    f"object ids must be 1..K without gaps, but this video would have ids {every}; "
                    "relabel the objects to consecutive ids starting at 1"
                )
            new = {i: (labels == i).float()[None, None] for i in ids}
        if not self.objects and not new:
            raise ValueError(
                "the first frame needs new_object_masks with at least one object (ids 1..K); "
                "the given mask is empty or missing"
            )
        self._size = size
        return image, new

    def _finish(self, probs: Dict[int, Tensor], new: Dict[int, Tensor]) -> tuple[Tensor, Tensor, Dict[int, Tensor]]:
        """Keep tracked objects inside their windows, suppress older objects under new ones, merge, and return
        (merged, labels, per-object merged slots)."""
        for oid in probs:
            if oid not in new:
                if self._previous.get(oid) is not None:
                    probs[oid] = probs[oid] * _window_box(self._previous[oid], self._before.get(oid), self.window,
                                                          probs[oid])
                for nid in new:  # probs[nid] is the new mask at the working resolution, like probs[oid]
                    probs[oid] = probs[oid] * (1 - probs[nid])
        ids = sorted(probs)
        merged, labels = self.adapter.merge(torch.cat([probs[i][0] for i in ids], dim=0))
        slots = {oid: merged[k + 1][None, None] for k, oid in enumerate(ids)}
        if self.window is not None:
            self._before, self._previous = self._previous, {oid: _extent(slot) for oid, slot in slots.items()}
        return merged, labels, slots

    def _output(self, merged: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        assert self._size is not None
        if tuple(merged.shape[-2:]) == self._size:
            return merged, labels
        merged = resize(merged[None], self._size, "bilinear")[0]
        return merged, label_map(merged)


class HostRunner(_VideoSession):
    """The bare host through its adapter, no gate: the reference that ``tau = 1`` must equal bit for bit (with the
    same ``window``, a run-time setting of the merge rather than of the gate)."""

    @torch.no_grad()
    def step(self, frame: FrameLike, new_object_masks: Optional[FrameLike] = None) -> FrameResult:
        """Segment one frame with the full host; objects in ``new_object_masks`` start here."""
        image, new = self._prepare(frame, new_object_masks)
        a = self.adapter
        x = a.preprocess(image)
        feats = a.deep(a.shallow(x))
        probs: Dict[int, Tensor] = {}
        for oid, obj in self.objects.items():
            score, refined = compute_path(a, obj.state, feats)
            probs[oid] = torch.sigmoid(decode_shallow(a, obj.state, feats, score, refined))
        for oid, mask in new.items():
            mask = resize(mask, tuple(x.shape[-2:]), "nearest")
            self.objects[oid] = _Object(state=a.start_object(feats, mask))
            probs[oid] = mask
        merged, labels, slots = self._finish(probs, new)
        for oid in self.objects:
            if oid not in new:
                a.learn(self.objects[oid].state, feats, slots[oid])
                a.advance(self.objects[oid].state, feats, slots[oid], self._computed)
        merged, labels = self._output(merged, labels)
        nan = float("nan")
        result = FrameResult(self.index, labels, merged, {o: False for o in probs}, {o: nan for o in probs}, True)
        self.index += 1
        return result


class Session(_VideoSession):
    """One video through a gated host. Create it with :meth:`ReuseGate.session`.

    Args:
        adapter: the host's adapter.
        layers: the gate's layers.
        config: the settings this session runs with (fixed for its video).
        count_flops: count the FLOPs each ``step`` executes (``FlopCounterMode``; slows the step down).
    """

    def __init__(self, adapter: HostAdapter, layers: GateLayers, config: GateConfig, count_flops: bool = False) -> None:
        super().__init__(adapter, config.window)
        offered = adapter.reuse_precisions()
        if config.reuse_precision not in offered:
            raise ValueError(f"reuse_precision={config.reuse_precision!r} is not available for this model: "
                             f"{type(adapter).__name__} offers {', '.join(offered)} here (int8 needs a host that "
                             f"implements it, a model calibrated for it, the torch backend and the CPU); "
                             f"use reuse_precision='float32'")
        self.layers = layers
        self.config = config
        self.count_flops = count_flops
        self.deep_frames = 0
        self.flops: List[int] = []

    @property
    def _gate_fires(self) -> bool:
        """Whether a gate can fire with the current config: at ``tau >= 1`` none can, so none is evaluated."""
        return self.config.variant == "oracle" or self.config.tau < 1.0

    @property
    def _gated(self) -> bool:
        """Whether objects keep the caches the gate reads: where a gate can fire (a controlled session, whose
        ``tau`` may leave 1 on any frame, always)."""
        return self._gate_fires

    def step(
        self,
        frame: FrameLike,
        new_object_masks: Optional[FrameLike] = None,
        gt: Optional[FrameLike] = None,
    ) -> FrameResult:
        """Segment one frame.

        Args:
            frame: ``[3, H, W]`` uint8 (0..255) or float (0..1) tensor, or an ``H x W x 3`` uint8 array.
            new_object_masks: ``[H, W]`` integer label map of the objects that start on this frame
                (required on the first frame). Ids must keep the video's objects numbered 1..K.
            gt: the frame's ground-truth label map; required by the ``oracle`` variant only.
        """
        if self.config.variant == "oracle" and gt is None:
            raise ValueError("the oracle variant needs the ground-truth label map of every frame: step(frame, gt=...)")
        if not self.count_flops:
            return self._step(frame, new_object_masks, gt)
        with FlopCounterMode(display=False) as counter:
            result = self._step(frame, new_object_masks, gt)
        result.flops = counter.get_total_flops()
        self.flops.append(result.flops)
        return result

    @torch.no_grad()
    def _step(self, frame: FrameLike, new_object_masks: Optional[FrameLike], gt: Optional[FrameLike]) -> FrameResult:
        image, new = self._prepare(frame, new_object_masks)
        a, c, layers = self.adapter, self.config, self.layers
        x = a.preprocess(image)
        size = tuple(x.shape[-2:])
        gt_small = None if gt is None else resize(
            _as_labels(gt, self._size, "gt", self.device).float()[None, None], size, "nearest")[0, 0]
        feats = a.shallow(x)
        match = a.match_feature(feats) if self._gated else None

        # 1. per-object gate decisions on the shallow features only
        mode: Dict[int, str] = {}
        p_reuse: Dict[int, float] = {}
        matched: Dict[int, Tensor] = {}
        for oid, obj in self.objects.items():
            p_reuse[oid] = math.nan
            mode[oid] = "compute"
            if not self._gate_fires:
                continue
            d, p = layers.reuse_probability(match, obj.score, obj.template, obj.anchor_match, obj.anchor_mask)
            if d is not None:
                matched[oid] = d
            p_reuse[oid] = float(p)
            if c.variant == "oracle":
                p_reuse[oid] = float(batch_iou((gt_small == oid)[None].float(), obj.anchor_gt[None]))
                mode[oid] = "decode" if p_reuse[oid] >= c.tau else "compute"
            elif p_reuse[oid] > c.tau:
                mode[oid] = "copy" if copies_previous_mask(c, p_reuse[oid]) else "decode"

        # 2. deep features at most once, only if some object needs them
        deep = bool(new) or any(m == "compute" for m in mode.values())
        if deep:
            feats = a.deep(feats)
            self.deep_frames += 1

        # 3. per-object masks
        probs: Dict[int, Tensor] = {}
        for oid, obj in self.objects.items():
            obj.frames += 1
            if mode[oid] == "compute":
                score, refined = compute_path(a, obj.state, feats)
                logits = decode_shallow(a, obj.state, feats, score, refined)
                obj.score, obj.refined, obj.anchor_match = score, refined, match
                if gt_small is not None:
                    obj.anchor_gt = (gt_small == oid).float()
            else:
                obj.reused += 1
                if mode[oid] == "copy":
                    probs[oid] = obj.last_prob
                    continue
                if c.reuse_path == "hold":
                    score, refined = obj.score, obj.refined
                else:
                    d = matched[oid] if oid in matched else layers.template_match(match, obj.score, obj.template)
                    _, score, refined = translate_path(layers, d, obj.score, obj.refined)
                logits = decode_shallow(a, obj.state, feats, score, refined, c.reuse_precision)
            probs[oid] = torch.sigmoid(logits)
        for oid, mask in new.items():
            mask = resize(mask, size, "nearest")
            obj = self.objects[oid] = _Object(state=a.start_object(feats, mask))
            if self._gated:
                obj.score, obj.refined, obj.template = start_caches(a, layers, obj.state, feats, match, mask)
                obj.anchor_gt, obj.anchor_match, obj.anchor_mask = mask[0, 0], match, mask
            probs[oid] = mask

        # 4. merge; online learning on computed frames only
        merged, labels, slots = self._finish(probs, new)
        for oid, obj in self.objects.items():
            obj.last_prob = probs[oid]
            if oid in mode:  # not on its start frame
                if mode[oid] == "compute":
                    obj.anchor_mask = slots[oid]
                    a.learn(obj.state, feats, slots[oid])
                a.advance(obj.state, feats, slots[oid], self._computed if mode[oid] == "compute" else self._reused)
        merged, labels = self._output(merged, labels)
        reused = {oid: mode.get(oid, "compute") != "compute" for oid in probs}
        result = FrameResult(self.index, labels, merged, reused, {o: p_reuse.get(o, math.nan) for o in probs}, deep)
        self.index += 1
        return result

    def stats(self) -> Dict[str, Any]:
        """Reuse counters: per-object rate, the video rate (mean over objects, as the paper reports it),
        the frame-weighted rate, and how many frames ran the deep features. Start frames are not counted."""
        per_object = {oid: (o.reused / o.frames if o.frames else 0.0) for oid, o in self.objects.items()}
        tracked = sum(o.frames for o in self.objects.values())
        return {
            "frames": self.index,
            "per_object": per_object,
            "reuse_rate": float(np.mean(list(per_object.values()))) if per_object else 0.0,
            "reuse_rate_weighted": sum(o.reused for o in self.objects.values()) / tracked if tracked else 0.0,
            "deep_frames": self.deep_frames,
            "flops_per_frame": float(np.mean(self.flops)) if self.flops else None,
        }
