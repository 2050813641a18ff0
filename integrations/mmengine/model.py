"""``ReuseGateVOS``: a gated VOS model as an mmengine ``BaseModel``, composed from config.

::

    model = dict(
        type='ReuseGateVOS',
        host=dict(type='reference', width=8),             # any host in MODELS (plugins: 'reference', 'frtm', ...)
        adapter='reference',                             # adapter name, or dict(type='module_tap', shallow=[...], ...)
        gate=dict(tau=0.7, variant='decode', m1=1.0, m2=0.0, ep_t=120))

``gate`` holds the gate's settings (:class:`~reusegate.core.gate.ReuseGate`'s ``tau``, ``variant``, ``tau2``,
``reuse_path``, ``gate_input``) and the loss's (:class:`~reusegate.core.training.LossConfig`'s ``m1``, ``m2``,
``ep_t``, ``gate_loss``, ``target_rate``, ``train_tau``) side by side, as configs have always written them; the
model splits them. ``gate=None`` trains the host alone (the paper's pre-training without the gate layers); the
parameter names stay ``net.host.*`` either way, so a pre-trained checkpoint loads into the gated model with
``load_from``.

Modes: ``loss`` (a batch of one-object clips -> named losses), ``predict`` (one whole video per sample through
a per-video session; labels, reuse flags, gate probabilities and optionally FLOPs go into the data samples),
``tensor`` (the merged per-frame probabilities of each video).
"""
from __future__ import annotations

import os
import time
from dataclasses import fields
from types import MappingProxyType
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import torch
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch import Tensor, nn

from reusegate.core.device import synchronize
from reusegate.core.gate import ReuseGate
from reusegate.core.host import HostAdapter
from reusegate.core.session import HostRunner
from reusegate.core.training import Clip, LossConfig, clip_losses
from reusegate.data.writer import atomic_torch_save
from reusegate.registry import MODELS, build
from reusegate.zoo.safe_load import load_weights

__all__ = ["ReuseGateVOS", "HostOnly", "export_state_dict", "load_exported"]


class HostOnly(nn.Module):
    """The host alone behind the same interface as :class:`ReuseGate` (pre-training without gate layers).

    Training computes every frame, as :class:`~reusegate.core.session.HostRunner` does at run time: the training
    loop of :func:`~reusegate.core.training.clip_losses` without gate layers, with the segmentation BCE only;
    after each frame the adapter's ``advance`` sees the merged probability, so a previous-mask host is guided by
    its own last estimate and FRTM's target model learns, as in a video (gradient policy: ``ReuseGate.loss``). A
    host with a stateful decoder (TTVOS) gets the object's state in both decoder taps, as in a session.
    """

    def __init__(self, model: nn.Module, adapter: HostAdapter) -> None:
        super().__init__()
        self.host = model
        self.adapter = adapter

    def loss(self, clip: Clip, masks: Tensor, epoch: float = 0) -> Dict[str, Tensor]:
        """``loss_seg`` of a batch of one-object clips (``epoch`` is accepted for symmetry; nothing ramps)."""
        return clip_losses(self.adapter, clip, masks)

    def session(self, count_flops: bool = False) -> HostRunner:
        """A bare-host session (``count_flops`` is accepted for symmetry; the host runner does not count)."""
        self.eval()
        return HostRunner(self.adapter)


