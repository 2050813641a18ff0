"""Gating for any host built from config: the module-tap adapter and a small example host.

:class:`ModuleTapAdapter` reads the taps of a host from the names of its submodules, so a network registered
in mmengine's ``MODELS`` gains a reuse gate from a config entry, without an adapter class of its own.
:class:`ExampleVOSNet` is a small encoder-decoder VOS network (previous-mask guided) that shows it.
"""
from .adapter import ModuleTapAdapter, PreviousMask
from .example import ExampleVOSNet

__all__ = ["ModuleTapAdapter", "PreviousMask", "ExampleVOSNet"]
