"""Plugin discovery: pluggy manager, entry-point loading, and the name tables the registries are filled from.

The manager is built lazily and cached. Built-in plugins are the entry points of the ``reusegate``
distribution itself, so the core never imports an adapter by name. ``REUSEGATE_DISABLE_PLUGIN_AUTOLOAD=1``
skips every other distribution's entry points (pytest's spelling of the same switch).
"""
from __future__ import annotations

import importlib.metadata as md
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Dict

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = hookspecs.PROJECT
DISABLE_ENV = "REUSEGATE_DISABLE_PLUGIN_AUTOLOAD"
KINDS = ("backbones", "adapters", "hosts")


@dataclass(frozen=True)
class Entry:
    """One registered item and where it came from."""

    name: str
    obj: Any
    distribution: str


class PluginError(RuntimeError):
    """A plugin could not be loaded or registered a conflicting name."""


def _autoload_disabled() -> bool:
    return os.environ.get(DISABLE_ENV, "").strip() not in ("", "0", "false", "False")


class PluginWarning(UserWarning):
    """An installed plugin failed to import and was skipped."""


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers which distribution each plugin came from, and which failed to import."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.distributions: Dict[str, str] = {}
        self.broken: Dict[str, str] = {}  # "dist:entry point" -> why it was skipped


def _skip_broken_plugin(pm: PluginManager, key: str, ep: md.EntryPoint, dist_name: str, exc: Exception) -> None:
    """Report a plugin that raised at import, naming its distribution, and go on without it: one broken
    third-party package must not take the built-in hosts (or other plugins) down with it."""
    why = (f"reusegate plugin {ep.name!r} from distribution {dist_name!r} failed to import ({ep.value}): "
           f"{type(exc).__name__}: {exc}. It was skipped; fix or uninstall it, or set {DISABLE_ENV}=1")
    pm.broken[key] = why
    warnings.warn(why, PluginWarning, stacklevel=3)


def build_plugin_manager(autoload: bool | None = None) -> PluginManager:
    """Return a new manager with the hook specs and the plugins found through entry points.

    Args:
        autoload: load third-party entry points too. ``None`` reads ``REUSEGATE_DISABLE_PLUGIN_AUTOLOAD``.
    """
    if autoload is None:
        autoload = not _autoload_disabled()
    pm = PluginManager()
    for dist in md.distributions():
        dist_name = dist.metadata["Name"] or "?"
        if not autoload and _normalise(dist_name) != hookspecs.PROJECT:
            continue
        for ep in dist.entry_points:
            if ep.group != ENTRY_POINT_GROUP:
                continue
            key = f"{dist_name}:{ep.name}"
            if pm.has_plugin(key):
                continue  # the same distribution seen twice on sys.path
            try:
                plugin = ep.load()
            except Exception as exc:
                _skip_broken_plugin(pm, key, ep, dist_name, exc)
                continue
            pm.register(plugin, name=key)
            pm.distributions[key] = dist_name
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:  # a misspelt hook: say where and what exists
        name = pm.get_name(exc.plugin) or "?"
        hooks = ", ".join(h for h in dir(hookspecs) if h.startswith("register_"))
        raise PluginError(
            f"plugin {name!r} from distribution {pm.distributions.get(name, '?')!r} is invalid: {exc}. "
            f"The reusegate hooks are: {hooks}."
        ) from exc
    return pm


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-")


def collect(pm: PluginManager, kind: str) -> Dict[str, Entry]:
    """Call the ``register_<kind>`` hook of every plugin and return ``{name: Entry}``.

    Raises:
        PluginError: two plugins registered the same name; the message names both distributions.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown plugin kind {kind!r}; expected one of {KINDS}")
    table: Dict[str, Entry] = {}
    hook = getattr(pm.hook, f"register_{kind}")
    for impl in hook.get_hookimpls():
        plugin_name = impl.plugin_name
        dist = pm.distributions.get(plugin_name, plugin_name)

        def register(name: str, obj: Any, _dist: str = dist) -> None:
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin from {_dist!r} registered a {kind[:-1]} with invalid name {name!r}")
            if name in table:
                raise PluginError(
                    f"{kind[:-1]} name {name!r} is registered by both {table[name].distribution!r} and "
                    f"{_dist!r}; uninstall one of them or rename the plugin's entry."
                )
            table[name] = Entry(name, obj, _dist)

        impl.function(register=register)
    return table


@lru_cache(maxsize=None)
def plugin_manager() -> PluginManager:
    """The process-wide manager (built once). Tests build their own with :func:`build_plugin_manager`."""
    return build_plugin_manager()


def available(kind: str) -> Dict[str, Entry]:
    """Everything of ``kind`` ('backbones', 'adapters', 'hosts') the installed plugins register."""
    return collect(plugin_manager(), kind)


def get(kind: str, name: str) -> Any:
    """Look up one registered item by name, with an error that lists what is available."""
    table = available(kind)
    if name not in table:
        known = ", ".join(sorted(table)) or "none"
        broken = "".join(f" Skipped: {why}." for why in plugin_manager().broken.values())
        raise KeyError(
            f"no {kind[:-1]} named {name!r}; available: {known}. Install the plugin that provides it "
            f"(or unset {DISABLE_ENV}).{broken}"
        )
    return table[name].obj


def register_into(registry: Any, kind: str) -> None:
    """Copy every discovered item of ``kind`` into an mmengine ``Registry`` (idempotent)."""
    for name, entry in available(kind).items():
        if name not in registry.module_dict:
            registry.register_module(name=name, module=entry.obj)
