"""Training on precomputed frozen taps: the same losses as from images, the real-data cache, shipped exports.

The frozen-feature path exists for speed (the backbone runs once, not every epoch), so what must hold is
that it changes nothing else: identical losses and gradients, taps equal to the inference path's, scores
equal to a freshly fitted target model's.
"""
from __future__ import annotations

import json

import pytest
import torch
from mmengine.dataset import pseudo_collate

from numeric import error_ratio

from reusegate.adapters.frtm.adapter import FRTMAdapter
from reusegate.adapters.frtm.model import FRTM
from reusegate.adapters.reference import ReferenceAdapter, ReferenceHost
from reusegate.core.config import GateConfig
from reusegate.core.gate import ReuseGate
from reusegate.core.training import LossConfig, clip_frames
from reusegate.integrations.mmengine import FrozenFeatureClipDataset, ReuseGateVOS
from reusegate.integrations.mmengine.model import HostOnly
from reusegate.zoo.catalog import load_gate, save_gate

CHEAP = dict(preset="inference_fast", num_aug=2, init_iters=[2, 2], update_iters=[2], fit_resolution="score")


def _clip(b: int = 2, t: int = 4, h: int = 64, w: int = 96):
    g = torch.Generator().manual_seed(1)
    clip = torch.rand(b, t, 3, h, w, generator=g)
    masks = torch.zeros(b, t, 1, h, w)
    for i in range(t):
        masks[:, i, :, 16 + i:40 + i, 20:60] = 1
    return clip, masks


def train_steps(model: ReuseGateVOS, lr: float, steps: int = 2) -> None:
    """A few Adam steps of the gated loss on :func:`_clip`, over the parameters that train."""
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    clip, masks = _clip()
    for _ in range(steps):
        opt.zero_grad()
        out = model.net.loss(clip, masks)
        sum(v for k, v in out.items() if k.startswith("loss")).backward()
        opt.step()


def _stacked(frames):
    return {k: torch.stack([f[k] for f in frames], dim=1) for k in frames[0]}


@pytest.mark.parametrize("gated", [True, False])
def test_precomputed_taps_give_the_same_losses_and_gradients(gated):
    torch.manual_seed(0)
    host = ReferenceHost(width=8, refined_channels=16, input_scale=0.5)
    net = ReuseGate(host, ReferenceAdapter) if gated else HostOnly(host, ReferenceAdapter(host))
    settings = (LossConfig(m1=0.5, ep_t=2),) if gated else ()
    clip, masks = _clip()

    def run(c, m):
        net.zero_grad()
        out = net.loss(c, m, 1, *settings)
        sum(v for k, v in out.items() if k.startswith("loss")).backward()
        return out, {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}

    from_images, grads_images = run(clip, masks)
    with torch.no_grad():
        frames, small = clip_frames(net.adapter, clip, masks)
    assert small.shape[-2:] == (32, 48)  # masks come back at the host's input size
    from_taps, grads_taps = run(_stacked(frames), small)
    assert from_images.keys() == from_taps.keys()
    # the taps came from per-frame convolutions, the loss batches the clip: kernels may sum in another order
    for k in from_images:
        assert error_ratio(from_images[k], from_taps[k]) <= 1, k
    # the taps are inputs now: only the encoder that made them (frozen in real use) gets no gradient
    assert grads_taps and set(grads_taps) <= set(grads_images)
    assert all(k.split(".")[1] in ("s4", "s8", "s16", "s32") for k in set(grads_images) - set(grads_taps))
    for k in grads_taps:
        assert error_ratio(grads_images[k], grads_taps[k]) <= 1, k


def test_precomputed_taps_are_checked():
    adapter = ReferenceAdapter(ReferenceHost(width=8))
    clip, masks = _clip()
    with pytest.raises(ValueError, match="matching the masks"):
        clip_frames(adapter, {"s4": torch.zeros(2, 3, 8, 16, 24)}, masks)
    with pytest.raises(ValueError, match="at least one tap"):
        clip_frames(adapter, {}, masks)
    with pytest.raises(ValueError, match=r"\[B, T, 3, H, W\]"):
        clip_frames(adapter, clip[:, :, :2], masks)


