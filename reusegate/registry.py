"""mmengine registries of scope ``reusegate``: the one place where names are looked up.

This module's name is load-bearing: mmengine imports ``<scope>.registry`` when a config sets
``default_scope = 'reusegate'``, and each registry imports its ``locations`` on first use, so configs need no
``custom_imports`` for built-ins. Backbones, hosts and adapters registered through the plugin hooks (see
:mod:`reusegate.hookspecs`) are copied in on first use too: ``MODELS`` holds backbones and hosts (and the
mmengine models of :mod:`reusegate.integrations.mmengine`), ``ADAPTERS`` the host adapters. A name is unique
within a registry: a backbone and a host of the same name, or a plugin name that an mmengine model already
uses, is an error naming both (an adapter may share its host's name: they live in different registries).

Hosts, ``load_gate`` and ``ReuseGate`` build what they name through :func:`build` and :func:`lookup`, exactly as
configs do, so a plugin's name works everywhere the built-ins' do.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple, Union

from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine import registry as mmengine_registry
from mmengine.registry import Registry

__all__ = ["MODELS", "ADAPTERS", "DATASETS", "TRANSFORMS", "METRICS", "HOOKS", "lookup", "build", "build_backbone"]


class PluginRegistry(Registry):
    """A registry that, besides its ``locations``, pulls in what plugins register for ``plugin_kinds``.

    ``origins`` says, for every name, which kind it is and who registered it (a distribution, or the module of
    an ``@register_module`` class), for errors that list one kind or name both sides of a clash.
    """

    def __init__(self, *args: Any, plugin_kinds: Tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plugin_kinds = plugin_kinds
        self._plugins_loaded = False
        self.origins: Dict[str, Tuple[str, str]] = {}

    def import_from_location(self) -> None:
        super().import_from_location()
        if not self._plugins_loaded:
            self._add_plugins()
            self._plugins_loaded = True

    def _origin(self, name: str) -> Tuple[str, str]:
        if name in self.origins:
            return self.origins[name]
        obj = self._module_dict[name]
        return "model", f"{obj.__module__}.{getattr(obj, '__qualname__', name)}"

    def _add_plugins(self) -> None:
        """Check every plugin name against everything present first, then register all (no half-filled state)."""
        from . import plugins

        new: Dict[str, Tuple[Any, str, str]] = {}
        for kind in self._plugin_kinds:
            for name, entry in plugins.available(kind).items():
                taken = (new[name][1:] if name in new else self._origin(name) if name in self._module_dict
                         else None)
                if taken is not None:
                    raise plugins.PluginError(
                        f"the name {name!r} is registered twice in reusegate's {self.name} registry: as a "
                        f"{taken[0]} by {taken[1]} and as a {plugins.LABELS[kind]} by {entry.source}; uninstall "
                        "one of them or rename one entry."
                    )
                new[name] = (entry.obj, plugins.LABELS[kind], entry.source)
        for name, (obj, kind, source) in new.items():
            self.register_module(name=name, module=obj)
            self.origins[name] = (kind, source)


def lookup(registry: PluginRegistry, kind: str, name: str) -> Any:
    """``registry.get(name)``, or a ``KeyError`` that lists the registered names of ``kind`` ('backbone',
    'host', 'host adapter': :data:`reusegate.plugins.LABELS`) and, when there are none, says why (e.g. an
    uninstalled checkout)."""
    obj = registry.get(name)
    if obj is not None:
        return obj
    from . import plugins

    known = sorted(n for n, (k, _) in registry.origins.items() if k == kind)
    pm = plugins.plugin_manager()
    why = [pm.missing_builtins or ""] if not known else []
    why += [f"Perhaps from a plugin that failed to import: {reason}." for reason in pm.broken.values()]
    why.append(f"Third-party plugins are off: {plugins.DISABLE_ENV} is set." if plugins.autoload_disabled()
               else "A plugin's names appear once its distribution is installed (see reusegate.hookspecs).")
    raise KeyError(f"no {kind} named {name!r}; registered {kind}s: {', '.join(known) or 'none'}. "
                   + " ".join(w for w in why if w))


def build(registry: PluginRegistry, kind: str, cfg: Union[str, Mapping[str, Any]]) -> Any:
    """Build ``cfg`` (a registered name, or ``dict(type=name_or_callable, **kwargs)``) as a config would.

    The factory is called directly rather than through ``registry.build``, so the result does not depend on
    mmengine's current default scope.
    """
    spec = {"type": cfg} if isinstance(cfg, str) else dict(cfg)
    if "type" not in spec:
        raise ValueError(f"a {kind} config needs a 'type' (a registered name), got {spec!r}")
    factory = spec.pop("type")
    if isinstance(factory, str):
        factory = lookup(registry, kind, factory)
    return factory(**spec)


BACKBONE_TAPS = ("feature_channels", "forward_shallow", "forward_deep")
"""What every backbone exposes (see :func:`reusegate.hookspecs.register_backbones`)."""


def build_backbone(spec: Union[str, Mapping[str, Any], Any]) -> Any:
    """A backbone from a registered name, a config dict, or an already built module; checked for the uniform
    taps here so that a host fails at construction, not on its first frame."""
    backbone = spec if not isinstance(spec, (str, Mapping)) else build(MODELS, "backbone", spec)
    missing = [name for name in BACKBONE_TAPS if not hasattr(backbone, name)]
    if missing:
        raise ValueError(f"backbone {type(backbone).__name__} lacks {missing} (see reusegate.hookspecs."
                         "register_backbones for the taps every backbone exposes)")
    return backbone


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
    "VISUALIZERS": "visualizer", "VISBACKENDS": "vis_backend", "MODEL_WRAPPERS": "model_wrapper",
}
for _attr, _name in _PASS_THROUGH.items():
    globals()[_attr] = Registry(_name, parent=getattr(mmengine_registry, _attr), scope="reusegate")
__all__ += list(_PASS_THROUGH)
