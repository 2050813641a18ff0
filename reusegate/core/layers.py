"""The layers the reuse gate adds to a host, built from the host's :class:`~reusegate.core.host.TapSpec`.

Paper sections: template generator and matcher (§3.2, after TTVOS), gate head (eq. 1), delta generator
(§3.2, eq. 3) and refine-translator (§3.3, Fig. 5a). Sub-module names follow the layer order of the official
G-FRTM code so that its checkpoints map onto these layers by renaming prefixes only.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reusegate.core.host import TapSpec

__all__ = [
    "TemplateGenerator",
    "TemplateMatcher",
    "GateHead",
    "ChangeGate",
    "GATE_INPUTS",
    "DeltaGenerator",
    "ResidualRefinementBlock",
    "RefineTranslator",
    "GateLayers",
    "INITIAL_REUSE_PROBABILITY",
]

INITIAL_REUSE_PROBABILITY = 0.15
"""Gate-head bias init: the gate starts on ~15 % of frames (AIG-style, paper §4)."""

GROUP_WIDTH = 4
"""Channels per group in the grouped 5x5 convolutions (upstream ``group_n``)."""


def _grouped5x5(channels: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 5, padding=2, groups=channels // GROUP_WIDTH)


class TemplateGenerator(nn.Module):
    """Builds an object's template (a ``key x key`` attention matrix) from its first frame.

    Input: match feature concatenated with the object mask at the match stride.
    """

    def __init__(self, in_channels: int, channels: int = 64) -> None:
        super().__init__()
        self.conv_key = nn.Sequential(nn.Conv2d(in_channels, channels, 1), nn.LeakyReLU(0.2), _grouped5x5(channels))
        self.conv_val = nn.Sequential(nn.Conv2d(in_channels, channels, 1), nn.LeakyReLU(0.2), _grouped5x5(channels))

    def forward(self, feature: Tensor, mask: Tensor) -> Tensor:
        x = torch.cat([feature, mask], dim=1)
        key = self.conv_key(x).flatten(2)  # B x C x HW
        val = self.conv_val(x).flatten(2)
        return torch.softmax(val @ key.transpose(1, 2) / math.sqrt(key.shape[-1]), dim=-1)


class TemplateMatcher(nn.Module):
    """Compares the current match feature and the last computed score with the template: gives ``D_t``."""

    def __init__(self, in_channels: int, channels: int = 64) -> None:
        super().__init__()
        self.conv_key = nn.Sequential(nn.Conv2d(in_channels, channels, 1), _grouped5x5(channels), nn.LeakyReLU(0.2))
        self.conv_feat = nn.Sequential(nn.Conv2d(in_channels, channels, 1), _grouped5x5(channels), nn.LeakyReLU(0.2))
        self.blend = nn.Sequential(_grouped5x5(2 * channels), nn.Conv2d(2 * channels, channels, 1), nn.ReLU())

    def forward(self, feature: Tensor, prev_score: Tensor, template: Tensor) -> Tensor:
        x = torch.cat([feature, prev_score], dim=1)
        key = self.conv_key(x)
        similarity = (template @ key.flatten(2)).view_as(key)
        return self.blend(torch.cat([self.conv_feat(x), similarity], dim=1))


class GateHead(nn.Sequential):
    """Paper eq. 1: max-pool, conv, (BN), max-pool, conv -> one reuse logit. No ReLU, as upstream."""

    def __init__(self, in_channels: int = 64, hidden: int = 16) -> None:
        super().__init__(
            nn.AdaptiveMaxPool2d(7),
            nn.Conv2d(in_channels, hidden, 3, stride=2, padding=1),
            nn.BatchNorm2d(hidden),
            nn.AdaptiveMaxPool2d(3),
            nn.Conv2d(hidden, 1, 3, stride=2),
        )
        with torch.no_grad():
            self[4].bias.fill_(math.log(INITIAL_REUSE_PROBABILITY / (1 - INITIAL_REUSE_PROBABILITY)))

    def forward(self, x: Tensor) -> Tensor:
        """Return the reuse logit, shape ``[B]``."""
        return super().forward(x).flatten()


class ChangeGate(nn.Module):
    """Reuse logit from how much the object changed since its last computed frame, against the whole frame.

    Three numbers per object, from the match feature of the current frame and of the last computed frame: the
    mean cosine similarity under the last computed score (the object's region), the same over the whole frame,
    and the log of the region's share of the frame. A logistic unit turns them into ``p_reuse``. With four
    parameters it cannot learn a sequence's look, only change: on video it never saw, its p ranks frames by
    their true IoU to the last computed frame (docs/experiments/change-gate-and-hold.md), where the paper's ``GateHead`` on
    ``D_t`` learnt the training sequences' look. A camera that follows the object changes the scene while the
    object's region stays alike, so the scene's similarity enters with a negative weight; the same shift costs
    a small object more IoU than a large one, hence its size.
    """

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 1)
        with torch.no_grad():  # a prior (a logistic fit to DAVIS-2016 cues) that the training refines
            self.linear.weight.copy_(torch.tensor([[3.2, -1.6, 0.6]]))
            self.linear.bias.fill_(1.4)

    @staticmethod
    def cues(feature: Tensor, anchor: Tensor, region: Tensor) -> Tensor:
        """``[B, 3]``: cosine similarity of ``feature`` and ``anchor`` averaged under ``region`` (weights in
        [0, 1]; an empty region gives 0, so the object computes) and over the whole map, and
        ``log(share of the map under region + 1e-3)``."""
        cos = F.cosine_similarity(feature, anchor, dim=1, eps=1e-6)
        w = region.clamp(0, 1)[:, 0]
        obj = (w * cos).sum((1, 2)) / w.sum((1, 2)).clamp_min(1e-6)
        return torch.stack([obj, cos.mean((1, 2)), torch.log(w.mean((1, 2)) + 1e-3)], dim=1)

    def forward(self, feature: Tensor, anchor: Tensor, region: Tensor) -> Tensor:
        """Return the reuse logit, shape ``[B]``."""
        return self.linear(self.cues(feature, anchor, region)).flatten()


GATE_INPUTS = ("template", "change", "change_mask")
"""What the reuse decision reads: ``'template'`` (the paper: ``GateHead`` on the template matcher's ``D_t``),
``'change'`` (:class:`ChangeGate` under the last computed score ``S``; ``D_t`` then runs only on frames that
reuse) or ``'change_mask'`` (the same gate around the last computed frame's output mask probability, dilated by
one match cell: ``S`` also fires on look-alikes of the object, its mask does not, and the ring around the mask
is where a moving object changes the feature)."""


class DeltaGenerator(nn.Conv2d):
    """One strided 3x3 conv from ``D_t`` (match stride) to ``delta`` (score stride): ``S_hat = S(t-n) + delta``."""

    def __init__(self, in_channels: int = 64, stride: int = 2) -> None:
        super().__init__(in_channels, 1, 3, stride=stride, padding=1)


class ResidualRefinementBlock(nn.Module):
    """RRB: 1x1 conv, then ``relu(h + conv3x3(relu(bn(conv3x3(h)))))`` (FRTM's refinement block)."""

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.conv1x1 = nn.Conv2d(in_channels, channels, 1)
        self.bblock = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1x1(x)
        return F.relu(h + self.bblock(h))


class MultiReceptiveConv(nn.Module):
    """Three parallel 3x3 convs with dilation 1, 2, 3, concatenated and blended by a 5x5 conv."""

    def __init__(self, in_channels: int, mid: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, mid, 3, padding=1, dilation=1)
        self.conv2 = nn.Conv2d(in_channels, mid, 3, padding=2, dilation=2)
        self.conv3 = nn.Conv2d(in_channels, mid, 3, padding=3, dilation=3)
        self.blend = nn.Conv2d(3 * mid, out_channels, 5, padding=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.blend(torch.cat([self.conv1(x), self.conv2(x), self.conv3(x)], dim=1))


class RefineTranslator(nn.Module):
    """Paper Fig. 5a: turns the cached refined feature ``R(t-n)`` and ``delta`` into ``R_hat(t)``."""

    def __init__(self, channels: int = 64, mid: int = 48) -> None:
        super().__init__()
        self.conv_multi = MultiReceptiveConv(channels + 1, mid, channels)
        self.post = ResidualRefinementBlock(channels, channels)

    def forward(self, refined: Tensor, delta: Tensor) -> Tensor:
        if delta.shape[-2:] != refined.shape[-2:]:
            delta = F.interpolate(delta, size=refined.shape[-2:], mode="bilinear", align_corners=False)
        return self.post(self.conv_multi(torch.cat([refined, delta], dim=1)))


class GateLayers(nn.Module):
    """All layers the reuse gate adds, sized from the host's taps (about 0.48 M parameters for FRTM-RN18).

    Args:
        taps: the host's tap spec.
        template_channels: key/value/output width of the template modules (upstream: 64).
        gate_input: one of :data:`GATE_INPUTS`; ``'template'`` builds the paper's ``gate`` (upstream keys),
            ``'change'`` and ``'change_mask'`` a :class:`ChangeGate` named ``change_gate`` instead.
    """

    def __init__(self, taps: TapSpec, template_channels: int = 64, gate_input: str = "template") -> None:
        super().__init__()
        if taps.score_stride % taps.match_stride:
            raise ValueError(
                f"score stride {taps.score_stride} must be a multiple of match stride {taps.match_stride}"
            )
        if gate_input not in GATE_INPUTS:
            raise ValueError(f"gate_input must be one of {GATE_INPUTS}, got {gate_input!r}")
        self.taps = taps
        self.gate_input = gate_input
        in_channels = taps.match_channels + 1
        self.template_generator = TemplateGenerator(in_channels, template_channels)
        self.template_matcher = TemplateMatcher(in_channels, template_channels)
        if gate_input == "template":
            self.gate = GateHead(template_channels)
        else:
            self.change_gate = ChangeGate()
        self.delta_generator = DeltaGenerator(template_channels, taps.score_stride // taps.match_stride)
        self.refine_translator = RefineTranslator(taps.refined_channels)

    @staticmethod
    def _up(prev_score: Tensor, feature: Tensor) -> Tensor:
        return F.interpolate(prev_score, size=feature.shape[-2:], mode="bilinear", align_corners=False)

    def region(self, feature: Tensor, prev_score: Tensor, anchor_mask: Optional[Tensor] = None) -> Tensor:
        """Where the object was on its last computed frame, at the match feature's size: its score ``S(t-n)``,
        or with ``'change_mask'`` its mask probability ``anchor_mask`` (``[B, 1, H, W]`` at any size), area-pooled
        and grown by one cell (a 3x3 max), so the gate also sees the ring a moving object uncovers."""
        if self.gate_input != "change_mask":
            return self._up(prev_score, feature)
        if anchor_mask is None:
            raise ValueError("gate_input='change_mask' needs the object's mask probability on its last computed "
                             "frame (anchor_mask)")
        region = F.adaptive_avg_pool2d(anchor_mask, feature.shape[-2:])
        return F.max_pool2d(region, 3, stride=1, padding=1)

    def _change_p(self, feature: Tensor, anchor: Optional[Tensor], prev_score: Tensor,
                  anchor_mask: Optional[Tensor]) -> Tensor:
        """The change gate's ``p_reuse``."""
        if anchor is None:
            raise ValueError("the change gate needs the match feature of the object's last computed frame (anchor)")
        return torch.sigmoid(self.change_gate(feature, anchor, self.region(feature, prev_score, anchor_mask)))

    def template_match(self, feature: Tensor, prev_score: Tensor, template: Tensor) -> Tensor:
        """``D_t``: the template matcher's comparison of the current match feature and the last computed score
        with the object's template; what ``delta`` and the refine-translator read on a reused frame."""
        return self.template_matcher(feature, self._up(prev_score, feature), template)

    def match_and_gate(self, feature: Tensor, prev_score: Tensor, template: Tensor, anchor: Optional[Tensor] = None,
                       anchor_mask: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """``(D_t, p_reuse)``, both always (training, where every frame runs both paths); the change gate also
        needs ``anchor``, the match feature of the last computed frame, and with ``'change_mask'``
        ``anchor_mask`` (see :meth:`region`)."""
        d = self.template_match(feature, prev_score, template)
        if self.gate_input == "template":
            return d, torch.sigmoid(self.gate(d))
        return d, self._change_p(feature, anchor, prev_score, anchor_mask)

    def reuse_probability(self, feature: Tensor, prev_score: Tensor, template: Tensor,
                          anchor: Optional[Tensor] = None,
                          anchor_mask: Optional[Tensor] = None) -> tuple[Optional[Tensor], Tensor]:
        """``(D_t or None, p_reuse)`` for inference, computing only what the decision needs: the template gate
        reads ``D_t`` (returned, so a reused frame need not match twice); the change gate decides without it,
        and :meth:`template_match` then runs only for frames that reuse."""
        if self.gate_input == "template":
            return self.match_and_gate(feature, prev_score, template)
        return None, self._change_p(feature, anchor, prev_score, anchor_mask)

    def delta(self, d: Tensor, like: Tensor) -> Tensor:
        """``delta`` from ``D_t``, resized to the score map ``like`` when the strided conv lands off-grid."""
        delta = self.delta_generator(d)
        if delta.shape[-2:] != like.shape[-2:]:
            delta = F.interpolate(delta, size=like.shape[-2:], mode="bilinear", align_corners=False)
        return delta
