"""Old import path of :mod:`reusegate.plugins.hookspecs`, kept so that plugins written for 0.1 still load."""
from reusegate.plugins.hookspecs import PROJECT, Register, hookimpl, hookspec

__all__ = ["PROJECT", "Register", "hookimpl", "hookspec"]
