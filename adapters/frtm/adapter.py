"""FRTM's taps for the reuse gate: ``ReuseGate(FRTM(...), "frtm")`` is G-FRTM.

Tap mapping (strides; FRTM feature keys in brackets):

* feature tap: ``shallow`` = backbone up to ``s8`` (stem, ResNet ``layer1``/``layer2`` = FRTM ``layer2``/``layer3``);
  ``deep`` adds ``s16`` and ``s32``; the match feature is ``s8`` (G-FRTM's "f8");
* score: the object's target model on ``s16`` (stride 16, one channel, raw); ``advance`` feeds the merged soft
  mask of computed frames to its memory and periodic Gauss-Newton update (in training too);
* refined tap: the output of the stride-16 refinement stage (64 ch), what G-FRTM caches as ``prevRefine``.

Training on frozen taps: a feature dict may carry tap ``'score'``, the object's coarse score precomputed by a
target model fitted once on its first frame and frozen (FRTM's training setting; see
:class:`reusegate.integrations.mmengine.frozen.FrozenFeatureClipDataset`). The adapter then fits nothing and
returns that score; ``'image'`` may have zero channels there (only its size is read).

Multi-object: every object has its own target model and decoder pass over the frame's shared features; the core
merges with :meth:`FRTMAdapter.merge` (soft aggregation on odds).

Int8 reuse decoding (``GateConfig.reuse_precision='int8'``, beyond the paper): a reused object's stride-8 and
stride-4 stages and head run with int8 convolutions (:mod:`reusegate.core.int8`) from the calibration the model's
``.json`` stores (adapter setting ``int8_qparams``, written by ``tools/calibrate_int8.py``); the int8 copy of the
decoder is made from the current weights on first use, so it serves inference only.

Label rule. Upstream FRTM merges by soft aggregation (clamp, background = min(1 - p), softmax over the odds
``p / (1 - p)``, keep each slot only where it is the arg-max) and its label map should be that arg-max. But its
``run_sequence`` repeats the aggregation on the *already merged* slots before writing labels, so a pixel keeps its
object label only where the merged value exceeds 0.5 (50 of 960 pixels differ in the golden ``merge.pt``). Per
the project rule (follow the paper, document the difference) the default ``label_rule="argmax"`` writes the
aggregation's arg-max, as FRTM's paper describes it; ``label_rule="upstream"`` reproduces upstream's label maps.
The merged probabilities are identical under both rules.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from reusegate.core.host import Features, HostAdapter, TapSpec, soft_aggregate
from reusegate.core.int8 import ConvCalibration, int8_copy
from reusegate.tools.optimize import fold_batchnorm

from .model import FRTM
from .target_model import TargetModel

if TYPE_CHECKING:
    from reusegate.deploy.graphs import GraphRunner, GraphStage

__all__ = ["FRTMAdapter", "FRTMObject", "LABEL_RULES", "INT8_PREFIXES"]

LABEL_RULES = ("argmax", "upstream")
INT8_PREFIXES = ("stages.s8.", "stages.s4.", "head.")
"""The refiner's convolutions a reused object runs (the never-skipped half), which int8 reuse decoding quantizes."""
REFINED_SPLIT = "s16"
"""The refinement stage whose output is the refined tap (G-FRTM's). ``'s8'``, which also skipped the stride-8
stage on reused frames, was retired in 0.2.0: measured not to pay (docs/experiments/split-s8.md)."""


@dataclass
class FRTMObject:
    """Per-object state: one target model per batch element (one at inference)."""

    models: List[TargetModel]  # empty: scores come precomputed with the features (tap 'score')
    # the feature dict of the frame the last apply() scored, until advance() consumes it (a reference: the id of
    # a freed dict can come back for a later frame's)
    scored_on: Optional[Features] = field(default=None)