def test_frtm_uses_a_precomputed_score_and_fits_nothing():
    model = FRTM("mobilenet_v2", target_params=CHEAP).eval()
    adapter = FRTMAdapter(model)
    x = adapter.preprocess(torch.rand(1, 3, 64, 96))
    feats = adapter.deep(adapter.shallow(x))
    score = torch.randn(1, 1, 4, 6)
    state = adapter.start_object({**feats, "score": score}, torch.ones(1, 1, 64, 96))
    assert state.models == []
    assert torch.equal(adapter.score(state, {**feats, "score": score}), score)
    with pytest.raises(ValueError, match="precomputed score"):
        adapter.score(state, feats)


@pytest.mark.data
def test_frozen_feature_dataset_on_real_frames(davis_root, tmp_path):
    host = dict(type="frtm", backbone="mobilenet_v2", backbone_weights="imagenet", s4_channels=16, head_channels=8,
                target_params=CHEAP)
    adapter = dict(type="frtm", input_scale=0.25)
    kwargs = dict(data_root=davis_root, host=host, adapter=adapter, cache_dir=tmp_path / "cache", sequences=["bear"],
                  precompute_score=True, progress=False, clip_length=3, samples_per_object=2, sampling="ordered")
    ds = FrozenFeatureClipDataset(**kwargs)
    files = list((tmp_path / "cache").glob("bear-*.pt"))
    assert len(files) == 1 and not list((tmp_path / "cache").glob("*.tmp*"))
    stamp = files[0].stat().st_mtime_ns
    assert FrozenFeatureClipDataset(**kwargs) is not None and files[0].stat().st_mtime_ns == stamp  # reused

    item = ds[0]
    frames = item["data_samples"].metainfo["frame_indices"]
    assert item["inputs"]["s8"].shape == (3, 32, 15, 27) and item["inputs"]["image"].shape == (3, 0, 120, 214)
    assert item["data_samples"].gt_masks.shape == (3, 1, 120, 214)
    # taps and score are what the inference path computes (float16 storage)
    net = FRTM(**{k: v for k, v in host.items() if k != "type"}).eval()
    a = FRTMAdapter(net, input_scale=0.25)
    seq = ds.sequence("bear")
    with torch.no_grad():
        def feats_of(i):
            image = torch.from_numpy(seq.load_frame(i).copy()).permute(2, 0, 1)[None].float() / 255
            return a.deep(a.shallow(a.preprocess(image)))
        first = feats_of(0)
        mask = torch.from_numpy((seq.load_mask(0) == 1).astype("float32"))[None, None]
        state = a.start_object(first, torch.nn.functional.interpolate(mask, size=(120, 214), mode="nearest"))
        want = feats_of(frames[1])
        assert torch.allclose(item["inputs"]["s16"][1], want["s16"][0], atol=2e-2, rtol=1e-2)
        assert torch.allclose(item["inputs"]["score"][1], a.score(state, want)[0], atol=2e-2, rtol=1e-2)

    # a batch trains the gated model and the host alone
    batch = pseudo_collate([ds[0], ds[1]])
    for gate in (dict(m1=0.5, ep_t=2), None):
        model = ReuseGateVOS(host=host, adapter=adapter, gate=gate)
        out = model(**model.data_preprocessor(batch, True), mode="loss")
        assert all(torch.isfinite(v) for v in out.values())
        sum(v for k, v in out.items() if k.startswith("loss")).backward()
        assert model.net.host.refiner.head.conv2.weight.grad.abs().sum() > 0


