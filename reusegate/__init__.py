"""reusegate: the reuse gate of Park et al. (CVPR 2021) for any video object segmentation host.

``ReuseGate(model, adapter)`` wraps a host network through its :class:`HostAdapter` (three taps) and skips
the host's expensive part on frames similar to the last fully computed one.

The names below are imported on first use, so ``import reusegate.evaluation`` (for example in evaluation
worker processes) does not pay for importing torch.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "ReuseGate": "gate", "Session": "gate", "HostRunner": "gate", "FrameResult": "gate", "VARIANTS": "gate",
    "Features": "host", "HostAdapter": "host", "TapSpec": "host", "soft_aggregate": "host",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'reusegate' has no attribute {name!r}")
