"""Latency-budget sessions: a frame-rate target instead of a fixed threshold (``gate.session(target_fps=F)``).

A fixed ``tau`` gives a content-dependent frame rate: the same ``tau`` reuses 60 % of an easy clip and 35 % of a
hard one, and nothing adapts when another process takes the CPU. :class:`LatencyController` closes the loop on
what the user cares about: after every frame it reads the measured step time and moves ``tau`` within
``[tau_min, 1]`` -- down (more reuse, cheaper frames) while the frames run over the budget, up (more computed
frames, more accurate) while they run under it. It is integral feedback on the measured time, not a model of
it, so it adapts to the machine, the content and the load, and it knows nothing about the host: it sees one
number a frame. While ``tau`` moves freely, the sum of its steps is bounded, so the mean step time equals the
budget; at ``tau = 1`` the budget is met with time to spare (the host alone); at ``tau_min`` the budget is out
of reach, and the controller records that once (:attr:`LatencyController.unreachable`).

:class:`ControlledSession` is a :class:`~reusegate.core.session.Session` whose config's ``tau`` follows the
controller; the clock is injected, so tests feed synthetic step times.
"""
from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import replace
from typing import Any, Callable, Deque, Dict, List, Optional

import numpy as np

from reusegate.core.config import GateConfig
from reusegate.core.device import synchronize
from reusegate.core.host import HostAdapter
from reusegate.core.layers import GateLayers
from reusegate.core.session import FrameLike, FrameResult, Session

__all__ = ["LatencyController", "ControlledSession", "budget_seconds", "budget_figures", "tau_floor", "config_at",
           "window_shares",
           "DEFAULT_TAU_MIN", "DEFAULT_GAIN", "UNREACHABLE_TOLERANCE"]

DEFAULT_TAU_MIN = 0.7
"""The floor of ``tau`` when a model's ``.json`` recommends none (``recommended.tau_min``) and the session's
``tau`` is not lower: the lowest threshold measured within 1.0 J&F of ``tau = 1`` on unseen video for both G-FRTM
models (DAVIS-2016 val, issue 27: accurate 72.6 against 73.6, fast 68.6 against 68.8; at 0.65 the fast model
loses 1.2 and at 0.6 both lose 3.5 or more)."""

DEFAULT_GAIN = 0.1
"""How far ``tau`` moves per frame per unit of relative error, and at most per frame (a frame at twice the budget
or more; the rest of a longer frame's error is paid on the next frames, so one stall cannot throw ``tau`` to the
floor, yet every millisecond counts): crossing 0.3 of ``tau`` takes about 10 frames at 30 % over budget. At 0.05, a budget 10 % above the host's frame time needed 40 frames to climb from 0.75 to 1,
and the fast model missed targets near FPS(tau = 1) by 7-22 % on 80-frame DAVIS sequences."""

UNREACHABLE_TOLERANCE = 0.05
"""A budget counts as unreachable when a whole window runs at ``tau_min`` more than this share over it."""


def budget_seconds(target_fps: Optional[float] = None, budget_ms: Optional[float] = None) -> Optional[float]:
    """The per-frame budget in seconds from a frame-rate target or a budget in milliseconds (at most one of the
    two); ``None`` when neither is given."""
    if target_fps is not None and budget_ms is not None:
        raise ValueError("give either a target frame rate (--target-fps) or a budget per frame (--budget-ms), "
                         "not both")
    for name, value in (("target_fps", target_fps), ("budget_ms", budget_ms)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value) or value <= 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if target_fps is not None:
        return 1.0 / float(target_fps)
    return None if budget_ms is None else float(budget_ms) / 1000.0


def tau_floor(config: GateConfig) -> float:
    """The lowest ``tau`` a controlled session of ``config`` may take: ``config.tau_min`` (a model's
    ``recommended.tau_min``), else the lower of :data:`DEFAULT_TAU_MIN` and ``config.tau``."""
    return config.tau_min if config.tau_min is not None else min(DEFAULT_TAU_MIN, config.tau)


def config_at(config: GateConfig, tau: float) -> GateConfig:
    """``config`` at threshold ``tau``. The fusion variant keeps its copy threshold ``tau2`` while ``tau`` is below
    it; above it, copies start half-way from ``tau`` to 1, so a controller may move ``tau`` past the model's
    ``tau2``."""
    if config.variant == "fusion" and config.tau2 <= tau < 1.0:
        return replace(config, tau=tau, tau2=(1.0 + tau) / 2)
    return replace(config, tau=tau)


