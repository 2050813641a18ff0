"""mmengine integration: registered model, datasets, metric and hooks (scope ``reusegate``).

Importing this package registers everything; :mod:`reusegate.registry` lists it as the ``locations`` of its
registries, so a config with ``default_scope = 'reusegate'`` needs no ``custom_imports``.
"""
from .datasets import DavisClipDataset, DavisVideoDataset, YouTubeVOSClipDataset
from .frozen import FrozenFeatureClipDataset, ProceduralFrozenClipDataset
from .hooks import EpochSeedHook, GateMarginHook, ProgressBarHook
from .metric import VOSMetric
from .stills import StillImageClipDataset
from .synthetic import SyntheticClipDataset
from .model import HostOnly, ReuseGateVOS, export_state_dict, load_exported

__all__ = ["ReuseGateVOS", "HostOnly", "export_state_dict", "load_exported", "DavisClipDataset",
           "DavisVideoDataset", "YouTubeVOSClipDataset", "SyntheticClipDataset", "FrozenFeatureClipDataset",
           "ProceduralFrozenClipDataset", "StillImageClipDataset", "VOSMetric",
           "GateMarginHook", "EpochSeedHook", "ProgressBarHook"]
