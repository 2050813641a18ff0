"""The host interface: what a VOS network must expose so that a reuse gate can skip its expensive part.

A host adapter wraps one host model and answers three kinds of question, the *taps*:

* **feature tap** -- :meth:`HostAdapter.shallow` (always run) and :meth:`HostAdapter.deep` (skippable);
* **score / mask provider** -- :meth:`HostAdapter.start_object`, :meth:`HostAdapter.score`,
  :meth:`HostAdapter.learn`;
* **refined-feature tap** -- :meth:`HostAdapter.refine_deep` (skippable) and
  :meth:`HostAdapter.refine_shallow` (always run), plus the multi-object :meth:`HostAdapter.merge`.

As in mmengine's ``Hook``, the base class *is* the interface: every method below is documented here, and an
adapter overrides what its host needs. The core (:class:`reusegate.ReuseGate`) calls these methods and nothing
else, so a new host never touches the core.

Conventions: images are ``[B, 3, H, W]`` float tensors in ``[0, 1]``; masks ``[B, 1, H, W]`` float in
``[0, 1]``; a *score* is a one-channel raw (pre-sigmoid) map ``[B, 1, h, w]`` at ``taps.score_stride``; a
*refined feature* is ``[B, taps.refined_channels, h', w']`` at ``taps.refined_stride``. At inference B = 1
(one object at a time); in training B is the batch of clips, one object per clip.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["TapSpec", "Features", "HostAdapter", "soft_aggregate", "label_map", "resize",
           "resize_like", "PreviousMask", "IMAGENET_MEAN", "IMAGENET_STD", "input_statistics"]

Features = Dict[str, Tensor]
"""Named feature maps of one frame (e.g. ``{'s4': ..., 's8': ..., 's16': ..., 's32': ...}``)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def input_statistics(backbone: nn.Module) -> tuple[Tensor, Tensor]:
    """``(mean, std)``, ``[1, 3, 1, 1]`` each, of the [0, 1] RGB input ``backbone``'s weights were trained with: its
    own ``input_mean`` / ``input_std`` where it declares them (EfficientNet-Lite: 127/255, 128/255; see
    :mod:`reusegate.plugins.hookspecs`), else ImageNet's. Every host normalises through this, so a backbone
    plugged into any host gets the input it expects."""
    mean = torch.tensor(getattr(backbone, "input_mean", IMAGENET_MEAN), dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(getattr(backbone, "input_std", IMAGENET_STD), dtype=torch.float32).view(1, 3, 1, 1)
    return mean, std


@dataclass(frozen=True)
class TapSpec:
    """Channels and strides of the three taps; the gate modules are built from it.

    Args:
        match_channels: channels of the feature the template matcher reads (always computed).
        match_stride: stride of that feature (FRTM: 8).
        score_stride: stride of the one-channel coarse score ``S`` (FRTM: 16).
        refined_channels: channels of the cached refined feature ``R`` (FRTM: 64).
        refined_stride: stride of ``R`` (FRTM: 16).
    """

    match_channels: int
    match_stride: int = 8
    score_stride: int = 16
    refined_channels: int = 64
    refined_stride: int = 16

    def __post_init__(self) -> None:
        for name in ("match_channels", "match_stride", "score_stride", "refined_channels", "refined_stride"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"TapSpec.{name} must be a positive int, got {value!r}")


class HostAdapter:
    """Base class of host adapters. Subclass it, set :attr:`taps`, and implement the taps.

    Args:
        model: the host network. The adapter keeps a reference; the gate modules never see it directly.
    """

    taps: TapSpec
    """Channels and strides of the taps (class attribute or set in ``__init__``)."""

    stateful_decoder: bool = False
    """Set ``True`` when the decoder reads the object's state (a host that decodes from a per-object memory,
    e.g. TTVOS's template and mask history): the core then calls ``refine_deep(..., state=state)`` and
    ``refine_shallow(..., state=state)``. Default: the decoder sees only features, score and ``R`` (FRTM)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def reuse_precisions(self) -> Tuple[str, ...]:
        """The precisions a reused object can be decoded in here (``GateConfig.reuse_precision``); a host that offers
        more than ``'float32'`` implements :meth:`refine_reused`. Default: ``('float32',)``."""
        return ("float32",)

    # ------------------------------------------------------------------ feature tap
    def preprocess(self, image: Tensor) -> Tensor:
        """Turn a ``[B, 3, H, W]`` float image in [0, 1] into the host's input (normalise, resize).

        The core resizes output probabilities back to the frame size when the host works at another
        resolution, so a host may downscale here to run faster. Default: identity.
        """
        return image

    def shallow(self, image: Tensor) -> Features:
        """Run the cheap, never-skipped part of the backbone (e.g. stem up to stride 8) on every frame."""
        raise NotImplementedError(f"{type(self).__name__} must implement shallow(image)")

    def deep(self, feats: Features) -> Features:
        """Run the skippable backbone stages on top of ``feats`` and return the enlarged feature dict.

        The core calls it at most once a frame, and only when some object computes on that frame.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement deep(feats)")

    def match_feature(self, feats: Features) -> Tensor:
        """Return the ``[B, taps.match_channels, h, w]`` map the template matcher compares (from shallow feats)."""
        raise NotImplementedError(f"{type(self).__name__} must implement match_feature(feats)")

    # ------------------------------------------------------------------ score / mask provider
    def start_object(self, feats: Features, mask: Tensor) -> Any:
        """Start tracking an object on its first frame and return its per-object state.

        ``feats`` hold shallow and deep features of that frame; ``mask`` is ``[B, 1, H, W]`` at the host's
        input resolution. FRTM fits its target model here; a previous-mask host just stores the mask.
        """
        return None

    def score(self, state: Any, feats: Features) -> Tensor:
        """Return the coarse score ``S`` (``[B, 1, h, w]`` at ``taps.score_stride``) of the object on this frame.

        At run time only called on computed frames: on reused frames the core estimates ``S`` as
        ``S(t-n) + delta``. In training both paths run, so it is called on every frame; :meth:`advance` then
        says which of them a session would have computed.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement score(state, feats)")

    def learn(self, state: Any, feats: Features, prob: Tensor) -> None:
        """Update the object's online model from this frame's merged probability ``prob`` (``[1, 1, H, W]``).

        Run time only: the core calls it on computed frames (never on reused frames, whose deep features do not
        exist). Training does not call it -- a training batch holds clips whose gates decide differently, and
        ``learn`` cannot tell them apart -- so an update that training must see too belongs in :meth:`advance`.
        Default: no online learning.
        """

    def advance(self, state: Any, feats: Features, prob: Tensor, computed: Tensor) -> None:
        """Advance the object's state after the merge, on every frame after its start, computed or reused.

        This is where a host's score follows its own output, so that training feeds the host the score it gets
        at run time: a previous-mask host keeps the estimate of the last *computed* frame, FRTM's target model
        learns from computed frames. Sessions call it after :meth:`learn`; ``ReuseGate.loss`` and the host-only
        pre-training loss call it on every frame of a clip, with the same merged probability a session would
        pass. ``prob`` is the object's ``[B, 1, H, W]`` merged probability (``merge`` of its own sigmoid, as for
        a video of one object); it carries its gradient in training, and an adapter that wants the estimate as
        a fixed input detaches it (its docstring says which). ``computed`` is ``[B]`` bool, ``False`` where the
        frame was reused -- there ``feats`` may lack the deep taps and must not be read from them. Default:
        nothing.
        """

    # ------------------------------------------------------------------ refined-feature tap
    def refine_deep(self, feats: Features, score: Tensor) -> Tensor:
        """Run the decoder from the deepest features down to the refined tap and return ``R``."""
        raise NotImplementedError(f"{type(self).__name__} must implement refine_deep(feats, score)")

    def refine_shallow(self, feats: Features, score: Tensor, refined: Tensor) -> Tensor:
        """Finish the decoder from ``R`` with the shallow features; return logits ``[B, 1, H, W]`` at input size.

        On reused frames ``score`` is ``S(t-n) + delta`` and ``refined`` is the refine-translator's estimate.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement refine_shallow(feats, score, refined)")

    def refine_reused(self, feats: Features, score: Tensor, refined: Tensor, precision: str) -> Tensor:
        """:meth:`refine_shallow` for a reused object, in ``precision`` (one of :meth:`reuse_precisions` other than
        ``'float32'``, which the core sends to :meth:`refine_shallow`). A reused object's deep half is cached, so
        its never-skipped half is the one place left to make a reused frame cheaper. Default: no other precision."""
        raise NotImplementedError(f"{type(self).__name__} decodes reused objects in float32 only, not {precision!r}")

    # ------------------------------------------------------------------ multi-object
    def merge(self, probs: Tensor) -> tuple[Tensor, Tensor]:
        """Merge per-object probabilities ``[K, H, W]`` into ``([K + 1, H, W] probs, [H, W] int64 labels)``.

        Slot 0 is the background. Default: :func:`soft_aggregate` (FRTM's soft aggregation on odds).
        """
        return soft_aggregate(probs)


