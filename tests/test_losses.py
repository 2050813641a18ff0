"""Training losses (paper eq. 3-6) against hand computations, and where their gradients go."""
from __future__ import annotations

import pytest
import torch

from reusegate.core import losses
from reusegate.evaluation import EMPTY_IOU, batch_iou, jaccard
from reusegate.adapters.reference import ReferenceAdapter, ReferenceHost
from reusegate.core.gate import ReuseGate
from reusegate.core.training import LossConfig, clip_losses


@pytest.mark.parametrize("epoch, expected", [(0, 0.0), (60, 0.35), (120, 0.7), (240, 0.7), (-5, 0.0)])
def test_margin_schedule(epoch, expected):
    assert losses.margin(0.7, epoch, ep_t=120) == pytest.approx(expected)


def test_margin_rejects_bad_ramp():
    with pytest.raises(ValueError, match="ep_t"):
        losses.margin(1.0, 3, 0)


def test_batch_iou_by_hand_and_as_jaccard():
    a = torch.zeros(3, 1, 4, 4)
    b = torch.zeros(3, 1, 4, 4)
    a[0, 0, :2] = 1  # 8 px
    b[0, 0, 1:3] = 1  # 8 px, 4 shared -> 4 / 12
    a[1, 0, 0, 0] = 1  # disjoint single pixels -> 0
    b[1, 0, 3, 3] = 1
    iou = batch_iou(a, b)  # sample 2: both empty -> EMPTY_IOU (1: nothing changed, reuse is right), not NaN
    assert iou.tolist() == pytest.approx([4 / 12, 0.0, EMPTY_IOU]) and EMPTY_IOU == 1.0
    # the gate's target and the benchmark's J are one rule
    assert iou.tolist() == pytest.approx([jaccard(a[k, 0].numpy() > 0.5, b[k, 0].numpy() > 0.5) for k in range(3)])


def test_gate_probability_loss_by_hand():
    p = torch.tensor([0.9, 0.2, 0.5])
    iou = torch.tensor([0.8, 0.6, 0.1])
    # m = 0.3: targets max(0.3, iou) = [0.8, 0.6, 0.3]; |p - t| = [0.1, 0.4, 0.2]; m2 = 0.15 floors 0.1
    expected = (0.15 ** 2 + 0.4 ** 2 + 0.2 ** 2) / 3
    assert losses.gate_probability_loss(p, iou, m=0.3, m2=0.15).item() == pytest.approx(expected)
    assert losses.gate_probability_loss(p, iou, m=0.0).item() == pytest.approx((0.01 + 0.16 + 0.16) / 3)


def test_delta_segmentation_and_target_rate_losses_by_hand():
    delta = torch.tensor([[[[0.5, -0.5]]]])
    gt = torch.tensor([[[[1.0, 0.0]]]])
    prev = torch.tensor([[[[0.25, 0.25]]]])
    # targets gt - prev = [0.75, -0.25]; errors [-0.25, -0.25]
    assert losses.delta_loss(delta, gt, prev).item() == pytest.approx(0.0625)
    logits = torch.tensor([[[[0.0, 2.0]]]])
    bce = (-torch.log(torch.sigmoid(torch.tensor(0.0))) - torch.log(1 - torch.sigmoid(torch.tensor(2.0)))) / 2
    assert losses.segmentation_loss(logits, gt).item() == pytest.approx(bce.item(), rel=1e-6)
    assert losses.target_rate_loss(torch.tensor([1.0, 0.0, 1.0, 1.0]), 0.5).item() == pytest.approx(0.0625)


def _batch(seed=0, b=2, t=3, h=64, w=96):
    g = torch.Generator().manual_seed(seed)
    clip = torch.rand(b, t, 3, h, w, generator=g)
    masks = torch.zeros(b, t, 1, h, w)
    for i in range(t):
        masks[:, i, :, 10 + 2 * i:40 + 2 * i, 20 + 3 * i:60 + 3 * i] = 1
    return clip, masks


def test_loss_dict_and_margin_in_training_forward():
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter).train()
    out = gate(*_batch(), epoch=5, loss_config=LossConfig(m1=0.8, ep_t=10))
    assert set(out) == {"loss_seg", "loss_delta", "loss_gate", "reuse_rate", "margin"}
    assert out["margin"].item() == pytest.approx(0.4)
    assert all(torch.isfinite(v) for v in out.values())


def _gate_grad(gate: ReuseGate, key: str) -> torch.Tensor:
    gate.zero_grad()
    gate(*_batch(), epoch=0)[key].backward()
    return gate.gate_modules.gate[4].weight.grad


def test_gate_head_learns_through_gate_loss():
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter).train()
    grad = _gate_grad(gate, "loss_gate")
    assert grad is not None and grad.abs().sum() > 0


def test_gate_head_learns_through_straight_through_blend():
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter).train()
    grad = _gate_grad(gate, "loss_seg")  # no gate loss term: only the blend connects the gate to the output
    assert grad is not None and grad.abs().sum() > 0


def test_straight_through_forward_value_is_the_hard_path():
    """With the gate forced shut, the segmentation output is the pure compute path."""
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter).train()
    with torch.no_grad():
        gate.gate_modules.gate[4].bias.fill_(-50.0)  # p ~ 0: hard gate 0, every frame computes
    out = gate(*_batch(), epoch=0)
    assert out["reuse_rate"].item() == 0.0
    with torch.no_grad():
        gate.gate_modules.gate[4].bias.fill_(50.0)  # p ~ 1: every frame reuses
    assert gate(*_batch(), epoch=0)["reuse_rate"].item() == 1.0


def test_ngate_loss_option():
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter).train()
    with torch.no_grad():
        gate.gate_modules.gate[4].bias.fill_(-50.0)  # every gate shut: mean gate 0, loss (0 - 0.5)^2
    out = gate(*_batch(), epoch=0, loss_config=LossConfig(gate_loss="ngate", target_rate=0.5))
    assert out["loss_gate"].item() == pytest.approx(0.25, abs=1e-6)


def test_training_input_checks():
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter)
    clip, masks = _batch()
    with pytest.raises(ValueError, match="at least 2 frames"):
        gate(clip[:, :1], masks[:, :1])
    with pytest.raises(ValueError, match="masks must be"):
        gate(clip, masks[:, :2])
    with pytest.raises(ValueError, match="at least 2 frames"):
        clip_losses(gate.adapter, clip[:, :1], masks[:, :1])  # the host alone too


def test_the_host_alone_is_the_gated_loop_with_every_gate_shut():
    """``layers=None`` (pre-training) computes every frame: its segmentation loss is the gated loss's when no
    clip ever reuses, bit for bit."""
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter).eval()
    with torch.no_grad():
        gate.gate_modules.gate[4].bias.fill_(-50.0)
        gated = gate(*_batch(), epoch=0)
        alone = clip_losses(gate.adapter, *_batch())
    assert set(alone) == {"loss_seg"} and gated["reuse_rate"].item() == 0.0
    assert torch.equal(alone["loss_seg"], gated["loss_seg"])
