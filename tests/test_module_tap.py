"""The module-tap adapter: a host built from MODELS gains a reuse gate from config, with no adapter class."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from reusegate.plugins import manager as plugins
from reusegate.adapters.module_tap import ExampleVOSNet, ModuleTapAdapter
from reusegate.adapters.module_tap.example import TAPS
from reusegate.commands.train import build_runner, load_config
from reusegate.core.gate import ReuseGate
from reusegate.core.session import HostRunner
from reusegate.integrations.mmengine import DavisVideoDataset, ReuseGateVOS
from reusegate.registry import MODELS

REPO = Path(__file__).resolve().parents[1]
TAP_CONFIG = REPO / "configs" / "examples" / "example_vos_tap_cpu.py"
SIZE = (64, 112)


def blob_video(n: int = 5, h: int = 64, w: int = 96) -> tuple[list[torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    background = torch.rand(3, h, w, generator=g)
    frames = []
    for t in range(n):
        img = background.clone()
        img[:, 10 + t:40 + t, 20 + 2 * t:60 + 2 * t] = torch.tensor([0.9, 0.2, 0.1])[:, None, None]
        frames.append((img * 255).to(torch.uint8))
    first = torch.zeros(h, w, dtype=torch.long)
    first[10:40, 20:60] = 1
    return frames, first


def test_plugin_registers_the_adapter_and_the_example_host():
    assert plugins.available("adapters")["module_tap"].obj is ModuleTapAdapter
    MODELS.import_from_location()
    assert MODELS.get("example_vos") is ExampleVOSNet


def test_probe_measures_taps_from_submodule_names():
    adapter = ModuleTapAdapter(ExampleVOSNet(width=8, refined_channels=16), **TAPS)
    t = adapter.taps
    assert (t.match_channels, t.match_stride, t.score_stride, t.refined_channels, t.refined_stride) == (16, 8, 16, 16, 16)
    assert adapter.model.training  # the probe restores the mode it found


def test_tau_one_is_exactly_the_host_and_low_tau_skips_the_deep_stages():
    torch.manual_seed(0)
    frames, first = blob_video()
    host = ExampleVOSNet(width=8)
    gate = ReuseGate(host, ModuleTapAdapter(host, **TAPS), tau=1.0)
    runner, session = HostRunner(gate.adapter), gate.session()
    for i, frame in enumerate(frames):
        start = first if i == 0 else None
        expected, got = runner.step(frame, start), session.step(frame, start)
        # same kernels on the same inputs on one machine: bit-identity is the claim (tau = 1 is the host)
        assert torch.equal(expected.labels, got.labels) and torch.equal(expected.probs, got.probs)

    calls = []
    host.enc4.register_forward_hook(lambda *_: calls.append(1))
    session = gate.session(dataclasses.replace(gate.config, tau=0.0))
    results = [session.step(f, first if i == 0 else None) for i, f in enumerate(frames)]
    assert [r.deep_computed for r in results] == [True, False, False, False, False]
    assert len(calls) == 1 and session.stats()["reuse_rate"] == 1.0


class PrototypeScore(nn.Module):
    """A learned score head with the module protocol: init_object / forward / update."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(channels, 8, 1)
        self.updates = 0

    def init_object(self, feats, mask):
        f = self.proj(feats["enc3"])
        m = nn.functional.adaptive_avg_pool2d(mask, f.shape[-2:])
        return {"proto": (f * m).sum((2, 3)) / m.sum((2, 3)).clamp(min=1e-6)}

    def forward(self, feats, state):
        f = self.proj(feats["enc3"])
        return (f * state["proto"][..., None, None]).sum(1, keepdim=True)

    def update(self, state, feats, prob):
        self.updates += 1


def test_a_learned_score_module_is_called_through_its_protocol():
    host = ExampleVOSNet(width=8)
    host.score_head = PrototypeScore(32)
    adapter = ModuleTapAdapter(host, **dict(TAPS, score="score_head"))
    assert adapter.taps.score_stride == 16
    frames, first = blob_video()
    gate = ReuseGate(host, adapter, tau=1.0)
    session = gate.session()
    for i, f in enumerate(frames):
        session.step(f, first if i == 0 else None)
    assert host.score_head.updates == len(frames) - 1  # online learning on every computed frame after the first
    loss = gate.loss(torch.stack(frames)[None].float() / 255, (torch.stack([first] * 5)[None, :, None] > 0).float())
    sum(v for k, v in loss.items() if k.startswith("loss")).backward()
    assert host.score_head.proj.weight.grad is not None


@pytest.mark.parametrize("bad, message", [
    (dict(shallow=["stem", "nope"]), "no submodule 'nope'"),
    (dict(match="enc3"), "must name a shallow stage"),
    (dict(score="enc1"), "init_object"),
    (dict(deep_decoder=dict(module="dec_deep", inputs=["enc9"])), "not stage names"),
    (dict(shallow="stem"), "lists of submodule names"),
    (dict(probe_size=(50, 50)), "integer stride"),
    (dict(shallow_decoder=dict(module="dec_shallow", inputs=["enc3", "enc1"])), r"\['enc3'\] are deep stages"),
    (dict(backbone="enc1"), "not both"),
])
def test_configuration_errors_name_the_problem(bad, message):
    with pytest.raises(ValueError, match=message):
        ModuleTapAdapter(ExampleVOSNet(width=8), **dict(TAPS, **bad))


@pytest.mark.slow
@pytest.mark.data
def test_runner_trains_the_tap_host_from_config_then_it_runs_gated(tmp_path, davis_root):
    torch.manual_seed(0)
    options = {
        "train_dataloader.batch_size": 2,
        "train_dataloader.dataset.data_root": str(davis_root),
        "train_dataloader.dataset.sequences": ["bear"],
        "train_dataloader.dataset.size": SIZE,
        "train_dataloader.dataset.clip_length": 4,
        "train_dataloader.dataset.samples_per_object": 4,
        "train_cfg.max_epochs": 2,
        "train_cfg.val_interval": 1000,
        "experiment_name": f"test_tap_{os.getpid()}",
    }
    cfg = load_config(str(TAP_CONFIG), str(tmp_path / "work"), cfg_options=options, progress=False)
    runner = build_runner(cfg)
    model = runner.model
    assert isinstance(model, ReuseGateVOS) and isinstance(model.net.host, ExampleVOSNet)
    assert isinstance(model.net.adapter, ModuleTapAdapter)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    runner.train()
    assert runner.iter == 4
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert any(k.startswith("net.host.dec_shallow.") for k in changed)
    assert any(k.startswith("net.gate_modules.") for k in changed)

    video = DavisVideoDataset(davis_root, sequences=["bear"], size=SIZE, max_frames=6)[0]
    model.net.config = dataclasses.replace(model.net.config, tau=0.0)  # reuse wherever the gate fires at all
    (sample,) = model.predict([video["inputs"]], [video["data_samples"]])
    assert sample.pred_labels.shape == (6, *SIZE)
    assert sample.deep_computed.tolist() == [True] + [False] * 5
    assert sample.reuse_rate == 1.0
    model.net.config = dataclasses.replace(model.net.config, tau=1.0)  # never reuse: the trained host everywhere
    (full,) = model.predict([video["inputs"]], [video["data_samples"]])
    assert full.deep_computed.all() and full.reuse_rate == 0.0
