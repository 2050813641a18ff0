"""FRTM's refinement network (segmentation decoder), split at the refined tap for the reuse gate.

One stage per backbone tap, deepest first (``s32``, ``s16``, ``s8``, ``s4``); each stage runs

1. **TSE** (target segmentation encoder): ``reduce`` (1x1, ReLU, 1x1) of the backbone feature, the coarse score
   ``S`` bilinearly resized to that resolution and concatenated, ``transform`` (three 3x3 convs with ReLU);
2. **RRB1** (:class:`reusegate.core.layers.ResidualRefinementBlock`);
3. **CAB** (channel attention): sigmoid attention from the global averages of the stage's map and of ``deeper``
   (the previous stage's output; at the deepest stage the global average of its own ``reduce`` output), then
   ``+ deeper`` upsampled;
4. **RRB2**.

The head (upstream, ``head='bicubic'``) upsamples 4x with a fixed bicubic polyphase filter (two 2x steps around a
3x3 conv), resizes bilinearly to the image size and ends with a 3x3 conv to one logit. ``head='stride4'`` (an
option, must be trained) predicts the logit at stride 4 and resizes that one channel, ``head='stride2'`` at stride
2: on a CPU the upstream head's full-resolution multi-channel work was about a third of every frame, computed or
reused.

Split for the reuse gate: :meth:`Refiner.forward_deep` runs the ``s32`` and ``s16`` stages and returns the
refined feature ``R`` (stride 16, the output of the ``s16`` stage -- what G-FRTM caches); :meth:`Refiner.
forward_shallow` runs the ``s8`` and ``s4`` stages and the head from ``R``. On reused frames ``R`` is the
refine-translator's estimate (or the cached one) and ``S`` is ``S(t-n) + delta`` (or the cached one).

Every bilinear resize uses ``align_corners=False`` and is skipped when the sizes already match (as upstream).
"""
from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reusegate.core.host import resize
from reusegate.core.layers import ResidualRefinementBlock

__all__ = ["Refiner", "RefineStage", "BicubicUpsample2x", "UpsampleHead", "Stride4Head", "Stride2Head", "HEADS",
           "STAGE_TAPS", "DEEP_TAPS", "SHALLOW_TAPS"]

STAGE_TAPS = ("s32", "s16", "s8", "s4")
"""The refinement stages in the order they run."""
DEEP_TAPS = ("s32", "s16")
"""The skippable half at G-FRTM's split: its last stage's output is ``R``."""
SHALLOW_TAPS = ("s8", "s4")
"""The half that always runs at G-FRTM's split."""


class TargetSegmentationEncoder(nn.Module):
    """TSE: reduce the backbone feature, inject the coarse score, transform."""

    def __init__(self, in_channels: int, channels: int, score_channels: int = 1) -> None:
        super().__init__()
        self.reduce = nn.Sequential(nn.Conv2d(in_channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, channels, 1))
        mid = channels + score_channels
        self.transform = nn.Sequential(
            nn.Conv2d(mid, mid, 3, padding=1), nn.ReLU(),
            nn.Conv2d(mid, mid, 3, padding=1), nn.ReLU(),
            nn.Conv2d(mid, channels, 3, padding=1), nn.ReLU(),
        )

    def forward(self, feature: Tensor, score: Tensor) -> tuple[Tensor, Tensor]:
        """Return ``(transformed map, reduce output)``; the deepest stage's CAB pools the latter."""
        x = self.reduce(feature)
        return self.transform(torch.cat([x, resize(score, x.shape[-2:])], dim=1)), x


