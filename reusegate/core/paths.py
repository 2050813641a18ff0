"""The per-frame paths a gated object takes, shared by inference sessions and training so both run the same code.

* :func:`start_caches`: an object's start frame fills ``S(t-n)`` (its mask at the score tap), ``R(t-n)`` (the
  host's refined feature from its own score) and the template;
* :func:`compute_path`: the host's score and deep decoder (a computed frame);
* :func:`translate_path`: ``delta`` from the matched template, ``S = S(t-n) + delta`` and the refine-translator
  on ``R(t-n)`` (a reused frame);
* :func:`hold_path`: ``S(t-n)`` and ``R(t-n)`` as they are, or moved by the object's estimated shift (a reused
  frame on the ``hold`` and ``shift`` reuse paths);
* :func:`decode_deep` / :func:`decode_shallow`: the adapter's decoder halves, with the object's state for hosts
  whose decoder reads it.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import torch.nn.functional as F
from torch import Tensor

from .host import HostAdapter
from .modules import GateModules, shift_map

__all__ = ["resize", "decode_deep", "decode_shallow", "start_caches", "compute_path", "translate_path",
           "hold_path"]


def resize(x: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    """``F.interpolate`` to ``size`` (``align_corners=False`` for the smooth modes), skipped when it is the size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


def decode_deep(a: HostAdapter, state: Any, feats: Dict[str, Tensor], score: Tensor) -> Tensor:
    """``a.refine_deep``, with the object's state for hosts whose decoder reads it (sessions and training alike)."""
    return a.refine_deep(feats, score, state=state) if a.stateful_decoder else a.refine_deep(feats, score)


def decode_shallow(a: HostAdapter, state: Any, feats: Dict[str, Tensor], score: Tensor, refined: Tensor) -> Tensor:
    """``a.refine_shallow``, with the object's state for hosts whose decoder reads it."""
    if a.stateful_decoder:
        return a.refine_shallow(feats, score, refined, state=state)
    return a.refine_shallow(feats, score, refined)


def start_caches(a: HostAdapter, modules: GateModules, state: Any, feats: Dict[str, Tensor], match: Tensor,
                 mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(S(t-n), R(t-n), template)`` on an object's start frame: S is the mask at the score tap (upstream's
    initial S), R the host's refined feature from its own score (upstream's ``Test_Init``)."""
    score = a.score(state, feats)
    refined = decode_deep(a, state, feats, score)
    prev_score = resize(mask, tuple(score.shape[-2:]), "nearest")
    template = modules.template_generator(match, resize(mask, tuple(match.shape[-2:]), "nearest"))
    return prev_score, refined, template


def compute_path(a: HostAdapter, state: Any, feats: Dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """``(S, R)`` of a computed frame: the host's score and its deep decoder (needs the deep features)."""
    score = a.score(state, feats)
    return score, decode_deep(a, state, feats, score)


def translate_path(modules: GateModules, matched: Tensor, prev_score: Tensor,
                   prev_refined: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(delta, S(t-n) + delta, translated R)`` of a reused frame, from the template matcher's output."""
    delta = modules.delta(matched, prev_score)
    return delta, prev_score + delta, modules.refine_translator(prev_refined, delta)


def hold_path(modules: GateModules, reuse_path: str, match: Tensor, anchor: Tensor, anchor_mask: Optional[Tensor],
              prev_score: Tensor, prev_refined: Tensor) -> tuple[Tensor, Tensor]:
    """``(S, R)`` of a reused frame that holds the caches: as they are (``'hold'``), or (``'shift'``) moved by the
    object's motion since its last computed frame, estimated from the match features ``anchor`` (that frame's)
    and ``match`` (this one's) by :meth:`~reusegate.modules.GateModules.motion`."""
    if reuse_path != "shift":
        return prev_score, prev_refined
    shift, cells = modules.motion(match, anchor, prev_score, anchor_mask), tuple(match.shape[-2:])
    return shift_map(prev_score, shift, cells), shift_map(prev_refined, shift, cells)
