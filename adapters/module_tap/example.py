"""A small encoder-decoder VOS network, neither FRTM nor TTVOS, that gains a reuse gate from config alone.

It is a mask-propagation host: the decoder is guided by the object's previous mask (its "score"), the
encoder is a plain strided CNN. Nothing here knows about reusegate; :class:`ModuleTapAdapter` reads its
taps from the submodule names::

    stem (/2) -> enc1 (/4) -> enc2 (/8)      shallow, always run
    enc3 (/16) -> enc4 (/32)                 deep, skipped on reused frames
    dec_deep(score, enc4, enc3) -> R (/16)   deep decoder, skipped on reused frames
    dec_shallow(score, R, enc2, enc1)        shallow decoder, logits at /4

With ``backbone=`` (a registered name or config) the encoder is that backbone instead, and the adapter reads
its uniform taps (:data:`BACKBONE_TAPS`).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Union

import torch
from torch import Tensor, nn

from reusegate.core.host import resize, resize_like
from reusegate.registry import build

__all__ = ["ExampleVOSNet", "TAPS", "BACKBONE_TAPS"]

TAPS = dict(
    shallow=["stem", "enc1", "enc2"],
    deep=["enc3", "enc4"],
    score="previous_mask",
    deep_decoder=dict(module="dec_deep", inputs=["enc4", "enc3"]),
    shallow_decoder=dict(module="dec_shallow", inputs=["enc2", "enc1"]),
)
"""The adapter settings for this host, as a config would write them (``adapter=dict(type='module_tap', **TAPS)``)."""

BACKBONE_TAPS = dict(
    backbone="backbone",
    score="previous_mask",
    deep_decoder=dict(module="dec_deep", inputs=["s32", "s16"]),
    shallow_decoder=dict(module="dec_shallow", inputs=["s8", "s4"]),
)
"""The adapter settings for this host built with ``backbone=...``."""


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DeepDecoder(nn.Module):
    """Fuses the /32 and /16 features with the score into the refined feature at /16."""

    def __init__(self, c32: int, c16: int, out: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(c32, out, 1)
        self.fuse = nn.Sequential(_block(c16 + out + 1, out, 1), _block(out, out, 1))

    def forward(self, score: Tensor, f32: Tensor, f16: Tensor) -> Tensor:
        return self.fuse(torch.cat([f16, resize_like(self.reduce(f32), f16), resize_like(score, f16)], dim=1))


class ShallowDecoder(nn.Module):
    """Upsamples the refined feature through the /8 and /4 features to mask logits at /4."""

    def __init__(self, refined: int, c8: int, c4: int) -> None:
        super().__init__()
        mid = max(refined // 2, 8)
        self.up8 = _block(refined + c8 + 1, mid, 1)
        self.up4 = _block(mid + c4, mid, 1)
        self.head = nn.Conv2d(mid, 1, 3, padding=1)

    def forward(self, score: Tensor, refined: Tensor, f8: Tensor, f4: Tensor) -> Tensor:
        x = self.up8(torch.cat([f8, resize_like(refined, f8), resize_like(score, f8)], dim=1))
        x = self.up4(torch.cat([f4, resize_like(x, f4)], dim=1))
        return self.head(x)


class ExampleVOSNet(nn.Module):
    """Encoder-decoder VOS host guided by the previous mask (registered in ``MODELS`` as ``example_vos``).

    Args:
        width: channels of the built-in encoder's /2 stem; stages double it every other stride (capped at 8x).
        refined_channels: channels of the refined feature at /16.
        backbone: instead of the built-in encoder, a backbone registered in ``reusegate.registry.MODELS`` (name or
            config dict) or a module with the uniform taps; gate it with ``adapter=dict(type='module_tap',
            **BACKBONE_TAPS)``.
    """

    def __init__(self, width: int = 16, refined_channels: int = 32,
                 backbone: Union[str, Mapping[str, Any], nn.Module, None] = None) -> None:
        super().__init__()
        w = width
        self.backbone: Optional[nn.Module] = None
        if backbone is None:
            self.stem = _block(3, w, 2)
            self.enc1 = nn.Sequential(_block(w, w, 2), _block(w, w, 1))
            self.enc2 = nn.Sequential(_block(w, 2 * w, 2), _block(2 * w, 2 * w, 1))
            self.enc3 = nn.Sequential(_block(2 * w, 4 * w, 2), _block(4 * w, 4 * w, 1))
            self.enc4 = nn.Sequential(_block(4 * w, 8 * w, 2), _block(8 * w, 8 * w, 1))
            c = {"s4": w, "s8": 2 * w, "s16": 4 * w, "s32": 8 * w}
        else:
            self.backbone = build("backbone", backbone)
            c = self.backbone.feature_channels
        self.dec_deep = DeepDecoder(c["s32"], c["s16"], refined_channels)
        self.dec_shallow = ShallowDecoder(refined_channels, c["s8"], c["s4"])

    def forward(self, image: Tensor, prev_mask: Tensor) -> Tensor:
        """The host on its own: mask logits (at /4) of ``image`` given the object's previous mask ``[B, 1, H, W]``."""
        if self.backbone is not None:
            feats = self.backbone.forward_deep(self.backbone.forward_shallow(image))
            f4, f8, f16, f32 = (feats[k] for k in ("s4", "s8", "s16", "s32"))
        else:
            f4 = self.enc1(self.stem(image))
            f8 = self.enc2(f4)
            f16 = self.enc3(f8)
            f32 = self.enc4(f16)
        prob = resize(prev_mask, f16.shape[-2:])
        score = torch.logit(prob.clamp(0.01, 0.99))
        return self.dec_shallow(score, self.dec_deep(score, f32, f16), f8, f4)
