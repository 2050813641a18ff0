"""The plugin module named by the ``reusegate`` entry point: it only registers the backbone.

docs/plugins.md shows this file verbatim (tests/test_docs.py checks that), hence the absolute import.
"""
from reusegate.plugins import Register, hookimpl

from reusegate_efficientnet_lite0.model import EfficientNetLite0, EfficientNetLite1, EfficientNetLite2


@hookimpl
def register_backbones(register: Register) -> None:  # uniform taps: forward_shallow -> s4, s8; forward_deep -> s16, s32
    register("efficientnet_lite0", EfficientNetLite0)  # the class is the factory: dict(type=..., weights=None) works
    register("efficientnet_lite1", EfficientNetLite1)
    register("efficientnet_lite2", EfficientNetLite2)
