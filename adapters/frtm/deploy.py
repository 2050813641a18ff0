"""FRTM's graph pieces for deployment: the tap calls as tensor-only modules.

:func:`graph_stages` gives :mod:`reusegate.deploy` the modules it exports, one per tap call a session makes on the
host (the gate's own graphs come from the core); :meth:`FRTMAdapter.bind_graphs` gives the adapter whose tap calls
a compiled runtime answers, so sessions and gate logic stay the same code whatever runs the convolutions.

What stays in torch: ``preprocess`` (the antialiased resize and the affine normalisation), the target model's
first-frame fit and online updates (Gauss-Newton with autograd; the score graph takes the fitted ``project`` and
``filter`` weights as inputs, so each update reaches the next frame without recompiling), the first frame's
augmented samples, and the merge.
"""
from __future__ import annotations

from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reusegate.core.host import HostAdapter
from reusegate.deploy.graphs import GraphStage

from .model import FRTM

__all__ = ["graph_stages"]


class _Shallow(nn.Module):
    """Normalised image -> ``s4``, ``s8``: the part every frame runs."""

    def __init__(self, model: FRTM) -> None:
        super().__init__()
        self.backbone = model.backbone

    def forward(self, image: Tensor) -> Tuple[Tensor, Tensor]:
        feats = self.backbone.forward_shallow(image)
        return feats["s4"], feats["s8"]


class _Deep(nn.Module):
    """``s8`` -> ``s16``, ``s32``: the skippable backbone stages."""

    def __init__(self, model: FRTM) -> None:
        super().__init__()
        self.backbone = model.backbone

    def forward(self, s8: Tensor) -> Tuple[Tensor, Tensor]:
        feats = self.backbone.forward_deep({"s8": s8})
        return feats["s16"], feats["s32"]


class _Score(nn.Module):
    """The target model's apply with its learnt weights as inputs: ``(projected s16, score)``; the projection is
    what an online update stores in the memory."""

    def forward(self, s16: Tensor, project: Tensor, filter: Tensor) -> Tuple[Tensor, Tensor]:
        projected = F.conv2d(s16, project)
        return projected, F.conv2d(projected, filter, padding=1)


class _RefineDeep(nn.Module):
    """``(s16, s32, score)`` -> the refined feature ``R`` (the ``s32`` and ``s16`` refinement stages)."""

    def __init__(self, model: FRTM) -> None:
        super().__init__()
        self.model = model

    def forward(self, s16: Tensor, s32: Tensor, score: Tensor) -> Tensor:
        return self.model.refiner.forward_deep(self.model.complete({"s16": s16, "s32": s32}), score)


class _RefineShallow(nn.Module):
    """``(image, s4, s8, score, R)`` -> logits at the image's size (the ``s8``, ``s4`` stages and the head); only
    the image's shape is read."""

    def __init__(self, model: FRTM) -> None:
        super().__init__()
        self.refiner = model.refiner

    def forward(self, image: Tensor, s4: Tensor, s8: Tensor, score: Tensor, refined: Tensor) -> Tensor:
        return self.refiner.forward_shallow({"s4": s4, "s8": s8}, score, refined, image.shape[-2:])


def _spatial(name: str) -> Dict[int, str]:
    """The two dynamic axes of a ``[1, C, H, W]`` map, named after it (each map its own names)."""
    return {2: f"{name}_height", 3: f"{name}_width"}


def graph_stages(adapter: HostAdapter, image: Tensor) -> Dict[str, GraphStage]:
    """The stages of an FRTM adapter (torch-run) for the normalised example ``image`` (``[1, 3, H, W]``, the working
    size), in run order, each with example inputs computed by the torch model itself."""
    model = adapter.model
    with torch.no_grad():
        feats = adapter.deep(adapter.shallow(image))
        c16 = model.backbone.feature_channels["s16"]
        c = model.target_params.c_channels
        generator = torch.Generator().manual_seed(0)  # example weights: leave the global RNG alone
        project = torch.randn(c, c16, 1, 1, generator=generator) / c16 ** 0.5
        filter = torch.randn(1, c, 3, 3, generator=generator) / (9 * c) ** 0.5
        projected, score = _Score()(feats["s16"], project, filter)
        refined = _RefineDeep(model)(feats["s16"], feats["s32"], score)
    maps = {"image": _spatial("image"), "s4": _spatial("s4"), "s8": _spatial("s8"), "s16": _spatial("s16"),
            "s32": _spatial("s32"), "score": _spatial("score"), "refined": _spatial("refined"),
            "projected": _spatial("projected"), "logits": _spatial("image")}
    return {
        "shallow": GraphStage(_Shallow(model), {"image": image}, ("s4", "s8"), maps),
        "deep": GraphStage(_Deep(model), {"s8": feats["s8"]}, ("s16", "s32"), maps),
        "score": GraphStage(_Score(), {"s16": feats["s16"], "project": project, "filter": filter},
                            ("projected", "score"), maps),
        "refine_deep": GraphStage(_RefineDeep(model), {"s16": feats["s16"], "s32": feats["s32"], "score": score},
                                  ("refined",), maps),
        "refine_shallow": GraphStage(_RefineShallow(model), {"image": image, "s4": feats["s4"], "s8": feats["s8"],
                                                             "score": score, "refined": refined}, ("logits",), maps),
    }
