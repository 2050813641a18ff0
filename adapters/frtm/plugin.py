"""Built-in plugin (entry point ``frtm`` of the ``reusegate`` group): FRTM's backbones, host and adapter."""
from __future__ import annotations

from reusegate.plugins.hookspecs import Register, hookimpl

from .adapter import FRTMAdapter
from .backbones import BACKBONES
from .model import FRTM


@hookimpl
def register_backbones(register: Register) -> None:
    for name, factory in BACKBONES.items():
        register(name, factory)


@hookimpl
def register_adapters(register: Register) -> None:
    register("frtm", FRTMAdapter)


@hookimpl
def register_hosts(register: Register) -> None:
    register("frtm", FRTM)
