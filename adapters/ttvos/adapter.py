"""TTVOS's taps for the reuse gate: ``ReuseGate(TTVOS(...), "ttvos")`` is G-TTVOS.

TTVOS has no score map; it decodes from a per-object memory (template, 3-frame mask history, stride-16 memory),
so the adapter sets ``stateful_decoder`` and keeps that memory in the object's state. Mapping (research notes
§3, a proposal: no G-TTVOS code exists):

* feature tap: ``shallow`` = backbone up to ``s8`` on the frame padded to a multiple of 16; ``deep`` adds
  ``s16`` (the stride-16 stage: ResNet-50 ``layer3``, ResNet-18 ``layer3`` + ``layer4``, MobileNetV2
  ``features.7..17``); the match feature is ``s8``, read by the core's own template generator and matcher (the
  notes suggest TTVOS's ``LT_sim`` instead, but it depends on the object's memory while the core's match tap is
  one map per frame; TTVOS's own template attention still runs on every frame inside ``refine_shallow``);
* score ``S``: the object's latest estimated mask (fg channel of the history, pooled to stride 16: what the
  short-term branch reads), a probability in [0, 1]; on a computed frame it is the estimate before that frame;
* refined feature ``R``: ``u16``, the short-term branch output at stride 16 (``refine_deep``: ``conv_s16`` +
  ``blend_s16``); ``refine_shallow`` runs the template query at stride 8 and the decoder from ``R`` down
  (``deconv1_1`` -> s8 stage -> s4 stage -> pixel-shuffle head) and returns ``fg - bg`` logits, cropped;
* ``advance`` (every frame): the history takes the frame's merged estimate; on computed frames only, the
  template is blended with a fresh one at the decoder's rate and the stride-16 memory takes ``s16``. So a reused
  frame runs neither the stride-16 stage, nor the short-term branch, nor the template update.

The open choices of the notes' §3, as options (defaults are the notes' proposal; docs/ttvos.md has what was measured):

* ``history_on_reuse``: ``"push"`` (default) feeds reused frames' estimates into the history as TTVOS feeds
  every frame's; ``"hold"`` keeps the history of the last computed frame;
* ``template_on_reuse``: ``False`` (default) skips the template update on reused frames, as G-FRTM skips its
  online update; ``True`` updates it there too (it needs only ``s8``).

Merge: upstream's soft aggregation (:func:`~reusegate.adapters.ttvos.video.aggregate`) with bg = 1 - fg; the
merged slots are the soft assignments that update each object's memory.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from reusegate.core.host import Features, HostAdapter, TapSpec, label_map

from .model import TTVOS, TTVOSState, pad16, padding16, pool_mask, two_channel, unpad
from .video import aggregate

__all__ = ["TTVOSAdapter", "HISTORY_ON_REUSE"]

HISTORY_ON_REUSE = ("push", "hold")


class TTVOSAdapter(HostAdapter):
    """Adapter of :class:`~reusegate.adapters.ttvos.model.TTVOS`.

    Args:
        model: the TTVOS host.
        history_on_reuse, template_on_reuse: see the module doc.
        input_height: resize every frame to this height (aspect kept) before the network; the core resizes the
            probabilities back. ``None``: the frame's own size.
    """

    stateful_decoder = True

    def __init__(self, model: TTVOS, history_on_reuse: str = "push", template_on_reuse: bool = False,
                 input_height: Optional[int] = None) -> None:
        super().__init__(model)
        if not isinstance(model, TTVOS):
            raise ValueError(f"TTVOSAdapter wraps a TTVOS model, got {type(model).__name__}")
        if history_on_reuse not in HISTORY_ON_REUSE:
            raise ValueError(f"history_on_reuse must be one of {HISTORY_ON_REUSE}, got {history_on_reuse!r}")
        if input_height is not None and (not isinstance(input_height, int) or input_height < 32):
            raise ValueError(f"input_height must be an int >= 32 (pixels), got {input_height!r}")
        self.history_on_reuse = history_on_reuse
        self.template_on_reuse = bool(template_on_reuse)
        self.input_height = input_height
        self.taps = TapSpec(match_channels=model.channels["s8"], match_stride=8, score_stride=16,
                            refined_channels=model.refine.inter, refined_stride=16)

    # ------------------------------------------------------------------ feature tap
    def preprocess(self, image: Tensor) -> Tensor:
        """[0, 1] RGB -> optional resize -> ImageNet normalisation (padding happens in :meth:`shallow`)."""
        if self.input_height is not None and self.input_height != image.shape[-2]:
            scale = self.input_height / image.shape[-2]
            size = [self.input_height, max(16, round(image.shape[-1] * scale))]
            image = F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=scale < 1)
        return self.model.normalize(image)

    def shallow(self, image: Tensor) -> Features:
        """``s4``, ``s8`` of the reflect-padded input, and the unpadded input (``'image'``: its size)."""
        return {**self.model.shallow(pad16(image)[0]), "image": image}

    def deep(self, feats: Features) -> Features:
        return self.model.deep(feats)

    def match_feature(self, feats: Features) -> Tensor:
        return feats["s8"]

    # ------------------------------------------------------------------ score / mask provider
    def start_object(self, feats: Features, mask: Tensor) -> TTVOSState:
        return self.model.start(feats, two_channel(pad16(mask)[0]))

    def score(self, state: TTVOSState, feats: Features) -> Tensor:
        return pool_mask(state.history[:, 1:2], 1)

    def advance(self, state: TTVOSState, feats: Features, prob: Tensor, computed: Tensor) -> None:
        computed = computed.to(prob.device)
        model, keep = self.model, computed.view(-1, 1, 1, 1)
        history = state.history
        model.push_history(state, two_channel(pad16(prob)[0]))
        if self.history_on_reuse == "hold" and not bool(computed.all()):
            state.history = torch.where(keep, state.history, history)
        update = torch.ones_like(computed) if self.template_on_reuse else computed
        if bool(update.any()) and state.update_w is not None:  # None: never decoded yet (copy variant)
            fresh = model.fresh_template(state, feats["s8"])
            blended = model.blend_template(state.template, fresh, state.update_w)
            state.template = blended if bool(update.all()) else torch.where(update.view(-1, 1, 1), blended,
                                                                            state.template)
        if bool(computed.all()):
            state.memory16 = feats["s16"]
        elif bool(computed.any()):
            state.memory16 = torch.where(keep, feats["s16"], state.memory16)

    # ------------------------------------------------------------------ refined-feature tap
    def refine_deep(self, feats: Features, score: Tensor, state: TTVOSState) -> Tensor:
        return self.model.short_term(state, feats["s16"])[0]

    def refine_shallow(self, feats: Features, score: Tensor, refined: Tensor, state: TTVOSState) -> Tensor:
        out = self.model.decode(state, feats, refined)
        state.update_w = out.update_w
        logits = out.logits[:, 1:] - out.logits[:, :1]  # softmax([bg, fg])[1] == sigmoid(fg - bg)
        return unpad(logits, padding16(*feats["image"].shape[-2:]))

    # ------------------------------------------------------------------ multi-object
    def merge(self, probs: Tensor) -> tuple[Tensor, Tensor]:
        merged = aggregate(probs)
        return merged, label_map(merged)
