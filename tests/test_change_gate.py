"""The change gate (``gate_input='change'`` / ``'change_mask'``) and the ``hold`` reuse path: cues, lazy template
matching, training, export."""
from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from reusegate.integrations.mmengine import ReuseGateVOS
from reusegate.adapters.reference import ReferenceAdapter, ReferenceHost
from reusegate.core.config import GateConfig
from reusegate.core.gate import ReuseGate
from reusegate.core.layers import ChangeGate, GateLayers
from reusegate.core.session import HostRunner
from reusegate.zoo.catalog import load_gate, save_gate
from test_frozen_taps import train_steps
from test_gate import moving_clip, run
from test_train_matches_inference import RTOL, _clip


def test_cues_compare_the_object_region_and_the_whole_frame():
    g = torch.Generator().manual_seed(0)
    anchor = torch.rand(1, 8, 6, 10, generator=g)
    region = torch.zeros(1, 1, 6, 10)
    region[..., :3, :5] = 1.0
    same = ChangeGate.cues(anchor, anchor, region)
    assert torch.allclose(same[:, :2], torch.ones(1, 2), atol=1e-6)
    assert float(same[0, 2]) == pytest.approx(math.log(0.25 + 1e-3))  # 15 of 60 cells
    changed = anchor.clone()
    changed[..., 3:, :] = torch.rand(1, 8, 3, 10, generator=g)  # the scene changes, the object's region does not
    obj, scene, _ = ChangeGate.cues(changed, anchor, region)[0]
    assert obj == pytest.approx(1.0, abs=1e-6) and scene < 0.99
    moved = anchor.clone()
    moved[..., :3, :5] = torch.rand(1, 8, 3, 5, generator=g)  # now the object's region changes
    obj_moved = ChangeGate.cues(moved, anchor, region)[0, 0]
    assert obj_moved < 0.99
    empty = ChangeGate.cues(changed, anchor, torch.zeros_like(region))
    assert float(empty[0, 0]) == 0.0  # no region: nothing to compare, so the object computes
    assert float(empty[0, 2]) == pytest.approx(math.log(1e-3))


def test_change_gate_reuses_more_where_less_changes():
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter, tau=0.0, gate_input="change")
    frames, labels = moving_clip(4)
    still = [frames[0]] * 4
    p_still = [r.p_reuse[1] for r in run(gate.session(), still, labels[0])[1:]]
    p_moving = [r.p_reuse[1] for r in run(gate.session(), frames, labels[0])[1:]]
    assert min(p_still) > max(p_moving)


def test_change_gate_runs_template_matching_only_on_reused_frames():
    frames, labels = moving_clip(6)
    host = ReferenceHost()
    gate = ReuseGate(host, ReferenceAdapter, tau=0.5, gate_input="change")
    calls = []
    gate.gate_modules.template_matcher.register_forward_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        gate.gate_modules.change_gate.linear.bias.fill_(-20.0)  # p ~ 0: every frame computes
    results = run(gate.session(), frames, labels[0])
    assert not any(any(r.reused.values()) for r in results) and calls == []
    bare = run(HostRunner(ReferenceAdapter(host)), frames, labels[0])
    for b, r in zip(bare, results):  # computing every frame is the host, whatever the gate read
        assert torch.equal(b.labels, r.labels)
    with torch.no_grad():
        gate.gate_modules.change_gate.linear.bias.fill_(20.0)  # p ~ 1: every frame reuses
    results = run(gate.session(), frames, labels[0])
    assert all(all(r.reused.values()) for r in results[1:])
    assert len(calls) == 3 * 5  # D_t once per object and reused frame


def test_hold_reuses_the_caches_without_any_gate_module_but_the_change_gate():
    frames, labels = moving_clip(5)
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter, tau=0.5, gate_input="change", reuse_path="hold")
    ran = []
    for name in ("template_matcher", "delta_generator", "refine_translator"):
        getattr(gate.gate_modules, name).register_forward_hook(lambda *_, n=name: ran.append(n))
    with torch.no_grad():
        gate.gate_modules.change_gate.linear.bias.fill_(20.0)
    seen = []
    original = gate.adapter.refine_shallow
    gate.adapter.refine_shallow = lambda feats, score, refined: seen.append((score, refined)) or original(
        feats, score, refined)
    session = gate.session()
    session.step(frames[0], labels[0])
    cached = {oid: (o.score, o.refined) for oid, o in session.objects.items()}
    for frame in frames[1:]:
        assert all(session.step(frame).reused.values())
    assert ran == []  # neither D_t, delta nor the translator: only the change gate and the shallow decoder
    assert all(any(s is c[0] and r is c[1] for c in cached.values()) for s, r in seen)
    with pytest.raises(ValueError, match="reuse_path must be one of"):
        ReuseGate(ReferenceHost(), ReferenceAdapter, reuse_path="copy")


