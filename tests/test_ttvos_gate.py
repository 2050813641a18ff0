"""G-TTVOS: the reuse gate on the TTVOS host through the core's taps, on real DAVIS frames.

Models here have random heads (MobileNetV2-s16 backbones with the offline ImageNet weights where the backbone
matters), so the tests check behaviour -- call counts, bit-identity, object bookkeeping, that training lowers the
losses -- not accuracy.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reusegate import ReuseGate
from reusegate.adapters.ttvos import TTVOS, load_ttvos_checkpoint
from reusegate.adapters.ttvos.adapter import TTVOSAdapter
from reusegate.adapters.ttvos.costs import COMPUTED, REUSED, stage_costs
from reusegate.adapters.ttvos.losses import LossOptions, clip_losses
from reusegate.adapters.ttvos.video import segment_video
from reusegate.core.session import HostRunner
from reusegate.zoo.catalog import load_gate, save_gate


def _frames(root: Path, res: str, seq: str, count: int, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` frames ``[N, 3, H, W]`` uint8 and label maps ``[N, H, W]`` int64 (palette ids, or 255 -> 1)."""
    names = sorted((root / "JPEGImages" / res / seq).iterdir())[:count]
    images, labels = [], []
    for f in names:
        images.append(np.asarray(Image.open(f).convert("RGB").resize(size, Image.BILINEAR)))
        ann = Image.open(root / "Annotations" / res / seq / (f.stem + ".png"))
        ann = ann if ann.mode == "P" else ann.convert("L")
        lab = np.asarray(ann.resize(size, Image.NEAREST)).astype(np.int64)
        labels.append(np.where(lab == 255, 1, lab) if ann.mode != "P" else lab)
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(np.stack(labels))


@pytest.fixture(scope="module")
def bear(davis_root):
    return _frames(davis_root, "480p", "bear", 5, (160, 96))


@pytest.fixture(scope="module")
def schoolgirls(schoolgirls_root):
    """Objects 1..3 of schoolgirls; object 3 is hidden on frames 0-1, so it starts on frame 2."""
    images, labels = _frames(schoolgirls_root, "240p", "schoolgirls", 5, (208, 112))
    labels = torch.where(labels <= 3, labels, torch.zeros_like(labels))
    labels[:2][labels[:2] == 3] = 0
    assert all(int((labels[i] == k).sum()) > 20 for i in range(2, 5) for k in (1, 2, 3))
    return images, labels


def _host(seed: int = 0) -> TTVOS:
    torch.manual_seed(seed)
    return TTVOS("mobilenet_v2s16", backbone_weights="imagenet").eval()


class Counter:
    """Counts forward calls of modules (the stride-16 stage, the short-term branch, the template generator)."""

    def __init__(self, **modules: torch.nn.Module) -> None:
        self.calls = dict.fromkeys(modules, 0)
        for name, module in modules.items():
            module.register_forward_pre_hook(lambda *_, n=name: self.calls.__setitem__(n, self.calls[n] + 1))


def _counted(model: TTVOS) -> Counter:
    # MobileNetV2-s16's stride-16 stage starts at features.7; the short-term branch is conv_s16 + blend_s16
    return Counter(s16=model.backbone.features[7], short_term=model.refine.conv_s16, template=model.gcm)


def test_tau_one_is_the_host_alone_bit_for_bit(schoolgirls):
    images, labels = schoolgirls
    gate = ReuseGate(_host(), "ttvos", tau=1.0)
    runner, session = HostRunner(gate.adapter), gate.session()
    for i in range(len(images)):
        new = labels[i] * (labels[i] == 3) if i == 2 else (labels[i] if i == 0 else None)
        a, b = runner.step(images[i], new), session.step(images[i], new)
        assert torch.equal(a.labels, b.labels) and torch.equal(a.probs, b.probs)
        assert not any(b.reused.values()) and b.deep_computed


def test_reused_frames_skip_stride16_short_term_and_template_update(bear):
    images, labels = bear
    model = _host()
    gate = ReuseGate(model, "ttvos", tau=0.0)  # p_reuse > 0 always: every frame after the start reuses
    counter = _counted(model)
    session = gate.session()
    session.step(images[0], labels[0])
    start = dict(counter.calls)
    assert start == {"s16": 1, "short_term": 1, "template": 1}  # R and the first template on the start frame
    for i in range(1, len(images)):
        result = session.step(images[i])
        assert result.reused == {1: True} and not result.deep_computed
    assert counter.calls == start
    assert session.stats()["reuse_rate"] == 1.0

    # computing every frame: the stage and the update run on every frame, the branch after the start
    counter.calls = dict.fromkeys(counter.calls, 0)
    session = gate.session(dataclasses.replace(gate.config, tau=1.0))
    for i in range(len(images)):
        session.step(images[i], labels[0] if i == 0 else None)
    assert counter.calls == {"s16": 5, "short_term": 4, "template": 5}


