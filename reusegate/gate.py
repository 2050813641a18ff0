"""``ReuseGate``: wraps a host network and, per object and per frame, skips its expensive part when possible.

Inference runs through a per-video session (Cutie-style ``step()``)::

    gate = ReuseGate(model, "frtm", tau=0.7)
    session = gate.session()
    result = session.step(frame0, new_object_masks=labels0)   # objects start with their masks
    for frame in frames[1:]:
        result = session.step(frame)                          # result.labels, .reused, .p_reuse
    print(session.stats())

Training: ``gate.loss(clip, masks, epoch)`` returns the paper's named losses (eq. 3-6).

Rules kept here, for every host: one gate per object; the host's deep features are computed at most once a
frame and only when some object computes; online learning only on computed frames; ``delta`` and ``R`` are
always relative to the last computed frame; ``tau = 1`` runs exactly the host (bit-identical masks to
:class:`HostRunner`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from . import losses
from .host import HostAdapter
from .modules import GateModules
from .registry import ADAPTERS, lookup

__all__ = ["ReuseGate", "Session", "HostRunner", "FrameResult", "VARIANTS", "Clip", "clip_frames", "decode_deep",
           "decode_shallow"]

VARIANTS = ("translate", "copy", "fusion", "oracle")
"""Paper §4.2: ``translate`` is the method; ``copy`` reuses the previous mask; ``fusion`` copies above a
second threshold ``tau2`` and translates between ``tau`` and ``tau2``; ``oracle`` gates on the ground-truth
IoU with the last computed frame (analysis only)."""

FrameLike = Union[Tensor, np.ndarray]
Clip = Union[Tensor, Mapping[str, Tensor]]
"""A training clip: ``[B, T, 3, H, W]`` images in [0, 1], or the host's frozen taps precomputed per frame
(``{name: [B, T, ...]}``, what ``adapter.deep(adapter.shallow(adapter.preprocess(frame)))`` returns)."""


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
    """

    index: int
    labels: Tensor
    probs: Tensor
    reused: Dict[int, bool]
    p_reuse: Dict[int, float]
    deep_computed: bool
    flops: Optional[int] = None


@dataclass
class _Object:
    state: Any
    score: Optional[Tensor] = None  # S(t-n): last computed frame's coarse score
    refined: Optional[Tensor] = None  # R(t-n): last computed frame's refined feature
    template: Optional[Tensor] = None
    anchor_gt: Optional[Tensor] = None  # oracle: GT of the last computed frame
    last_prob: Optional[Tensor] = None  # previous frame's probability (copy variant)
    frames: int = 0  # frames tracked after the start frame
    reused: int = 0


# ---------------------------------------------------------------------------------------------- input checks
def _writable(array: np.ndarray) -> np.ndarray:
    """A contiguous, writable view of ``array``, copied only when needed: arrays from PIL images are read-only,
    and ``torch.from_numpy`` warns about those."""
    return np.require(array, requirements=["C", "W"])


def _as_image(frame: FrameLike) -> Tensor:
    """``[1, 3, H, W]`` float in [0, 1] from a ``[3, H, W]`` tensor or an ``H x W x 3`` uint8 array."""
    if isinstance(frame, np.ndarray):
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(
                f"a numpy frame must be H x W x 3 (RGB), got shape {frame.shape}; convert grey or RGBA images "
                "to RGB first"
            )
        frame = torch.from_numpy(_writable(frame)).permute(2, 0, 1)
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
        return frame.unsqueeze(0).float().div_(255.0)
    if not frame.is_floating_point():
        raise ValueError(f"frame dtype must be uint8 (0..255) or floating point (0..1), got {frame.dtype}")
    if not torch.isfinite(frame).all():  # NaN would spread through every later frame's cached state
        raise ValueError("frame holds NaN or infinite values; pass pixel values in 0..1 (float) or 0..255 (uint8)")
    return frame.unsqueeze(0).float()


