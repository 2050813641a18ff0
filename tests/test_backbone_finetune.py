"""Fine-tuning FRTM's deepest backbone stage (``FRTM(finetune=['s32'])``, issue 11's capacity lever).

What must hold: ``stage(tap)`` computes exactly the tap ``forward_deep`` does, only that stage's parameters train
(BatchNorm statistics frozen), cached training taps leave the stage's output out and the adapter recomputes it
with the current weights, and an exported model stores the trained stage (the frozen rest is rebuilt on load).
"""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from numeric import error_ratio

from reusegate.adapters.frtm.adapter import FRTMAdapter
from reusegate.adapters.frtm.backbones import mobilenet_v2, resnet18
from reusegate.adapters.frtm.model import FRTM
from reusegate.core.gate import ReuseGate
from reusegate.integrations.mmengine import ReuseGateVOS
from reusegate.integrations.mmengine.frozen import _sequence_taps
from reusegate.zoo.catalog import load_gate, save_gate

CHEAP = dict(preset="inference_fast", num_aug=2, init_iters=[2, 2], update_iters=[2], fit_resolution="score")
SMALL = dict(backbone="mobilenet_v2", s4_channels=16, head_channels=8, head="stride2", target_params=CHEAP)


@pytest.mark.parametrize("factory", [mobilenet_v2, resnet18])
def test_stage_computes_the_tap_from_the_one_before(factory):
    torch.manual_seed(0)
    net = factory().eval()
    with torch.no_grad():
        feats = net.forward_features(torch.randn(1, 3, 64, 96))
        assert error_ratio(net.stage("s32")(feats["s16"]), feats["s32"]) <= 1
        assert error_ratio(net.stage("s16")(feats["s8"]), feats["s16"]) <= 1
    stage_params = {id(p) for p in net.stage("s32").parameters()}
    assert stage_params and stage_params <= {id(p) for p in net.parameters()}  # shared, not copied
    with pytest.raises(ValueError, match="stage takes one of"):
        net.stage("s8")


def test_finetune_trains_the_deepest_stage_only():
    model = FRTM(finetune=["s32"], **SMALL)
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    backbone = {n for n in trained if n.startswith("backbone.")}
    assert {n.split(".")[2] for n in backbone} == {"14", "15", "16", "17"}  # MobileNetV2's stride-32 blocks
    assert trained - backbone == {n for n, _ in model.refiner.named_parameters(prefix="refiner")}
    model.train()
    assert not any(m.training for m in model.backbone.modules())  # BatchNorm statistics stay frozen
    assert model.trainable_taps == ("s32",)

    # a clip of cached taps without s32: the adapter computes it, and the stage gets gradients
    vos = ReuseGateVOS(host=model, adapter=dict(type="frtm"), gate=None)
    adapter = vos.net.adapter
    with torch.no_grad():
        frames = [adapter.deep(adapter.shallow(adapter.preprocess(torch.rand(2, 3, 64, 96)))) for _ in range(3)]
    clip = {k: torch.stack([f[k] for f in frames], dim=1) for k in frames[0] if k != "s32"}
    clip["score"] = torch.randn(2, 3, 1, 4, 6)
    masks = torch.zeros(2, 3, 1, 64, 96)
    masks[..., 16:40, 20:60] = 1
    out = vos.net.loss(clip, masks, 0)
    sum(v for k, v in out.items() if k.startswith("loss")).backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert any(n.startswith("backbone.features.17.") and g.abs().sum() > 0 for n, g in grads.items())
    assert not any(n.startswith("backbone.features.13.") for n in grads)


def test_finetune_is_checked():
    with pytest.raises(ValueError, match="may only name 's32'"):
        FRTM(finetune=["s16"], **SMALL)

    class NoStage(nn.Module):  # a plugin backbone with the uniform taps but no stage()
        feature_channels = {"s4": 24, "s8": 32, "s16": 96, "s32": 320}

        def forward_shallow(self, x):
            raise NotImplementedError

        forward_deep = forward_features = forward_shallow

    with pytest.raises(ValueError, match="stage"):
        FRTM(**{**SMALL, "backbone": NoStage()}, finetune=["s32"])


def test_cached_taps_leave_the_finetuned_tap_out():
    model = FRTM(finetune=["s32"], **SMALL).eval()
    adapter = FRTMAdapter(model)
    frames = [np.random.default_rng(i).integers(0, 255, (64, 96, 3), dtype=np.uint8) for i in range(2)]
    label = np.zeros((64, 96), np.uint8)
    label[16:40, 20:60] = 1
    seq = type("Seq", (), {"__len__": lambda self: 2, "load_frame": lambda self, i: frames[i],
                           "load_mask": lambda self, i: label, "object_ids": [1], "start_frames": {1: 0}})()
    cached = _sequence_taps(adapter, seq, False, SimpleNamespace(update=lambda n: None))
    assert "s32" not in cached["taps"] and {"s4", "s8", "s16"} <= set(cached["taps"])

    # the adapter fills it in with the stage's current weights, as inference computes it
    with torch.no_grad():
        model.backbone.features[15].conv[0][0].weight.mul_(1.5)  # as training would move it
        image = torch.from_numpy(frames[0]).permute(2, 0, 1)[None].float() / 255
        feats = adapter.deep(adapter.shallow(adapter.preprocess(image)))
        partial = {k: v for k, v in feats.items() if k != "s32"}
        assert error_ratio(model.complete(partial)["s32"], feats["s32"]) <= 1
        assert model.complete(feats) is feats  # inference: already there, nothing recomputed


def test_finetuned_export_stores_the_trained_stage(tmp_path):
    host_kwargs = dict(SMALL, backbone_weights="imagenet", finetune=["s32"])
    gate = ReuseGate(FRTM(**host_kwargs), dict(type="frtm", input_scale=0.5))
    with torch.no_grad():
        gate.host.backbone.features[16].conv[2].weight.mul_(0.5)  # fine-tuned away from ImageNet
    path = save_gate(gate, tmp_path / "m.pth", host="frtm", adapter={"type": "frtm", "input_scale": 0.5},
                     host_kwargs=host_kwargs)
    stored = torch.load(path, weights_only=True)
    blocks = {k.split(".")[3] for k in stored if k.startswith("host.backbone.")}
    assert blocks == {"14", "15", "16", "17"}
    rebuilt = json.loads(path.with_suffix(".json").read_text())["rebuilt_prefixes"]
    assert "host.backbone.features.13." in rebuilt
    assert not any(p.startswith("host.backbone.features.14") for p in rebuilt)
    loaded = load_gate(path, tau=0.5)
    for k, v in gate.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
