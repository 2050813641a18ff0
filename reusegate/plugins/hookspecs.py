"""The whole plugin surface of reusegate, in one file (pluggy project and entry-point group ``reusegate``).

A plugin is a module or object with functions marked ``@hookimpl`` whose names match the specifications
below. Distributions expose plugins through the ``reusegate`` entry-point group::

    # pyproject.toml of a third-party package
    [project.entry-points.reusegate]
    mynet = "reusegate_mynet.plugin"

    # reusegate_mynet/plugin.py
    from reusegate.plugins.hookspecs import hookimpl

    @hookimpl
    def register_backbones(register):
        register("mynet", build_mynet)

Built-in hosts and backbones are plugins of the ``reusegate`` distribution itself and register through
these same hooks. Every name registered lands in the mmengine registries of scope ``reusegate`` (see
:mod:`reusegate.registry`: ``MODELS`` for backbones and hosts, ``ADAPTERS`` for adapters) and is found through
:func:`reusegate.registry.lookup`, the one lookup, so configs can say ``backbone=dict(type='mynet')`` and every
host takes it. Set
``REUSEGATE_DISABLE_PLUGIN_AUTOLOAD=1`` to load only the built-ins.

Each hook receives a ``register`` callback and calls it once per item. A name must be unique within its
registry: registering one that another plugin registered (of any distribution), or a backbone under a host's
name, is an error that names both.
"""
from __future__ import annotations

from typing import Callable

import pluggy

PROJECT = "reusegate"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[..., None]


@hookspec
def register_backbones(register: Register) -> None:
    """Contribute backbone factories.

    :param register: call ``register(name, factory)`` where ``factory(**kwargs) -> nn.Module`` builds the
        backbone. Every backbone exposes the same feature taps, keyed by stride (``'s4'``, ``'s8'``,
        ``'s16'``, ``'s32'``), so any host can use any backbone:

        * ``feature_channels: dict[str, int]`` -- channels of each tap;
        * ``forward_shallow(x) -> dict`` -- ``'s4'`` and ``'s8'`` (the part a reuse gate always runs);
        * ``forward_deep(feats) -> dict`` -- adds ``'s16'`` and ``'s32'`` to the shallow dict;
        * ``forward_features(x) -> dict`` -- both, in one call;
        * optionally ``input_mean`` / ``input_std`` (3 floats each) -- the statistics of the RGB input in [0, 1]
          that its weights were trained with; hosts normalise with ImageNet's when they are absent;
        * optionally ``stage(tap) -> nn.Module`` -- the module computing ``tap`` (``'s16'``, ``'s32'``) from the
          tap before it, sharing the backbone's parameters: what a host that fine-tunes its deepest stage on
          cached taps runs (``FRTM(finetune=['s32'])``).

        A stride-16 trunk (TTVOS's ``resnet18s16``, ``resnet50s16``, ``mobilenet_v2s16``) has ``s4``..``s16`` only;
        hosts that read ``s32`` refuse it at construction (:func:`reusegate.registry.build` checks the taps a host
        reads).
    """


@hookspec
def register_adapters(register: Register) -> None:
    """Contribute host adapters.

    :param register: call ``register(name, adapter_cls)`` with a :class:`reusegate.core.host.HostAdapter`
        subclass. ``ReuseGate(model, "name")`` then builds ``adapter_cls(model)``.
    """


@hookspec
def register_hosts(register: Register) -> None:
    """Contribute host model factories (whole VOS networks that an adapter wraps).

    :param register: call ``register(name, factory)`` where ``factory(**kwargs) -> nn.Module``.
    """
