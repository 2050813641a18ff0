"""reusegate: the reuse gate of Park et al. (CVPR 2021) for any video object segmentation host.

``ReuseGate(model, adapter)`` wraps a host network through its :class:`HostAdapter` (three taps) and skips
the host's expensive part on frames similar to the last fully computed one.
"""
from .gate import VARIANTS, FrameResult, HostRunner, ReuseGate, Session
from .host import Features, HostAdapter, TapSpec, soft_aggregate

__version__ = "0.1.0"
__all__ = ["ReuseGate", "Session", "HostRunner", "FrameResult", "VARIANTS", "Features", "HostAdapter", "TapSpec",
           "soft_aggregate", "__version__"]
