"""Built-in plugin (entry point ``ttvos`` of the ``reusegate`` group): TTVOS's backbones, host and adapter.

TTVOS's stride-16 backbones register through the same hook as FRTM's; they have the taps ``s4``..``s16`` only, so
hosts that read ``s32`` refuse them at construction. TTVOS itself takes any registered backbone by name.
"""
from __future__ import annotations

from reusegate.plugins.hookspecs import Register, hookimpl

from .adapter import TTVOSAdapter
from .backbones import mobilenet_v2s16, resnet18s16, resnet50s16
from .model import TTVOS


@hookimpl
def register_backbones(register: Register) -> None:
    for factory in (resnet18s16, resnet50s16, mobilenet_v2s16):
        register(factory.__name__, factory)


@hookimpl
def register_adapters(register: Register) -> None:
    register("ttvos", TTVOSAdapter)


@hookimpl
def register_hosts(register: Register) -> None:
    register("ttvos", TTVOS)
