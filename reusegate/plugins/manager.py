"""Plugin discovery: pluggy loads the ``reusegate`` entry points and calls their hooks.

What the hooks register is not looked up here: :mod:`reusegate.registry` copies it into the mmengine registries
of scope ``reusegate`` and finds every name through :func:`reusegate.registry.lookup`. This module only says what
each plugin registered and which distribution it came from (for errors that name both sides of a clash); it never
imports the registry (the registry imports it).

The manager is built lazily and cached. Built-in plugins are the entry points of the ``reusegate``
distribution itself, so the core never imports an adapter by name. ``REUSEGATE_DISABLE_PLUGIN_AUTOLOAD=1``
loads only those (pytest's spelling of the same switch).
"""
from __future__ import annotations

import importlib.metadata as md
import inspect
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Dict, List, Optional

import pluggy

from reusegate.plugins import hookspecs

ENTRY_POINT_GROUP = hookspecs.PROJECT
DISABLE_ENV = "REUSEGATE_DISABLE_PLUGIN_AUTOLOAD"
KINDS = ("backbones", "adapters", "hosts")
LABELS = {"backbones": "backbone", "adapters": "host adapter", "hosts": "host"}
"""How messages call one item of each kind."""


@dataclass(frozen=True)
class Entry:
    """One registered item and the distribution whose plugin registered it."""

    name: str
    obj: Any
    distribution: str
    plugin: str = "?"
    """The entry-point name of the plugin that registered it (one distribution may declare several)."""

    @property
    def source(self) -> str:
        """Distribution and plugin, for messages: ``'rg-demo-plugin' (plugin 'demo')``."""
        return f"{self.distribution!r} (plugin {self.plugin!r})"


class PluginError(RuntimeError):
    """A plugin could not be loaded, or a name was registered twice."""


def autoload_disabled() -> bool:
    """Whether ``REUSEGATE_DISABLE_PLUGIN_AUTOLOAD`` restricts discovery to the built-ins."""
    return os.environ.get(DISABLE_ENV, "").strip() not in ("", "0", "false", "False")


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that also records each plugin's distribution and why built-ins may be missing."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        self.distributions: Dict[str, str] = {}
        """Plugin (entry-point) name -> the distribution that declared it."""
        self.missing_builtins: Optional[str] = None
        """Why the ``reusegate`` distribution contributed no plugin (``None`` when it did)."""
        self.broken: Dict[str, str] = {}
        """Plugin (entry-point) name -> why it failed to import and was skipped."""


def _own_entry_point_names() -> List[str]:
    try:
        return list(md.distribution(hookspecs.PROJECT).entry_points.select(group=ENTRY_POINT_GROUP).names)
    except md.PackageNotFoundError:
        return []


def _check_entry_point_names() -> None:
    """pluggy keys plugins by entry-point name and silently skips a second one: make that an error instead."""
    seen: Dict[str, str] = {}
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        if ep.name in seen and _normalise(seen[ep.name]) != _normalise(dist):
            raise PluginError(
                f"the reusegate entry point {ep.name!r} is declared by both {seen[ep.name]!r} and {dist!r}; "
                "uninstall one of them or rename its entry point."
            )
        seen.setdefault(ep.name, dist)


class PluginWarning(UserWarning):
    """An installed plugin failed to import and was skipped."""


def _load_skipping_broken(pm: PluginManager, entry_points: List[md.EntryPoint]) -> None:
    """Load the entry points one at a time: a plugin that raises at import is reported with its distribution
    (a :class:`PluginWarning`, also kept in ``pm.broken``) and skipped, so one broken third-party package
    cannot take the built-ins or the other plugins down with it."""
    for ep in entry_points:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=ep.name)
        except Exception as exc:
            dist = ep.dist.name if ep.dist is not None else "?"
            why = (f"reusegate plugin {ep.name!r} from distribution {dist!r} failed to import ({ep.value}): "
                   f"{type(exc).__name__}: {exc}. It was skipped; fix or uninstall it, or set {DISABLE_ENV}=1")
            pm.broken[ep.name] = why
            warnings.warn(why, PluginWarning, stacklevel=4)


def build_plugin_manager(autoload: bool | None = None) -> PluginManager:
    """Return a new manager holding the plugins of the ``reusegate`` entry-point group.

    Args:
        autoload: load third-party entry points too. ``None`` reads ``REUSEGATE_DISABLE_PLUGIN_AUTOLOAD``.
    """
    if autoload is None:
        autoload = not autoload_disabled()
    pm = PluginManager()
    _check_entry_point_names()
    own = _own_entry_point_names()
    _load_skipping_broken(pm, [ep for ep in md.entry_points(group=ENTRY_POINT_GROUP) if autoload or ep.name in own])
    for plugin, dist in pm.list_plugin_distinfo():
        pm.distributions[pm.get_name(plugin) or "?"] = dist.project_name
    if hookspecs.PROJECT not in pm.distributions.values():
        pm.missing_builtins = (
            "reusegate's own plugins were not found: the built-in backbones, hosts and adapters register through "
            "the entry points of the installed `reusegate` distribution, and this one is "
            + ("not installed" if not _installed() else "installed without them (stale metadata)")
            + ". Run `pip install -e .` in the checkout (after editing setup.cfg, "
            "`pip install --no-deps -e .` refreshes the entry points)."
        )
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


def _installed() -> bool:
    try:
        md.distribution(hookspecs.PROJECT)
    except md.PackageNotFoundError:
        return False
    return True


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-")


def collect(pm: PluginManager, kind: str) -> Dict[str, Entry]:
    """Call the ``register_<kind>`` hook of every plugin and return ``{name: Entry}``.

    All plugins are called at once through ``pm.hook``; each ``register`` call is attributed to the plugin whose
    hook implementation is on the call stack, so a helper function called by the hook is attributed too.

    Raises:
        PluginError: two plugins registered the same name; the message names both distributions.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown plugin kind {kind!r}; expected one of {KINDS}")
    hook = getattr(pm.hook, f"register_{kind}")
    owners = {impl.function.__code__: impl.plugin_name for impl in hook.get_hookimpls()}
    table: Dict[str, Entry] = {}

    def register(name: str, obj: Any) -> None:
        frame = inspect.currentframe()
        while frame is not None and frame.f_code not in owners:
            frame = frame.f_back
        plugin = owners[frame.f_code] if frame is not None else "?"
        entry = Entry(name, obj, pm.distributions.get(plugin, "?"), plugin)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{entry.source} registered a {LABELS[kind]} with invalid name {name!r}")
        if name in table:
            raise PluginError(
                f"{LABELS[kind]} name {name!r} is registered by both {table[name].source} and {entry.source}; "
                "uninstall one of them or rename one entry."
            )
        table[name] = entry

    hook(register=register)
    return table


@lru_cache(maxsize=None)
def plugin_manager() -> PluginManager:
    """The process-wide manager (built once). Tests build their own with :func:`build_plugin_manager`."""
    return build_plugin_manager()


def available(kind: str) -> Dict[str, Entry]:
    """Everything of ``kind`` ('backbones', 'adapters', 'hosts') the installed plugins register.

    Look names up in :mod:`reusegate.registry` instead: this is what fills it.
    """
    return collect(plugin_manager(), kind)