def test_reuse_options_history_and_template(bear):
    images, labels = bear
    model = _host()
    for history, template_on_reuse, templates in (("push", False, 1), ("hold", False, 1), ("push", True, 3)):
        gate = ReuseGate(model, dict(type="ttvos", history_on_reuse=history, template_on_reuse=template_on_reuse),
                         tau=0.0)
        counter = _counted(model)
        session = gate.session()
        session.step(images[0], labels[0])
        first = session.objects[1].state.history
        for i in (1, 2):
            session.step(images[i])
        assert counter.calls["template"] == templates
        assert torch.equal(session.objects[1].state.history, first) == (history == "hold")


def test_three_objects_one_starting_late(schoolgirls):
    images, labels = schoolgirls
    model = _host()
    gate = ReuseGate(model, "ttvos", tau=0.5)
    session = gate.session()
    for i in range(len(images)):
        new = labels[i] * (labels[i] == 3) if i == 2 else (labels[i] if i == 0 else None)
        result = session.step(images[i], new)
        assert set(result.reused) == ({1, 2} if i < 2 else {1, 2, 3})
        assert result.probs.shape == (4 if i >= 2 else 3, 112, 208)
        if i == 2:
            assert torch.equal(result.labels == 3, labels[2] == 3)  # the new object takes its annotation
            assert not result.reused[3] and np.isnan(result.p_reuse[3])
    assert set(session.stats()["per_object"]) == {1, 2, 3}
    # the host's own loop (late_objects='own_frame') agrees with the adapter path frame by frame
    annotations = {0: labels[0], 2: labels[2] * (labels[2] == 3)}
    own = segment_video(model, images.float() / 255, annotations)
    runner = HostRunner(gate.adapter)
    for i in range(len(images)):
        result = runner.step(images[i], annotations.get(i))
        top2 = result.probs.topk(2, dim=0).values
        differ = (result.labels != own[i]) & ((top2[0] - top2[1]) > 1e-3)
        assert int(differ.sum()) == 0, f"frame {i}: {int(differ.sum())} labels differ away from a near-tie"


def _overfit(loss_fn, params, steps: int) -> tuple[float, float]:
    optimiser = torch.optim.Adam(params, lr=1e-3)
    first = last = 0.0
    for step in range(steps):
        loss = loss_fn()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        last = float(loss.detach())
        first = last if step == 0 else first
    return first, last


def test_ttvos_losses_fall_on_a_real_clip(bear):
    images, labels = bear
    torch.manual_seed(0)
    model = TTVOS("mobilenet_v2s16", backbone_weights="imagenet").train()
    clip, masks = images[None, :3].float() / 255, (labels[None, :3] > 0).float()

    def loss() -> torch.Tensor:
        losses = clip_losses(model, clip, masks)
        return losses["loss_nll"] + losses["loss_diff"] + losses["loss_tmp"]

    first, last = _overfit(loss, [p for p in model.parameters() if p.requires_grad], 25)
    print(f"TTVOS overfit: {first:.3f} -> {last:.3f}")
    assert last < 0.6 * first


def test_upstream_loss_options_differ_from_defaults(bear):
    images, labels = bear
    model = _host()
    clip, masks = images[None, :3].float() / 255, (labels[None, :3] > 0).float()
    with torch.no_grad():
        sane, upstream = clip_losses(model, clip, masks), clip_losses(model, clip, masks, LossOptions.upstream())
    # frame 0 dilutes the NLL mean by (N - 1) / N; the softmaxed Diff head is another regression
    assert float(upstream["loss_nll"]) == pytest.approx(float(sane["loss_nll"]) * 2 / 3, rel=1e-4)
    assert float(upstream["loss_diff"]) != pytest.approx(float(sane["loss_diff"]), rel=1e-2)


def test_gttvos_losses_fall_on_a_real_clip(bear):
    images, labels = bear
    gate = ReuseGate(_host(), "ttvos").train()
    clip, masks = images[None, :4].float() / 255, (labels[None, :4] > 0).float()

    def loss() -> torch.Tensor:
        return sum(v for k, v in gate.loss(clip, masks, epoch=0).items() if k.startswith("loss"))

    first, last = _overfit(loss, [p for p in gate.parameters() if p.requires_grad], 25)
    print(f"G-TTVOS overfit: {first:.3f} -> {last:.3f}")
    assert last < 0.6 * first