class FRTMAdapter(HostAdapter):
    """Adapter of :class:`~reusegate.adapters.frtm.model.FRTM`.

    Args:
        model: the FRTM host.
        label_rule: ``"argmax"`` (default, the paper's soft aggregation) or ``"upstream"`` (see module doc).
        input_scale: resize frames by this factor before the network (e.g. 0.5 on a CPU); the core resizes the
            probabilities back to the frame size.
        input_height: instead of a factor, resize every frame to this height (aspect kept): a model trained at
            one internal size (the default model: 240, i.e. 480p halved) then sees that size whatever the
            video's resolution. Exclusive with ``input_scale``.
        refined_split: only :data:`REFINED_SPLIT`; read so that a 0.1 ``.json`` or config that asks for the
            retired ``'s8'`` is told so.
        int8_qparams: the int8 calibration of the decoder's never-skipped half (:meth:`calibrate_int8`), which
            makes ``reuse_precision='int8'`` available; the shipped models' ``.json`` carry one.
    """

    def __init__(self, model: FRTM, label_rule: str = "argmax", input_scale: float = 1.0,
                 input_height: Optional[int] = None, refined_split: str = REFINED_SPLIT,
                 int8_qparams: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(model)
        if not isinstance(model, FRTM):
            raise ValueError(f"FRTMAdapter wraps an FRTM model, got {type(model).__name__}")
        if label_rule not in LABEL_RULES:
            raise ValueError(f"label_rule must be one of {LABEL_RULES}, got {label_rule!r}")
        if not input_scale > 0:
            raise ValueError(f"input_scale must be > 0, got {input_scale}")
        if input_height is not None:
            if input_scale != 1.0:
                raise ValueError("give input_scale or input_height, not both")
            if not isinstance(input_height, int) or input_height < 32:
                raise ValueError(f"input_height must be an int >= 32 (pixels), got {input_height!r}")
        if refined_split == "s8":
            raise ValueError("refined_split='s8' was retired in 0.2.0 (measured not to pay, "
                             "docs/experiments/split-s8.md); drop the setting: the refined tap is G-FRTM's 's16', and "
                             "reuse_path='hold' is the cheap reuse path")
        if refined_split != REFINED_SPLIT:
            raise ValueError(f"refined_split must be {REFINED_SPLIT!r}, got {refined_split!r}")
        self.label_rule = label_rule
        self.int8_qparams = int8_qparams
        self._int8_refiner: Optional[torch.nn.Module] = None  # made on first use (refine_reused)
        self.graphs: Optional[GraphRunner] = None  # a compiled backend's graphs (bind_graphs); None: torch
        self.input_scale = float(input_scale)
        self.input_height = input_height
        self.taps = TapSpec(
            match_channels=model.backbone.feature_channels["s8"],
            match_stride=8,
            score_stride=16,
            refined_channels=model.refiner.widths[REFINED_SPLIT],
            refined_stride=int(REFINED_SPLIT[1:]),
        )

    # ------------------------------------------------------------------ feature tap
    def preprocess(self, image: Tensor) -> Tensor:
        """[0, 1] RGB -> optional resize -> FRTM's 0..255 affine normalisation."""
        h = image.shape[-2]
        scale = self.input_scale if self.input_height is None else self.input_height / h
        if scale != 1.0:
            size = [max(16, round(s * scale)) for s in image.shape[-2:]]
            image = F.interpolate(image, size=size, mode="bilinear", align_corners=False, antialias=scale < 1.0)
        return self.model.normalize(image * 255.0)

    def shallow(self, image: Tensor) -> Features:
        """``s4``, ``s8`` and the input itself (``'image'``: its size sets the logits' size; augmentation reads it)."""
        if self.graphs is not None:
            s4, s8 = self.graphs.run("shallow", image)
            return {"s4": s4, "s8": s8, "image": image}
        return {**self.model.backbone.forward_shallow(image), "image": image}

    def deep(self, feats: Features) -> Features:
        if self.graphs is not None:
            s16, s32 = self.graphs.run("deep", feats["s8"])
            return {**feats, "s16": s16, "s32": s32}
        return self.model.backbone.forward_deep(feats)

    def match_feature(self, feats: Features) -> Tensor:
        return feats["s8"]

    # ------------------------------------------------------------------ score provider
    def start_object(self, feats: Features, mask: Tensor) -> FRTMObject:
        """Fit one target model per batch element on ``s16`` (plus augmented copies of the frame).

        Features with a precomputed ``'score'`` tap (frozen target models, training) fit nothing.
        """
        if "score" in feats:
            return FRTMObject([])
        models = [
            self.model.start_target_model({"s16": feats["s16"][i:i + 1]}, feats["image"][i:i + 1], mask[i:i + 1])
            for i in range(mask.shape[0])
        ]
        return FRTMObject(models)

    def score(self, state: FRTMObject, feats: Features) -> Tensor:
        if not state.models:
            if "score" not in feats:
                raise ValueError("this object was started on precomputed features (tap 'score'); every frame "
                                 "needs its precomputed score too")
            return feats["score"]
        state.scored_on = feats
        graph = None if self.graphs is None else self._score_graph
        return torch.cat([tm.apply(feats["s16"][i:i + 1], graph) for i, tm in enumerate(state.models)])

    def _score_graph(self, s16: Tensor, project: Tensor, filter: Tensor) -> tuple[Tensor, Tensor]:
        """The target model's apply on the graph backend: ``(projected s16, score)``."""
        projected, score = self.graphs.run("score", s16, project, filter)
        return projected, score

    def advance(self, state: FRTMObject, feats: Features, prob: Tensor, computed: Tensor) -> None:
        """Online learning on computed frames: memory insert (and every ``train_skipping``-th scored frame a GN-CG
        solve) from the detached merged soft mask, per batch element.

        In training every frame is scored (both paths run); a frame the gate then reused is taken back from the
        target model's frame count, so its solves fall on the frames they fall on in a session, which scores
        computed frames only.
        """
        scored_here, state.scored_on = state.scored_on is feats, None
        if not scored_here:  # a session's reused frame: nothing was scored
            return
        for i, tm in enumerate(state.models):
            if bool(computed[i]):
                tm.update(prob[i:i + 1].detach())
            else:
                tm.discard_apply()

    # ------------------------------------------------------------------ refined-feature tap
    def refine_deep(self, feats: Features, score: Tensor) -> Tensor:
        """The stages up to the refined tap (a fine-tuned backbone stage first computes its tap)."""
        if self.graphs is not None:
            return self.graphs.run("refine_deep", feats["s16"], feats["s32"], score)[0]
        return self.model.refiner.forward_deep(self.model.complete(feats), score)

    def refine_shallow(self, feats: Features, score: Tensor, refined: Tensor) -> Tensor:
        """The stages after the refined tap and the head."""
        if self.graphs is not None:
            return self.graphs.run("refine_shallow", feats["image"], feats["s4"], feats["s8"], score, refined)[0]
        return self.model.refiner.forward_shallow(feats, score, refined, feats["image"].shape[-2:])

    # ------------------------------------------------------------------ int8 reuse decoding
    def reuse_precisions(self) -> Tuple[str, ...]:
        """``'int8'`` besides ``'float32'`` where the model carries a calibration and runs in torch on the CPU."""
        on_cpu = next(self.model.parameters()).device.type == "cpu"
        if self.int8_qparams is None or self.graphs is not None or not on_cpu:
            return ("float32",)
        return ("float32", "int8")

    def refine_reused(self, feats: Features, score: Tensor, refined: Tensor, precision: str) -> Tensor:
        """The stages after the refined tap and the head with int8 convolutions (a reused object; a session checked
        :meth:`reuse_precisions` when it started)."""
        if precision != "int8" or self.int8_qparams is None:
            return super().refine_reused(feats, score, refined, precision)
        if self._int8_refiner is None:  # calibrated with BatchNorm folded, as models load for inference
            folded = copy.deepcopy(self.model.refiner).eval()
            fold_batchnorm(folded)
            self._int8_refiner = int8_copy(folded, self.int8_qparams)
        return self._int8_refiner.forward_shallow(feats, score, refined, feats["image"].shape[-2:])

    def calibrate_int8(self, feed: Callable[[], None]) -> Dict[str, Any]:
        """The int8 calibration of the convolutions of :data:`INT8_PREFIXES`, observed while ``feed`` runs the float
        model on real video (``tools/calibrate_int8.py``); store it as the adapter setting ``int8_qparams``. The model
        must be loaded for inference (BatchNorm folded), as the int8 copy is made from the folded weights."""
        unfolded = [n for n, m in self.model.refiner.named_modules()
                    if isinstance(m, torch.nn.BatchNorm2d) and n.startswith(INT8_PREFIXES)]
        if unfolded:
            raise ValueError(f"calibrate a model loaded for inference, its BatchNorms folded into the convolutions "
                             f"(reusegate.tools.optimize.for_inference); {unfolded[0]} is not")
        return ConvCalibration(self.model.refiner, INT8_PREFIXES).run(feed)

    # ------------------------------------------------------------------ deployment (reusegate.deploy)
    def graph_stages(self, image: Tensor) -> Dict[str, "GraphStage"]:
        """The tap calls as exportable modules, with examples at ``image``'s working size (:mod:`.deploy`)."""
        from .deploy import graph_stages

        return graph_stages(self, image)

    def bind_graphs(self, graphs: "GraphRunner") -> "FRTMAdapter":
        """A copy of this adapter whose backbone, score apply and decoder halves run in ``graphs`` (a compiled
        backend, :mod:`reusegate.deploy`); first-frame fits, online updates and the merge stay in torch."""
        bound = copy.copy(self)
        bound.graphs = graphs
        return bound

    # ------------------------------------------------------------------ multi-object
    def merge(self, probs: Tensor) -> tuple[Tensor, Tensor]:
        merged, labels = soft_aggregate(probs)
        if self.label_rule == "upstream":
            kept = merged.gather(0, labels.unsqueeze(0))[0] > 0.5
            labels = torch.where(kept, labels, torch.zeros_like(labels))
        return merged, labels
