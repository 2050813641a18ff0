"""The module-tap adapter: a host's taps named by its submodules, so a config is all a new host needs.

A host is any ``nn.Module`` (typically built from mmengine's ``MODELS``) whose submodules play these roles,
each called with a fixed convention:

* ``shallow``: backbone stages that always run, chained ``x = stage(x)`` from the (normalised) image; every
  stage's output is kept under its name. The last one (or ``match``) is the feature the gate compares.
* ``deep``: the skippable backbone stages, chained on from the last shallow output.
* or instead of both, ``backbone``: a submodule with the uniform backbone taps (any backbone registered in
  ``reusegate.registry.MODELS``): ``forward_shallow`` gives the shallow features ``s4``, ``s8`` and
  ``forward_deep`` the deep ones ``s16``, ``s32``; the decoders then name those taps as inputs.
* ``score``: the coarse score ``S`` of one object. Either ``'previous_mask'`` (a mask-propagation host:
  ``S`` is the logit of the object's mask on the last computed frame, at the resolution of the ``score_ref``
  feature), or the name of a submodule with ``init_object(feats, mask) -> state`` and
  ``forward(feats, state) -> S``, and optionally ``update(state, feats, prob)`` for online learning (at run
  time; training keeps the state its first frame gave, as FRTM's upstream training does).
* ``deep_decoder``: ``module(score, *[feats[n] for n in inputs]) -> R``, the refined feature.
* ``shallow_decoder``: ``module(score, R, *[feats[n] for n in inputs]) -> logits`` at any resolution; the
  adapter upsamples them to the input size. It runs on reused frames too, where the deep stages do not run,
  so its inputs must be shallow stages.

Channels and strides of the taps are measured once with a small probe forward, so a config names modules,
never numbers. Example (see ``configs/examples/example_vos_tap_cpu.py``)::

    adapter=dict(type='module_tap', shallow=['stem', 'enc1', 'enc2'], deep=['enc3', 'enc4'],
                 score='previous_mask', deep_decoder=dict(module='dec_deep', inputs=['enc4', 'enc3']),
                 shallow_decoder=dict(module='dec_shallow', inputs=['enc2', 'enc1']))
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from reusegate.core.host import Features, HostAdapter, PreviousMask, TapSpec, resize

__all__ = ["ModuleTapAdapter", "PreviousMask"]

PREVIOUS_MASK = "previous_mask"
SHALLOW_TAPS, DEEP_TAPS = ("s4", "s8"), ("s16", "s32")
"""Feature names of a uniform-tap ``backbone`` (see :mod:`reusegate.plugins.hookspecs`)."""
MASK_CLAMP = 0.01
"""Masks are clamped to [0.01, 0.99] before the logit, so a previous-mask score stays within +-4.6."""

DecoderSpec = Union[str, Mapping[str, Any]]


def _stride(full: int, part: int, what: str) -> int:
    stride = full / part
    if abs(stride - round(stride)) > 1e-6 or round(stride) < 1:
        raise ValueError(
            f"{what} has {part} rows for a {full}-row probe image, which is not an integer stride; choose "
            "probe_size as a multiple of the host's largest stride"
        )
    return int(round(stride))


class ModuleTapAdapter(HostAdapter):
    """Adapter built from submodule names (registered as ``'module_tap'``).

    Args:
        model: the host network.
        shallow: names of the always-run stages, in order (dotted paths allowed, e.g. ``'backbone.layer1'``).
        deep: names of the skippable stages, in order.
        backbone: instead of ``shallow`` and ``deep``, the name of a submodule with the uniform backbone taps;
            its features are named ``s4``, ``s8`` (shallow) and ``s16``, ``s32`` (deep).
        deep_decoder: module name, or ``dict(module=name, inputs=[feature names])``; inputs default to the
            last deep stage.
        shallow_decoder: module name, or ``dict(module=name, inputs=[...])``; inputs (shallow stages only)
            default to the shallow stages, deepest first.
        score: ``'previous_mask'`` or the name of a score-provider submodule (see the module docstring).
        match: the shallow feature the gate compares (default: the last shallow stage).
        score_ref: previous-mask only: the feature whose resolution the score has (default: first deep stage).
        mean, std: per-channel normalisation applied to the [0, 1] image (default: none).
        probe_size: ``(H, W)`` of the probe image that measures channels and strides.
    """

    def __init__(
        self,
        model: nn.Module,
        shallow: Sequence[str] = (),
        deep: Sequence[str] = (),
        *,
        deep_decoder: DecoderSpec,
        shallow_decoder: DecoderSpec,
        score: str = PREVIOUS_MASK,
        match: Optional[str] = None,
        score_ref: Optional[str] = None,
        mean: Optional[Sequence[float]] = None,
        std: Optional[Sequence[float]] = None,
        probe_size: Sequence[int] = (64, 64),
        backbone: Optional[str] = None,
    ) -> None:
        super().__init__(model)
        if isinstance(shallow, str) or isinstance(deep, str):
            raise ValueError("shallow and deep must be lists of submodule names, e.g. shallow=['stem', 'enc1']")
        self.backbone = None if backbone is None else self._module(backbone, "backbone")
        if self.backbone is not None:
            if shallow or deep:
                raise ValueError("give either backbone=<submodule with the uniform taps> or shallow=[...] and "
                                 "deep=[...], not both")
            missing = [n for n in ("forward_shallow", "forward_deep") if not hasattr(self.backbone, n)]
            if missing:
                raise ValueError(f"backbone {backbone!r} ({type(self.backbone).__name__}) lacks {missing}; see "
                                 "reusegate.plugins.hookspecs.register_backbones")
            shallow, deep = SHALLOW_TAPS, DEEP_TAPS
        elif not shallow or not deep:
            raise ValueError("a gated host needs at least one shallow and one deep stage (shallow=[...], deep=[...]),"
                             " or a backbone with the uniform taps (backbone=<submodule name>)")
        self.shallow_names, self.deep_names = list(shallow), list(deep)
        if self.backbone is None:
            self.shallow_stages = [self._module(n, "shallow") for n in self.shallow_names]
            self.deep_stages = [self._module(n, "deep") for n in self.deep_names]
        self.deep_decoder, self.deep_inputs = self._decoder(deep_decoder, "deep_decoder", [self.deep_names[-1]])
        self.shallow_decoder, self.shallow_inputs = self._decoder(
            shallow_decoder, "shallow_decoder", self.shallow_names[::-1])
        deep_inputs = [n for n in self.shallow_inputs if n not in self.shallow_names]
        if deep_inputs:
            raise ValueError(
                f"shallow_decoder: inputs {deep_inputs} are deep stages, which do not run on reused frames; the "
                f"shallow decoder may only read shallow stages ({self.shallow_names})"
            )
        self.match_name = match or self.shallow_names[-1]
        if self.match_name not in self.shallow_names:
            raise ValueError(
                f"match={self.match_name!r} must name a shallow stage ({self.shallow_names}): the gate only "
                "sees features that are computed on every frame"
            )
        self.score_mode = score
        self.score_module = None if score == PREVIOUS_MASK else self._module(score, "score")
        if self.score_module is not None and not hasattr(self.score_module, "init_object"):
            raise ValueError(
                f"score module {score!r} ({type(self.score_module).__name__}) must define "
                "init_object(feats, mask) -> state and forward(feats, state) -> score; or use "
                "score='previous_mask'"
            )
        self.score_ref = score_ref or self.deep_names[0]
        if self.score_ref not in self.shallow_names + self.deep_names:
            raise ValueError(f"score_ref={self.score_ref!r} must name a stage ({self.shallow_names + self.deep_names})")
        self.mean = None if mean is None else torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = None if std is None else torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.taps = self._probe(tuple(int(s) for s in probe_size))

    # ------------------------------------------------------------------ construction
    def _module(self, name: str, role: str) -> nn.Module:
        if not isinstance(name, str):
            raise ValueError(f"{role}: expected a submodule name, got {name!r}")
        try:
            return self.model.get_submodule(name)
        except AttributeError:
            known = ", ".join(n for n, _ in self.model.named_children())
            raise ValueError(
                f"{role}: host {type(self.model).__name__} has no submodule {name!r}; its top-level submodules "
                f"are: {known}"
            ) from None

    def _decoder(self, spec: DecoderSpec, role: str, default_inputs: list[str]) -> tuple[nn.Module, list[str]]:
        if isinstance(spec, str):
            return self._module(spec, role), default_inputs
        if not isinstance(spec, Mapping) or "module" not in spec:
            raise ValueError(f"{role} must be a submodule name or dict(module=name, inputs=[...]), got {spec!r}")
        unknown = set(spec) - {"module", "inputs"}
        if unknown:
            raise ValueError(f"{role}: unknown keys {sorted(unknown)}; allowed: module, inputs")
        inputs = list(spec.get("inputs", default_inputs))
        stages = self.shallow_names + self.deep_names
        missing = [n for n in inputs if n not in stages]
        if missing:
            raise ValueError(f"{role}: inputs {missing} are not stage names ({stages})")
        return self._module(spec["module"], role), inputs

    @torch.no_grad()
    def _probe(self, size: tuple[int, int]) -> TapSpec:
        """Measure channels and strides with one forward of a blank image (eval mode, state restored)."""
        was_training = self.model.training
        self.model.eval()
        try:
            param = next(self.model.parameters(), None)
            device = param.device if param is not None else torch.device("cpu")
            image = torch.zeros(1, 3, *size, device=device)
            feats = self.deep(self.shallow(self.preprocess(image)))
            mask = torch.zeros(1, 1, *size, device=device)
            mask[..., size[0] // 4: size[0] // 2, size[1] // 4: size[1] // 2] = 1
            score = self.score(self.start_object(feats, mask), feats)
            refined = self.refine_deep(feats, score)
            logits = self.refine_shallow(feats, score, refined)
        finally:
            self.model.train(was_training)
        if score.shape[1] != 1 or logits.shape[1] != 1:
            raise ValueError(
                f"the score and the shallow decoder's logits must have one channel, got {score.shape[1]} and "
                f"{logits.shape[1]}"
            )
        match = feats[self.match_name]
        return TapSpec(
            match_channels=int(match.shape[1]),
            match_stride=_stride(size[0], match.shape[-2], f"match feature {self.match_name!r}"),
            score_stride=_stride(size[0], score.shape[-2], "the score"),
            refined_channels=int(refined.shape[1]),
            refined_stride=_stride(size[0], refined.shape[-2], "the deep decoder's output"),
        )

    # ------------------------------------------------------------------ feature tap
    def preprocess(self, image: Tensor) -> Tensor:
        if self.mean is None and self.std is None:
            return image
        mean = 0.0 if self.mean is None else self.mean.to(image.device)
        std = 1.0 if self.std is None else self.std.to(image.device)
        return (image - mean) / std

    def shallow(self, image: Tensor) -> Features:
        if self.backbone is not None:
            return {"image": image, **self.backbone.forward_shallow(image)}
        feats: Features = {"image": image}
        x = image
        for name, stage in zip(self.shallow_names, self.shallow_stages):
            x = feats[name] = stage(x)
        return feats

    def deep(self, feats: Features) -> Features:
        if self.backbone is not None:
            return {**feats, **self.backbone.forward_deep(feats)}
        feats = dict(feats)
        x = feats[self.shallow_names[-1]]
        for name, stage in zip(self.deep_names, self.deep_stages):
            x = feats[name] = stage(x)
        return feats

    def match_feature(self, feats: Features) -> Tensor:
        return feats[self.match_name]

    # ------------------------------------------------------------------ score / mask provider
    def start_object(self, feats: Features, mask: Tensor) -> Any:
        if self.score_module is None:
            return PreviousMask(mask)
        return self.score_module.init_object(feats, mask)

    def score(self, state: Any, feats: Features) -> Tensor:
        if self.score_module is not None:
            return self.score_module(feats, state)
        size = feats[self.score_ref].shape[-2:]
        prob = resize(state.prob, size)
        return torch.logit(prob.clamp(MASK_CLAMP, 1 - MASK_CLAMP))

    def learn(self, state: Any, feats: Features, prob: Tensor) -> None:
        """A score module's online ``update`` (run time only: its protocol cannot tell a batch's clips apart)."""
        if self.score_module is not None and hasattr(self.score_module, "update"):
            self.score_module.update(state, feats, prob)

    def advance(self, state: Any, feats: Features, prob: Tensor, computed: Tensor) -> None:
        """Previous-mask score: keep the last computed frame's merged estimate. In training it keeps its gradient,
        so the loss of a later frame reaches the decoder pass that produced the mask it was guided by
        (back-propagation through the clip, as for a recurrent host)."""
        if self.score_module is None:
            state.prob = torch.where(computed.to(prob.device).view(-1, 1, 1, 1), prob, state.prob)

    # ------------------------------------------------------------------ refined-feature tap
    def refine_deep(self, feats: Features, score: Tensor) -> Tensor:
        return self.deep_decoder(score, *[feats[n] for n in self.deep_inputs])

    def refine_shallow(self, feats: Features, score: Tensor, refined: Tensor) -> Tensor:
        logits = self.shallow_decoder(score, refined, *[feats[n] for n in self.shallow_inputs])
        image = feats["image"]
        if logits.shape[-2:] != image.shape[-2:]:
            logits = resize(logits, image.shape[-2:])
        return logits
