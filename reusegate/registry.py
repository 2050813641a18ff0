"""mmengine registries of scope ``reusegate``.

This module's name is load-bearing: mmengine imports ``<scope>.registry`` when a config sets
``default_scope = 'reusegate'``, and each registry imports its ``locations`` on first use, so configs need no
``custom_imports`` for built-ins. Backbones, hosts and adapters contributed by plugins (see
:mod:`reusegate.hookspecs`) are copied in on first use too.
"""
from __future__ import annotations

from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine import registry as mmengine_registry
from mmengine.registry import Registry

__all__ = ["MODELS", "ADAPTERS", "DATASETS", "TRANSFORMS", "METRICS", "HOOKS"]


class PluginRegistry(Registry):
    """A registry that, besides its ``locations``, pulls in what plugins register for ``plugin_kinds``."""

    def __init__(self, *args, plugin_kinds: tuple[str, ...] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._plugin_kinds = plugin_kinds
        self._plugins_loaded = False

    def import_from_location(self) -> None:
        super().import_from_location()
        if not self._plugins_loaded:
            self._plugins_loaded = True
            from . import plugins

            for kind in self._plugin_kinds:
                plugins.register_into(self, kind)


# Models: gated VOS models, hosts and backbones (``backbone=dict(type='mobilenet_v2')``).
MODELS = PluginRegistry(
    "model",
    parent=MMENGINE_MODELS,
    scope="reusegate",
    locations=["reusegate.integrations.mmengine"],
    plugin_kinds=("backbones", "hosts"),
)
# Host adapters by name (``adapter=dict(type='frtm')``).
ADAPTERS = PluginRegistry("adapter", scope="reusegate", locations=[], plugin_kinds=("adapters",))
# Clip datasets built on the data readers.
DATASETS = Registry("dataset", parent=MMENGINE_DATASETS, scope="reusegate",
                    locations=["reusegate.integrations.mmengine"])
# Clip-consistent augmentations (mmcv ``BaseTransform``).
TRANSFORMS = Registry("transform", parent=MMENGINE_TRANSFORMS, scope="reusegate",
                      locations=["reusegate.data.transforms"])
# VOS metric (J&F, reuse rate, FLOPs).
METRICS = Registry("metric", parent=MMENGINE_METRICS, scope="reusegate",
                   locations=["reusegate.integrations.mmengine"])
# Training hooks (gate-loss margin schedule).
HOOKS = Registry("hook", parent=MMENGINE_HOOKS, scope="reusegate",
                 locations=["reusegate.integrations.mmengine"])

# Children of the remaining mmengine registries a Runner builds from, so that with the default scope
# 'reusegate' every lookup finds a node of this scope (and falls back to mmengine's entries) without warnings.
_PASS_THROUGH = {
    "LOOPS": "loop", "DATA_SAMPLERS": "data sampler", "OPTIMIZERS": "optimizer",
    "OPTIM_WRAPPERS": "optim_wrapper", "OPTIM_WRAPPER_CONSTRUCTORS": "optimizer wrapper constructor",
    "PARAM_SCHEDULERS": "parameter scheduler", "LOG_PROCESSORS": "log_processor",
    "VISUALIZERS": "visualizer", "VISBACKENDS": "vis_backend",
}
for _attr, _name in _PASS_THROUGH.items():
    globals()[_attr] = Registry(_name, parent=getattr(mmengine_registry, _attr), scope="reusegate")
__all__ += list(_PASS_THROUGH)
