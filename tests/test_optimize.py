"""``fold_batchnorm`` and ``for_inference``: the rewritten model computes the same function, and only in eval mode.

Folding changes the float operations (one convolution instead of a convolution and a BatchNorm), so outputs are
compared relative to their scale (tests/numeric.py), never bit for bit.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from numeric import RTOL_CONV, assert_scaled_close
from reusegate.adapters.frtm import FRTM
from reusegate.adapters.reference import ReferenceAdapter, ReferenceHost
from reusegate.core.gate import ReuseGate
from reusegate.core.layers import ResidualRefinementBlock
from reusegate.tools.optimize import fold_batchnorm, for_inference


def _randomise_bn(module: nn.Module, seed: int = 0) -> None:
    """Non-trivial running statistics and affine parameters, so that a wrong fold shows."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.2)


@pytest.mark.parametrize("channels_last", [False, True], ids=["folded", "folded+channels_last"])
def test_optimized_mobilenet_frtm_session_matches_the_original(channels_last):
    torch.manual_seed(0)
    model = FRTM("mobilenet_v2", s4_channels=32, head_channels=16)
    _randomise_bn(model)
    gate = ReuseGate(model, "frtm", tau=1.0).eval()
    folded = ReuseGate(FRTM("mobilenet_v2", s4_channels=32, head_channels=16), "frtm", tau=1.0).eval()
    folded.load_state_dict(gate.state_dict())
    if channels_last:
        for_inference(folded)
        assert folded.host.refiner.head.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    else:
        assert fold_batchnorm(folded) >= 52  # every conv-BN pair of MobileNetV2 (52) plus the refinement blocks'
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.host.backbone.modules())
    gen = torch.Generator().manual_seed(1)
    frames = [(torch.rand(3, 96, 160, generator=gen) * 255).to(torch.uint8) for _ in range(3)]
    first = torch.zeros(96, 160, dtype=torch.long)
    first[30:70, 40:110] = 1
    a, b = gate.session(), folded.session()
    for t, frame in enumerate(frames):
        want, got = a.step(frame, first if t == 0 else None), b.step(frame, first if t == 0 else None)
        assert_scaled_close(f"optimized frame {t} probabilities", got.probs, want.probs, RTOL_CONV * 3)
        assert (got.labels != want.labels).float().mean() < 1e-3  # at most rounding-level near-ties flip


def test_fold_refuses_training_mode_and_keeps_a_refinement_block_exact():
    gate = ReuseGate(ReferenceHost(width=8, refined_channels=16), ReferenceAdapter)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(gate.train())
    block = ResidualRefinementBlock(16, 16)
    _randomise_bn(block, seed=3)
    block.eval()
    x = torch.rand(2, 16, 12, 20)
    want = block(x)
    assert fold_batchnorm(block) == 1 and isinstance(block.bblock[1], nn.Identity)
    got = block(x)
    assert_scaled_close("folded refinement block", got, want)
    # and the check would catch a fold that forgot the running mean
    block2 = ResidualRefinementBlock(16, 16)
    _randomise_bn(block2, seed=3)
    block2.bblock[1].running_mean.zero_()
    assert (block2.eval()(x) - want).abs().max() > 100 * RTOL_CONV * want.abs().max()
