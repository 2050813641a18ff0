"""Training of a gated host: the paper's losses over a batch of one-object clips (§3.4).

Frame 0 starts the object exactly as a session does (:func:`reusegate.paths.start_caches`); on every later frame
both of a session's paths run (:func:`~reusegate.paths.compute_path` and
:func:`~reusegate.paths.translate_path`) and are blended by the hard gate with a straight-through gradient, so
training and inference share their per-frame code.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Mapping, Union

import torch
from torch import Tensor

from . import losses
from .evaluation.metrics import batch_iou
from .host import HostAdapter
from .paths import compute_path, decode_shallow, hold_path, resize, start_caches, translate_path

if TYPE_CHECKING:
    from .gate import ReuseGate

__all__ = ["Clip", "clip_frames", "merged_probability", "gated_loss"]

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


def gated_loss(gate: "ReuseGate", clip: Clip, masks: Tensor, epoch: float = 0) -> Dict[str, Tensor]:
    """Named training losses for a batch of clips, one object per clip (see :meth:`ReuseGate.loss`)."""
    a, gm = gate.adapter, gate.gate_modules
    m = losses.margin(gate.m1, epoch, gate.ep_t)
    frames, masks = clip_frames(a, clip, masks)
    if len(frames) < 2:
        raise ValueError("a training clip needs at least 2 frames (a reference frame and one more)")

    state = a.start_object(frames[0], masks[:, 0])
    prev_match = a.match_feature(frames[0])
    prev_score, prev_refined, template = start_caches(a, gm, state, frames[0], prev_match, masks[:, 0])
    anchor = prev_prob = masks[:, 0]

    seg, dl, gl, rates, gates = [], [], [], [], []
    for t in range(1, len(frames)):
        feats, gt = frames[t], masks[:, t]
        match = a.match_feature(feats)
        matched, p = gm.match(match, prev_score, template, prev_match, prev_prob)
        hard = (p > gate.train_tau).float()
        g = (hard + p - p.detach()).view(-1, 1, 1, 1)  # straight-through: hard forward, soft gradient
        delta, reused_score, translated = translate_path(gm, matched, prev_score, prev_refined)
        if gate.reuse_path in ("hold", "shift"):  # delta still trains (eq. 3); the reused frame reads the caches
            reused_score, translated = hold_path(gm, gate.reuse_path, match, prev_match, prev_prob, prev_score,
                                                 prev_refined)
        score, refined = compute_path(a, state, feats)
        logits = decode_shallow(a, state, feats, g * reused_score + (1 - g) * score,
                                g * translated + (1 - g) * refined)

        seg.append(losses.segmentation_loss(logits, gt))
        dl.append(losses.delta_loss(delta, resize(gt, tuple(prev_score.shape[-2:]), "bilinear"), prev_score))
        if gate.gate_loss == "gp":
            gl.append(losses.gate_probability_loss(p, batch_iou(gt, anchor), m, gate.m2))
        gates.append(g.flatten())
        rates.append(hard.mean())

        prob = merged_probability(a, logits)
        a.advance(state, feats, prob, hard == 0)
        computed = (hard == 0).view(-1, 1, 1, 1)  # caches follow the last computed frame (paper)
        prev_score = torch.where(computed, score, prev_score)
        prev_refined = torch.where(computed, refined, prev_refined)
        anchor = torch.where(computed, gt, anchor)
        prev_match = torch.where(computed, match, prev_match)
        prev_prob = torch.where(computed, prob.detach(), prev_prob)

    gate_loss = torch.stack(gl).mean() if gl else losses.target_rate_loss(torch.cat(gates), gate.target_rate)
    return {
        "loss_seg": torch.stack(seg).mean(),
        "loss_delta": torch.stack(dl).mean(),
        "loss_gate": gate_loss,
        "reuse_rate": torch.stack(rates).mean().detach(),
        "margin": torch.tensor(m),
    }
