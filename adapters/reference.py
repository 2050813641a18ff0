"""A small reference host: a plain encoder-decoder VOS network with a prototype score provider.

It exercises every tap of :class:`reusegate.HostAdapter` without FRTM's cost or weights, so the core can be
tested and benchmarked on its own, and it shows in one file what adapting a host takes. Structure (strides):

* encoder: stem and stage s4 / s8 (*shallow*), stages s16 / s32 (*deep*), or any registered backbone (its
  uniform taps split the same way);
* score provider: the previous-mask kind (as TTVOS, and as the paper suggests for general hosts): the object's
  mask on the last computed frame, pooled to s16; ``advance`` replaces it with each computed frame's merged mask;
* decoder: s32 + s16 + score -> ``R`` at s16 (*deep*), then ``R`` + s8 + s4 + score -> logits (*shallow*).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reusegate.core.host import Features, HostAdapter, PreviousMask, TapSpec, resize_like
from reusegate.plugins.hookspecs import hookimpl
from reusegate.registry import build


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.ReLU())


class ReferenceHost(nn.Module):
    """The reference network. ``width`` scales every stage; the deep stages hold most of the encoder's cost.

    Args:
        width: channels of the built-in encoder's s4 stage (s8: 2x, s16: 4x, s32: 8x).
        backbone: instead of the built-in encoder, a backbone registered in ``reusegate.registry.MODELS`` by
            name or config dict (``dict(type='mobilenet_v2', weights='imagenet')``), or a module with the uniform
            taps; the decoder is sized from its ``feature_channels``.
        refined_channels: channels of the refined feature ``R``.
        seed: weights are drawn from this seed so that runs are reproducible without a weight file.
        input_scale: the adapter resizes frames by this factor before the network (the gate upsamples the
            probabilities back), trading accuracy for speed.
    """

    def __init__(self, width: int = 32, refined_channels: int = 32, seed: int = 0, input_scale: float = 1.0,
                 backbone: Union[str, Mapping[str, Any], nn.Module, None] = None) -> None:
        super().__init__()
        if not 0 < input_scale <= 1:
            raise ValueError(f"input_scale must be in (0, 1], got {input_scale}")
        self.input_scale = float(input_scale)
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        self.backbone: Optional[nn.Module] = None
        if backbone is None:
            w = width
            self.channels = {"s4": w, "s8": 2 * w, "s16": 4 * w, "s32": 8 * w}
            self.s4 = nn.Sequential(_conv(3, w, 2), _conv(w, w, 2))
            self.s8 = nn.Sequential(_conv(w, 2 * w, 2), _conv(2 * w, 2 * w))
            self.s16 = nn.Sequential(_conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w), _conv(4 * w, 4 * w))
            self.s32 = nn.Sequential(_conv(4 * w, 8 * w, 2), _conv(8 * w, 8 * w), _conv(8 * w, 8 * w))
        else:
            self.backbone = build("backbone", backbone)
            self.channels = dict(self.backbone.feature_channels)
        c, r = self.channels, refined_channels
        self.dec32 = nn.Conv2d(c["s32"], r, 1)
        self.dec16 = nn.Sequential(_conv(c["s16"] + r + 1, r), _conv(r, r))
        self.dec8 = _conv(c["s8"] + r + 1, r // 2)
        self.dec4 = _conv(c["s4"] + r // 2, r // 2)
        self.head = nn.Conv2d(r // 2, 1, 3, padding=1)
        torch.random.set_rng_state(generator_state)

    def forward_shallow(self, image: Tensor) -> Dict[str, Tensor]:
        """The always-run taps ``s4``, ``s8`` (the uniform backbone taps, whichever encoder runs)."""
        if self.backbone is not None:
            return dict(self.backbone.forward_shallow(image))
        s4 = self.s4(image)
        return {"s4": s4, "s8": self.s8(s4)}

    def forward_deep(self, feats: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """``feats`` plus the skippable taps ``s16``, ``s32``."""
        if self.backbone is not None:
            return {**feats, **self.backbone.forward_deep(feats)}
        s16 = self.s16(feats["s8"])
        return {**feats, "s16": s16, "s32": self.s32(s16)}

    def forward(self, image: Tensor) -> Tensor:
        """Plain image -> s32 feature pass (the host on its own has no single-call VOS forward)."""
        return self.forward_deep(self.forward_shallow(image))["s32"]


class ReferenceAdapter(HostAdapter):
    """Adapter of :class:`ReferenceHost`: match feature = s8, score and ``R`` at s16."""

    def __init__(self, model: ReferenceHost) -> None:
        super().__init__(model)
        c = model.channels
        self.taps = TapSpec(match_channels=c["s8"], match_stride=8, score_stride=16,
                            refined_channels=model.dec32.out_channels, refined_stride=16)

    def preprocess(self, image: Tensor) -> Tensor:
        if self.model.input_scale == 1.0:
            return image
        return F.interpolate(image, scale_factor=self.model.input_scale, mode="bilinear", align_corners=False,
                             antialias=True)

    def shallow(self, image: Tensor) -> Features:
        return {"image": image, **self.model.forward_shallow(image)}

    def deep(self, feats: Features) -> Features:
        return self.model.forward_deep(feats)

    def match_feature(self, feats: Features) -> Tensor:
        return feats["s8"]

    def start_object(self, feats: Features, mask: Tensor) -> PreviousMask:
        return PreviousMask(mask)

    def score(self, state: PreviousMask, feats: Features) -> Tensor:
        # the previous mask pooled to s16: on the 0..1 scale of the start mask S0 the gate compares it with
        return F.adaptive_avg_pool2d(state.prob, feats["s16"].shape[-2:])

    def advance(self, state: PreviousMask, feats: Features, prob: Tensor, computed: Tensor) -> None:
        """Keep the last computed frame's estimate. The merged slot is zero outside the object's label region:
        that region is kept as a binary mask, the kind of mask the decoder was trained on (a soft one would fade
        a little more on every frame); binarising also makes it a fixed input in training (no gradient)."""
        keep = computed.to(prob.device).view(-1, 1, 1, 1)
        state.prob = torch.where(keep, (prob > 0).float(), state.prob)

    def refine_deep(self, feats: Features, score: Tensor) -> Tensor:
        m = self.model
        s16 = feats["s16"]
        deeper = resize_like(m.dec32(feats["s32"]), s16)
        return m.dec16(torch.cat([s16, deeper, resize_like(score, s16)], dim=1))

    def refine_shallow(self, feats: Features, score: Tensor, refined: Tensor) -> Tensor:
        m = self.model
        s8, s4 = feats["s8"], feats["s4"]
        x = m.dec8(torch.cat([s8, resize_like(refined, s8), resize_like(score, s8)], dim=1))
        x = m.dec4(torch.cat([s4, resize_like(x, s4)], dim=1))
        return resize_like(m.head(x), feats["image"])


@hookimpl
def register_adapters(register) -> None:
    """The reference host's adapter, under the name ``reference``."""
    register("reference", ReferenceAdapter)


@hookimpl
def register_hosts(register) -> None:
    """The reference host network, under the name ``reference``."""
    register("reference", ReferenceHost)
