"""Where a model runs: ``--device`` and ``device=`` names, resolved in one place with one clear error.

A model is put on its device once, when it is loaded (:func:`reusegate.zoo.catalog.load_gate`); everything a
session makes afterwards -- frames, masks, the per-object caches -- is created on :func:`module_device` of the
model, so no other code names a device. :func:`synchronize` lets timers wait for an accelerator's queued work,
which would otherwise be charged to whatever reads a result first.
"""
from __future__ import annotations

from itertools import chain
from typing import List, Union

import torch
from torch import nn

__all__ = ["DEVICE_TYPES", "available_devices", "resolve_device", "module_device", "synchronize", "wide_float"]

DEVICE_TYPES = ("cpu", "cuda", "mps")
"""The device types a model may run on: the CPU, NVIDIA GPUs (``cuda``, ``cuda:N``) and Apple GPUs (``mps``)."""


def available_devices() -> List[str]:
    """The device names this machine can run on, as ``--device`` takes them (error messages list them)."""
    names = ["cpu"]
    if torch.cuda.is_available():
        names += ["cuda"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        names.append("mps")
    return names


def _unavailable(name: str, why: str) -> ValueError:
    return ValueError(f"device {name!r} is not available: {why}; available here: {', '.join(available_devices())}")


def resolve_device(name: Union[str, torch.device, None]) -> torch.device:
    """The ``torch.device`` that ``name`` (``'cpu'``, ``'cuda'``, ``'cuda:1'``, ``'mps'``; ``None``: the CPU) names
    on this machine, with its index (``'cuda'`` is the current GPU), or a one-line ``ValueError`` that says why it
    is not there and what is: checked before any weight loads, so a typo costs nothing."""
    if name is None:
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):  # torch's own message lists every device type it was ever built for
        raise ValueError(f"unknown device {str(name)!r}; choose one of {', '.join(DEVICE_TYPES)} (cuda:N for one "
                         f"GPU of several); available here: {', '.join(available_devices())}") from None
    if device.type not in DEVICE_TYPES:
        raise ValueError(f"device {str(name)!r} is not supported: reusegate runs on {', '.join(DEVICE_TYPES)}; "
                         f"available here: {', '.join(available_devices())}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch is a CPU-only build (install a CUDA build of torch)" if torch.version.cuda is None
                   else "no CUDA GPU is visible (check the driver and CUDA_VISIBLE_DEVICES)")
            raise _unavailable(str(name), why)
        index = torch.cuda.current_device() if device.index is None else device.index
        if index >= torch.cuda.device_count():
            raise _unavailable(str(name), f"this machine has {torch.cuda.device_count()} CUDA GPU(s)")
        return torch.device("cuda", index)
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            why = ("this torch was built without MPS" if not torch.backends.mps.is_built()
                   else "MPS needs an Apple-silicon Mac with macOS 12.3 or later")
            raise _unavailable(str(name), why)
        if device.index not in (None, 0):
            raise _unavailable(str(name), "there is one MPS device, mps:0")
        return torch.device("mps", 0)
    return torch.device("cpu")


def module_device(module: nn.Module) -> torch.device:
    """The device of ``module``'s first parameter or buffer (the CPU when it has none): where a session creates
    its frames, masks and caches, so they always sit with the weights that read them."""
    for tensor in chain(module.parameters(), module.buffers()):
        return tensor.device
    return torch.device("cpu")


def wide_float(device: torch.device) -> torch.dtype:
    """float64 where ``device`` has it, for the sums that lose too much in float32 (FRTM's conjugate-gradient dot
    products); Apple GPUs have no float64, so ``mps`` keeps float32 there rather than fail."""
    return torch.float32 if device.type == "mps" else torch.float64


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (nothing to wait for on the CPU): a timer that reads the clock
    after an accelerator's step must call it first, or it times the launch of the kernels, not their run."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
