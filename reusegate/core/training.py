"""Training of a gated host: the paper's losses over a batch of one-object clips (§3.4).

Frame 0 starts the object exactly as a session does (:func:`reusegate.core.paths.start_caches`); on every later frame
both of a session's paths run (:func:`~reusegate.core.paths.compute_path` and
:func:`~reusegate.core.paths.translate_path`) and are blended by the hard gate with a straight-through gradient, so
training and inference share their per-frame code. Without gate layers the same loop trains the host alone (the
paper's pre-training). The loss's hyper-parameters are a :class:`LossConfig`: they matter to training only, so
neither the gate nor an export carries them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Union

import torch
from torch import Tensor

from reusegate.core import losses
from reusegate.core.host import HostAdapter, resize
from reusegate.core.layers import GateLayers
from reusegate.core.paths import compute_path, decode_shallow, start_caches, translate_path
from reusegate.evaluation.metrics import batch_iou

__all__ = ["Clip", "LossConfig", "GATE_LOSSES", "clip_frames", "merged_probability", "clip_losses"]

GATE_LOSSES = ("gp", "ngate")
"""``'gp'``: the paper's gate-probability loss (eq. 5); ``'ngate'``: the AIG-style target-rate baseline
(``Loss_Ngate``)."""


@dataclass(frozen=True)
class LossConfig:
    """The training loss's hyper-parameters; checked when made.

    Args:
        m1, m2, ep_t: gate-probability loss margin schedule (eq. 4-5): the target is raised to
            ``m1 * min(1, epoch / ep_t)``; errors below ``m2`` are flat.
        gate_loss: one of :data:`GATE_LOSSES`.
        target_rate: the reuse rate ``'ngate'`` pushes towards.
        train_tau: threshold of the hard gate in training (paper: 0.5).
    """

    m1: float = 1.0
    m2: float = 0.0
    ep_t: float = 120
    gate_loss: str = "gp"
    target_rate: float = 0.5
    train_tau: float = 0.5

    def __post_init__(self) -> None:
        for name in ("train_tau", "target_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        if self.gate_loss not in GATE_LOSSES:
            raise ValueError(f"gate_loss must be 'gp' (paper eq. 5) or 'ngate' (target rate), got {self.gate_loss!r}")
        if not self.ep_t > 0:
            raise ValueError(f"ep_t must be > 0, got {self.ep_t}")
        for name in ("m1", "m2", "ep_t", "target_rate", "train_tau"):  # frozen: normalised once, here
            object.__setattr__(self, name, float(getattr(self, name)))


Clip = Union[Tensor, Mapping[str, Tensor]]
"""A training clip: ``[B, T, 3, H, W]`` images in [0, 1], or the host's frozen taps precomputed per frame
(``{name: [B, T, ...]}``, what ``adapter.deep(adapter.shallow(adapter.preprocess(frame)))`` returns)."""


def clip_frames(adapter: HostAdapter, clip: Clip, masks: Tensor) -> tuple[List[Dict[str, Tensor]], Tensor]:
    """Every frame's features and the ``[B, T, 1, h, w]`` masks at the host's input size, from a training clip.

    A host whose backbone is frozen (FRTM) need not recompute it every epoch: a clip may carry the taps
    precomputed (see :data:`Clip`); its masks must then already be at the host's input size. Images run
    through the adapter's feature tap.
    """
    if masks.ndim == 4:
        masks = masks.unsqueeze(2)
    masks = masks.float()
    if isinstance(clip, Mapping):
        if not clip:
            raise ValueError("a clip of precomputed features needs at least one tap")
        steps = {tuple(v.shape[:2]) for v in clip.values()}
        if steps != {tuple(masks.shape[:2])} or masks.shape[2] != 1:
            raise ValueError(f"precomputed taps must all be [B, T, ...] matching the masks {tuple(masks.shape)}, "
                             f"got {({k: tuple(v.shape) for k, v in clip.items()})}")
        frames = [{k: v[:, t].float() for k, v in clip.items()} for t in range(masks.shape[1])]
        return frames, masks
    if clip.ndim != 5 or clip.shape[2] != 3:
        raise ValueError(f"clip must be [B, T, 3, H, W], got {tuple(clip.shape)}")
    if masks.shape[:2] != clip.shape[:2] or masks.shape[-2:] != clip.shape[-2:] or masks.shape[2] != 1:
        raise ValueError(
            f"masks must be [B, T, 1, H, W] matching the clip {tuple(clip.shape)}, got {tuple(masks.shape)}"
        )
    inputs = [adapter.preprocess(clip[:, t]) for t in range(clip.shape[1])]
    size = tuple(inputs[0].shape[-2:])
    small = torch.stack([resize(masks[:, t], size, "bilinear") for t in range(clip.shape[1])], dim=1)
    return [adapter.deep(adapter.shallow(x)) for x in inputs], small


def merged_probability(adapter: HostAdapter, logits: Tensor) -> Tensor:
    """``[B, 1, H, W]``: each training clip's object probability after ``adapter.merge``, what a session passes
    to ``learn`` / ``advance`` for a video of that one object (merge reshapes it, e.g. FRTM's odds softmax)."""
    prob = torch.sigmoid(logits)
    return torch.stack([adapter.merge(prob[b])[0][1:2] for b in range(prob.shape[0])])


def clip_losses(adapter: HostAdapter, clip: Clip, masks: Tensor, epoch: float = 0,
                layers: Optional[GateLayers] = None, reuse_path: str = "translate",
                config: LossConfig = LossConfig()) -> Dict[str, Tensor]:
    """Named training losses for a batch of clips, one object per clip (see :meth:`ReuseGate.loss`).

    With ``layers``, the gated loop blends the reused path (``reuse_path``, as a session decodes it) and the
    computed one by the hard gate. With ``layers=None`` the host trains alone: every frame computes, as
    :class:`~reusegate.core.session.HostRunner` does, and only ``loss_seg`` is returned.
    """
    a = adapter
    frames, masks = clip_frames(a, clip, masks)
    if len(frames) < 2:
        raise ValueError("a training clip needs at least 2 frames (a reference frame and one more)")
    state = a.start_object(frames[0], masks[:, 0])
    every_frame = torch.ones(masks.shape[0], dtype=torch.bool)  # host alone: every clip computes
    if layers is not None:
        m = losses.margin(config.m1, epoch, config.ep_t)
        prev_match = a.match_feature(frames[0])
        prev_score, prev_refined, template = start_caches(a, layers, state, frames[0], prev_match, masks[:, 0])
        anchor = prev_prob = masks[:, 0]

    seg, dl, gl, rates, gates = [], [], [], [], []
    for t in range(1, len(frames)):
        feats, gt = frames[t], masks[:, t]
        if layers is not None:
            match = a.match_feature(feats)
            matched, p = layers.match_and_gate(match, prev_score, template, prev_match, prev_prob)
            hard = (p > config.train_tau).float()
            g = (hard + p - p.detach()).view(-1, 1, 1, 1)  # straight-through: hard forward, soft gradient
            delta, reused_score, translated = translate_path(layers, matched, prev_score, prev_refined)
            if reuse_path == "hold":  # delta still trains (eq. 3); the reused frame reads the caches
                reused_score, translated = prev_score, prev_refined
        score, refined = compute_path(a, state, feats)
        if layers is None:
            logits, computed = decode_shallow(a, state, feats, score, refined), every_frame
        else:
            logits = decode_shallow(a, state, feats, g * reused_score + (1 - g) * score,
                                    g * translated + (1 - g) * refined)
            computed = hard == 0
        seg.append(losses.segmentation_loss(logits, gt))
        if layers is not None:
            dl.append(losses.delta_loss(delta, resize(gt, tuple(prev_score.shape[-2:]), "bilinear"), prev_score))
            if config.gate_loss == "gp":
                gl.append(losses.gate_probability_loss(p, batch_iou(gt, anchor), m, config.m2))
            gates.append(g.flatten())
            rates.append(hard.mean())

        prob = merged_probability(a, logits)
        a.advance(state, feats, prob, computed)
        if layers is not None:  # caches follow the last computed frame (paper)
            kept = computed.view(-1, 1, 1, 1)
            prev_score = torch.where(kept, score, prev_score)
            prev_refined = torch.where(kept, refined, prev_refined)
            anchor = torch.where(kept, gt, anchor)
            prev_match = torch.where(kept, match, prev_match)
            prev_prob = torch.where(kept, prob.detach(), prev_prob)

    if layers is None:
        return {"loss_seg": torch.stack(seg).mean()}
    gate_loss = torch.stack(gl).mean() if gl else losses.target_rate_loss(torch.cat(gates), config.target_rate)
    return {
        "loss_seg": torch.stack(seg).mean(),
        "loss_delta": torch.stack(dl).mean(),
        "loss_gate": gate_loss,
        "reuse_rate": torch.stack(rates).mean().detach(),
        "margin": torch.tensor(m),
    }
