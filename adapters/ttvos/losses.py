"""TTVOS's training losses on one clip per batch element: NLL, temporal consistency (Diff) and template (Tmp).

As upstream trains, frame 0 starts the object from its ground truth, then every later frame is decoded and the
object's memory is updated with the frame's own softmax (no merge: one object per clip), nothing detached, so
gradients reach the template update, the update rate and the mask history.

* ``nll``: negative log-likelihood of the (bg, fg) log-softmax against the ground truth, mean over pixels.
* ``diff``: the Diff head on ``u8`` against ``T - E`` at stride 8: ``T`` = the frame's ground truth as (bg, fg)
  (clamped to ``[1e-7, 1 - 1e-7]``), ``E`` = the previous frame's estimate (frame 0: its ground truth), both
  bilinearly resized; MSE. It teaches where the object appears (+1 on fg) and vanishes (-1).
* ``tmp``: sigmoid of the Tmp head on ``LT_sim`` against the nearest-resized ground truth at stride 8; BCE.

Upstream quirks, reproduced by :meth:`LossOptions.upstream` (defaults are the sane forms; golden MANIFEST Q4-Q5,
item 8 of the research notes' corrections):

* ``nll_first_frame``: frame 0 enters the NLL mean with the log of its clamped ground truth (~0 per pixel, so it
  only dilutes the mean by ``(N - 1) / N``);
* ``tmp_first_frame``: frame 0 enters the Tmp mean with the 8x8 average-pooled ground truth as "prediction";
* ``diff_softmax``: the Diff head goes through a softmax before the MSE, so it lies in [0, 1] and can never reach
  the -1 of a vanishing region; default: the raw head output is regressed;
* ``diff_detach``: whether ``E`` (the previous estimate inside the target) is detached; upstream does not.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from reusegate.core.host import resize

from .model import TTVOS, pad16, two_channel

__all__ = ["LossOptions", "clip_losses"]

EPS = 1e-7


@dataclass(frozen=True)
class LossOptions:
    """Which of upstream's loss quirks to reproduce (see the module doc). Defaults: none."""

    nll_first_frame: bool = False
    tmp_first_frame: bool = False
    diff_softmax: bool = False
    diff_detach: bool = True

    @classmethod
    def upstream(cls) -> "LossOptions":
        """The released training code's behaviour."""
        return cls(nll_first_frame=True, tmp_first_frame=True, diff_softmax=True, diff_detach=False)


def clip_losses(
    model: TTVOS,
    frames: Tensor,
    masks: Tensor,
    options: LossOptions = LossOptions(),
    record: Optional[Dict[str, Any]] = None,
) -> Dict[str, Tensor]:
    """``loss_nll``, ``loss_diff``, ``loss_tmp`` of ``[B, N, 3, H, W]`` clips (RGB in [0, 1]) and their
    ``[B, N, 1, H, W]`` 0/1 masks (N >= 2). Frames are padded to a multiple of 16 as at inference.

    ``record``, if given, receives the per-frame tensors (log-probabilities, Diff head and target, Tmp
    predictions and targets, update rates).
    """
    if frames.ndim != 5 or frames.shape[1] < 2:
        raise ValueError(f"frames must be [B, N >= 2, 3, H, W], got {tuple(frames.shape)}")
    if masks.ndim == 4:
        masks = masks.unsqueeze(2)
    n = frames.shape[1]
    x = [pad16(model.normalize(frames[:, t]))[0] for t in range(n)]
    gt = [pad16(masks[:, t].to(frames.dtype))[0] for t in range(n)]

    feats = model.features(x[0])
    size8 = tuple(feats["s8"].shape[-2:])
    state = model.start(feats, two_channel(gt[0]))
    logps: List[Tensor] = [torch.log(two_channel(gt[0].clamp(EPS, 1 - EPS)))] if options.nll_first_frame else []
    tmps: List[Tensor] = [F.avg_pool2d(gt[0], 8)] if options.tmp_first_frame else []
    tmp_targets: List[Tensor] = [resize(gt[0], size8, "nearest")] if options.tmp_first_frame else []
    heads: List[Tensor] = []
    targets: List[Tensor] = []
    raws: List[Tensor] = []
    weights: List[Tensor] = []
    previous = two_channel(gt[0])
    for t in range(1, n):
        feats = model.features(x[t])
        out = model.decode(state, feats, model.short_term(state, feats["s16"])[0])
        logps.append(torch.log_softmax(out.logits, dim=1))
        probs = torch.softmax(out.logits, dim=1)
        raw = model.refine.predictor_Diff(out.u8)
        raws.append(raw)
        heads.append(torch.softmax(raw, dim=1) if options.diff_softmax else raw)
        estimate = previous.detach() if options.diff_detach else previous
        truth = two_channel(gt[t].clamp(EPS, 1 - EPS))
        targets.append(resize(truth, size8, "bilinear") - resize(estimate, size8, "bilinear"))
        tmps.append(torch.sigmoid(model.refine.predictor_Tmp(out.lt_sim)))
        tmp_targets.append(resize(gt[t], size8, "nearest"))
        weights.append(out.update_w)
        model.update(state, feats, probs, out.update_w)
        previous = probs

    logp = torch.stack(logps, dim=1)  # B, N', 2, H, W
    first = 0 if options.nll_first_frame else 1
    labels = torch.stack(gt[first:], dim=1).long()
    picked = logp.gather(2, labels)
    nll_per_frame = -picked.mean(dim=(0, 2, 3, 4))
    head, target = torch.stack(heads, dim=1), torch.stack(targets, dim=1)
    tmp, tmp_target = torch.stack(tmps, dim=1), torch.stack(tmp_targets, dim=1)
    if record is not None:
        record.update(logsegs=logp, nll_per_frame=nll_per_frame, diff_head_raw=torch.stack(raws, dim=1),
                      diff_heat=head, diff_target=target, tmp_result=tmp, tmp_target=tmp_target,
                      update_w=torch.stack(weights, dim=0))
    return {
        "loss_nll": nll_per_frame.mean(),
        "loss_diff": F.mse_loss(head, target),
        "loss_tmp": F.binary_cross_entropy(tmp, tmp_target),
    }
