"""Loading upstream FRTM / G-FRTM checkpoints: explicit key map, strictness, the one-logit gate."""
from __future__ import annotations

import pytest
import torch

from reusegate.adapters.frtm.checkpoints import (
    load_frtm_checkpoint,
    load_gfrtm_checkpoint,
    load_gfrtm_into,
    map_gate_key,
    map_refiner_key,
    read_checkpoint,
    split_gfrtm_state_dict,
)
from reusegate.adapters.frtm.model import FRTM
from reusegate.core.host import TapSpec
from reusegate.core.layers import GateLayers


@pytest.fixture(scope="module")
def gfrtm_state(golden_frtm):
    return torch.load(golden_frtm / "greuse_rn18.pt", weights_only=True)["state_dict"]


def _modules():
    model = FRTM("resnet18")
    return model, GateLayers(TapSpec(match_channels=128))


def test_key_map_examples():
    assert map_refiner_key("refiner.TSE.layer5.reduce.0.weight") == "stages.s32.tse.reduce.0.weight"
    assert map_refiner_key("refiner.RRB2.layer2.bblock.1.running_var") == "stages.s4.rrb2.bblock.1.running_var"
    assert map_refiner_key("refiner.CAB.layer3.convreluconv.2.bias") == "stages.s8.cab.attention.2.bias"
    assert map_refiner_key("refiner.project.conv2.weight") == "head.conv2.weight"
    assert map_gate_key("Tmatching.Tgenerate.conv_val.2.weight") == "template_generator.conv_val.2.weight"
    assert map_gate_key("refiner.Diff_process.conv_multi.convBlend.bias") == "refine_translator.conv_multi.blend.bias"
    assert map_gate_key("refiner.Diff_process.postRBB.bblock.3.weight") == "refine_translator.post.bblock.3.weight"
    assert map_gate_key("convGS.2.running_mean") == "gate.2.running_mean"
    assert map_gate_key("Convert_Diff.weight") == "delta_generator.weight"
    for bad in ("refiner.TSE.layer6.reduce.0.weight", "refiner.CAB.layer3.other.0.weight", "backbone.conv1.weight"):
        with pytest.raises(ValueError):
            map_refiner_key(bad)


def test_gfrtm_checkpoint_covers_every_key(gfrtm_state, tmp_path):
    assert len(gfrtm_state) == 189
    refiner_state, gate_state = split_gfrtm_state_dict(gfrtm_state)
    assert len(refiner_state) == 140 and len(gate_state) == 49
    model, gate = _modules()
    path = tmp_path / "gfrtm.pth"
    torch.save({"model": dict(gfrtm_state), "epoch": 260}, path)
    load_gfrtm_checkpoint(model.refiner, gate, path)
    assert torch.equal(model.refiner.stages["s16"].cab.attention[0].weight,
                       gfrtm_state["refiner.CAB.layer4.convreluconv.0.weight"])
    assert torch.equal(gate.template_matcher.blend[1].weight, gfrtm_state["Tmatching.Tmatching.blend.1.weight"])


def test_two_logit_gate_folds_exactly(gfrtm_state):
    _, gate = _modules()
    load_gfrtm_checkpoint(_modules()[0].refiner, gate, gfrtm_state)
    w, b = gfrtm_state["convGS.4.weight"], gfrtm_state["convGS.4.bias"]
    assert torch.equal(gate.gate[4].weight[0], w[0] - w[1])
    assert torch.equal(gate.gate[4].bias[0], b[0] - b[1])
    # softmax over two logits == sigmoid of their difference, on random gate inputs
    gate.eval()
    x = torch.randn(5, 64, 15, 27)
    with torch.no_grad():
        hidden = x
        for i in range(4):
            hidden = gate.gate[i](hidden)
        two = torch.nn.functional.conv2d(hidden, w, b, stride=2).flatten(1)
        one = gate.gate(x)
    assert torch.allclose(torch.sigmoid(one), torch.softmax(two, 1)[:, 0], atol=1e-6)


def test_frtm_checkpoint_strict(gfrtm_state, tmp_path):
    refiner_only = {k: v for k, v in gfrtm_state.items() if k.startswith("refiner.") and "Diff_process" not in k}
    model, gate = _modules()
    load_frtm_checkpoint(model.refiner, refiner_only)
    with pytest.raises(ValueError, match="G-FRTM checkpoint"):
        load_frtm_checkpoint(model.refiner, gfrtm_state)
    broken = dict(refiner_only)
    del broken["refiner.RRB1.layer3.conv1x1.bias"]
    with pytest.raises(ValueError, match=r"missing keys \['stages\.s8\.rrb1\.conv1x1\.bias'\]"):
        load_frtm_checkpoint(model.refiner, broken)
    with pytest.raises(ValueError, match=r"neither FRTM nor G-FRTM: \['extra\.weight'\]"):
        load_frtm_checkpoint(model.refiner, {**refiner_only, "extra.weight": torch.zeros(1)})
    no_gate = {k: v for k, v in gfrtm_state.items() if not k.startswith("Convert_Diff")}
    with pytest.raises(ValueError, match=r"missing keys \['delta_generator\.bias', 'delta_generator\.weight'\]"):
        load_gfrtm_checkpoint(model.refiner, gate, no_gate)
    # a MobileNetV2 refiner does not take RN18 weights: the shape error says the backbone is wrong
    with pytest.raises(ValueError, match="wrong backbone"):
        load_frtm_checkpoint(FRTM("mobilenet_v2").refiner, refiner_only)


def test_read_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_checkpoint(tmp_path / "absent.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"model": 3}, bad)
    with pytest.raises(ValueError, match="'model' state dict"):
        read_checkpoint(bad)


def test_load_into_reuse_gate(gfrtm_state, tmp_path):
    from reusegate.core.gate import ReuseGate

    gate = ReuseGate(FRTM("resnet18"), "frtm", tau=0.7)
    path = tmp_path / "gfrtm.pth"
    torch.save({"model": dict(gfrtm_state)}, path)
    assert load_gfrtm_into(gate, path) is gate
    assert torch.equal(gate.gate_modules.delta_generator.weight, gfrtm_state["Convert_Diff.weight"])
    assert torch.equal(gate.host.refiner.head.conv1.weight, gfrtm_state["refiner.project.conv1.weight"])
    with pytest.raises(ValueError, match="ReuseGate wrapping an FRTM"):
        load_gfrtm_into(torch.nn.Linear(1, 1), path)
