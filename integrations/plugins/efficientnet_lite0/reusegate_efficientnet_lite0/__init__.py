"""EfficientNet-Lite0 backbone for reusegate, registered as ``efficientnet_lite0`` through the plugin hooks."""
from .model import INPUT_MEAN, INPUT_STD, EfficientNetLite0, default_weight_file

__all__ = ["EfficientNetLite0", "INPUT_MEAN", "INPUT_STD", "default_weight_file"]