def test_export_leaves_out_the_rebuilt_backbone(tmp_path):
    host_kwargs = dict(backbone="mobilenet_v2", backbone_weights="imagenet", s4_channels=16, head_channels=8,
                       target_params=CHEAP)
    gate = ReuseGate(FRTM(**host_kwargs), dict(type="frtm", input_scale=0.5))
    path = save_gate(gate, tmp_path / "m.pth", host="frtm", adapter={"type": "frtm", "input_scale": 0.5},
                     host_kwargs=host_kwargs)
    stored = torch.load(path, weights_only=True)
    assert stored and not [k for k in stored if k.startswith("host.backbone.")]
    assert json.loads(path.with_suffix(".json").read_text())["rebuilt_prefixes"] == ["host.backbone."]
    loaded = load_gate(path, tau=0.5)
    for k, v in gate.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    del stored[next(k for k in stored if k.startswith("host.refiner."))]
    torch.save(stored, path)
    with pytest.raises(ValueError, match="missing keys"):
        load_gate(path)


def test_freeze_host_trains_the_gate_modules_only():
    """freeze_host keeps the whole host state (weights and BatchNorm statistics) and trains the gate modules."""
    host = ReferenceHost(width=8, refined_channels=16, input_scale=0.5)
    model = ReuseGateVOS(host=host, adapter="reference", gate=dict(m1=0.0), freeze_host=True)
    model.train()
    assert model.training and not model.net.host.training and model.net.gate_modules.training
    host_before = {k: v.clone() for k, v in model.net.host.state_dict().items()}
    gate_before = {k: v.clone() for k, v in model.net.gate_modules.state_dict().items()}
    train_steps(model, lr=1e-2)
    assert all(torch.equal(v, model.net.host.state_dict()[k]) for k, v in host_before.items())
    assert any(not torch.equal(v, model.net.gate_modules.state_dict()[k]) for k, v in gate_before.items())
    with pytest.raises(ValueError, match="nothing to train"):
        ReuseGateVOS(host=ReferenceHost(width=8), adapter="reference", gate=None, freeze_host=True)


@pytest.mark.parametrize("alias, stage1_config, stage2_configs, stage2c_config", [
    ("fast", "g_frtm_mnv2/1_pretrain.py", ("g_frtm_mnv2/2_gate.py", "g_frtm_mnv2/3_gate_more.py"),
     "g_frtm_mnv2/4_change_mask.py"),
    ("accurate", "g_frtm_mnv2_h360/1_pretrain.py", ("g_frtm_mnv2_h360/2_gate.py", "g_frtm_mnv2_h360/3_gate_more.py"),
     "g_frtm_mnv2_h360/4_change_gate.py"),
])
def test_embedded_model_configs_match_the_shipped_model(alias, stage1_config, stage2_configs, stage2c_config):
    """The recipe in configs/ is what produced each shipped model: same host, adapter and gate settings, and
    each stage's dataset caches the taps of the very host it trains; stage 2b only continues stage 2, and a
    stage 2c only swaps in the change gate and trains it alone. The fast model holds the development split out;
    the accurate one trains on all 30 sequences (issue 11)."""
    from pathlib import Path

    from mmengine.config import Config

    from reusegate.zoo.catalog import model_path

    configs = Path(__file__).resolve().parents[1] / "configs"
    meta = json.loads(model_path(alias).with_suffix(".json").read_text())
    stage1 = Config.fromfile(str(configs / stage1_config))
    stage2, stage2b = (Config.fromfile(str(configs / name)) for name in stage2_configs)
    last = Config.fromfile(str(configs / stage2c_config)) if stage2c_config else stage2b
    host = stage2.model.host.to_dict()
    assert host.pop("type") == meta["host"] and host == meta["host_kwargs"]
    trained = {k: v for k, v in meta["adapter"].items() if k != "int8_qparams"}  # tools/calibrate_int8.py, after
    assert stage2.model.adapter.to_dict() == trained
    gate = last.model.gate.to_dict()
    assert gate.get("gate_input", "template") == meta["gate_input"]  # the paper's where none is named
    run_time = {k: gate[k] for k in ("tau", "variant", "tau2", "reuse_path") if k in gate}
    assert GateConfig(**run_time) == GateConfig(**meta["recommended"])  # what --export records
    assert stage2b.model.to_dict() == stage2.model.to_dict()
    assert stage2b.train_dataloader.dataset.to_dict() == stage2.train_dataloader.dataset.to_dict()
    assert stage2b.randomness.seed != stage2.randomness.seed  # other clips than stage 2's
    if stage2c_config:
        assert list(last.model.train_only) == ["gate_modules.change_gate"]
        changed = {k for k in set(last.model) | set(stage2.model) if last.model.get(k) != stage2.model.get(k)}
        assert changed == {"gate", "train_only"}
        assert last.train_dataloader.dataset.to_dict() == stage2.train_dataloader.dataset.to_dict()
    davis, procedural = stage2.train_dataloader.dataset.datasets  # stage 2 adds procedural clips (the demo's kind)
    assert procedural.type == "ProceduralFrozenClipDataset" and procedural.seed > 2021  # never the demo's seed
    for cfg, dataset in ((stage1, stage1.train_dataloader.dataset), (stage2, davis), (stage2, procedural)):
        assert dataset.host.to_dict() == cfg.model.host.to_dict()
        assert dataset.adapter.to_dict() == cfg.model.adapter.to_dict()
    assert stage1.model.host.to_dict() == stage2.model.host.to_dict() and stage1.model.gate is None
    held_out = set((configs / "splits" / "davis16_dev.txt").read_text().split())
    if alias == "fast":
        trained = set(Path(davis.sequences).read_text().split())
        assert len(held_out) == 6 and len(trained) == 24 and not held_out & trained
    else:
        assert davis.sequences is None and stage1.train_dataloader.dataset.sequences is None  # all 30


