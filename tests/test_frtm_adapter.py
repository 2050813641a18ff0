"""FRTM as a gated host: plugin wiring, taps, sessions (compute, reuse, late objects), training, narrow decoder.

Random weights and tiny frames; the target model uses cheap settings (score-resolution fit, few iterations)
so that each test takes seconds. Parity with upstream is in test_frtm_golden.py.
"""
from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from reusegate.adapters.frtm.adapter import FRTMAdapter
from reusegate.adapters.frtm.checkpoints import load_frtm_checkpoint
from reusegate.adapters.frtm.model import FRTM
from reusegate.adapters.frtm.refiner import Refiner, Stride2Head, Stride4Head
from reusegate.adapters.frtm.target_model import TargetModelParams
from reusegate.core.gate import ReuseGate
from reusegate.core.session import HostRunner
from reusegate.registry import lookup

H, W = 64, 96
CHEAP = TargetModelParams.inference_fast(
    num_aug=2, init_iters=(2, 2), update_iters=(2,), train_skipping=2, fit_resolution="score", memory_size=8
)


def _model(backbone: str = "resnet18", **kwargs) -> FRTM:
    torch.manual_seed(0)
    return FRTM(backbone, target_params=CHEAP, **kwargs).eval()


def _clip(n: int = 4):
    g = torch.Generator().manual_seed(3)
    base = torch.rand(3, H, W, generator=g)
    frames = [(base.roll(i, dims=2) * 255).to(torch.uint8) for i in range(n)]
    labels = torch.zeros(H, W, dtype=torch.long)
    labels[16:48, 20:60] = 1
    labels[4:20, 70:90] = 2
    return frames, labels


def test_target_params_from_config_dict():
    model = FRTM("resnet18", target_params=dict(preset="training", memory_size=10, init_iters=[3, 4]))
    assert model.target_params.memory_size == 10 and model.target_params.init_iters == (3, 4)
    assert model.target_params.c_channels == TargetModelParams.training().c_channels
    with pytest.raises(ValueError, match="preset"):
        FRTM("resnet18", target_params=dict(preset="slow"))


def test_built_from_an_mmengine_config():
    from mmengine.registry import init_default_scope

    from reusegate.registry import ADAPTERS, MODELS

    init_default_scope("reusegate")
    model = MODELS.build(dict(type="frtm", backbone="mobilenet_v2", s4_channels=32,
                              target_params=dict(preset="training", num_aug=3)))
    assert isinstance(model, FRTM) and model.backbone.feature_channels["s8"] == 32
    assert model.refiner.stages["s4"].rrb2.conv1x1.out_channels == 32 and model.target_params.num_aug == 3
    assert MODELS.build(dict(type="resnet50")).feature_channels["s16"] == 1024
    assert ADAPTERS.get("frtm") is FRTMAdapter


def test_plugin_registration():
    assert lookup("adapter", "frtm") is FRTMAdapter
    assert lookup("host", "frtm") is FRTM
    gate = ReuseGate(_model(), "frtm", tau=0.7)
    assert isinstance(gate.adapter, FRTMAdapter)
    assert gate.adapter.taps.match_channels == 128 and gate.adapter.taps.refined_channels == 64


