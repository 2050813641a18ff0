"""Load upstream TTVOS checkpoints into :class:`~reusegate.adapters.ttvos.model.TTVOS`, strictly, key by key.

An upstream checkpoint holds ``{'net': state_dict, ...}`` with every key under ``vos.``: ``vos.backbone.*``
(torchvision names), ``vos.gcm.*`` (template generator), ``vos.gcq.*`` (template query) and ``vos.refine.*``
(decoder). reusegate's module tree uses the same names below the prefix, so the map is "drop ``vos.``".
A missing or unexpected key, or a shape mismatch, is an error that names them. Files are read with
``weights_only=True``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Mapping, Union

import torch
from torch import Tensor, nn

from reusegate.adapters.frtm.checkpoints import load_strict

__all__ = ["UPSTREAM_PREFIX", "read_ttvos_checkpoint", "map_ttvos_state_dict", "load_ttvos_checkpoint"]

StateDict = Dict[str, Tensor]
UPSTREAM_PREFIX = "vos."
_HINT = ("Is it for another backbone (resnet18s16 / resnet50s16 / ...)? Build TTVOS(backbone=...) to match the "
         "checkpoint's backbone.")


def read_ttvos_checkpoint(path: Union[str, Path]) -> StateDict:
    """The state dict of an upstream checkpoint file (its ``'net'`` entry, or the file itself if it is one)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("net", "state_dict"):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(key), dict):
            return ckpt[key]
    if isinstance(ckpt, dict) and all(isinstance(v, Tensor) for v in ckpt.values()):
        return ckpt
    raise ValueError(f"{path} is not a TTVOS checkpoint: expected a dict with a 'net' state dict")


def map_ttvos_state_dict(state: Mapping[str, Tensor]) -> StateDict:
    """Upstream keys -> :class:`TTVOS` keys. Keys outside ``vos.`` raise ``ValueError`` listing all of them."""
    foreign = sorted(k for k in state if not k.startswith(UPSTREAM_PREFIX))
    if foreign:
        raise ValueError(f"checkpoint has {len(foreign)} keys outside {UPSTREAM_PREFIX!r} (not an upstream TTVOS "
                         f"state dict): {foreign[:20]}")
    return {k[len(UPSTREAM_PREFIX):]: v for k, v in state.items()}


def load_ttvos_checkpoint(model: nn.Module, checkpoint: Union[str, Path, Mapping[str, Tensor]]) -> nn.Module:
    """Load an upstream TTVOS checkpoint (a path or its ``vos.*`` state dict) into ``model``; returns ``model``."""
    state = read_ttvos_checkpoint(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    load_strict(model, map_ttvos_state_dict(state), "TTVOS checkpoint", _HINT)
    return model