@dataclass
class PreviousMask:
    """Per-object state of a host whose score is its last output: the merged probability ``[B, 1, H, W]`` of the
    object's last computed frame (the reference host, the module-tap host without a score module)."""

    prob: Tensor


def resize(x: Tensor, size: tuple[int, int] | torch.Size, mode: str = "bilinear") -> Tensor:
    """``F.interpolate`` of ``[N, C, H, W]`` to ``size`` with ``align_corners=False`` for the smooth modes, and no
    work when ``x`` already has that size: the one resize the core and the adapters share."""
    size = tuple(size)
    if tuple(x.shape[-2:]) == size:
        return x
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def resize_like(x: Tensor, like: Tensor) -> Tensor:
    """:func:`resize` (bilinear) of ``x`` to the spatial size of ``like``: a decoder's upsampling step."""
    return resize(x, like.shape[-2:])


def label_map(merged: Tensor) -> Tensor:
    """The ``[H, W]`` arg-max over the ``[K + 1, H, W]`` slots, first index on ties (as ``argmax``).

    One object (two slots), the case of every DAVIS-2016 video, is one comparison: about a tenth of
    ``max(dim=0).indices`` at 480p on a CPU, where the latter was half of a reused frame's output step; more
    slots take ``max(dim=0).indices`` (itself ~10x faster than ``argmax`` over dim 0 on CPU).
    """
    if merged.shape[0] == 2:
        return (merged[1] > merged[0]).long()
    return merged.max(dim=0).indices


