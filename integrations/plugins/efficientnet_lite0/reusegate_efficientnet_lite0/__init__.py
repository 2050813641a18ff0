"""EfficientNet-Lite backbones for reusegate, registered as ``efficientnet_lite0``, ``efficientnet_lite1`` and
``efficientnet_lite2`` through the plugin hooks."""
from .model import (INPUT_MEAN, INPUT_STD, VARIANTS, EfficientNetLite, EfficientNetLite0, EfficientNetLite1,
                    EfficientNetLite2, default_weight_file)

__all__ = ["EfficientNetLite", "EfficientNetLite0", "EfficientNetLite1", "EfficientNetLite2", "VARIANTS",
           "INPUT_MEAN", "INPUT_STD", "default_weight_file"]