def _as_labels(masks: FrameLike, size: tuple[int, int], what: str) -> Tensor:
    """``[H, W]`` int64 label map, checked for dtype and size."""
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
    return masks.long()


def _resize(x: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def clip_frames(adapter: HostAdapter, clip: Clip, masks: Tensor) -> tuple[List[Dict[str, Tensor]], Tensor]:
    """Every frame's features and the ``[B, T, 1, h, w]`` masks at the host's input size, from a training clip.

    A host whose backbone is frozen (FRTM) need not recompute it every epoch: a clip may carry the taps
    precomputed (see :data:`Clip`); its masks must then already be at the host's input size. Images run
    through the adapter's feature tap.
    """
    if masks.ndim == 4:
        masks = masks.unsqueeze(2)
    masks = masks.float()
    if isinstance(clip, Mapping):
        if not clip:
            raise ValueError("a clip of precomputed features needs at least one tap")
        steps = {tuple(v.shape[:2]) for v in clip.values()}
        if steps != {tuple(masks.shape[:2])} or masks.shape[2] != 1:
            raise ValueError(f"precomputed taps must all be [B, T, ...] matching the masks {tuple(masks.shape)}, "
                             f"got {({k: tuple(v.shape) for k, v in clip.items()})}")
        frames = [{k: v[:, t].float() for k, v in clip.items()} for t in range(masks.shape[1])]
        return frames, masks
    if clip.ndim != 5 or clip.shape[2] != 3:
        raise ValueError(f"clip must be [B, T, 3, H, W], got {tuple(clip.shape)}")
    if masks.shape[:2] != clip.shape[:2] or masks.shape[-2:] != clip.shape[-2:] or masks.shape[2] != 1:
        raise ValueError(
            f"masks must be [B, T, 1, H, W] matching the clip {tuple(clip.shape)}, got {tuple(masks.shape)}"
        )
    inputs = [adapter.preprocess(clip[:, t]) for t in range(clip.shape[1])]
    size = tuple(inputs[0].shape[-2:])
    small = torch.stack([_resize(masks[:, t], size, "bilinear") for t in range(clip.shape[1])], dim=1)
    return [adapter.deep(adapter.shallow(x)) for x in inputs], small


def resolve_adapter(model: nn.Module, adapter: Union[str, Mapping[str, Any], type, HostAdapter]) -> HostAdapter:
    """An adapter instance from an instance, a ``HostAdapter`` subclass, a name registered in ``ADAPTERS``, or
    ``dict(type=name_or_class, **settings)`` (the form configs and exported ``.json`` files use)."""
    settings: Dict[str, Any] = {}
    if isinstance(adapter, Mapping):
        if "type" not in adapter:
            raise ValueError(f"an adapter given as a dict needs a 'type' (a registered name), got {dict(adapter)!r}")
        settings = dict(adapter)
        adapter = settings.pop("type")
    if isinstance(adapter, str):
        adapter = lookup(ADAPTERS, "host adapter", adapter)
    if isinstance(adapter, type) and issubclass(adapter, HostAdapter):
        adapter = adapter(model, **settings)
    if not isinstance(adapter, HostAdapter):
        raise ValueError(
            f"adapter must be a HostAdapter, a HostAdapter subclass, a registered name or dict(type=name, ...), "
            f"got {adapter!r}"
        )
    return adapter


def decode_deep(a: HostAdapter, state: Any, feats: Dict[str, Tensor], score: Tensor) -> Tensor:
    """``a.refine_deep``, with the object's state for hosts whose decoder reads it (sessions and training alike)."""
    return a.refine_deep(feats, score, state=state) if a.stateful_decoder else a.refine_deep(feats, score)


def decode_shallow(a: HostAdapter, state: Any, feats: Dict[str, Tensor], score: Tensor, refined: Tensor) -> Tensor:
    """``a.refine_shallow``, with the object's state for hosts whose decoder reads it."""
    if a.stateful_decoder:
        return a.refine_shallow(feats, score, refined, state=state)
    return a.refine_shallow(feats, score, refined)


_COMPUTED, _REUSED = torch.tensor([True]), torch.tensor([False])


def merged_probability(adapter: HostAdapter, logits: Tensor) -> Tensor:
    """``[B, 1, H, W]``: each training clip's object probability after ``adapter.merge``, what a session passes
    to ``learn`` / ``advance`` for a video of that one object (merge reshapes it, e.g. FRTM's odds softmax)."""
    prob = torch.sigmoid(logits)
    return torch.stack([adapter.merge(prob[b])[0][1:2] for b in range(prob.shape[0])])


# ---------------------------------------------------------------------------------------------- sessions
class _VideoSession:
    """Shared per-video bookkeeping: frame counting, input checks, new objects, merge and output size."""

    def __init__(self, adapter: HostAdapter) -> None:
        self.adapter = adapter
        self.objects: Dict[int, _Object] = {}
        self.index = 0
        self._size: Optional[tuple[int, int]] = None

    def _prepare(self, frame: FrameLike, new_object_masks: Optional[FrameLike]) -> tuple[Tensor, Dict[int, Tensor]]:
        image = _as_image(frame)
        size = tuple(image.shape[-2:])
        if self._size is not None and size != self._size:
            raise ValueError(
                f"frame {self.index} has size {size} but the session started at {self._size}; "
                "all frames of a video must have the same size (start a new session for a new video)"
            )
        new: Dict[int, Tensor] = {}
        if new_object_masks is not None:
            labels = _as_labels(new_object_masks, size, "new_object_masks")
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
        """Suppress older objects under new ones, merge, and return (merged, labels, per-object merged slots)."""
        for oid in probs:
            if oid not in new:
                for nid in new:  # probs[nid] is the new mask at the working resolution, like probs[oid]
                    probs[oid] = probs[oid] * (1 - probs[nid])
        ids = sorted(probs)
        merged, labels = self.adapter.merge(torch.cat([probs[i][0] for i in ids], dim=0))
        slots = {oid: merged[k + 1][None, None] for k, oid in enumerate(ids)}
        return merged, labels, slots

    def _output(self, merged: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        assert self._size is not None
        if tuple(merged.shape[-2:]) == self._size:
            return merged, labels
        merged = _resize(merged[None], self._size, "bilinear")[0]
        return merged, merged.max(0).indices  # max().indices: same ties as argmax, ~10x faster on CPU


class HostRunner(_VideoSession):
    """The bare host through its adapter, no gate: the reference that ``tau = 1`` must equal bit for bit."""

    @torch.no_grad()
    def step(self, frame: FrameLike, new_object_masks: Optional[FrameLike] = None) -> FrameResult:
        """Segment one frame with the full host; objects in ``new_object_masks`` start here."""
        image, new = self._prepare(frame, new_object_masks)
        a = self.adapter
        x = a.preprocess(image)
        feats = a.deep(a.shallow(x))
        probs: Dict[int, Tensor] = {}
        for oid, obj in self.objects.items():
            score = a.score(obj.state, feats)
            refined = decode_deep(a, obj.state, feats, score)
            probs[oid] = torch.sigmoid(decode_shallow(a, obj.state, feats, score, refined))
        for oid, mask in new.items():
            mask = _resize(mask, tuple(x.shape[-2:]), "nearest")
            self.objects[oid] = _Object(state=a.start_object(feats, mask))
            probs[oid] = mask
        merged, labels, slots = self._finish(probs, new)
        for oid in self.objects:
            if oid not in new:
                a.learn(self.objects[oid].state, feats, slots[oid])
                a.advance(self.objects[oid].state, feats, slots[oid], _COMPUTED)
        merged, labels = self._output(merged, labels)
        nan = float("nan")
        result = FrameResult(self.index, labels, merged, {o: False for o in probs}, {o: nan for o in probs}, True)
        self.index += 1
        return result


class Session(_VideoSession):
    """One video through a :class:`ReuseGate`. Create it with :meth:`ReuseGate.session`.

    Args:
        gate: the wrapper holding the gate modules and the settings.
        count_flops: count the FLOPs each ``step`` executes (``FlopCounterMode``; slows the step down).
    """

    def __init__(self, gate: "ReuseGate", count_flops: bool = False) -> None:
        super().__init__(gate.adapter)
        self.gate = gate
        self.count_flops = count_flops
        self.deep_frames = 0
        self.flops: List[int] = []

    @property
    def _gated(self) -> bool:
        """Whether any object could ever reuse: at ``tau >= 1`` no gate fires, so none is evaluated."""
        return self.gate.variant == "oracle" or self.gate.tau < 1.0

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
        if self.gate.variant == "oracle" and gt is None:
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
        a, g, modules = self.adapter, self.gate, self.gate.gate_modules
        x = a.preprocess(image)
        size = tuple(x.shape[-2:])
        gt_small = None if gt is None else _resize(
            _as_labels(gt, self._size, "gt").float()[None, None], size, "nearest")[0, 0]
        feats = a.shallow(x)
        match = a.match_feature(feats) if self._gated else None

        # 1. per-object gate decisions on the shallow features only
        mode: Dict[int, str] = {}
        p_reuse: Dict[int, float] = {}
        matched: Dict[int, Tensor] = {}
        for oid, obj in self.objects.items():
            p_reuse[oid] = math.nan
            mode[oid] = "compute"
            if not self._gated:
                continue
            matched[oid], p = modules.match(match, obj.score, obj.template)
            p_reuse[oid] = float(p)
            if g.variant == "oracle":
                p_reuse[oid] = float(losses.mask_iou((gt_small == oid)[None].float(), obj.anchor_gt[None]))
                mode[oid] = "translate" if p_reuse[oid] >= g.tau else "compute"
            elif p_reuse[oid] > g.tau:
                copy = g.variant == "copy" or (g.variant == "fusion" and p_reuse[oid] > g.tau2)
                mode[oid] = "copy" if copy else "translate"

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
                score = a.score(obj.state, feats)
                refined = decode_deep(a, obj.state, feats, score)
                logits = decode_shallow(a, obj.state, feats, score, refined)
                obj.score, obj.refined = score, refined
                if gt_small is not None:
                    obj.anchor_gt = (gt_small == oid).float()
            else:
                obj.reused += 1
                if mode[oid] == "copy":
                    probs[oid] = obj.last_prob
                    continue
                delta = modules.delta(matched[oid], obj.score)
                refined = modules.refine_translator(obj.refined, delta)
                logits = decode_shallow(a, obj.state, feats, obj.score + delta, refined)
            probs[oid] = torch.sigmoid(logits)
        for oid, mask in new.items():
            mask = _resize(mask, size, "nearest")
            obj = self.objects[oid] = _Object(state=a.start_object(feats, mask))
            if self._gated:
                score = a.score(obj.state, feats)
                obj.refined = decode_deep(a, obj.state, feats, score)
                obj.score = _resize(mask, tuple(score.shape[-2:]), "nearest")
                obj.template = modules.template_generator(match, _resize(mask, tuple(match.shape[-2:]), "nearest"))
                obj.anchor_gt = mask[0, 0]
            probs[oid] = mask

        # 4. merge; online learning on computed frames only
        merged, labels, slots = self._finish(probs, new)
        for oid, obj in self.objects.items():
            obj.last_prob = probs[oid]
            if oid in mode:  # not on its start frame
                if mode[oid] == "compute":
                    a.learn(obj.state, feats, slots[oid])
                a.advance(obj.state, feats, slots[oid], _COMPUTED if mode[oid] == "compute" else _REUSED)
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


# ---------------------------------------------------------------------------------------------- the wrapper
class ReuseGate(nn.Module):
    """A host network with a reuse gate: the paper's dynamic network around any adapted host.

    Args:
        model: the host network (an ``nn.Module``; kept as ``self.host``).
        adapter: a :class:`HostAdapter` instance or subclass, a name registered by a plugin, or
            ``dict(type=name, **adapter_settings)``.
        tau: reuse threshold; an object reuses iff ``p_reuse > tau`` (upstream's strict rule). ``tau = 1``
            never reuses and runs exactly the host.
        variant: one of :data:`VARIANTS`.
        tau2: the ``fusion`` variant's copy threshold (``tau2 > tau``).
        m1, m2, ep_t: gate-probability loss margin schedule (eq. 4-5): the target is raised to
            ``m1 * min(1, epoch / ep_t)``; errors below ``m2`` are flat.
        gate_loss: ``'gp'`` (the paper's gate-probability loss) or ``'ngate'`` (AIG-style target-rate
            baseline, ``Loss_Ngate``).
        target_rate: the reuse rate ``'ngate'`` pushes towards.
        train_tau: threshold of the hard gate in training (paper: 0.5).
    """

    def __init__(
        self,
        model: nn.Module,
        adapter: Union[str, Mapping[str, Any], type, HostAdapter],
        tau: float = 0.7,
        variant: str = "translate",
        tau2: float = 0.9,
        m1: float = 1.0,
        m2: float = 0.0,
        ep_t: float = 120,
        gate_loss: str = "gp",
        target_rate: float = 0.5,
        train_tau: float = 0.5,
    ) -> None:
        super().__init__()
        for name, value in (("tau", tau), ("tau2", tau2), ("train_tau", train_tau), ("target_rate", target_rate)):
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if variant == "fusion" and not tau2 > tau:
            raise ValueError(f"the fusion variant needs tau2 > tau, got tau={tau}, tau2={tau2}")
        if gate_loss not in ("gp", "ngate"):
            raise ValueError(f"gate_loss must be 'gp' (paper eq. 5) or 'ngate' (target rate), got {gate_loss!r}")
        if ep_t <= 0:
            raise ValueError(f"ep_t must be > 0, got {ep_t}")
        self.host = model
        self.adapter = resolve_adapter(model, adapter)
        self.gate_modules = GateModules(self.adapter.taps)  # everything the paper adds to the host
        self.tau, self.variant, self.tau2 = float(tau), variant, float(tau2)
        self.m1, self.m2, self.ep_t = float(m1), float(m2), float(ep_t)
        self.gate_loss, self.target_rate, self.train_tau = gate_loss, float(target_rate), float(train_tau)

    def session(self, count_flops: bool = False) -> Session:
        """Start a new video. Switches the wrapper to eval mode (BN running statistics)."""
        self.eval()
        return Session(self, count_flops=count_flops)

    def run(self, frames: Iterable[FrameLike], first_masks: FrameLike, count_flops: bool = False) -> List[FrameResult]:
        """Convenience: segment a whole video whose objects all start on the first frame."""
        session = self.session(count_flops)
        return [session.step(f, first_masks if i == 0 else None) for i, f in enumerate(frames)]

    # ------------------------------------------------------------------------------------------ training
    def forward(self, clip: Clip, masks: Tensor, epoch: float = 0) -> Dict[str, Tensor]:
        """Training forward; see :meth:`loss` (``forward`` so that DDP wrapping sees the call)."""
        return self.loss(clip, masks, epoch)

    def loss(self, clip: Clip, masks: Tensor, epoch: float = 0) -> Dict[str, Tensor]:
        """Named training losses for a batch of clips, one object per clip (paper §3.4).

        Frame 0 starts the object; on every later frame both paths run and are blended by the hard gate
        (``p > train_tau``) with a straight-through gradient, so the gate head learns through the blend as
        well as through the gate-probability loss. Caches advance only where the hard gate computed.

        The host gets the score it would get at run time: ``S(t-n)`` and the template start from the first
        mask as in a session, and after every frame the adapter's ``advance`` sees the clip's merged
        probability and which clips computed, so a previous-mask host's score is the last computed frame's
        estimate and FRTM's target model learns from computed frames (``tests/test_train_matches_inference.py``
        compares both frame by frame). Gradient policy: that estimate keeps its graph; the adapter decides
        whether the next frame's loss reaches back through it (the module-tap host: yes; the reference host
        binarises it, FRTM detaches it: no).

        Args:
            clip: ``[B, T, 3, H, W]`` float images in [0, 1], T >= 2, or precomputed taps (see :data:`Clip`).
            masks: ``[B, T, 1, H, W]`` (or ``[B, T, H, W]``) masks of the object (at the host's input size
                when the clip holds precomputed taps).
            epoch: current epoch, for the margin schedule.

        Returns:
            ``loss_seg`` (BCE), ``loss_delta`` (eq. 3), ``loss_gate`` (eq. 5 or ``Loss_Ngate``), each a mean
            over frames 1..T-1, plus logged values ``reuse_rate`` and ``margin`` (no ``loss`` in their names).
        """
        a, gm = self.adapter, self.gate_modules
        m = losses.margin(self.m1, epoch, self.ep_t)
        frames, masks = clip_frames(a, clip, masks)
        if len(frames) < 2:
            raise ValueError("a training clip needs at least 2 frames (a reference frame and one more)")

        feats0, mask0 = frames[0], masks[:, 0]
        state = a.start_object(feats0, mask0)
        match0 = a.match_feature(feats0)
        template = gm.template_generator(match0, _resize(mask0, tuple(match0.shape[-2:]), "nearest"))
        score0 = a.score(state, feats0)
        prev_score = _resize(mask0, tuple(score0.shape[-2:]), "nearest")  # S(t-n) and template as a session
        prev_refined = decode_deep(a, state, feats0, score0)
        anchor = mask0

        seg, dl, gl, rates, gates = [], [], [], [], []
        for t in range(1, len(frames)):
            feats, gt = frames[t], masks[:, t]
            d, p = gm.match(a.match_feature(feats), prev_score, template)
            hard = (p > self.train_tau).float()
            g = (hard + p - p.detach()).view(-1, 1, 1, 1)  # straight-through: hard forward, soft gradient
            delta = gm.delta(d, prev_score)
            score = a.score(state, feats)
            refined = decode_deep(a, state, feats, score)
            translated = gm.refine_translator(prev_refined, delta)
            mixed_score = g * (prev_score + delta) + (1 - g) * score
            mixed_refined = g * translated + (1 - g) * refined
            logits = decode_shallow(a, state, feats, mixed_score, mixed_refined)

            seg.append(losses.segmentation_loss(logits, gt))
            dl.append(losses.delta_loss(delta, _resize(gt, tuple(prev_score.shape[-2:]), "bilinear"), prev_score))
            if self.gate_loss == "gp":
                gl.append(losses.gate_probability_loss(p, losses.mask_iou(gt, anchor), m, self.m2))
            gates.append(g.flatten())
            rates.append(hard.mean())

            a.advance(state, feats, merged_probability(a, logits), hard == 0)
            computed = (hard == 0).view(-1, 1, 1, 1)  # caches follow the last computed frame (paper)
            prev_score = torch.where(computed, score, prev_score)
            prev_refined = torch.where(computed, refined, prev_refined)
            anchor = torch.where(computed, gt, anchor)

        gate_loss = torch.stack(gl).mean() if gl else losses.target_rate_loss(torch.cat(gates), self.target_rate)
        return {
            "loss_seg": torch.stack(seg).mean(),
            "loss_delta": torch.stack(dl).mean(),
            "loss_gate": gate_loss,
            "reuse_rate": torch.stack(rates).mean().detach(),
            "margin": torch.tensor(m),
        }
