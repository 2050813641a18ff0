"""mmengine registries of scope ``reusegate``, and :func:`lookup`: the one place where names are looked up.

This module's name is load-bearing: mmengine imports ``<scope>.registry`` when a config sets
``default_scope = 'reusegate'``, and each registry imports its ``locations`` on first use, so configs need no
``custom_imports`` for built-ins. Backbones, hosts and adapters registered through the plugin hooks (see
:mod:`reusegate.plugins.hookspecs`) are copied in on first use too: ``MODELS`` holds backbones and hosts (and the
mmengine models of :mod:`reusegate.integrations.mmengine`), ``ADAPTERS`` the host adapters. A name is unique
within a registry: a backbone and a host of the same name, or a plugin name that an mmengine model already
uses, is an error naming both (an adapter may share its host's name: they live in different registries).

Every registered name is found through :func:`lookup` (``lookup('backbone', 'mobilenet_v2')``), and built through
:func:`build`, which takes what configs and exported ``.json`` files say: a name, ``dict(type=name, **settings)``,
or the object itself. Hosts, ``load_gate``, ``ReuseGate`` and ``ReuseGateVOS`` all go through these two, so a
plugin's name works everywhere the built-ins' do. The plugin manager (:mod:`reusegate.plugins.manager`) only says
what the plugins register; it never looks a name up, and does not import this module.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from mmengine import registry as mmengine_registry
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry

from reusegate.plugins import manager as plugins

__all__ = ["MODELS", "ADAPTERS", "DATASETS", "TRANSFORMS", "METRICS", "HOOKS", "KINDS", "UNIFORM_TAPS",
           "NotRegisteredError", "lookup", "build"]

KINDS: Dict[str, Tuple[str, str]] = {
    "backbone": ("MODELS", "backbones"),
    "host": ("MODELS", "hosts"),
    "adapter": ("ADAPTERS", "adapters"),
    "model": ("MODELS", ""),
    "dataset": ("DATASETS", ""),
    "transform": ("TRANSFORMS", ""),
    "metric": ("METRICS", ""),
    "hook": ("HOOKS", ""),
}
"""Every kind of registered name -> (the registry holding it, the plugin kind that fills it, if any:
:data:`reusegate.plugins.manager.KINDS`). ``model``, ``dataset``, ``transform``, ``metric`` and ``hook`` are the
mmengine kinds configs build (``model`` lists the mmengine models; any name in ``MODELS`` is found as one)."""
PLUGIN_KINDS = {plugin_kind: kind for kind, (_, plugin_kind) in KINDS.items() if plugin_kind}
"""Plugin kind (``'backbones'``) -> kind (``'backbone'``)."""
UNIFORM_TAPS = ("s4", "s8", "s16", "s32")
"""The feature taps every backbone of the plugin contract has (see
:func:`reusegate.plugins.hookspecs.register_backbones`); a stride-16 trunk has the first three only."""
_BACKBONE_ATTRIBUTES = ("feature_channels", "forward_shallow", "forward_deep")


def _label(kind: str) -> str:
    """How messages call one item of ``kind``."""
    return "host adapter" if kind == "adapter" else kind


class NotRegisteredError(KeyError, ValueError):
    """No name of that kind is registered. A ``KeyError`` (a failed lookup) and a ``ValueError`` (what other
    config mistakes raise); its message lists the registered names of the kind and, where there are none, why."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class PluginRegistry(Registry):
    """A registry that, besides its ``locations``, pulls in what plugins register for ``plugin_kinds``.

    ``origins`` says, for every name, which kind it is (a key of :data:`KINDS`) and who registered it (a
    distribution, or the module of an ``@register_module`` class), for errors that list one kind or name both
    sides of a clash.
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

    def origin(self, name: str) -> Tuple[str, str]:
        """(kind, who registered it) of a name in this registry; an ``@register_module`` class is of the kind
        the registry is named after (``'model'``, ``'dataset'``, ...)."""
        if name in self.origins:
            return self.origins[name]
        obj = self._module_dict[name]
        return self.name, f"{obj.__module__}.{getattr(obj, '__qualname__', name)}"

    def _add_plugins(self) -> None:
        """Check every plugin name against everything present first, then register all (no half-filled state)."""
        new: Dict[str, Tuple[Any, str, str]] = {}
        for plugin_kind in self._plugin_kinds:
            kind = PLUGIN_KINDS[plugin_kind]
            for name, entry in plugins.available(plugin_kind).items():
                taken = (new[name][1:] if name in new else self.origin(name) if name in self._module_dict
                         else None)
                if taken is not None:
                    raise plugins.PluginError(
                        f"the name {name!r} is registered twice in reusegate's {self.name} registry: as a "
                        f"{_label(taken[0])} by {taken[1]} and as a {_label(kind)} by {entry.source}; uninstall "
                        "one of them or rename one entry."
                    )
                new[name] = (entry.obj, kind, entry.source)
        for name, (obj, kind, source) in new.items():
            self.register_module(name=name, module=obj)
            self.origins[name] = (kind, source)


def _registry(kind: str) -> PluginRegistry:
    if kind not in KINDS:
        raise ValueError(f"unknown kind of registered name {kind!r}; expected one of {', '.join(KINDS)}")
    return globals()[KINDS[kind][0]]


def lookup(kind: str, name: str) -> Any:
    """The object registered as ``name`` of ``kind`` (a key of :data:`KINDS`: ``'backbone'``, ``'host'``,
    ``'adapter'``, ``'model'``, ``'dataset'``, ``'transform'``, ``'metric'``, ``'hook'``).

    Raises:
        NotRegisteredError: (a ``KeyError`` and a ``ValueError``) no such name of that kind; the message lists the
            registered names of the kind and, for plugin kinds, why there may be none (an uninstalled checkout,
            a plugin that failed to import, third-party plugins switched off).
        PluginError: two plugins registered the same name.
    """
    registry = _registry(kind)
    registry.import_from_location()  # built-ins and plugins, even when ``name`` is no string
    obj = registry.get(name) if isinstance(name, str) else None
    # Plugin kinds share mmengine registries (hosts and backbones both live in MODELS), so a name found may be
    # of another kind: the registry keeps the kind each plugin name was registered as, and only that case (a
    # backbone asked for as a host) is refused.
    other = registry.origins.get(name, (kind, ""))[0] if obj is not None else kind
    plugin_kinds = PLUGIN_KINDS.values()
    another_plugin_kind = other != kind and kind in plugin_kinds and other in plugin_kinds
    if obj is not None and not another_plugin_kind:
        return obj
    label = _label(kind)
    known = sorted(n for n in registry.module_dict if registry.origin(n)[0] == kind)
    message = f"no {label} named {name!r}"
    if other != kind:
        message += f" (it is a {_label(other)})"
    why = []
    if kind in plugin_kinds:
        pm = plugins.plugin_manager()
        why = [pm.missing_builtins or ""] if not known else []
        why += [f"Perhaps from a plugin that failed to import: {reason}." for reason in pm.broken.values()]
        why.append(f"Third-party plugins are off: {plugins.DISABLE_ENV} is set." if plugins.autoload_disabled()
                   else "A plugin's names appear once its distribution is installed (see reusegate.plugins.hookspecs).")
    raise NotRegisteredError(" ".join([f"{message}; registered {label}s: {', '.join(known) or 'none'}.",
                                       *(w for w in why if w)]))


def build(kind: str, spec: Any, *, taps: Optional[Sequence[str]] = None, **context: Any) -> Any:
    """Build ``spec`` as a config would: ``spec`` is a registered name of ``kind``, ``dict(type=name_or_callable,
    **settings)``, or what is already built (returned as it is, after the checks below).

    The factory is called directly with the spec's settings and ``context`` (not through ``Registry.build``), so
    the result does not depend on mmengine's current default scope.

    * ``kind='adapter'``: ``spec`` is also a :class:`~reusegate.core.host.HostAdapter` instance or subclass, and
      ``context`` must hold ``model=`` (the host): the adapter is ``cls(model, **settings)``.
    * ``kind='backbone'``: the result is checked for the uniform interface (``feature_channels``,
      ``forward_shallow``, ``forward_deep``) and for the feature ``taps`` the caller reads (default
      :data:`UNIFORM_TAPS`; TTVOS reads ``s4``..``s16``), so that a host fails at construction, not on its first
      frame.
    """
    if taps is not None and kind != "backbone":
        raise ValueError(f"taps= applies to backbones only, not to a {_label(kind)}")
    if kind == "adapter":
        return _build_adapter(spec, **context)
    _registry(kind)
    obj = spec
    if isinstance(spec, (str, Mapping)):
        settings = {"type": spec} if isinstance(spec, str) else dict(spec)
        if "type" not in settings:
            raise ValueError(f"a {_label(kind)} config needs a 'type' (a registered name), got {settings!r}")
        factory = settings.pop("type")
        if isinstance(factory, str):
            factory = lookup(kind, factory)
        obj = factory(**settings, **context)
    if kind == "backbone":
        _check_backbone(obj, UNIFORM_TAPS if taps is None else tuple(taps))
    return obj


def _build_adapter(spec: Any, model: Any = None, **context: Any) -> Any:
    """:func:`build` for ``kind='adapter'``: an instance stays as it is; a subclass, a registered name or
    ``dict(type=name_or_class, **settings)`` (the form configs and exported ``.json`` files use) is built for
    ``model``."""
    from reusegate.core.host import HostAdapter

    settings: Dict[str, Any] = {}
    adapter = spec
    if isinstance(adapter, Mapping):
        if "type" not in adapter:
            raise ValueError(f"an adapter given as a dict needs a 'type' (a registered name), got {dict(adapter)!r}")
        settings = dict(adapter)
        adapter = settings.pop("type")
    if isinstance(adapter, str):
        adapter = lookup("adapter", adapter)
    if isinstance(adapter, type) and issubclass(adapter, HostAdapter):
        if model is None:
            raise TypeError("building a host adapter needs the host: build('adapter', spec, model=host)")
        adapter = adapter(model, **settings, **context)
    if not isinstance(adapter, HostAdapter):
        raise ValueError(
            f"adapter must be a HostAdapter, a HostAdapter subclass, a registered name or dict(type=name, ...), "
            f"got {adapter!r}"
        )
    return adapter


def _check_backbone(backbone: Any, taps: Tuple[str, ...]) -> None:
    missing = [name for name in _BACKBONE_ATTRIBUTES if not hasattr(backbone, name)]
    if missing:
        raise ValueError(f"backbone {type(backbone).__name__} lacks {missing} (see reusegate.plugins.hookspecs."
                         "register_backbones for the taps every backbone exposes)")
    have = list(backbone.feature_channels)
    absent = [t for t in taps if t not in have]
    if absent:
        raise ValueError(f"backbone {type(backbone).__name__} lacks the feature taps {absent} (it has {have}); this "
                         f"host reads {list(taps)} (a stride-16 trunk such as TTVOS's '*s16' backbones stops at s16)")


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
DATASETS = PluginRegistry("dataset", parent=MMENGINE_DATASETS, scope="reusegate",
                          locations=["reusegate.integrations.mmengine"])
# Clip-consistent augmentations (mmcv ``BaseTransform``).
TRANSFORMS = PluginRegistry("transform", parent=MMENGINE_TRANSFORMS, scope="reusegate",
                            locations=["reusegate.data.transforms"])
# VOS metric (J&F, reuse rate, FLOPs).
METRICS = PluginRegistry("metric", parent=MMENGINE_METRICS, scope="reusegate",
                         locations=["reusegate.integrations.mmengine"])
# Training hooks (gate-loss margin schedule).
HOOKS = PluginRegistry("hook", parent=MMENGINE_HOOKS, scope="reusegate",
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
