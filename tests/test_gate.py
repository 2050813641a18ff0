"""Core behaviour of ReuseGate on the reference host: equality with the host, call counts, variants, inputs."""
from __future__ import annotations

import dataclasses
import math
from collections import Counter

import numpy as np
import pytest
import torch

from reusegate.adapters.reference import ReferenceAdapter, ReferenceHost
from reusegate.core.config import GateConfig
from reusegate.core.gate import ReuseGate
from reusegate.core.host import label_map
from reusegate.core.layers import GateLayers
from reusegate.core.session import HostRunner
from reusegate.core.training import LossConfig

H, W = 96, 160


class CountingAdapter(ReferenceAdapter):
    """Reference adapter that counts calls per tap."""

    def __init__(self, model):
        super().__init__(model)
        self.calls = Counter()

    def deep(self, feats):
        self.calls["deep"] += 1
        return super().deep(feats)

    def learn(self, state, feats, prob):
        self.calls["learn"] += 1
        super().learn(state, feats, prob)

    def score(self, state, feats):
        self.calls["score"] += 1
        return super().score(state, feats)


def moving_clip(n: int = 6, seed: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Frames with three textured squares drifting over a noisy background, and their label maps."""
    g = torch.Generator().manual_seed(seed)
    background = torch.rand(3, H, W, generator=g)
    colours = torch.rand(3, 3, generator=g)
    frames, labels = [], []
    for t in range(n):
        img = background.clone()
        lab = torch.zeros(H, W, dtype=torch.long)
        for k, (y, x) in enumerate([(10, 10), (40, 70), (60, 20)]):
            y0, x0 = y + t, x + 3 * t * (k + 1) % 40
            img[:, y0:y0 + 24, x0:x0 + 30] = colours[k][:, None, None] * (0.8 + 0.2 * torch.rand(1, 24, 30, generator=g))
            lab[y0:y0 + 24, x0:x0 + 30] = k + 1
        frames.append((img * 255).to(torch.uint8))
        labels.append(lab)
    return frames, labels


def run(session, frames, first):
    return [session.step(f, first if i == 0 else None) for i, f in enumerate(frames)]


def test_tau_one_equals_bare_host_bit_for_bit():
    frames, labels = moving_clip(8)
    host = ReferenceHost()
    bare = run(HostRunner(ReferenceAdapter(host)), frames, labels[0])
    gated = run(ReuseGate(host, ReferenceAdapter, tau=1.0).session(), frames, labels[0])
    assert len(bare) == len(gated) == 8
    for b, g in zip(bare, gated):  # same kernels, same inputs, one machine: bit-identity is the claim
        assert torch.equal(b.labels, g.labels)
        assert torch.equal(b.probs, g.probs)
        assert not any(g.reused.values())
    # the host really ran on every frame: its probabilities change with the frames
    assert not torch.equal(gated[1].probs, gated[2].probs)


def test_tau_zero_reuses_everything_and_never_runs_deep_or_learn():
    frames, labels = moving_clip(6)
    gate = ReuseGate(ReferenceHost(), CountingAdapter, tau=0.0)
    results = run(gate.session(), frames, labels[0])
    calls = gate.adapter.calls
    assert calls["deep"] == 1  # the start frame only
    assert calls["learn"] == 0
    for r in results[1:]:
        assert all(r.reused.values()) and not r.deep_computed
        assert all(0.0 < p < 1.0 for p in r.p_reuse.values())


def force_gate(gate: ReuseGate, pattern: dict[tuple[int, int], float]):
    """Make the gate return p_reuse = pattern[(frame, object)] (default 0.0), counting frames by calls."""
    original = gate.gate_modules.match_and_gate
    state = {"frame": 0, "object": 0, "n": len({o for _, o in pattern}) or 3}

    def match(feature, prev_score, template):
        d, _ = original(feature, prev_score, template)
        key = (state["frame"], state["object"] + 1)
        state["object"] += 1
        if state["object"] == 3:
            state["object"] = 0
            state["frame"] += 1
        return d, torch.tensor([pattern.get(key, 0.0)])

    gate.gate_modules.match_and_gate = match


def test_deep_runs_once_per_frame_when_any_object_computes_and_learn_only_on_computed():
    frames, labels = moving_clip(7)
    gate = ReuseGate(ReferenceHost(), CountingAdapter, tau=0.5)
    # frame numbering of the pattern starts at the first gated frame (video frame 1)
    pattern = {(f, o): 0.9 for f in range(6) for o in (1, 2, 3)}
    pattern.update({(1, 2): 0.1, (3, 1): 0.1, (3, 3): 0.1})  # frames 2 and 4: some objects compute
    force_gate(gate, pattern)
    results = run(gate.session(), frames, labels[0])
    calls = gate.adapter.calls
    computing_frames = [r.index for r in results[1:] if not all(r.reused.values())]
    assert computing_frames == [2, 4]
    assert calls["deep"] == 1 + len(computing_frames)  # once per frame, not once per object
    assert calls["learn"] == 3  # object 2 at frame 2, objects 1 and 3 at frame 4
    assert [r.deep_computed for r in results] == [True, False, True, False, True, False, False]


def test_caches_follow_the_last_computed_frame():
    frames, labels = moving_clip(5)
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter, tau=0.5)
    pattern = {(f, o): 0.9 for f in range(4) for o in (1, 2, 3)}
    pattern[(1, 1)] = 0.0  # object 1 computes at video frame 2
    force_gate(gate, pattern)
    session = gate.session()
    session.step(frames[0], labels[0])
    start_score = session.objects[1].score.clone()
    session.step(frames[1])
    assert torch.equal(session.objects[1].score, start_score)  # reuse never overwrites S(t-n)
    session.step(frames[2])
    computed_score, computed_r = session.objects[1].score.clone(), session.objects[1].refined.clone()
    assert not torch.equal(computed_score, start_score)
    session.step(frames[3])
    assert torch.equal(session.objects[1].score, computed_score)
    assert torch.equal(session.objects[1].refined, computed_r)


def test_copy_variant_repeats_previous_probability():
    frames, labels = moving_clip(4)
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter, tau=0.0, variant="copy")
    session = gate.session()
    first = session.step(frames[0], labels[0])
    second = session.step(frames[1])
    assert all(second.reused.values())
    assert torch.equal(first.labels, second.labels)


def test_fusion_copies_above_tau2_and_decodes_between():
    frames, labels = moving_clip(3)
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter, tau=0.3, variant="fusion", tau2=0.8)
    calls = Counter()
    gate.gate_modules.refine_translator.register_forward_hook(lambda *_: calls.update(["translate"]))
    force_gate(gate, {(0, 1): 0.95, (0, 2): 0.5, (0, 3): 0.1})
    session = gate.session()
    session.step(frames[0], labels[0])
    previous = {o: session.objects[o].last_prob for o in (1, 2, 3)}
    result = session.step(frames[1])
    assert result.reused == {1: True, 2: True, 3: False}
    assert calls["translate"] == 1  # object 2 only
    assert session.objects[1].last_prob is previous[1]  # object 1 copied
    assert not torch.equal(session.objects[2].last_prob, previous[2])


def test_oracle_gates_on_ground_truth_iou():
    frames, labels = moving_clip(4)
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter, tau=0.6, variant="oracle")
    session = gate.session()
    session.step(frames[0], labels[0], gt=labels[0])
    r = session.step(frames[1], gt=labels[1])
    for oid in (1, 2, 3):
        a, b = labels[1] == oid, labels[0] == oid
        iou = (a & b).sum().item() / (a | b).sum().item()
        assert r.p_reuse[oid] == pytest.approx(iou, abs=1e-6)
        assert r.reused[oid] == (iou >= 0.6)
    with pytest.raises(ValueError, match="oracle"):
        session.step(frames[2])


@pytest.mark.parametrize("input_scale", [1.0, 0.5])  # 0.5: the host works below the frame size
def test_objects_can_start_mid_video(input_scale):
    frames, labels = moving_clip(4)
    first = labels[0].clone()
    first[first == 3] = 0
    gate = ReuseGate(ReferenceHost(input_scale=input_scale), ReferenceAdapter, tau=0.5)
    session = gate.session()
    session.step(frames[0], first)
    late = (labels[2] == 3).long() * 3
    r = session.step(frames[1])
    assert set(r.reused) == {1, 2}
    r = session.step(frames[2], late)
    assert set(r.reused) == {1, 2, 3} and r.reused[3] is False and math.isnan(r.p_reuse[3])
    given = labels[2] == 3  # a start frame returns its given mask (through the working resolution)
    assert ((r.labels == 3) & given).sum() / ((r.labels == 3) | given).sum() > (0.999 if input_scale == 1 else 0.85)
    r = session.step(frames[3])
    assert session.stats()["per_object"].keys() == {1, 2, 3}


def test_gate_head_starts_near_fifteen_percent_reuse():
    gm = GateLayers(ReferenceAdapter(ReferenceHost()).taps).eval()
    assert torch.sigmoid(gm.gate[4].bias).item() == pytest.approx(0.15, abs=1e-6)
    p = torch.sigmoid(gm.gate(torch.rand(16, 64, 12, 20)))
    assert 0.05 < p.mean().item() < 0.3


def test_stats_count_reuse_per_object_and_video():
    frames, labels = moving_clip(5)
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter, tau=0.5)
    force_gate(gate, {(f, 1): 0.9 for f in range(4)} | {(f, 2): 0.9 for f in range(2)})
    session = gate.session()
    run(session, frames, labels[0])
    stats = session.stats()
    assert stats["per_object"] == {1: 1.0, 2: 0.5, 3: 0.0}
    assert stats["reuse_rate"] == pytest.approx(0.5)
    assert stats["reuse_rate_weighted"] == pytest.approx(6 / 12)
    assert stats["deep_frames"] == 5


def test_flop_counter_sees_reuse_frames_cheaper_than_computed():
    frames, labels = moving_clip(3)
    computed = ReuseGate(ReferenceHost(width=32), ReferenceAdapter, tau=0.999).session(count_flops=True)
    reused = ReuseGate(ReferenceHost(width=32), ReferenceAdapter, tau=0.0).session(count_flops=True)
    c = run(computed, frames, labels[0])[-1].flops
    r = run(reused, frames, labels[0])[-1].flops
    assert 0 < r < c


# ------------------------------------------------------------------------------------------ bad input
@pytest.fixture
def session():
    return ReuseGate(ReferenceHost(), ReferenceAdapter, tau=0.5).session()


def test_frame_mask_size_mismatch(session):
    frames, labels = moving_clip(1)
    with pytest.raises(ValueError, match="resize the mask"):
        session.step(frames[0], labels[0][:-1])


def test_empty_first_mask(session):
    frames, _ = moving_clip(1)
    with pytest.raises(ValueError, match="at least one object"):
        session.step(frames[0], torch.zeros(H, W, dtype=torch.long))
    with pytest.raises(ValueError, match="at least one object"):
        session.step(frames[0])


def test_object_ids_must_be_consecutive(session):
    frames, labels = moving_clip(2)
    with pytest.raises(ValueError, match="1..K"):
        session.step(frames[0], labels[0] * 2)
    session.step(frames[0], labels[0])
    with pytest.raises(ValueError, match="already exist"):
        session.step(frames[1], labels[1])


def test_wrong_dtype_and_channels(session):
    frames, labels = moving_clip(1)
    with pytest.raises(ValueError, match="integer label map"):
        session.step(frames[0], labels[0].float())
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        session.step(frames[0][:2], labels[0])
    with pytest.raises(ValueError, match="dtype"):
        session.step(frames[0].long(), labels[0])
    with pytest.raises(ValueError, match="H x W x 3"):
        session.step(np.zeros((H, W, 4), np.uint8), labels[0])


def test_numpy_frames_are_accepted(session):
    frames, labels = moving_clip(1)
    r = session.step(frames[0].permute(1, 2, 0).numpy(), labels[0].numpy())
    assert torch.equal(r.labels, labels[0])


@pytest.mark.parametrize("kwargs, message", [
    (dict(tau=1.5), r"tau must be a number in \[0, 1\]"), (dict(tau=-0.1), "tau must be"),
    (dict(tau=True), "tau must be"), (dict(tau2=2.0), "tau2 must be"), (dict(variant="nope"), "variant must be one of"),
    (dict(variant="fusion", tau=0.9, tau2=0.8), "needs tau2 > tau"), (dict(reuse_path="copy"), "reuse_path must be"),
    (dict(reuse_path="shift"), "retired in 0.2.0.*use reuse_path='hold'")])
def test_bad_settings(kwargs, message):
    """Checked once, where the config is made: directly, through the shortcuts, or by ``dataclasses.replace``."""
    with pytest.raises(ValueError, match=message):
        GateConfig(**kwargs)
    with pytest.raises(ValueError, match=message):
        ReuseGate(ReferenceHost(), ReferenceAdapter, **kwargs)
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(GateConfig(), **kwargs)


def test_fusion_at_tau_one_needs_no_tau2_above_it():
    assert GateConfig(tau=1.0, variant="fusion", tau2=0.5).tau2 == 0.5  # tau = 1 reuses nothing


@pytest.mark.parametrize("kwargs, message", [
    (dict(train_tau=1.5), "train_tau must be"), (dict(target_rate=-1), "target_rate must be"),
    (dict(gate_loss="x"), "gate_loss must be"), (dict(ep_t=0), "ep_t must be > 0")])
def test_bad_loss_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LossConfig(**kwargs)


def test_translate_is_read_as_decode():
    assert GateConfig(variant="translate") == GateConfig(variant="decode")
    assert ReuseGate(ReferenceHost(), ReferenceAdapter, variant="translate").config.variant == "decode"


def test_config_and_its_shortcuts():
    config = GateConfig(tau=0.4, variant="fusion", tau2=0.6, reuse_path="hold")
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter, config=config)
    assert gate.config is config
    assert (gate.tau, gate.variant, gate.tau2, gate.reuse_path) == (0.4, "fusion", 0.6, "hold")
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter, config=config, tau=0.5)  # a shortcut overrides its field
    assert gate.config == dataclasses.replace(config, tau=0.5)
    assert ReuseGate(ReferenceHost(), ReferenceAdapter).config == GateConfig()
    with pytest.raises(AttributeError, match="read-only"):
        gate.tau = 0.9
    with pytest.raises(dataclasses.FrozenInstanceError):
        gate.config.tau = 0.9


def test_a_session_runs_with_the_config_it_is_given_and_leaves_the_gate_alone():
    frames, labels = moving_clip(4)
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter, tau=1.0)
    default = gate.config
    reusing = gate.session(dataclasses.replace(gate.config, tau=0.0))
    computing = gate.session()
    for r, c in zip(run(reusing, frames, labels[0])[1:], run(computing, frames, labels[0])[1:]):
        assert all(r.reused.values()) and not any(c.reused.values())
    assert gate.config is default and reusing.config.tau == 0.0 and computing.config is default


def test_unknown_adapter_name_lists_available():
    with pytest.raises(KeyError, match="reference"):
        ReuseGate(ReferenceHost(), "no-such-host")


def test_adapter_given_as_config_dict():
    gate = ReuseGate(ReferenceHost(), dict(type="reference"))
    assert isinstance(gate.adapter, ReferenceAdapter) and gate.adapter.model is gate.host
    with pytest.raises(ValueError, match="needs a 'type'"):
        ReuseGate(ReferenceHost(), dict(name="reference"))
    with pytest.raises(TypeError):  # settings the adapter does not take are not silently dropped
        ReuseGate(ReferenceHost(), dict(type="reference", nonsense=1))


@pytest.mark.parametrize("slots", [2, 3, 8])
def test_label_map_is_the_first_index_arg_max(slots):
    """The one-object shortcut and the general case pick what ``argmax`` picks, ties included."""
    g = torch.Generator().manual_seed(slots)
    merged = torch.rand(slots, 40, 60, generator=g).round(decimals=1)  # coarse values: many ties
    merged[:, :5] = 0.0  # all slots tied
    want = torch.argmax(merged, dim=0)
    assert torch.equal(label_map(merged), want)
    assert (want[:5] == 0).all() and len(torch.unique(want)) == slots


def _soft_aggregate_by_definition(probs: torch.Tensor, eps: float = 1e-7) -> tuple[torch.Tensor, torch.Tensor]:
    """FRTM's soft aggregation written as its definition: softmax over odds, background = min of (1 - p)."""
    p = probs.double().clamp(eps, 1 - eps)
    slots = torch.cat([(1 - p).min(dim=0, keepdim=True).values, p])
    soft = torch.softmax(slots / (1 - slots), dim=0)
    labels = torch.argmax(soft, dim=0)
    return soft * torch.nn.functional.one_hot(labels, len(slots)).permute(2, 0, 1), labels


@pytest.mark.parametrize("objects", [1, 3])
def test_soft_aggregate_follows_its_definition(objects):
    """The one-object shortcut (a sigmoid of the odds' difference) and the general softmax give the definition's
    merged probabilities (to float32 rounding) and its labels, with saturated and undecided pixels included, and
    pass gradients (training merges through it)."""
    from reusegate.core.host import soft_aggregate

    g = torch.Generator().manual_seed(objects)
    probs = torch.sigmoid(6 * torch.randn(objects, 48, 64, generator=g))
    probs[:, :4] = 0.5
    probs[:, 4:8] = 1.0
    probs[:, 8:12] = 0.0
    want, want_labels = _soft_aggregate_by_definition(probs)
    got, labels = soft_aggregate(probs)
    assert got.dtype == torch.float32 and got.shape == (objects + 1, 48, 64)
    assert (got.double() - want).abs().max() <= 1e-6
    decided = (want.max(dim=0).values - want.sort(dim=0).values[-2]) > 1e-5  # not a float32 tie
    assert torch.equal(labels[decided], want_labels[decided]) and decided.float().mean() > 0.8
    leaf = probs.clone().requires_grad_()
    soft_aggregate(leaf)[0][1:].sum().backward()
    assert leaf.grad is not None and torch.isfinite(leaf.grad).all()
