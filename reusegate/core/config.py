"""Run-time settings of a reuse gate as one value: :class:`GateConfig`.

A gate's weights do not depend on these settings, so they are not part of the ``nn.Module``: a session runs with a
config (``gate.session(config)``), and a benchmark varies it with ``dataclasses.replace(config, tau=...)``. The
config is checked once, when it is made. This module imports no torch, so the CLI can read :data:`VARIANTS`
while it parses its arguments.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

__all__ = ["GateConfig", "VARIANTS", "VARIANT_ALIASES", "REUSE_PATHS", "RETIRED_REUSE_PATHS", "REUSE_PRECISIONS",
           "BACKENDS"]

BACKENDS = ("torch", "onnxruntime", "openvino")
"""What may run the host's convolutions (``--backend``, ``backend=``; :mod:`reusegate.deploy`): here, beside the other
run-time choices, so that the CLI reads it without importing torch."""

VARIANTS = ("decode", "copy", "fusion", "oracle")
"""Paper §4.2: ``decode`` is the method, every reuse decodes the object through the ``reuse_path``; ``copy``
reuses the previous mask; ``fusion`` copies above a second threshold ``tau2`` and decodes between ``tau`` and
``tau2``; ``oracle`` gates on the ground-truth IoU with the last computed frame (analysis only)."""

VARIANT_ALIASES = {"translate": "decode"}
"""Old variant names, still read from 0.1 ``.json`` files, configs and the command line."""

REUSE_PATHS = ("translate", "hold")
"""What a reused frame's shallow decoder reads: ``translate`` (the paper: ``S(t-n) + delta`` and the
refine-translator's ``R``) or ``hold`` (``S(t-n)`` and ``R(t-n)`` as they are, with the current frame's shallow
features; no template matching, delta or translator runs). With a gate that reuses only frames close to the last
computed one, ``hold`` is both cheaper and more accurate on unseen video than ``translate``
(docs/experiments/change-gate-and-hold.md)."""

RETIRED_REUSE_PATHS = {"shift": "docs/experiments/shift-path.md"}
"""Reuse paths measured not to pay and removed in 0.2.0, with where their measurement lives."""

REUSE_PRECISIONS = ("float32", "int8")
"""What a reused object's never-skipped decoder half computes in: ``'int8'`` (beyond the paper, CPU only, a model
calibrated for it) runs its convolutions in int8 (:mod:`reusegate.core.int8`)."""


def _unit_number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


@dataclass(frozen=True)
class GateConfig:
    """How a gate decides and what a reused frame does; checked when made.

    Args:
        tau: reuse threshold; an object reuses iff ``p_reuse > tau`` (upstream's strict rule). ``tau = 1`` never
            reuses and runs exactly the host.
        variant: one of :data:`VARIANTS` (an old name of :data:`VARIANT_ALIASES` is read as its new one).
        tau2: the ``fusion`` variant's copy threshold (``tau2 > tau`` unless ``tau = 1``).
        reuse_path: one of :data:`REUSE_PATHS` (the ``decode``, ``fusion`` and ``oracle`` variants' reused frames;
            training blends the same path).
        tau_min: the lowest ``tau`` a latency-budget session may move to (a model's ``recommended.tau_min``);
            ``None``: the lower of ``tau`` and :data:`reusegate.core.controller.DEFAULT_TAU_MIN`. A session with a
            fixed ``tau`` does not read it.
        window: beyond the paper: keep each object's probability only inside a box around its mask on the previous
            frame, the mask's bounding box grown on each side by ``window`` times its height and width, plus a small
            floor and the mask's last motion (:func:`reusegate.core.session.object_window`), so a look-alike
            elsewhere in the frame cannot take the object's label. ``None`` (default): no window, as in the paper
            and its hosts (docs/experiments/locality-window.md).
        reuse_precision: one of :data:`REUSE_PRECISIONS`: ``'int8'`` decodes reused objects with int8
            convolutions, a cheaper reused frame at the same J&F (docs/experiments/int8-reuse.md); computed frames
            stay float32. Default ``'float32'``, as in the paper.
    """

    tau: float = 0.7
    variant: str = "decode"
    tau2: float = 0.9
    reuse_path: str = "translate"
    tau_min: Optional[float] = None
    window: Optional[float] = None
    reuse_precision: str = "float32"

    def __post_init__(self) -> None:
        tau, tau2 = _unit_number("tau", self.tau), _unit_number("tau2", self.tau2)
        if self.tau_min is not None:
            object.__setattr__(self, "tau_min", _unit_number("tau_min", self.tau_min))
        variant = VARIANT_ALIASES.get(self.variant, self.variant) if isinstance(self.variant, str) else self.variant
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if variant == "fusion" and tau < 1 and not tau2 > tau:  # tau = 1 reuses nothing, whatever tau2
            raise ValueError(f"the fusion variant needs tau2 > tau, got tau={tau}, tau2={tau2}")
        if isinstance(self.reuse_path, str) and self.reuse_path in RETIRED_REUSE_PATHS:
            raise ValueError(f"reuse_path={self.reuse_path!r} was retired in 0.2.0 (measured not to pay, "
                             f"{RETIRED_REUSE_PATHS[self.reuse_path]}); use reuse_path='hold'")
        if self.reuse_path not in REUSE_PATHS:
            raise ValueError(f"reuse_path must be one of {REUSE_PATHS}, got {self.reuse_path!r}")
        if self.reuse_precision not in REUSE_PRECISIONS:
            raise ValueError(f"reuse_precision must be one of {REUSE_PRECISIONS}, got {self.reuse_precision!r}")
        if self.window is not None:
            window = self.window
            if isinstance(window, bool) or not isinstance(window, (int, float)) or not 0.0 <= window < math.inf:
                raise ValueError(f"window must be None (no window) or a finite number >= 0 (the margin around the "
                                 f"previous mask, in object sizes; 0.1 is measured), got {window!r}")
            object.__setattr__(self, "window", float(window))
        object.__setattr__(self, "tau", tau)  # frozen: normalised once, here
        object.__setattr__(self, "tau2", tau2)
        object.__setattr__(self, "variant", variant)
