"""reusegate: the reuse gate of Park et al. (CVPR 2021) for any video object segmentation host.

``ReuseGate(model, adapter)`` wraps a host network through its :class:`HostAdapter` (three taps) and skips
the host's expensive part on frames similar to the last fully computed one.

The names below are imported on first use, so ``import reusegate.evaluation`` (for example in evaluation
worker processes) does not pay for importing torch.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.2.0"

_LAZY = {
    "ReuseGate": "core.gate", "Session": "core.session", "HostRunner": "core.session", "FrameResult": "core.session",
    "GateConfig": "core.config", "VARIANTS": "core.config",
    "Features": "core.host", "HostAdapter": "core.host", "TapSpec": "core.host", "soft_aggregate": "core.host",
    "default_gate": "zoo.catalog", "load_gate": "zoo.catalog", "save_gate": "zoo.catalog",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'reusegate' has no attribute {name!r}")