@MODELS.register_module()
class ReuseGateVOS(BaseModel):
    """A host network with a reuse gate, trainable and testable by the mmengine ``Runner``.

    Args:
        host: the host network, or its config (built from ``MODELS``, which holds plugin hosts).
        adapter: the host adapter's registered name, or ``dict(type=name, **settings)``.
        gate: the gate's and the loss's settings in one dict (see the module doc: ``tau``, ``variant``, ``m1``,
            ``ep_t``, ...); the default is the paper's; ``None`` trains and runs the host alone (pre-training).
        count_flops: in ``predict`` mode, count the FLOPs of every frame (slower).
        freeze_host: train the gate modules only: the host's parameters get no updates and its normalisation
            layers stay in eval mode, so the computed path (``tau = 1``) stays exactly the pre-trained host.
            The paper fine-tunes the whole refiner with the gate; on a short CPU schedule that fine-tuning,
            mostly on blended reuse frames, cost the computed path accuracy (docs/models/). It is
            ``train_only=['gate_modules']``, which takes its place when both are given.
        train_only: names of sub-modules of the network (e.g. ``['gate_modules.change_gate']``) that alone
            train; every other parameter is frozen and every other module stays in eval mode, so a new gate
            head trains on top of a finished model without moving anything else.
        data_preprocessor, init_cfg: as for any ``BaseModel``.
    """

    def __init__(
        self,
        host: Union[nn.Module, Mapping[str, Any]],
        adapter: Union[str, Mapping[str, Any]] = "reference",
        gate: Optional[Mapping[str, Any]] = MappingProxyType({}),
        count_flops: bool = False,
        freeze_host: bool = False,
        train_only: Optional[Sequence[str]] = None,
        data_preprocessor: Optional[Mapping[str, Any]] = None,
        init_cfg: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        host = build("host", host) if isinstance(host, Mapping) else host
        if not isinstance(host, nn.Module):
            raise ValueError(f"host must be an nn.Module or a MODELS config, got {type(host).__name__}")
        built = build("adapter", adapter, model=host)
        self.loss_config: Optional[LossConfig] = None
        if gate is None:
            self.net: Union[ReuseGate, HostOnly] = HostOnly(host, built)
        else:
            training = {f.name for f in fields(LossConfig)}
            self.loss_config = LossConfig(**{k: v for k, v in gate.items() if k in training})
            self.net = ReuseGate(host, built, **{k: v for k, v in gate.items() if k not in training})
        self.count_flops = bool(count_flops)
        if freeze_host and gate is None:
            raise ValueError("freeze_host=True leaves nothing to train without the gate modules (gate=None)")
        self.train_only = tuple(train_only or (("gate_modules",) if freeze_host else ()))
        if self.train_only:
            names = dict(self.net.named_modules())
            unknown = [n for n in self.train_only if n not in names]
            if unknown:
                raise ValueError(f"train_only names {unknown} are not sub-modules of the network; e.g. "
                                 f"{sorted(n for n in names if n.count('.') == 1)[:8]}")
            self.net.requires_grad_(False)
            for name in self.train_only:
                names[name].requires_grad_(True)
        self.epoch: float = 0.0

    def train(self, mode: bool = True) -> "ReuseGateVOS":
        """As ``nn.Module.train``; all but ``train_only`` (``freeze_host``: the gate modules) stays in eval mode:
        frozen BatchNorm statistics do not drift."""
        super().train(mode)
        if self.train_only:
            self.net.eval()
            for name in self.train_only:
                self.net.get_submodule(name).train(mode)
        return self

    @property
    def gated(self) -> bool:
        """Whether the model has the gate modules (``gate`` was not ``None``)."""
        return isinstance(self.net, ReuseGate)

    def set_epoch(self, epoch: float) -> None:
        """The epoch the gate-probability loss margin ramps with (set by ``GateMarginHook``)."""
        self.epoch = float(epoch)

    # ------------------------------------------------------------------ mmengine entry point
    def forward(self, inputs: Union[Tensor, Sequence[Tensor]], data_samples: Optional[List[BaseDataElement]] = None,
                mode: str = "tensor") -> Any:
        if mode == "loss":
            return self.loss(inputs, data_samples)
        if mode == "predict":
            return self.predict(inputs, data_samples)
        if mode == "tensor":
            return [out["probs"] for out in self._run_videos(inputs, data_samples)]
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def loss(self, inputs: Union[Tensor, Sequence[Tensor], Mapping[str, Sequence[Tensor]]],
             data_samples: Optional[List[BaseDataElement]]) -> Dict[str, Tensor]:
        """A batch of one-object clips: ``inputs`` ``[T, 3, H, W]`` each (or, from a frozen-feature dataset, a
        dict of per-tap lists of ``[T, ...]``), samples with ``gt_masks`` ``[T, 1, H, W]``."""
        if not data_samples or "gt_masks" not in data_samples[0]:
            raise ValueError("loss mode needs data samples with gt_masks ([T, 1, H, W]); use a clip dataset")
        if isinstance(inputs, Mapping):
            clip: Clip = {k: torch.stack(list(v)) if not isinstance(v, Tensor) else v for k, v in inputs.items()}
        else:
            clip = _as_float(torch.stack(list(inputs)) if not isinstance(inputs, Tensor) else inputs)
        masks = torch.stack([s.gt_masks for s in data_samples]).float()
        if self.loss_config is None:
            return self.net.loss(clip, masks, self.epoch)
        return self.net.loss(clip, masks, self.epoch, self.loss_config)

    def predict(self, inputs: Union[Tensor, Sequence[Tensor]], data_samples: List[BaseDataElement]) -> List[BaseDataElement]:
        """One video per sample: fills ``pred_labels`` ``[T, H, W]``, ``reused`` / ``p_reuse`` ``[T, K]``,
        ``deep_computed`` ``[T]``, ``reuse_rate``, ``step_seconds`` (frames after the first) and (with
        ``count_flops``) ``flops`` ``[T]``."""
        for sample, out in zip(data_samples, self._run_videos(inputs, data_samples)):
            sample.pred_labels = out["labels"]
            sample.reused = out["reused"]
            sample.p_reuse = out["p_reuse"]
            sample.deep_computed = out["deep_computed"]
            sample.reuse_rate = out["stats"]["reuse_rate"]
            sample.step_seconds = out["step_seconds"]
            if out["flops"] is not None:
                sample.flops = out["flops"]
        return data_samples

    # ------------------------------------------------------------------ per-video sessions
    def _run_videos(self, inputs, data_samples) -> List[Dict[str, Any]]:
        if not data_samples or "gt_labels" not in data_samples[0]:
            raise ValueError("predict/tensor mode needs data samples with gt_labels ([T, H, W], at least the "
                             "objects' first masks); use a video dataset")
        was_training = self.training
        try:
            return [self._run_video(video, sample) for video, sample in zip(inputs, data_samples)]
        finally:
            self.train(was_training)

    def _run_video(self, video: Tensor, sample: BaseDataElement) -> Dict[str, Any]:
        gt = sample.gt_labels
        starts: Dict[int, int] = {int(k): int(v) for k, v in sample.metainfo.get("start_frames", {}).items()}
        if not starts:
            starts = {int(o): 0 for o in torch.unique(gt[0]).tolist() if o != 0}
        ids = sorted(starts)
        oracle = self.gated and self.net.config.variant == "oracle"
        session = self.net.session(count_flops=self.count_flops)
        labels, probs, reused, p_reuse, deep, flops = [], [], [], [], [], []
        step_seconds = 0.0
        for t in range(video.shape[0]):
            new = [o for o in ids if starts[o] == t]
            new_mask = None
            if new:
                new_mask = torch.where(torch.isin(gt[t].long(), torch.tensor(new, device=gt.device)), gt[t].long(), 0)
            start = time.perf_counter()
            result = session.step(video[t], new_mask, gt=gt[t].long()) if oracle else session.step(video[t], new_mask)
            synchronize(session.device)
            if t > 0:  # the start frame fits the objects; FPS counts the frames after it, as `reusegate run`
                step_seconds += time.perf_counter() - start
            labels.append(result.labels.to(torch.uint8))
            probs.append(result.probs)
            reused.append([bool(result.reused.get(o, False)) for o in ids])
            p_reuse.append([float(result.p_reuse.get(o, float("nan"))) for o in ids])
            deep.append(bool(result.deep_computed))
            flops.append(result.flops)
        k = len(ids)
        full = [torch.cat([p, p.new_zeros(k + 1 - p.shape[0], *p.shape[1:])]) for p in probs]
        stats = session.stats() if hasattr(session, "stats") else {"reuse_rate": 0.0}
        return {
            "labels": torch.stack(labels),
            "probs": torch.stack(full),
            "reused": torch.tensor(reused, dtype=torch.bool).view(-1, k),
            "p_reuse": torch.tensor(p_reuse, dtype=torch.float32).view(-1, k),
            "deep_computed": torch.tensor(deep),
            "flops": None if flops[0] is None else torch.tensor(flops, dtype=torch.float64),
            "stats": stats,
            "step_seconds": step_seconds,
        }


def _as_float(clip: Tensor) -> Tensor:
    """uint8 0..255 -> float 0..1 (float input passes through)."""
    return clip.float().div_(255.0) if clip.dtype == torch.uint8 else clip.float()


# ---------------------------------------------------------------------------------------------- inference export
def export_state_dict(model: nn.Module, path: Union[str, os.PathLike], host: Optional[Mapping[str, Any]] = None,
                      adapter: Union[str, Mapping[str, Any], None] = None) -> str:
    """Write the network's plain ``state_dict`` for inference (loads with ``torch.load(path, weights_only=True)``).

    For a gated model with its config (``host=dict(type=name, **kwargs)``, ``adapter``) this is
    :func:`reusegate.zoo.catalog.save_gate`'s format: ``NAME.pth`` (keys ``host.*``, ``gate_modules.*``) plus
    ``NAME.json`` naming host and adapter, which ``reusegate.zoo.catalog.load_gate`` / ``reusegate run``
    rebuild. Otherwise (no config, or the host-only pre-training model) only the ``.pth`` is written.
    Files are written atomically.
    """
    from reusegate.zoo.catalog import save_gate

    if hasattr(model, "module"):  # DDP wrapper
        model = model.module
    net = model.net if isinstance(model, ReuseGateVOS) else model
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if isinstance(net, ReuseGate) and isinstance(host, Mapping) and "type" in host and adapter is not None:
        host_kwargs = {k: v for k, v in _plain(host).items() if k != "type"}
        save_gate(net, path, host=host["type"], adapter=_plain(adapter), host_kwargs=host_kwargs)
        return path
    atomic_torch_save({k: v.detach().cpu() for k, v in net.state_dict().items()}, path)
    return path


def _plain(value: Any) -> Any:
    """Config dicts and tuples as plain JSON-able dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def load_exported(path: Union[str, os.PathLike], map_location: str = "cpu") -> Dict[str, Tensor]:
    """Read a state dict written by :func:`export_state_dict` (``weights_only=True``: no code runs on load)."""
    state = load_weights(path, map_location=map_location)
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict; write it with reusegate train --export")
    return state
