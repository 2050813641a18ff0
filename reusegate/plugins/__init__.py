"""The extension surface: the hook specifications a plugin implements (:mod:`.hookspecs`) and the pluggy manager
that discovers installed plugins (:mod:`.manager`). Names they register are looked up in :mod:`reusegate.registry`.

A plugin module needs only::

    from reusegate.plugins import hookimpl
"""
from reusegate.plugins.hookspecs import Register, hookimpl

__all__ = ["Register", "hookimpl"]
