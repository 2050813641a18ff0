"""The per-frame paths a gated object takes, shared by inference sessions and training so both run the same code.

* :func:`start_caches`: an object's start frame fills ``S(t-n)`` (its mask at the score tap), ``R(t-n)`` (the
  host's refined feature from its own score) and the template;
* :func:`compute_path`: the host's score and deep decoder (a computed frame);
* :func:`translate_path`: ``delta`` from the matched template, ``S = S(t-n) + delta`` and the refine-translator
  on ``R(t-n)`` (a reused frame);
* the ``hold`` reuse path needs no function: a reused frame decodes ``S(t-n)`` and ``R(t-n)`` as they are;
* :func:`decode_deep` / :func:`decode_shallow`: the adapter's decoder halves, with the object's state for hosts
  whose decoder reads it.
"""
from __future__ import annotations

from typing import Any, Dict

from torch import Tensor

from reusegate.core.host import HostAdapter, resize
from reusegate.core.layers import GateLayers

__all__ = ["decode_deep", "decode_shallow", "start_caches", "compute_path", "translate_path"]


def decode_deep(a: HostAdapter, state: Any, feats: Dict[str, Tensor], score: Tensor) -> Tensor:
    """``a.refine_deep``, with the object's state for hosts whose decoder reads it (sessions and training alike)."""
    return a.refine_deep(feats, score, state=state) if a.stateful_decoder else a.refine_deep(feats, score)


def decode_shallow(a: HostAdapter, state: Any, feats: Dict[str, Tensor], score: Tensor, refined: Tensor,
                   precision: str = "float32") -> Tensor:
    """``a.refine_shallow``, with the object's state for hosts whose decoder reads it; a reused object's decode in
    another ``precision`` (``GateConfig.reuse_precision``) is ``a.refine_reused``."""
    if precision != "float32":
        return a.refine_reused(feats, score, refined, precision)
    if a.stateful_decoder:
        return a.refine_shallow(feats, score, refined, state=state)
    return a.refine_shallow(feats, score, refined)


def start_caches(a: HostAdapter, layers: GateLayers, state: Any, feats: Dict[str, Tensor], match: Tensor,
                 mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(S(t-n), R(t-n), template)`` on an object's start frame: S is the mask at the score tap (upstream's
    initial S), R the host's refined feature from its own score (upstream's ``Test_Init``)."""
    score = a.score(state, feats)
    refined = decode_deep(a, state, feats, score)
    prev_score = resize(mask, tuple(score.shape[-2:]), "nearest")
    template = layers.template_generator(match, resize(mask, tuple(match.shape[-2:]), "nearest"))
    return prev_score, refined, template


def compute_path(a: HostAdapter, state: Any, feats: Dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """``(S, R)`` of a computed frame: the host's score and its deep decoder (needs the deep features)."""
    score = a.score(state, feats)
    return score, decode_deep(a, state, feats, score)


def translate_path(layers: GateLayers, matched: Tensor, prev_score: Tensor,
                   prev_refined: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(delta, S(t-n) + delta, translated R)`` of a reused frame, from the template matcher's output ``D_t``."""
    delta = layers.delta(matched, prev_score)
    return delta, prev_score + delta, layers.refine_translator(prev_refined, delta)

