"""Training losses of the reuse gate (paper §3.4, eq. 3-6) and the AIG-style target-rate baseline.

Differences from the released Reuse_VOS training code, on purpose (the paper is followed):

* the margin ``m = m1 * min(1, epoch / ep_T)`` really raises the gate target (upstream computes it and
  discards the result, so ``m1`` has no effect there);
* the gate loss floors the error at ``m2`` (``max(m2, |p - target|)^2``, eq. 5) where upstream subtracts it
  (``relu(|p - target| - m2)^2``); both agree at the paper's setting ``m2 = 0``.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

__all__ = ["margin", "gate_probability_loss", "target_rate_loss", "delta_loss", "segmentation_loss"]


def margin(m1: float, epoch: float, ep_t: float) -> float:
    """Eq. 4's margin ``m = m1 * min(1, epoch / ep_T)``: ramps from 0 to ``m1`` over ``ep_T`` epochs."""
    if ep_t <= 0:
        raise ValueError(f"ep_t must be > 0 (the epoch at which the margin reaches m1), got {ep_t}")
    return float(m1) * min(1.0, max(0.0, float(epoch)) / float(ep_t))


def gate_probability_loss(p_reuse: Tensor, iou: Tensor, m: float, m2: float = 0.0) -> Tensor:
    """Eq. 4-5: ``mean(max(m2, |p - max(m, IoU)|)^2)``; ``iou`` is to the GT of the last computed frame."""
    target = iou.clamp(min=m)
    return (p_reuse - target).abs().clamp(min=m2).pow(2).mean()


def target_rate_loss(gates: Tensor, target_rate: float) -> Tensor:
    """``Loss_Ngate`` (AIG-style baseline): squared gap between the batch's mean gate and a target reuse rate."""
    return (gates.mean() - target_rate).pow(2)


def delta_loss(delta: Tensor, gt_small: Tensor, prev_score: Tensor) -> Tensor:
    """Eq. 3: ``L2(delta, y'_t - S(t-n))``; the target is detached so the loss only trains the delta path."""
    return F.mse_loss(delta, (gt_small - prev_score).detach())


def segmentation_loss(logits: Tensor, gt: Tensor) -> Tensor:
    """BCE between the full-resolution prediction and the ground-truth mask (eq. 6)."""
    return F.binary_cross_entropy_with_logits(logits, gt)
