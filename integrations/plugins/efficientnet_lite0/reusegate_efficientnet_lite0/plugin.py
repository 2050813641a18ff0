"""The plugin module named by the ``reusegate`` entry point: it only registers the backbone."""
from __future__ import annotations

from reusegate.hookspecs import Register, hookimpl

from .model import EfficientNetLite0


@hookimpl
def register_backbones(register: Register) -> None:
    # The class itself is the factory: ``MODELS.build(dict(type='efficientnet_lite0', weights=None))`` works.
    register("efficientnet_lite0", EfficientNetLite0)