class LatencyController:
    """Integral feedback from the measured step time to ``tau`` (see the module docstring).

    Args:
        budget: seconds a frame may take.
        tau_min: the floor of ``tau``; ``1`` is the ceiling (the host alone).
        tau: where ``tau`` starts (clipped into ``[tau_min, 1]``; default 1, the most accurate: a frame over budget
            moves ``tau`` down faster than one under it moves it up).
        gain: ``tau``'s change per unit of relative error (``(seconds - budget) / budget``), at most ``gain`` a frame.
        window: frames in the running mean that decides an unreachable budget (default: about one second at the
            target, 5 to 30 frames).
    """

    def __init__(self, budget: float, tau_min: float, tau: float = 1.0, gain: float = DEFAULT_GAIN,
                 window: Optional[int] = None) -> None:
        if not budget > 0 or not math.isfinite(budget):
            raise ValueError(f"the budget must be a positive number of seconds, got {budget!r}")
        if not 0.0 <= tau_min <= 1.0:
            raise ValueError(f"tau_min must lie in [0, 1], got {tau_min!r}")
        if not gain > 0:
            raise ValueError(f"gain must be positive, got {gain!r}")
        self.budget, self.tau_min, self.gain = float(budget), float(tau_min), float(gain)
        self.tau = min(1.0, max(self.tau_min, float(tau)))
        self.window = window if window is not None else max(5, min(30, round(1.0 / self.budget)))
        self._recent: Deque[float] = deque(maxlen=self.window)
        self._frames_at_floor = 0
        self._owed = 0.0  # relative error not yet turned into a tau step
        self.updates = 0
        self.unreachable: Optional[Dict[str, Any]] = None

    def update(self, seconds: float) -> float:
        """Take the step time of the frame that ran at :attr:`tau`; return ``tau`` for the next frame."""
        ran_at_floor = self.tau <= self.tau_min
        self._frames_at_floor = self._frames_at_floor + 1 if ran_at_floor else 0
        self._recent.append(float(seconds))
        self.updates += 1
        # Integral of the relative error, paid out at most ``gain`` a frame: a clipped error would make a long
        # frame (an online-model update, a stall) count less than the short ones and leave the mean over budget.
        self._owed += (seconds - self.budget) / self.budget
        step = min(1.0, max(-1.0, self._owed))
        self._owed -= step  # spent even where tau is clamped at 1 or tau_min: no wind-up
        self.tau = min(1.0, max(self.tau_min, self.tau - self.gain * step))
        mean = float(np.mean(self._recent))
        if (self.unreachable is None and self._frames_at_floor >= self.window
                and mean > self.budget * (1 + UNREACHABLE_TOLERANCE)):
            self.unreachable = {"frame": self.updates, "mean_ms": 1000 * mean, "budget_ms": 1000 * self.budget,
                                "tau_min": self.tau_min}
        return self.tau


class ControlledSession(Session):
    """A session whose ``tau`` a :class:`LatencyController` sets before every frame; create it with
    ``gate.session(target_fps=F)`` or ``gate.session(budget_ms=B)``.

    Start frames (those with ``new_object_masks``) run but do not feed the controller: starting an object is
    not the per-frame cost the budget is about. :attr:`taus` holds the ``tau`` of every frame and
    :attr:`step_seconds` its measured time (``None`` on start frames).
    """

    def __init__(self, adapter: HostAdapter, layers: GateLayers, config: GateConfig, controller: LatencyController,
                 clock: Callable[[], float] = time.perf_counter, count_flops: bool = False) -> None:
        super().__init__(adapter, layers, config, count_flops=count_flops)
        self.base_config = config
        self.controller = controller
        self.clock = clock
        self.taus: List[float] = []
        self.step_seconds: List[Optional[float]] = []

    @property
    def _gated(self) -> bool:
        """Always: ``tau`` may leave 1 on any frame, so every object keeps the caches the gate reads."""
        return True

    def step(self, frame: FrameLike, new_object_masks: Optional[FrameLike] = None,
             gt: Optional[FrameLike] = None) -> FrameResult:
        """Segment one frame at the controller's ``tau`` and feed it the step's measured time."""
        tau = self.controller.tau
        if tau != self.config.tau or not self.taus:  # a new GateConfig (checked once) only when tau moved
            self.config = config_at(self.base_config, tau)
        t0 = self.clock()
        result = super().step(frame, new_object_masks, gt)
        synchronize(self.device)  # an accelerator runs asynchronously: time the frame, not its launch
        seconds = self.clock() - t0
        self.taus.append(tau)
        if new_object_masks is None:
            self.controller.update(seconds)
            self.step_seconds.append(seconds)
        else:
            self.step_seconds.append(None)
        return result

    def stats(self) -> Dict[str, Any]:
        """:meth:`Session.stats` plus the budget, ``tau`` per frame and its mean after the start frame, and the
        unreachable-budget record (``None`` when the budget was met)."""
        c = self.controller
        return {**super().stats(), "budget_ms": 1000 * c.budget, "target_fps": 1 / c.budget, "tau_min": c.tau_min,
                "tau": list(self.taus), "tau_mean": float(np.mean(self.taus[1:])) if len(self.taus) > 1 else None,
                "tau_end": c.tau, "unreachable": c.unreachable}


def budget_figures(stats: Dict[str, Any]) -> Dict[str, Any]:
    """The summary record of a latency budget from :meth:`ControlledSession.stats` (without ``tau`` per frame,
    which summaries keep beside the other per-frame records)."""
    return {k: stats[k] for k in ("target_fps", "budget_ms", "tau_min", "tau_mean", "tau_end", "unreachable")}


def window_shares(step_seconds: List[float], target_fps: float, tolerance: float = 0.15,
                  window_s: float = 1.0) -> tuple[int, int]:
    """Consecutive ``window_s``-second windows of step time (a partial last window is dropped), and how many of
    them ran within ``tolerance`` of ``target_fps``: ``(within, windows)``."""
    within = windows = frames = 0
    elapsed = 0.0
    for seconds in step_seconds:
        elapsed += seconds
        frames += 1
        if elapsed >= window_s:
            windows += 1
            within += abs(frames / elapsed / target_fps - 1) <= tolerance
            elapsed, frames = 0.0, 0
    return within, windows