class ChannelAttention(nn.Module):
    """CAB: ``shallower * sigmoid(mlp([gap(shallower), gap(deeper)])) + up(deeper)``.

    ``deeper_channels`` differing from ``channels`` (narrow-decoder option only) adds a 1x1 projection of
    ``deeper``; with the default widths the block is exactly upstream's.
    """

    def __init__(self, channels: int, deeper_channels: Optional[int] = None) -> None:
        super().__init__()
        deeper_channels = channels if deeper_channels is None else deeper_channels
        self.deeper_proj = nn.Conv2d(deeper_channels, channels, 1) if deeper_channels != channels else None
        self.attention = nn.Sequential(
            nn.Conv2d(2 * channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.Sigmoid()
        )

    def forward(self, deeper: Tensor, shallower: Tensor) -> Tensor:
        if self.deeper_proj is not None:
            deeper = self.deeper_proj(deeper)
        pooled = torch.cat([F.adaptive_avg_pool2d(shallower, 1), F.adaptive_avg_pool2d(deeper, 1)], dim=1)
        return shallower * self.attention(pooled) + resize(deeper, shallower.shape[-2:])


class RefineStage(nn.Module):
    """TSE -> RRB1 -> CAB -> RRB2 at one stride."""

    def __init__(self, in_channels: int, channels: int, deeper_channels: Optional[int] = None,
                 score_channels: int = 1) -> None:
        super().__init__()
        self.tse = TargetSegmentationEncoder(in_channels, channels, score_channels)
        self.rrb1 = ResidualRefinementBlock(channels, channels)
        self.cab = ChannelAttention(channels, deeper_channels)
        self.rrb2 = ResidualRefinementBlock(channels, channels)

    def forward(self, feature: Tensor, score: Tensor, deeper: Optional[Tensor]) -> Tensor:
        """``deeper=None`` marks the deepest stage, which attends to the global average of its own reduce output."""
        h, reduced = self.tse(feature, score)
        if deeper is None:
            deeper = F.adaptive_avg_pool2d(reduced, 1)
        return self.rrb2(self.cab(deeper, self.rrb1(h)))


class BicubicUpsample2x(nn.Module):
    """Exact 2x bicubic upsampling (a = -0.75) as a fixed depthwise polyphase filter.

    Each output phase is a 4x4 separable kernel with taps at distances ``t - 1 - o`` for offsets
    ``o = 0.25 / 0.75``; the input is replicate-padded by 2, the four phases are interleaved (pixel shuffle)
    and one pixel is cropped on each side. The kernel is a constant buffer, not state (not saved).
    """

    A = -0.75

    def __init__(self) -> None:
        super().__init__()
        taps = [[self._cubic(t - 1 - o) for t in range(4)] for o in (0.25, 0.75)]
        w = [torch.tensor(p, dtype=torch.float64) for p in taps]
        kernel = torch.stack([torch.outer(w[i], w[j]) for i in range(2) for j in range(2)]).float()
        self.register_buffer("kernel", kernel.unsqueeze(1), persistent=False)  # [4, 1, 4, 4]

    @classmethod
    def _cubic(cls, d: float) -> float:
        a, d = cls.A, abs(d)
        if d <= 1:
            return (a + 2) * d ** 3 - (a + 3) * d ** 2 + 1
        if d < 2:
            return a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a
        return 0.0

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        padded = F.pad(x, (2, 2, 2, 2), mode="replicate")
        phases = F.conv2d(padded, self.kernel.to(x.dtype).repeat(c, 1, 1, 1), groups=c)
        return F.pixel_shuffle(phases, 2)[..., 1:-1, 1:-1]


class UpsampleHead(nn.Module):
    """Bicubic 2x -> 3x3 conv -> ReLU -> bicubic 2x -> bilinear to image size -> 3x3 conv to one logit."""

    def __init__(self, in_channels: int = 64, channels: int = 32) -> None:
        super().__init__()
        self.up = BicubicUpsample2x()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, x: Tensor, image_size: Sequence[int]) -> Tensor:
        x = self.up(F.relu(self.conv1(self.up(x))))
        return self.conv2(resize(x, image_size))


class Stride4Head(nn.Module):
    """3x3 conv -> ReLU -> 3x3 conv to one logit at the stride-4 map, then one bilinear resize to the image size.

    Most VOS decoders (STM, STCN, Cutie) predict at stride 4 and upsample the logit: the upstream head's bicubic
    steps and full-resolution convolutions move ``in_channels`` maps of 16x the pixels for the same boundary.
    """

    hidden_upsample = 1

    def __init__(self, in_channels: int = 64, channels: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, x: Tensor, image_size: Sequence[int]) -> Tensor:
        h = F.relu(self.conv1(x))
        if self.hidden_upsample > 1:
            h = F.interpolate(h, scale_factor=self.hidden_upsample, mode="bilinear", align_corners=False)
        return resize(self.conv2(h), image_size)


