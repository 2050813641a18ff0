"""Built-in plugin (entry point ``ttvos`` of the ``reusegate`` group): the TTVOS host and its adapter.

TTVOS's stride-16 backbones are not registered as backbones: they lack the uniform ``s32`` tap every registered
backbone has. TTVOS itself takes any registered backbone by name.
"""
from __future__ import annotations

from reusegate.hookspecs import Register, hookimpl

from .adapter import TTVOSAdapter
from .model import TTVOS


@hookimpl
def register_adapters(register: Register) -> None:
    register("ttvos", TTVOSAdapter)


@hookimpl
def register_hosts(register: Register) -> None:
    register("ttvos", TTVOS)