def test_procedural_gate_clips_dataset(tmp_path):
    from reusegate.integrations.mmengine import ProceduralFrozenClipDataset
    from reusegate.data.synthetic import DEMO_SEED, gate_training_clips, write_davis

    clips = gate_training_clips(3, length=10, size=(48, 64), seed=7)
    assert all(len(c) == 10 and set(c.labels.ravel()) == {0, 1} for c in clips)
    speeds = {round(float(s), 2) for c in clips for s in c.speeds[1:]}
    assert len(speeds) > 1  # the speed switches within and across clips
    with pytest.raises(ValueError, match="demo clip"):
        gate_training_clips(3, seed=DEMO_SEED - 1)
    root = write_davis(clips, tmp_path / "clips")
    assert sorted(p.name for p in (root / "Annotations" / "480p").iterdir()) == [
        "procedural-000", "procedural-001", "procedural-002"]
    assert not list(tmp_path.glob("*.tmp*"))  # written whole, then renamed

    host = dict(type="frtm", backbone="mobilenet_v2", s4_channels=16, head_channels=8, target_params=CHEAP)
    ds = ProceduralFrozenClipDataset(num_clips=2, length=8, seed=11, size=(48, 85), cache_root=tmp_path / "proc", host=host,
                                     adapter=dict(type="frtm", input_height=48), cache_dir=tmp_path / "cache",
                                     precompute_score=True, progress=False, clip_length=3, samples_per_object=2,
                                     sampling="ordered")
    assert len(ds) == 4 and (tmp_path / "proc" / "n2-len8-seed11-48x85").is_dir()
    item = ds[0]
    assert item["inputs"]["score"].shape[0] == 3 and item["data_samples"].gt_masks.shape[:2] == (3, 1)
    assert item["data_samples"].gt_masks.sum() > 0  # the object is there
    with pytest.raises(ValueError, match="sets data_root itself"):
        ProceduralFrozenClipDataset(data_root=tmp_path, host=host, adapter="frtm")