def test_strict_loader_names_missing_and_unexpected_keys(golden_ttvos):
    state = dict(torch.load(golden_ttvos / "ttvos_rn18_eval.pt", weights_only=True)["state_dict"])
    del state["vos.refine.predictor_Tmp.bias"]
    state["vos.refine.extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"missing keys \['refine.predictor_Tmp.bias'\].*unexpected keys "
                                         r"\['refine.extra.weight'\]"):
        load_ttvos_checkpoint(TTVOS("resnet18s16"), state)
    with pytest.raises(ValueError, match="outside 'vos.'.*net.x"):
        load_ttvos_checkpoint(TTVOS("resnet18s16"), {**state, "net.x": torch.zeros(1)})
    del state["vos.refine.extra.weight"]
    with pytest.raises(ValueError, match="missing keys .*unexpected keys .*backbone.layer4"):
        load_ttvos_checkpoint(TTVOS("resnet50s16"), state)  # an RN18 checkpoint into RN50


def test_checkpoint_file_round_trip(golden_ttvos, tmp_path):
    state = torch.load(golden_ttvos / "ttvos_rn18_eval.pt", weights_only=True)["state_dict"]
    torch.save({"net": {k: v.clone() for k, v in state.items()}, "epoch": 3}, tmp_path / "ttvos.pth")
    model = TTVOS("resnet18s16", checkpoint=tmp_path / "ttvos.pth")
    assert torch.equal(model.refine.deconv3.weight, state["vos.refine.deconv3.weight"])


def test_backbones_strides_and_plugin_backbone():
    x = torch.rand(1, 3, 96, 160)
    for name, channels in (("mobilenet_v2s16", 320), ("mobilenet_v2", 96)):  # own variant; FRTM's registered one
        model = TTVOS(name)
        with torch.no_grad():
            feats = model.features(model.normalize(x))
        assert {k: tuple(v.shape[1:]) for k, v in feats.items()} == {
            "s4": (24, 24, 40), "s8": (32, 12, 20), "s16": (channels, 6, 10)}
        assert TTVOSAdapter(model).taps.refined_channels == 24
    with pytest.raises(ValueError, match="no backbone named 'no_such_net'; registered backbones: .*mobilenet_v2s16"):
        TTVOS("no_such_net")  # the one lookup's error (a KeyError too), listing TTVOS's own backbones with the rest


def test_export_round_trip_leaves_the_frozen_backbone_out(bear, tmp_path):
    images, labels = bear
    gate = ReuseGate(_host(), "ttvos", tau=0.0)
    path = save_gate(gate, tmp_path / "g_ttvos.pth", host="ttvos", adapter="ttvos",
                     host_kwargs=dict(backbone="mobilenet_v2s16", backbone_weights="imagenet"))
    assert not any(k.startswith("host.backbone.") for k in torch.load(path, weights_only=True))
    loaded = load_gate(path, tau=0.0)
    sessions = gate.session(), loaded.session()
    for i in range(3):
        a, b = (s.step(images[i], labels[0] if i == 0 else None) for s in sessions)
        assert torch.equal(a.probs, b.probs) and torch.equal(a.labels, b.labels) and a.reused == b.reused


def test_stage_cost_table_adds_up_to_what_a_session_executes():
    """The per-stage MACs of ``costs`` sum to the FLOPs a gated session counts on computed and reused frames."""
    model = _host()
    costs = stage_costs(model, 96, 160, repeats=1)
    frame = torch.randint(0, 256, (3, 96, 160), dtype=torch.uint8)
    mask = torch.zeros(96, 160, dtype=torch.long)
    mask[20:60, 40:120] = 1
    for tau, stages in ((0.999, COMPUTED), (0.0, REUSED)):  # the untrained gate's p_reuse is ~0.15
        session = ReuseGate(model, "ttvos", tau=tau).session(count_flops=True)
        session.step(frame, mask)
        result = session.step(frame)
        assert result.reused[1] == (stages is REUSED)
        assert result.flops / 2e9 == pytest.approx(sum(costs[s][0] for s in stages), rel=1e-9)
    assert sum(costs[s][0] for s in REUSED) < 0.6 * sum(costs[s][0] for s in COMPUTED)


def test_input_height_works_at_its_own_size_and_answers_at_the_frame_size(bear):
    images, labels = bear
    gate = ReuseGate(_host(), dict(type="ttvos", input_height=64), tau=1.0)
    session = gate.session()
    session.step(images[0], labels[0])
    result = session.step(images[1])
    assert result.labels.shape == (96, 160) and result.probs.shape == (2, 96, 160)
    assert session.objects[1].state.history.shape[-2:] == (8, 14)  # 64 x 107 padded to 64 x 112, stride 8
