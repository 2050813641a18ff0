"""Plugin entry (entry point ``module_tap``): the module-tap adapter and the example host.

Registered through the same ``reusegate`` hooks as third-party plugins, so ``adapter=dict(type='module_tap', ...)``
and ``host=dict(type='example_vos')`` resolve in configs of scope ``reusegate``.
"""
from __future__ import annotations

from reusegate.plugins.hookspecs import hookimpl

from .adapter import ModuleTapAdapter
from .example import ExampleVOSNet


@hookimpl
def register_adapters(register) -> None:
    """The module-tap adapter, under the name ``module_tap``."""
    register("module_tap", ModuleTapAdapter)


@hookimpl
def register_hosts(register) -> None:
    """The example encoder-decoder host, under the name ``example_vos``."""
    register("example_vos", ExampleVOSNet)