def soft_aggregate(probs: Tensor, eps: float = 1e-7) -> tuple[Tensor, Tensor]:
    """Soft aggregation on odds (FRTM): background = min over objects of (1 - p), softmax of p / (1 - p).

    Returns the merged ``[K + 1, H, W]`` probabilities, each slot zeroed outside its arg-max region, and the
    ``[H, W]`` label map (0 = background).
    """
    if probs.shape[0] == 1:
        # One object: the softmax of two odds is the sigmoid of their difference, and the zeroing two masked fills
        # (0.3 against 0.5 ms a frame on a CPU, where this runs on every frame; training merges through it too).
        q = probs[0].clamp(eps, 1 - eps)
        background = 1 - q
        d = q / (1 - q) - background / (1 - background)
        soft0, soft1 = torch.sigmoid(-d), torch.sigmoid(d)
        inside = soft1 > soft0  # label_map's rule for two slots
        return torch.stack([soft0.masked_fill(inside, 0.0), soft1.masked_fill(~inside, 0.0)]), inside.long()
    p = probs.clamp(eps, 1 - eps)
    background = (1 - p).amin(dim=0, keepdim=True)
    slots = torch.cat([background, p], dim=0)
    soft = torch.softmax(slots / (1 - slots), dim=0)
    labels = label_map(soft)
    return soft * (labels == torch.arange(soft.shape[0], device=soft.device).view(-1, 1, 1)), labels
