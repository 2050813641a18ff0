"""Inference-time rewrites that keep a model's function and cut its memory traffic on CPU.

:func:`for_inference` applies both below; ``reusegate run``, ``bench``, ``test`` and ``demo`` use it.

:func:`fold_batchnorm` folds every eval-mode ``BatchNorm2d`` that directly follows a ``Conv2d`` inside an
``nn.Sequential`` into that convolution, and puts an ``nn.Identity`` in its place. This covers MobileNetV2's
conv-BN(-ReLU6) blocks and the refinement blocks of FRTM and of the gate modules. A BatchNorm is a full pass over
its feature map; on a 2-core CPU the never-skipped MobileNetV2 stages spend much of their time there, and a
reused frame pays it as much as a computed one. The folded model computes the same function (float32 rounding
aside, ~1e-6 of the scale) and is meant for inference only: its state dict changes (BN entries gone, conv biases
added), so train and export from the unfolded model.

Channels-last weights make oneDNN pick its NHWC convolution kernels, whose feature maps then stay channels-last
through the network; on the depthwise-heavy MobileNetV2 and the thin decoder that is faster than NCHW.
``benchmarks/bench_fusion.py`` measures both on real frames.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["fold_batchnorm", "for_inference"]


@torch.no_grad()
def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    conv.weight.mul_(scale.view(-1, 1, 1, 1))
    folded = (bias - bn.running_mean) * scale + bn.bias
    if conv.bias is None:
        conv.bias = nn.Parameter(folded.clone(), requires_grad=conv.weight.requires_grad)
    else:
        conv.bias.copy_(folded)


def fold_batchnorm(module: nn.Module) -> int:
    """Fold each ``Conv2d -> BatchNorm2d`` pair of every ``nn.Sequential`` in ``module`` in place; return how many.

    ``module`` must be in eval mode (folding uses the running statistics, which training would change)."""
    if module.training:
        raise ValueError("fold_batchnorm needs a model in eval mode (call .eval() first); a folded model is for "
                         "inference only")
    folded = 0
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for first, second in zip(names, names[1:]):
            conv, bn = seq._modules[first], seq._modules[second]
            if (isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats
                    and bn.affine and conv.out_channels == bn.num_features):
                _fold(conv, bn)
                seq._modules[second] = nn.Identity()
                folded += 1
    return folded


def for_inference(module: nn.Module) -> nn.Module:
    """``module`` in eval mode with its BatchNorms folded and its weights channels-last (in place; returned)."""
    fold_batchnorm(module.eval())
    return module.to(memory_format=torch.channels_last)
