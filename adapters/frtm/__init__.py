"""FRTM host (Robinson et al., CVPR 2020) for the reuse gate: backbones, refiner, target model, adapter.

``ReuseGate(FRTM("resnet18"), "frtm")`` is G-FRTM (Park et al., CVPR 2021); ``load_gfrtm_into`` loads its
upstream checkpoints, ``FRTM(checkpoint=...)`` upstream FRTM ones.
"""
from .adapter import FRTMAdapter
from .backbones import mobilenet_v2, resnet18, resnet50, resnet101
from .checkpoints import load_frtm_checkpoint, load_gfrtm_checkpoint, load_gfrtm_into
from .model import FRTM
from .refiner import Refiner
from .target_model import TargetModel, TargetModelParams

__all__ = [
    "FRTM",
    "FRTMAdapter",
    "Refiner",
    "TargetModel",
    "TargetModelParams",
    "load_frtm_checkpoint",
    "load_gfrtm_checkpoint",
    "load_gfrtm_into",
    "mobilenet_v2",
    "resnet18",
    "resnet50",
    "resnet101",
]