class Stride2Head(Stride4Head):
    """:class:`Stride4Head` whose hidden map is bilinearly doubled before the last conv: the logit comes at
    stride 2, for thin parts, at the cost of one ``channels``-wide 3x3 conv at stride 2."""

    hidden_upsample = 2


HEADS = {"bicubic": UpsampleHead, "stride2": Stride2Head, "stride4": Stride4Head}
"""Head options by name: ``'bicubic'`` is upstream's (golden-equal); ``'stride2'`` and ``'stride4'`` are the
CPU-cheap ones."""


class Refiner(nn.Module):
    """FRTM's refinement network over the stride-keyed taps of any backbone.

    Args:
        feature_channels: channels of the backbone taps ``s4`` .. ``s32``.
        channels: width of every stage (upstream: 64; it is also the refined-tap width).
        s4_channels: width of the stride-4 stage. ``None`` = ``channels`` (upstream). The narrow-decoder option:
            the never-skipped stride-4 stage and head dominate a reused frame's cost (about 9 of 26.5 GMACs for
            RN18 at 480p); 32 here quarters the stage's 3x3 convs. Upstream checkpoints need the default; a
            narrow decoder must be trained.
        s8_channels: width of the stride-8 stage. ``None`` = ``channels`` (upstream). Like ``s4_channels``, it
            narrows a never-skipped stage (the option moves decoder cost to the skippable deep stages).
        head_channels: width of the head's hidden conv (upstream: 32).
        head: a key of :data:`HEADS` (upstream: ``'bicubic'``).
    """

    def __init__(self, feature_channels: Mapping[str, int], channels: int = 64, s4_channels: Optional[int] = None,
                 head_channels: int = 32, s8_channels: Optional[int] = None, head: str = "bicubic") -> None:
        super().__init__()
        missing = [t for t in DEEP_TAPS + SHALLOW_TAPS if t not in feature_channels]
        if missing:
            raise ValueError(f"backbone feature_channels lacks taps {missing}; need s4, s8, s16 and s32")
        if head not in HEADS:
            raise ValueError(f"head must be one of {sorted(HEADS)}, got {head!r}")
        s8 = channels if s8_channels is None else s8_channels
        s4 = channels if s4_channels is None else s4_channels
        self.channels = channels
        self.widths = {"s32": channels, "s16": channels, "s8": s8, "s4": s4}
        """Output channels of each stage (the refined feature's width at each split)."""
        self.stages = nn.ModuleDict({
            "s32": RefineStage(feature_channels["s32"], channels),
            "s16": RefineStage(feature_channels["s16"], channels),
            "s8": RefineStage(feature_channels["s8"], s8, deeper_channels=channels),
            "s4": RefineStage(feature_channels["s4"], s4, deeper_channels=s8),
        })
        self.head = HEADS[head](s4, head_channels)

    def forward_deep(self, feats: Mapping[str, Tensor], score: Tensor,
                     stages: Optional[Dict[str, Tensor]] = None) -> Tensor:
        """Run the :data:`DEEP_TAPS` stages; return ``R`` ``[B, channels, h16, w16]``. ``stages``, when given,
        receives each stage's output (for tests and analysis)."""
        x: Optional[Tensor] = None
        for tap in DEEP_TAPS:
            x = self.stages[tap](feats[tap], score, x)
            if stages is not None:
                stages[tap] = x
        assert x is not None
        return x

    def forward_shallow(self, feats: Mapping[str, Tensor], score: Tensor, refined: Tensor,
                        image_size: Sequence[int], stages: Optional[Dict[str, Tensor]] = None) -> Tensor:
        """Run the :data:`SHALLOW_TAPS` stages from ``refined`` and the head; return logits ``[B, 1, *image_size]``."""
        x = refined
        for tap in SHALLOW_TAPS:
            x = self.stages[tap](feats[tap], score, x)
            if stages is not None:
                stages[tap] = x
        return self.head(x, image_size)

    def forward(self, feats: Mapping[str, Tensor], score: Tensor, image_size: Sequence[int]) -> Tensor:
        """The whole decoder (a computed frame): logits at ``image_size``."""
        return self.forward_shallow(feats, score, self.forward_deep(feats, score), image_size)