def test_change_gate_anchor_follows_the_last_computed_frame():
    frames, labels = moving_clip(4)
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter, tau=0.5, gate_input="change")
    with torch.no_grad():
        gate.gate_modules.change_gate.linear.bias.fill_(20.0)
    session = gate.session()
    session.step(frames[0], labels[0])
    start = session.objects[1].anchor_match
    session.step(frames[1])
    assert session.objects[1].anchor_match is start  # a reused frame keeps the anchor
    with torch.no_grad():
        gate.gate_modules.change_gate.linear.bias.fill_(-20.0)
    session.step(frames[2])
    assert not torch.equal(session.objects[1].anchor_match, start)


def test_train_only_trains_the_change_gate_and_nothing_else():
    host = ReferenceHost(width=8, refined_channels=16, input_scale=0.5)
    model = ReuseGateVOS(host=host, adapter="reference", gate=dict(m1=0.0, gate_input="change"),
                         train_only=["gate_modules.change_gate"])
    model.train()
    assert model.net.gate_modules.change_gate.training and not model.net.gate_modules.refine_translator.training
    assert not model.net.host.training
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    train_steps(model, lr=1e-1)
    changed = {k for k, v in before.items() if not torch.equal(v, model.net.state_dict()[k])}
    assert changed == {"gate_modules.change_gate.linear.weight", "gate_modules.change_gate.linear.bias"}
    with pytest.raises(ValueError, match="not sub-modules"):
        ReuseGateVOS(host=ReferenceHost(width=8), adapter="reference", gate=dict(gate_input="change"),
                     train_only=["gate_modules.gate"])


@pytest.mark.parametrize("gate_input, reuse_path", [("change", "hold"), ("change_mask", "translate")])
def test_export_records_the_gate_input(tmp_path, gate_input, reuse_path):
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter, gate_input=gate_input, reuse_path=reuse_path)
    with torch.no_grad():
        gate.gate_modules.change_gate.linear.weight.copy_(torch.tensor([[3.0, -1.0, 0.5]]))
    path = save_gate(gate, tmp_path / "m.pth", host="reference", adapter="reference")
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["gate_input"] == gate_input and meta["recommended"]["reuse_path"] == reuse_path
    loaded = load_gate(path)
    assert loaded.gate_modules.gate_input == gate_input and not hasattr(loaded.gate_modules, "gate")
    assert loaded.config == GateConfig(reuse_path=reuse_path)
    other = "translate" if reuse_path == "hold" else "hold"
    assert load_gate(path, reuse_path=other).reuse_path == other  # an inference-time choice: no weights change
    assert torch.equal(loaded.gate_modules.change_gate.linear.weight, torch.tensor([[3.0, -1.0, 0.5]]))


def test_unknown_gate_input_is_refused():
    with pytest.raises(ValueError, match="gate_input must be one of"):
        GateLayers(ReferenceAdapter(ReferenceHost()).taps, gate_input="learnt")
    gm = GateLayers(ReferenceAdapter(ReferenceHost()).taps, gate_input="change")
    feature = torch.rand(1, gm.taps.match_channels, 6, 10)
    with pytest.raises(ValueError, match="anchor"):
        gm.reuse_probability(feature, torch.zeros(1, 1, 3, 5), torch.zeros(1, 64, 64))


def test_change_mask_reads_the_last_computed_mask_in_sessions_and_in_training():
    """``'change_mask'`` averages its cues around the object's merged probability on its last computed frame (the
    start mask on the first), the same region whether a session or the training loss runs the clip."""
    torch.manual_seed(0)
    frames, labels = _clip()
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter, tau=0.5, gate_input="change_mask").eval()
    with torch.no_grad():
        gate.gate_modules.change_gate.linear.bias.fill_(-20.0)  # every frame computes: the anchor moves each frame
    regions: list[torch.Tensor] = []
    gate.gate_modules.change_gate.register_forward_hook(lambda _m, args, _out: regions.append(args[2].clone()))
    session = gate.session()
    results = [session.step(frames[t], labels[0] if t == 0 else None) for t in range(len(frames))]
    in_session = list(regions)
    regions.clear()
    with torch.no_grad():
        gate.loss(frames[None], (labels[None, :, None] > 0).float())
    assert len(in_session) == len(regions) == len(frames) - 1
    start = F.adaptive_avg_pool2d((labels[0] > 0).float()[None, None], in_session[0].shape[-2:])
    assert torch.allclose(in_session[0], F.max_pool2d(start, 3, stride=1, padding=1))  # dilated by one cell
    assert float(in_session[0].sum()) > float(start.sum())
    for t, (got, want) in enumerate(zip(regions, in_session), start=1):
        assert float((got - want).abs().max()) <= RTOL * float(want.abs().max()), t
    # the region follows the object's output, not its start: the square drifts right
    assert float((in_session[-1] - in_session[0]).abs().max()) > 0.5
    assert not any(r.reused[1] for r in results[1:])
    with pytest.raises(ValueError, match="needs the object's mask probability"):
        gate.gate_modules.reuse_probability(torch.zeros(1, 4, 6, 8), torch.zeros(1, 1, 3, 4), None,
                                            torch.zeros(1, 4, 6, 8))
