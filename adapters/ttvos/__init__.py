"""TTVOS host (Park et al., arXiv 2011.04445) for the reuse gate: backbones, model, video loop, losses, adapter.

``ReuseGate(TTVOS("mobilenet_v2s16", backbone_weights="imagenet"), "ttvos")`` is G-TTVOS; ``TTVOS(checkpoint=...)``
loads upstream TTVOS checkpoints.
"""
from .backbones import mobilenet_v2s16, resnet18s16, resnet50s16
from .checkpoints import load_ttvos_checkpoint
from .model import TTVOS, TTVOSState

__all__ = ["TTVOS", "TTVOSState", "load_ttvos_checkpoint", "mobilenet_v2s16", "resnet18s16", "resnet50s16"]
