"""TTVOS host (Park et al., arXiv 2011.04445) for the reuse gate: backbones, model, video loop, losses, adapter.

``ReuseGate(TTVOS("mobilenet_v2s16", backbone_weights="imagenet"), "ttvos")`` is G-TTVOS;
``TTVOS(checkpoint=...)`` loads upstream TTVOS checkpoints; ``segment_video`` runs the host alone.
"""
from .adapter import TTVOSAdapter
from .backbones import mobilenet_v2s16, resnet18s16, resnet50s16
from .checkpoints import load_ttvos_checkpoint
from .losses import LossOptions, clip_losses
from .model import TTVOS, TTVOSState
from .video import segment_video

__all__ = ["TTVOS", "TTVOSAdapter", "TTVOSState", "LossOptions", "clip_losses", "load_ttvos_checkpoint",
           "mobilenet_v2s16", "resnet18s16", "resnet50s16", "segment_video"]
