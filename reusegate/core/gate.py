"""``ReuseGate``: wraps a host network and, per object and per frame, skips its expensive part when possible.

Inference runs through a per-video session (Cutie-style ``step()``, :mod:`reusegate.session`)::

    gate = ReuseGate(model, "frtm", tau=0.7)
    session = gate.session()
    result = session.step(frame0, new_object_masks=labels0)   # objects start with their masks
    for frame in frames[1:]:
        result = session.step(frame)                          # result.labels, .reused, .p_reuse
    print(session.stats())

Training: ``gate.loss(clip, masks, epoch)`` returns the paper's named losses (eq. 3-6, :mod:`reusegate.training`).
Sessions and training take the same per-frame paths (:mod:`reusegate.paths`); ``tau = 1`` runs exactly the host
(bit-identical masks to :class:`HostRunner`).
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Union

from torch import Tensor, nn

from .host import HostAdapter
from .modules import GateModules
from .paths import decode_deep, decode_shallow
from .registry import ADAPTERS, lookup
from .session import FrameLike, FrameResult, HostRunner, Session
from .training import Clip, clip_frames, gated_loss, merged_probability

__all__ = ["ReuseGate", "Session", "HostRunner", "FrameResult", "VARIANTS", "REUSE_PATHS", "Clip", "clip_frames", "decode_deep",
           "decode_shallow", "merged_probability", "resolve_adapter"]

VARIANTS = ("translate", "copy", "fusion", "oracle")
"""Paper §4.2: ``translate`` is the method; ``copy`` reuses the previous mask; ``fusion`` copies above a
second threshold ``tau2`` and translates between ``tau`` and ``tau2``; ``oracle`` gates on the ground-truth
IoU with the last computed frame (analysis only)."""

REUSE_PATHS = ("translate", "hold", "shift")
"""What a reused frame's shallow decoder reads: ``translate`` (the paper: ``S(t-n) + delta`` and the
refine-translator's ``R``), ``hold`` (``S(t-n)`` and ``R(t-n)`` as they are, with the current frame's shallow
features; no template matching, delta or translator runs) or ``shift`` (``hold`` with both caches moved by the
object's displacement since its last computed frame, :func:`~reusegate.modules.estimate_motion`; the gate's
decision does not change). With a gate that reuses only frames close to the last computed one, ``hold`` is both
cheaper and more accurate on unseen video than ``translate`` (README "The change gate"); ``shift`` is more
accurate still and costs a motion estimate (README "The shift path")."""


def resolve_adapter(model: nn.Module, adapter: Union[str, Mapping[str, Any], type, HostAdapter]) -> HostAdapter:
    """An adapter instance from an instance, a ``HostAdapter`` subclass, a name registered in ``ADAPTERS``, or
    ``dict(type=name_or_class, **settings)`` (the form configs and exported ``.json`` files use)."""
    settings: Dict[str, Any] = {}
    if isinstance(adapter, Mapping):
        if "type" not in adapter:
            raise ValueError(f"an adapter given as a dict needs a 'type' (a registered name), got {dict(adapter)!r}")
        settings = dict(adapter)
        adapter = settings.pop("type")
    if isinstance(adapter, str):
        adapter = lookup(ADAPTERS, "host adapter", adapter)
    if isinstance(adapter, type) and issubclass(adapter, HostAdapter):
        adapter = adapter(model, **settings)
    if not isinstance(adapter, HostAdapter):
        raise ValueError(
            f"adapter must be a HostAdapter, a HostAdapter subclass, a registered name or dict(type=name, ...), "
            f"got {adapter!r}"
        )
    return adapter


# ---------------------------------------------------------------------------------------------- the wrapper
class ReuseGate(nn.Module):
    """A host network with a reuse gate: the paper's dynamic network around any adapted host.

    Args:
        model: the host network (an ``nn.Module``; kept as ``self.host``).
        adapter: a :class:`HostAdapter` instance or subclass, a name registered by a plugin, or
            ``dict(type=name, **adapter_settings)``.
        tau: reuse threshold; an object reuses iff ``p_reuse > tau`` (upstream's strict rule). ``tau = 1``
            never reuses and runs exactly the host.
        variant: one of :data:`VARIANTS`.
        tau2: the ``fusion`` variant's copy threshold (``tau2 > tau`` unless ``tau = 1``).
        m1, m2, ep_t: gate-probability loss margin schedule (eq. 4-5): the target is raised to
            ``m1 * min(1, epoch / ep_t)``; errors below ``m2`` are flat.
        gate_loss: ``'gp'`` (the paper's gate-probability loss) or ``'ngate'`` (AIG-style target-rate
            baseline, ``Loss_Ngate``).
        target_rate: the reuse rate ``'ngate'`` pushes towards.
        train_tau: threshold of the hard gate in training (paper: 0.5).
        reuse_path: one of :data:`REUSE_PATHS` (the ``translate``, ``fusion`` and ``oracle`` variants' reused
            frames; training blends the same path).
        gate_input: what the reuse decision reads, one of :data:`~reusegate.modules.GATE_INPUTS`: the paper's
            template-matching gate (``'template'``, the default and upstream's layout) or the
            :class:`~reusegate.modules.ChangeGate` (``'change'``), which ranks unseen video by its change, under
            the last computed score or, with ``'change_mask'``, around the last computed output mask.
    """

    def __init__(
        self,
        model: nn.Module,
        adapter: Union[str, Mapping[str, Any], type, HostAdapter],
        tau: float = 0.7,
        variant: str = "translate",
        tau2: float = 0.9,
        m1: float = 1.0,
        m2: float = 0.0,
        ep_t: float = 120,
        gate_loss: str = "gp",
        target_rate: float = 0.5,
        train_tau: float = 0.5,
        reuse_path: str = "translate",
        gate_input: str = "template",
    ) -> None:
        super().__init__()
        for name, value in (("tau", tau), ("tau2", tau2), ("train_tau", train_tau), ("target_rate", target_rate)):
            if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if variant == "fusion" and tau < 1 and not tau2 > tau:  # tau = 1 reuses nothing, whatever tau2
            raise ValueError(f"the fusion variant needs tau2 > tau, got tau={tau}, tau2={tau2}")
        if reuse_path not in REUSE_PATHS:
            raise ValueError(f"reuse_path must be one of {REUSE_PATHS}, got {reuse_path!r}")
        if gate_loss not in ("gp", "ngate"):
            raise ValueError(f"gate_loss must be 'gp' (paper eq. 5) or 'ngate' (target rate), got {gate_loss!r}")
        if ep_t <= 0:
            raise ValueError(f"ep_t must be > 0, got {ep_t}")
        self.host = model
        self.adapter = resolve_adapter(model, adapter)
        self.gate_modules = GateModules(self.adapter.taps, gate_input=gate_input)  # all that the gate adds
        self.tau, self.variant, self.tau2 = float(tau), variant, float(tau2)
        self.m1, self.m2, self.ep_t = float(m1), float(m2), float(ep_t)
        self.gate_loss, self.target_rate, self.train_tau = gate_loss, float(target_rate), float(train_tau)
        self.reuse_path = reuse_path

    def session(self, count_flops: bool = False) -> Session:
        """Start a new video. Switches the wrapper to eval mode (BN running statistics)."""
        self.eval()
        return Session(self, count_flops=count_flops)

    def run(self, frames: Iterable[FrameLike], first_masks: FrameLike, count_flops: bool = False) -> List[FrameResult]:
        """Convenience: segment a whole video whose objects all start on the first frame."""
        session = self.session(count_flops)
        return [session.step(f, first_masks if i == 0 else None) for i, f in enumerate(frames)]

    # ------------------------------------------------------------------------------------------ training
    def forward(self, clip: Clip, masks: Tensor, epoch: float = 0) -> Dict[str, Tensor]:
        """Training forward; see :meth:`loss` (``forward`` so that DDP wrapping sees the call)."""
        return self.loss(clip, masks, epoch)

    def loss(self, clip: Clip, masks: Tensor, epoch: float = 0) -> Dict[str, Tensor]:
        """Named training losses for a batch of clips, one object per clip (paper §3.4).

        Frame 0 starts the object; on every later frame both paths run and are blended by the hard gate
        (``p > train_tau``) with a straight-through gradient, so the gate head learns through the blend as
        well as through the gate-probability loss. Caches advance only where the hard gate computed.

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

        Returns:
            ``loss_seg`` (BCE), ``loss_delta`` (eq. 3), ``loss_gate`` (eq. 5 or ``Loss_Ngate``), each a mean
            over frames 1..T-1, plus logged values ``reuse_rate`` and ``margin`` (no ``loss`` in their names).
        """
        return gated_loss(self, clip, masks, epoch)
