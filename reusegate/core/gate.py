"""``ReuseGate``: wraps a host network and, per object and per frame, skips its expensive part when possible.

Inference runs through a per-video session (Cutie-style ``step()``, :mod:`reusegate.core.session`)::

    gate = ReuseGate(model, "frtm", tau=0.7)
    session = gate.session()                                  # or gate.session(GateConfig(tau=0.8))
                                                              # or gate.session(target_fps=25): tau follows
    result = session.step(frame0, new_object_masks=labels0)   # objects start with their masks
    for frame in frames[1:]:
        result = session.step(frame)                          # result.labels, .reused, .p_reuse
    print(session.stats())

The module holds the weights (host and gate layers); the run-time settings are a :class:`GateConfig` value, the
gate's default one or any other given to a session. Training: ``gate.loss(clip, masks, epoch, loss_config)``
returns the paper's named losses (eq. 3-6, :mod:`reusegate.core.training`). Sessions and training take the same
per-frame paths (:mod:`reusegate.core.paths`); ``tau = 1`` runs exactly the host (bit-identical masks to
:class:`~reusegate.core.session.HostRunner`).
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Union

from torch import Tensor, nn

from reusegate.core.config import GateConfig
from reusegate.core.controller import ControlledSession, LatencyController, budget_seconds, tau_floor
from reusegate.core.host import HostAdapter
from reusegate.core.layers import GateLayers
from reusegate.core.session import FrameLike, FrameResult, Session
from reusegate.core.training import Clip, LossConfig, clip_losses
from reusegate.registry import build

__all__ = ["ReuseGate"]


# ---------------------------------------------------------------------------------------------- the wrapper
def _setting(name: str) -> property:
    """A read-only view of ``config.<name>``: a setting changes by giving a session another config, never by
    assignment (which would change every session of the gate at once)."""

    def get(self: "ReuseGate") -> Any:
        return getattr(self.config, name)

    def refuse(self: "ReuseGate", value: Any) -> None:
        raise AttributeError(f"ReuseGate.{name} is read-only; run a session with other settings: "
                             f"gate.session(dataclasses.replace(gate.config, {name}=...)), or set gate.config")

    return property(get, refuse, doc=f"``config.{name}`` (read-only).")


class ReuseGate(nn.Module):
    """A host network with a reuse gate: the paper's dynamic network around any adapted host.

    Args:
        model: the host network (an ``nn.Module``; kept as ``self.host``).
        adapter: a :class:`HostAdapter` instance or subclass, a name registered by a plugin, or
            ``dict(type=name, **adapter_settings)``.
        config: the default run-time settings of its sessions (:class:`GateConfig`; default: ``GateConfig()``).
        tau, variant, tau2, reuse_path: shortcuts for the fields of ``config`` (each overrides it when given).
        gate_input: what the reuse decision reads, one of :data:`~reusegate.core.layers.GATE_INPUTS`: the paper's
            template-matching gate (``'template'``, the default and upstream's layout) or the
            :class:`~reusegate.core.layers.ChangeGate` (``'change'``), which ranks unseen video by its change, under
            the last computed score or, with ``'change_mask'``, around the last computed output mask. It decides
            which layers exist, so it is part of the architecture, not of the config.
    """

    tau = _setting("tau")
    variant = _setting("variant")
    tau2 = _setting("tau2")
    reuse_path = _setting("reuse_path")

    def __init__(
        self,
        model: nn.Module,
        adapter: Union[str, Mapping[str, Any], type, HostAdapter],
        config: Optional[GateConfig] = None,
        *,
        tau: Optional[float] = None,
        variant: Optional[str] = None,
        tau2: Optional[float] = None,
        reuse_path: Optional[str] = None,
        gate_input: str = "template",
    ) -> None:
        super().__init__()
        shortcuts = {k: v for k, v in (("tau", tau), ("variant", variant), ("tau2", tau2),
                                       ("reuse_path", reuse_path)) if v is not None}
        config = config or GateConfig()
        self.config = replace(config, **shortcuts) if shortcuts else config
        self.host = model
        self.adapter = build("adapter", adapter, model=model)
        # all that the gate adds; the attribute name is the state-dict prefix of exports and checkpoints
        self.gate_modules = GateLayers(self.adapter.taps, gate_input=gate_input)

    def session(self, config: Optional[GateConfig] = None, count_flops: bool = False, *,
                target_fps: Optional[float] = None, budget_ms: Optional[float] = None,
                tau_min: Optional[float] = None, tau_start: Optional[float] = None,
                clock: Callable[[], float] = time.perf_counter) -> Session:
        """Start a new video with ``config`` (default: :attr:`config`). Switches the wrapper to eval mode (BN
        running statistics).

        With ``target_fps`` (or ``budget_ms``, the time a frame may take) the session is a
        :class:`~reusegate.core.controller.ControlledSession`: before every frame a latency controller sets ``tau``
        within ``[tau_min, 1]`` from the measured step times (``clock``), starting at ``tau_start`` (default 1; a run
        of several videos passes the ``tau`` the previous one ended on, since the machine did not change);
        ``tau_min`` defaults to
        :func:`~reusegate.core.controller.tau_floor` of the config (its ``tau_min``, else the lower of 0.7 and its
        ``tau``)."""
        self.eval()
        config = config or self.config
        budget = budget_seconds(target_fps, budget_ms)
        if budget is None:
            for name, value in (("tau_min", tau_min), ("tau_start", tau_start)):
                if value is not None:
                    raise ValueError(f"{name} is the floor of a latency budget; give target_fps or budget_ms with it"
                                     if name == "tau_min" else
                                     f"{name} is where a latency budget's tau starts; give target_fps or budget_ms")
            return Session(self.adapter, self.gate_modules, config, count_flops=count_flops)
        floor = tau_floor(config if tau_min is None else replace(config, tau_min=tau_min))
        controller = LatencyController(budget, floor, 1.0 if tau_start is None else tau_start)
        return ControlledSession(self.adapter, self.gate_modules, config, controller, clock, count_flops)

    def run(self, frames: Iterable[FrameLike], first_masks: FrameLike, config: Optional[GateConfig] = None,
            count_flops: bool = False) -> List[FrameResult]:
        """Convenience: segment a whole video whose objects all start on the first frame."""
        session = self.session(config, count_flops)
        return [session.step(f, first_masks if i == 0 else None) for i, f in enumerate(frames)]

    # ------------------------------------------------------------------------------------------ training
    def forward(self, clip: Clip, masks: Tensor, epoch: float = 0,
                loss_config: LossConfig = LossConfig()) -> Dict[str, Tensor]:
        """Training forward; see :meth:`loss` (``forward`` so that DDP wrapping sees the call)."""
        return self.loss(clip, masks, epoch, loss_config)

    def loss(self, clip: Clip, masks: Tensor, epoch: float = 0,
             loss_config: LossConfig = LossConfig()) -> Dict[str, Tensor]:
        """Named training losses for a batch of clips, one object per clip (paper §3.4).

        Frame 0 starts the object; on every later frame both paths run and are blended by the hard gate
        (``p > train_tau``) with a straight-through gradient, so the gate head learns through the blend as
        well as through the gate-probability loss. Caches advance only where the hard gate computed. Reused
        frames take the config's ``reuse_path``, as in a session.

        The host gets the score it would get at run time: ``S(t-n)`` and the template start from the first
        mask as in a session, and after every frame the adapter's ``advance`` sees the clip's merged
        probability and which clips computed, so a previous-mask host's score is the last computed frame's
        estimate and FRTM's target model learns from computed frames (``tests/test_train_matches_inference.py``
        compares both frame by frame). Gradient policy: that estimate keeps its graph; the adapter decides
        whether the next frame's loss reaches back through it (the module-tap host: yes; the reference host
        binarises it, FRTM detaches it: no).

        Args:
            clip: ``[B, T, 3, H, W]`` float images in [0, 1], T >= 2, or precomputed taps (see :data:`Clip`).
            masks: ``[B, T, 1, H, W]`` (or ``[B, T, H, W]``) masks of the object (at the host's input size
                when the clip holds precomputed taps).
            epoch: current epoch, for the margin schedule.
            loss_config: the loss's hyper-parameters (default: the paper's).

        Returns:
            ``loss_seg`` (BCE), ``loss_delta`` (eq. 3), ``loss_gate`` (eq. 5 or ``Loss_Ngate``), each a mean
            over frames 1..T-1, plus logged values ``reuse_rate`` and ``margin`` (no ``loss`` in their names).
        """
        return clip_losses(self.adapter, clip, masks, epoch, layers=self.gate_modules,
                           reuse_path=self.config.reuse_path, config=loss_config)
