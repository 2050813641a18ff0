"""The shipped G-TTVOS model (``reusegate/zoo/weights/g_ttvos_mnv2``): its recipe, and its masks on held-out frames.

The recipe test keeps the configs and the exported ``.json`` in step (docs/ttvos.md); the data test checks the
weights are the trained ones by segmenting a development-split sequence the model never saw.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config

from reusegate import ReuseGate
from reusegate.adapters.ttvos import TTVOS
from reusegate.data import DavisReader
from reusegate.core.config import GateConfig
from reusegate.tools.demo import clip_jf
from reusegate.zoo.catalog import load_gate

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
MODEL = Path(str(resources.files("reusegate.zoo") / "weights" / "g_ttvos_mnv2.pth"))


def _meta() -> dict:
    return json.loads(MODEL.with_suffix(".json").read_text())


def test_g_ttvos_configs_match_the_shipped_model():
    """Both stages build the host and adapter the ``.json`` names, on the default model's 24 training sequences,
    from frozen taps of that very host; the export holds the trained heads only (the backbone is rebuilt)."""
    meta = _meta()
    stage1 = Config.fromfile(str(CONFIGS / "g_ttvos_mnv2" / "1_pretrain.py"))
    stage2 = Config.fromfile(str(CONFIGS / "g_ttvos_mnv2" / "2_gate.py"))
    host = stage2.model.host.to_dict()
    assert host.pop("type") == meta["host"] == "ttvos" and host == meta["host_kwargs"]
    assert stage2.model.adapter.to_dict() == meta["adapter"]
    gate = stage2.model.gate.to_dict()
    assert gate.get("gate_input", "template") == meta["gate_input"]
    run_time = {k: gate[k] for k in ("tau", "variant", "tau2", "reuse_path") if k in gate}
    assert GateConfig(**run_time) == GateConfig(**meta["recommended"])  # what --export records
    assert stage1.model.gate is None and stage2.model.freeze_host
    assert stage1.model.host.to_dict() == stage2.model.host.to_dict()
    for cfg in (stage1, stage2):
        data = cfg.train_dataloader.dataset
        assert data.type == "FrozenFeatureClipDataset" and not data.precompute_score  # TTVOS's score is its own
        assert data.host.to_dict() == cfg.model.host.to_dict() and data.adapter.to_dict() == cfg.model.adapter.to_dict()
        assert data.sampling == "ordered"
    held_out = set((CONFIGS / "splits" / "davis16_dev.txt").read_text().split())
    trained = set(Path(stage2.train_dataloader.dataset.sequences).read_text().split())
    default = Config.fromfile(str(CONFIGS / "g_frtm_mnv2" / "2_gate.py"))
    davis = default.train_dataloader.dataset.datasets[0]  # the default model's stage 2 adds procedural clips
    assert trained == set(Path(davis.sequences).read_text().split())
    assert len(trained) == 24 and not held_out & trained
    assert meta["rebuilt_prefixes"] == ["host.backbone."]
    state = torch.load(MODEL, weights_only=True)
    assert not any(k.startswith("host.backbone.") for k in state) and MODEL.stat().st_size < 5e6


@pytest.mark.data
def test_shipped_g_ttvos_segments_a_held_out_davis_sequence(davis_root):
    """bear (development split, never trained on), first 12 frames: the trained heads segment it far better than
    the same network with untrained heads (measured: J&F 0.61 against 0.10), and at the recommended tau the gate
    reuses most of this slow clip (measured: 11 of 11 frames, p_reuse 0.56-0.59) for a small loss (0.59)."""
    seq = DavisReader(davis_root, year=2016, sequences=["bear"]).sequence("bear")
    n = 12
    frames = [torch.from_numpy(np.array(seq.load_frame(i))).permute(2, 0, 1) for i in range(n)]
    gt = np.stack([seq.load_mask(i) for i in range(n)])
    first = torch.from_numpy(gt[0].astype(np.int64))

    def jf(gate: ReuseGate) -> tuple[float, list]:
        results = gate.run(frames, first)
        return clip_jf([r.labels.numpy() for r in results], gt), results

    meta = _meta()
    trained, _ = jf(load_gate(MODEL, tau=1.0))
    torch.manual_seed(0)
    untrained, _ = jf(ReuseGate(TTVOS(**meta["host_kwargs"]), meta["adapter"], tau=1.0).eval())
    gated, results = jf(load_gate(MODEL))
    assert all(0.0 <= r.p_reuse[1] <= 1.0 for r in results[1:])
    assert trained > 0.5 and trained > untrained + 0.2, (trained, untrained)
    assert sum(r.reused[1] for r in results[1:]) >= (n - 1) // 2 and gated > trained - 0.08, (gated, trained)