@pytest.mark.parametrize("backbone, c8", [("resnet18", 128), ("mobilenet_v2", 32)])
def test_taps_shapes(backbone, c8):
    model = _model(backbone)
    a = FRTMAdapter(model)
    assert a.taps.match_channels == c8 and a.taps.score_stride == 16 and a.taps.refined_stride == 16
    with torch.no_grad():
        x = a.preprocess(torch.rand(1, 3, H, W))
        feats = a.deep(a.shallow(x))
        assert a.match_feature(feats).shape[1] == c8
        mask = torch.zeros(1, 1, H, W)
        mask[..., 10:40, 10:50] = 1
        state = a.start_object(feats, mask)
        score = a.score(state, feats)
        assert score.shape == (1, 1, H // 16, W // 16)
        refined = a.refine_deep(feats, score)
        assert refined.shape == (1, 64, H // 16, W // 16)
        assert a.refine_shallow(feats, score, refined).shape == (1, 1, H, W)


def test_tau_one_is_the_host_bit_for_bit():
    frames, labels = _clip()
    runner = HostRunner(FRTMAdapter(_model()))
    gate = ReuseGate(_model(), "frtm", tau=1.0)
    session = gate.session()
    for i, f in enumerate(frames):
        ref = runner.step(f, labels if i == 0 else None)
        got = session.step(f, labels if i == 0 else None)
        # bit-identity is meaningful here: the same kernels on the same inputs on one machine (tau = 1 never
        # evaluates the gate, so nothing else runs)
        assert torch.equal(ref.probs, got.probs)
        assert torch.equal(ref.labels, got.labels)
        assert not any(got.reused.values())


def test_reused_frames_skip_deep_features_and_learning():
    frames, labels = _clip(5)
    gate = ReuseGate(_model(), "frtm", tau=0.0)  # any p_reuse > 0 reuses
    session = gate.session()
    session.step(frames[0], labels)
    models = {oid: obj.state.models[0] for oid, obj in session.objects.items()}
    samples = {oid: tm.num_samples for oid, tm in models.items()}
    for f in frames[1:]:
        result = session.step(f)
        assert all(result.reused.values()) and not result.deep_computed
        assert result.labels.shape == (H, W)
        assert set(torch.unique(result.labels).tolist()) <= {0, 1, 2}
    assert {oid: tm.num_samples for oid, tm in models.items()} == samples  # no memory insert on reuse
    assert session.stats()["reuse_rate"] == 1.0


def test_computed_frames_learn_and_late_objects_start():
    frames, labels = _clip(4)
    first = labels.clone()
    first[first == 2] = 0
    later = torch.where(labels == 2, labels, torch.zeros_like(labels))
    gate = ReuseGate(_model(), "frtm", tau=1.0)
    session = gate.session()
    session.step(frames[0], first)
    tm1 = session.objects[1].state.models[0]
    n0 = tm1.num_samples
    session.step(frames[1])
    assert tm1.num_samples == n0 + 1  # a computed frame enters the memory
    result = session.step(frames[2], later)
    assert set(result.reused) == {1, 2}
    assert (result.labels[later == 2] == 2).all()  # the new object's start mask wins its pixels
    result = session.step(frames[3])
    assert result.probs.shape == (3, H, W)


def test_input_scale_returns_frame_size():
    frames, labels = _clip(2)
    model = _model()
    gate = ReuseGate(model, FRTMAdapter(model, input_scale=0.5), tau=0.7)
    session = gate.session()
    for i, f in enumerate(frames):
        r = session.step(f, labels if i == 0 else None)
        assert r.labels.shape == (H, W)


def test_input_height_fixes_the_working_size():
    adapter = FRTMAdapter(_model(), input_height=32)
    for h, w, want in ((64, 96, (32, 48)), (128, 96, (32, 24)), (32, 50, (32, 50))):
        assert tuple(adapter.preprocess(torch.rand(1, 3, h, w)).shape[-2:]) == want
    # 480p halved is what input_scale=0.5 gives
    halved = FRTMAdapter(_model(), input_scale=0.5).preprocess(torch.rand(1, 3, 480, 854))
    assert halved.shape[-2:] == FRTMAdapter(_model(), input_height=240).preprocess(torch.rand(1, 3, 480, 854)).shape[-2:]
    with pytest.raises(ValueError, match="not both"):
        FRTMAdapter(_model(), input_scale=0.5, input_height=240)
    with pytest.raises(ValueError, match="input_height"):
        FRTMAdapter(_model(), input_height=8)


def test_training_loss_reaches_refiner_and_gate():
    torch.manual_seed(0)
    model = FRTM("resnet18", target_params=TargetModelParams.training(
        num_aug=1, init_iters=(2,), update_iters=(1,), fit_resolution="score"))
    gate = ReuseGate(model, "frtm").train()
    frames, labels = _clip(3)
    clip = torch.stack([torch.stack([f.float() / 255 for f in frames])] * 2)  # B = 2
    masks = (labels == 1).float()[None, None, None].expand(2, 3, 1, H, W)
    losses = gate.loss(clip, masks, epoch=1)
    total = losses["loss_seg"] + losses["loss_delta"] + losses["loss_gate"]
    assert torch.isfinite(total)
    total.backward()
    assert model.refiner.head.conv2.weight.grad is not None
    assert gate.gate_modules.template_matcher.blend[1].weight.grad is not None
    assert all(p.grad is None for p in model.backbone.parameters())  # frozen
    assert not model.backbone.training  # BN statistics stay fixed in train mode


def test_narrow_decoder_option_is_cheaper():
    torch.manual_seed(0)
    channels = {"s4": 64, "s8": 128, "s16": 256, "s32": 512}
    feats = {k: torch.randn(1, c, 120 // s, 216 // s) for (k, c), s in zip(channels.items(), (4, 8, 16, 32))}
    score, refined = torch.randn(1, 1, 8, 14), torch.randn(1, 64, 8, 14)
    costs = {}
    for s4 in (None, 32):
        refiner = Refiner(channels, s4_channels=s4, head_channels=16 if s4 else 32).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = refiner.forward_shallow(feats, score, refined, (120, 210))
        assert out.shape == (1, 1, 120, 210)
        costs[s4] = counter.get_total_flops()
    assert costs[32] < 0.5 * costs[None]
    narrow = Refiner(channels, s4_channels=32)
    with pytest.raises(ValueError, match="does not fit"):
        load_frtm_checkpoint(narrow, _upstream_keys(Refiner(channels)))
    load_frtm_checkpoint(Refiner(channels), _upstream_keys(Refiner(channels)))  # the default width loads


def test_stride4_head_and_narrow_s8_options():
    torch.manual_seed(0)
    channels = {"s4": 24, "s8": 32, "s16": 96, "s32": 320}  # MobileNetV2's taps
    feats = {k: torch.randn(1, c, 120 // s, 216 // s) for (k, c), s in zip(channels.items(), (4, 8, 16, 32))}
    score, refined = torch.randn(1, 1, 8, 14), torch.randn(1, 64, 8, 14)
    costs = {}
    variants = {"upstream": {}, "stride2": dict(s4_channels=32, head="stride2", head_channels=16),
                "cpu": dict(s8_channels=32, s4_channels=24, head="stride4", head_channels=16)}
    for name, kwargs in variants.items():
        refiner = Refiner(channels, **kwargs).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            out = refiner.forward_shallow(feats, score, refined, (120, 210))
        assert out.shape == (1, 1, 120, 210)
        costs[name] = counter.get_total_flops()
        with torch.no_grad():  # the split is still the whole decoder
            whole = refiner(feats, score, (120, 210))
            parts = refiner.forward_shallow(feats, score, refiner.forward_deep(feats, score), (120, 210))
        assert torch.equal(whole, parts)
    assert isinstance(Refiner(channels, head="stride2").head, Stride2Head)
    cpu = Refiner(channels, s8_channels=32, head="stride4")
    assert isinstance(cpu.head, Stride4Head) and cpu.stages["s8"].cab.deeper_proj.in_channels == 64
    assert cpu.stages["s4"].cab.deeper_proj.in_channels == 32  # s4 attends to the narrow s8 output
    assert costs["cpu"] < 0.25 * costs["upstream"], costs  # the never-skipped decoder: a quarter or less
    assert costs["cpu"] < costs["stride2"] < 0.6 * costs["upstream"], costs
    with pytest.raises(ValueError, match="head must be one of"):
        Refiner(channels, head="bilinear")


def test_wider_deep_decoder_widens_the_refined_tap():
    model = _model("mobilenet_v2", channels=96, s8_channels=64, s4_channels=32, head="stride2", head_channels=16)
    adapter = FRTMAdapter(model)
    assert model.refiner.widths == {"s32": 96, "s16": 96, "s8": 64, "s4": 32}
    assert adapter.taps.refined_channels == 96
    with torch.no_grad():
        feats = adapter.deep(adapter.shallow(adapter.preprocess(torch.rand(1, 3, H, W))))
        score = torch.randn(1, 1, H // 16, W // 16)
        refined = adapter.refine_deep(feats, score)
        assert refined.shape == (1, 96, H // 16, W // 16)
        assert adapter.refine_shallow(feats, score, refined).shape == (1, 1, H, W)


def test_refined_split_s8_was_retired():
    """``refined_split='s8'`` (measured not to pay) is refused with what to use instead, from a config or an old
    ``.json`` preset alike; the refined tap is G-FRTM's stride-16 stage."""
    model = _model("mobilenet_v2", s4_channels=32, head="stride2", head_channels=16)
    assert FRTMAdapter(model).taps.refined_stride == 16
    with pytest.raises(ValueError, match="refined_split='s8' was retired in 0.2.0.*reuse_path='hold'"):
        FRTMAdapter(model, refined_split="s8")
    with pytest.raises(ValueError, match="refined_split must be 's16'"):
        FRTMAdapter(model, refined_split="s4")


def _upstream_keys(refiner: Refiner) -> dict:
    """An upstream-named state dict of a default refiner (inverse of the key map, for the test above)."""
    stage = {"s32": "layer5", "s16": "layer4", "s8": "layer3", "s4": "layer2"}
    block = {"tse": "TSE", "rrb1": "RRB1", "rrb2": "RRB2", "cab": "CAB"}
    out = {}
    for k, v in refiner.state_dict().items():
        parts = k.split(".")
        if parts[0] == "head":
            out["refiner.project." + ".".join(parts[1:])] = v
        else:
            rest = ".".join(parts[3:]).replace("attention.", "convreluconv.")
            out[f"refiner.{block[parts[2]]}.{stage[parts[1]]}.{rest}"] = v
    return out


def test_merge_label_rules_and_validation():
    probs = torch.tensor([[[0.9, 0.55]], [[0.05, 0.5]]])  # 2 objects, 1 x 2 pixels
    model = _model()
    _, labels = FRTMAdapter(model).merge(probs)
    _, upstream = FRTMAdapter(model, label_rule="upstream").merge(probs)
    assert labels.tolist() == [[1, 1]]
    assert upstream.tolist() == [[1, 0]]  # pixel 2: object 1 wins the arg-max with a merged value of 0.40
    with pytest.raises(ValueError, match="label_rule"):
        FRTMAdapter(model, label_rule="vote")
    with pytest.raises(ValueError, match="wraps an FRTM"):
        FRTMAdapter(torch.nn.Linear(1, 1))
