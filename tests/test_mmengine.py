"""mmengine integration: a Runner built from the repository's configs trains, validates, resumes and runs DDP.

Everything runs on real DAVIS-2016 frames at 64x112 with 4-frame clips, so each Runner iteration is a fraction
of a second; the Runner-heavy tests are marked slow.
"""
from __future__ import annotations

import itertools
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.structures import BaseDataElement

from reusegate.core import losses
from reusegate.commands.train import TRUST_ENV, build_runner, load_config, train
from reusegate.data import read_mask
from reusegate.evaluation import jaccard
from reusegate.core.config import GateConfig
from reusegate.core.gate import ReuseGate
from reusegate.core.training import LossConfig
from reusegate.integrations.mmengine import (DavisClipDataset, DavisVideoDataset, ReuseGateVOS, VOSMetric,
                                             export_state_dict, load_exported)
from reusegate.integrations.mmengine.hooks import unwrap

REPO = Path(__file__).resolve().parents[1]
GATED = REPO / "configs" / "examples" / "g_reference_davis16_cpu.py"
PRETRAIN = REPO / "configs" / "examples" / "reference_pretrain_cpu.py"
SIZE = (64, 112)
_names = itertools.count()


def tiny_options(davis_root: Path, **extra) -> dict:
    """Overrides that shrink the CPU config to one sequence, 4-frame clips at 64x112, batch 2."""
    video = dict(type="DavisVideoDataset", data_root=str(davis_root), sequences=["bear"], year=2016, size=SIZE,
                 max_frames=5)
    options = {
        "train_dataloader.batch_size": 2,
        "train_dataloader.dataset.data_root": str(davis_root),
        "train_dataloader.dataset.sequences": ["bear"],
        "train_dataloader.dataset.size": SIZE,
        "train_dataloader.dataset.clip_length": 4,
        "train_dataloader.dataset.samples_per_object": 2,
        "train_dataloader.dataset.frames": [0, 3, 6, 9],
        "val_dataloader.dataset": video,
        "test_dataloader.dataset": video,
        "train_cfg.max_epochs": 3,
        "train_cfg.val_interval": 1000,
        "model.gate.ep_t": 4,
        "default_hooks.logger.interval": 1,
        "experiment_name": f"test_mmengine_{os.getpid()}_{next(_names)}",
    }
    options.update(extra)
    return options


class Recorder(Hook):
    """Records (epoch, loss_seg, margin, model epoch) after every training iteration."""

    priority = "LOWEST"

    def __init__(self, crash_at_epoch: int | None = None, expect_state: dict | None = None) -> None:
        self.rows: list[tuple[int, float, float, float]] = []
        self.crash_at_epoch = crash_at_epoch
        self.expect_state = expect_state
        self.state_matched: bool | None = None

    def before_train_epoch(self, runner) -> None:
        if self.expect_state is not None and self.state_matched is None:
            state = unwrap(runner.model).state_dict()
            self.state_matched = all(torch.equal(state[k], v) for k, v in self.expect_state.items())
        if runner.epoch == self.crash_at_epoch:
            raise KeyboardInterrupt(f"simulated kill at the start of epoch {runner.epoch}")

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        values = {k: float(v.detach()) for k, v in outputs.items()}
        self.rows.append((runner.epoch, values["loss_seg"], values.get("margin", math.nan), unwrap(runner.model).epoch))


def runner_for(config: Path, tmp_path: Path, davis_root: Path, recorder: Hook | None = None, **extra):
    cfg = load_config(str(config), str(tmp_path / "work"), cfg_options=tiny_options(davis_root, **extra),
                      progress=False)
    runner = build_runner(cfg)
    if recorder is not None:
        runner.register_hook(recorder)
    return runner


def test_no_progress_drops_a_progress_bar_the_config_asks_for(tmp_path):
    """--no-progress wins over a config's own ProgressBarHook (the default model's stage 1 lists one): a log
    file must not fill with carriage-return bar updates."""
    config = REPO / "configs" / "g_frtm_mnv2" / "1_pretrain.py"
    types = {p: [h["type"] for h in load_config(str(config), str(tmp_path / "work"), progress=p).custom_hooks]
             for p in (True, False)}
    assert types[True].count("ProgressBarHook") == 1 and "EpochSeedHook" in types[True]
    assert "ProgressBarHook" not in types[False] and "EpochSeedHook" in types[False]


# ---------------------------------------------------------------------------------------------- training
@pytest.mark.data
@pytest.mark.slow
def test_runner_trains_gated_reference_with_falling_loss_and_margin_schedule(tmp_path, davis_root):
    torch.manual_seed(0)
    rec = Recorder()
    runner = runner_for(GATED, tmp_path, davis_root, rec, **{"train_cfg.max_epochs": 6})
    model = runner.model
    assert isinstance(model, ReuseGateVOS) and isinstance(model.net, ReuseGate)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    runner.train()

    epochs = [r[0] for r in rec.rows]
    assert epochs == [0, 1, 2, 3, 4, 5]  # one iteration per epoch (2 samples, batch 2)
    seg = [r[1] for r in rec.rows]
    assert np.mean(seg[-2:]) < np.mean(seg[:2]), f"segmentation loss did not fall: {seg}"
    # the margin each epoch is the one the hook set: m1 * min(1, epoch / ep_t), ep_t = 4 (tiny_options)
    for epoch, _, margin, model_epoch in rec.rows:
        assert model_epoch == epoch
        assert margin == pytest.approx(losses.margin(1.0, epoch, 4.0))
    assert rec.rows[-1][2] == pytest.approx(1.0)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("net.host.") for k in changed) and any(k.startswith("net.gate_modules.") for k in changed)
    assert (tmp_path / "work" / "epoch_6.pth").is_file()


@pytest.mark.data
def test_predict_writes_masks_that_the_evaluator_scores(tmp_path, davis_root):
    out = tmp_path / "results"
    runner = runner_for(GATED, tmp_path, davis_root, **{
        "test_evaluator": dict(type="VOSMetric", out_dir=str(out)), "model.count_flops": True,
        "model.gate.tau": 0.0})
    metrics = runner.test()

    pngs = sorted((out / "bear").glob("*.png"))
    assert [p.stem for p in pngs] == ["00000", "00001", "00002", "00003", "00004"]
    video = DavisVideoDataset(davis_root, sequences=["bear"], size=SIZE, max_frames=5)
    gt = video[0]["data_samples"].gt_labels.numpy()
    pred = np.stack([read_mask(p) for p in pngs])
    assert pred.shape == gt.shape and set(np.unique(pred)) <= {0, 1}
    np.testing.assert_array_equal(pred[0], gt[0])  # frame 0 is the given mask
    expected_j = np.mean([jaccard(pred[t] == 1, gt[t] == 1) for t in (1, 2, 3)])  # first and last excluded
    assert metrics["vos/J_Mean"] == pytest.approx(expected_j)
    assert 0.0 <= metrics["vos/J&F_Mean"] <= 1.0
    # tau = 0: every object reuses wherever its gate fires (p > 0), so the deep stages ran on frame 0 only
    assert metrics["vos/reuse_rate"] == pytest.approx(1.0)
    assert metrics["vos/deep_fraction"] == pytest.approx(1 / 5)
    assert metrics["vos/gflops_per_frame"] > 0
    assert (out / "global_results-val.csv").is_file() and (out / "per-sequence_results-val.csv").is_file()


@pytest.mark.data
@pytest.mark.slow
def test_resume_after_kill_continues_margin_schedule(tmp_path, davis_root, monkeypatch):
    monkeypatch.delenv(TRUST_ENV, raising=False)
    first = Recorder(crash_at_epoch=2)
    runner = runner_for(GATED, tmp_path, davis_root, first, **{"train_cfg.max_epochs": 5})
    with pytest.raises(KeyboardInterrupt):
        runner.train()
    assert [r[0] for r in first.rows] == [0, 1]
    assert (tmp_path / "work" / "epoch_2.pth").is_file() and not (tmp_path / "work" / "epoch_3.pth").exists()
    saved = torch.load(tmp_path / "work" / "epoch_2.pth", map_location="cpu", weights_only=False)["state_dict"]

    second = Recorder(expect_state=saved)
    cfg = load_config(str(GATED), str(tmp_path / "work"), resume="auto", progress=False,
                      cfg_options=tiny_options(davis_root, **{"train_cfg.max_epochs": 5}))
    resumed = build_runner(cfg)
    resumed.register_hook(second)
    train(cfg, resumed)
    assert second.state_matched  # the weights of epoch 2 came back before training went on
    assert os.environ.get(TRUST_ENV) is None  # the trust switch does not leak out of the resume
    assert [r[0] for r in second.rows] == [2, 3, 4]
    for epoch, _, margin, model_epoch in second.rows:
        assert model_epoch == epoch and margin == pytest.approx(losses.margin(1.0, epoch, 4.0))
    assert (tmp_path / "work" / "epoch_5.pth").is_file()


@pytest.mark.data
@pytest.mark.slow
def test_resume_without_the_trust_switch_fails_under_weights_only(tmp_path, davis_root, monkeypatch):
    """Documents why ``reusegate train`` sets the switch: mmengine's torch.load refuses its own checkpoints."""
    monkeypatch.delenv(TRUST_ENV, raising=False)
    runner = runner_for(GATED, tmp_path, davis_root, **{"train_cfg.max_epochs": 1})
    runner.train()
    cfg = load_config(str(GATED), str(tmp_path / "work"), resume="auto", progress=False,
                      cfg_options=tiny_options(davis_root, **{"train_cfg.max_epochs": 2}))
    with pytest.raises(Exception, match="[Ww]eights only load failed"):
        build_runner(cfg).load_or_resume()


# ---------------------------------------------------------------------------------------------- DDP
def _agent_store() -> torch.distributed.TCPStore:
    """The rendezvous store, held by this process as torchrun's agent holds it.

    Its server binds port 0, so the OS picks a free port and it stays bound for the whole test: no other process
    can take it between choosing and binding (picking a "free" port, closing it and letting rank 0 bind it later
    raced). The workers connect to it as clients (``TORCHELASTIC_USE_AGENT_STORE``), exactly as under torchrun.
    """
    return torch.distributed.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)


def _ddp_worker(rank: int, world: int, port: int, davis_root: str, out: str) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), TORCHELASTIC_USE_AGENT_STORE="True",
                      OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    options = tiny_options(Path(davis_root), **{
        "train_cfg.max_epochs": 2, "train_dataloader.batch_size": 1, "train_dataloader.dataset.frames": None,
        "experiment_name": "test_ddp"})
    cfg = load_config(str(GATED), str(Path(out) / "work"), cfg_options=options, progress=False)
    assert cfg.launcher == "pytorch"  # read from the torchrun-style environment
    runner = train(cfg)
    model = unwrap(runner.model)
    torch.save({"params": {k: v.detach().clone() for k, v in model.named_parameters()},
                "world": torch.distributed.get_world_size(), "epoch": model.epoch,
                "wrapped": type(runner.model).__name__}, Path(out) / f"rank{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.data
@pytest.mark.slow
def test_ddp_two_processes_on_loopback_end_with_identical_weights(tmp_path, davis_root):
    import torch.multiprocessing as mp

    store = _agent_store()
    mp.spawn(_ddp_worker, args=(2, store.port, str(davis_root), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    assert r0["wrapped"] == "MMDistributedDataParallel"
    assert r0["epoch"] == r1["epoch"] == 1.0  # the margin hook reached the model through the DDP wrapper
    assert r0["params"].keys() == r1["params"].keys()
    for name, value in r0["params"].items():  # both ranks apply the same all-reduced gradients on one machine
        assert torch.equal(value, r1["params"][name]), f"{name} differs between ranks"
    fresh = ReuseGateVOS(host=dict(type="reference", width=8, refined_channels=16), adapter="reference", gate={})
    start = dict(fresh.named_parameters())
    assert any(not torch.equal(v, start[k]) for k, v in r0["params"].items())  # it did train


# ---------------------------------------------------------------------------------------------- model pieces
def test_pretrained_host_loads_into_the_gated_model():
    host = dict(type="reference", width=8, refined_channels=16)
    pre = ReuseGateVOS(host=host, adapter="reference", gate=None)
    with torch.no_grad():
        for p in pre.parameters():
            p.add_(1.0)
    gated = ReuseGateVOS(host=host, adapter="reference", gate=dict(tau=0.7))
    missing, unexpected = gated.load_state_dict(pre.state_dict(), strict=False)
    assert not unexpected and missing and all(k.startswith("net.gate_modules.") for k in missing)
    for k, v in pre.state_dict().items():
        assert torch.equal(gated.state_dict()[k], v)


def test_export_is_a_plain_state_dict_loading_with_weights_only(tmp_path):
    model = ReuseGateVOS(host=dict(type="reference", width=8), adapter="reference", gate=dict(tau=0.6))
    path = export_state_dict(model, tmp_path / "g.pth")
    state = load_exported(path)
    gate = ReuseGate(model.net.host.__class__(width=8), "reference", tau=0.6)
    gate.load_state_dict(state, strict=True)
    for k, v in model.net.state_dict().items():
        assert torch.equal(gate.state_dict()[k], v)
    torch.load(path, weights_only=True)  # no pickled code


def test_loss_mode_validates_its_inputs():
    model = ReuseGateVOS(host=dict(type="reference", width=8), adapter="reference", gate={})
    with pytest.raises(ValueError, match="gt_masks"):
        model([torch.zeros(3, 3, 32, 32, dtype=torch.uint8)], [BaseDataElement()], mode="loss")
    with pytest.raises(ValueError, match="mode must be"):
        model([], [], mode="nonsense")
    with pytest.raises(ValueError, match="no host adapter named 'nope'"):
        ReuseGateVOS(host=dict(type="reference", width=8), adapter="nope")


@pytest.mark.data
def test_tensor_mode_returns_merged_probabilities(davis_root):
    video = DavisVideoDataset(davis_root, sequences=["bear"], size=SIZE, max_frames=3)[0]
    model = ReuseGateVOS(host=dict(type="reference", width=8), adapter="reference", gate=dict(tau=1.0))
    (probs,) = model([video["inputs"]], [video["data_samples"]], mode="tensor")
    assert probs.shape == (3, 2, *SIZE)
    assert torch.all(probs >= 0) and torch.all(probs <= 1)
    assert model.training  # predict / tensor modes restore the training flag they found


# ---------------------------------------------------------------------------------------------- datasets, metric
@pytest.mark.data
def test_clip_dataset_follows_the_paper_sampling(davis_root):
    np.random.seed(0)
    ds = DavisClipDataset(davis_root, sequences=["bear", "dog-agility"], clip_length=6, size=SIZE,
                          samples_per_object=3)
    assert len(ds) == 6
    for i in range(len(ds)):
        sample = ds[i]
        frames = sample["data_samples"].frame_indices
        assert len(set(frames)) == 6  # without replacement
        assert sample["inputs"].shape == (6, 3, *SIZE) and sample["inputs"].dtype == torch.uint8
        masks = sample["data_samples"].gt_masks
        assert masks.shape == (6, 1, *SIZE) and set(masks.unique().tolist()) <= {0.0, 1.0}
        assert masks[0].sum() > 0  # the reference frame shows the object
    ordered = DavisClipDataset(davis_root, sequences=["bear"], clip_length=4, size=SIZE, samples_per_object=4,
                               sampling="ordered", max_skip=2)
    for i in range(len(ordered)):
        frames = ordered[i]["data_samples"].frame_indices
        assert frames == sorted(frames) and frames[-1] - frames[0] <= 2 * 3
    with pytest.raises(ValueError, match="clip_length"):
        DavisClipDataset(davis_root, sequences=["bear"], clip_length=1)


@pytest.mark.data
def test_metric_scores_a_perfect_prediction_as_one(davis_root):
    video = DavisVideoDataset(davis_root, sequences=["bear"], size=SIZE, max_frames=4)[0]["data_samples"]
    sample = video.to_dict()
    sample.update(pred_labels=video.gt_labels.clone(), reuse_rate=0.5, deep_computed=torch.tensor([1, 0, 1, 0]))
    metric = VOSMetric()
    metric.process({}, [sample])
    result = metric.compute_metrics(metric.results)
    assert result["J&F_Mean"] == pytest.approx(1.0) and result["J_Recall"] == pytest.approx(1.0)
    assert result["reuse_rate"] == 0.5 and result["deep_fraction"] == 0.5


# ---------------------------------------------------------------------------------------------- configs, hook
def test_paper_configs_hold_the_recipe_and_build():
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from reusegate.core.layers import INITIAL_REUSE_PROBABILITY
    from reusegate.registry import MODELS

    cfg = Config.fromfile(str(REPO / "configs" / "paper" / "g_frtm_fast_davis16.py"))
    assert cfg.default_scope == "reusegate"
    assert cfg.train_dataloader.batch_size == 8 and cfg.train_dataloader.dataset.clip_length == 6
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.amsgrad) == ("Adam", 5e-4, True)
    (step,) = cfg.param_scheduler
    assert (step.type, step.step_size, step.gamma) == ("StepLR", 127, 0.1)
    assert cfg.train_cfg.max_epochs == 260
    assert {k: cfg.model.gate[k] for k in ("m1", "m2", "ep_t")} == dict(m1=1.0, m2=0.0, ep_t=120)
    assert {"type": "GateMarginHook"} in cfg.custom_hooks
    pre = Config.fromfile(str(REPO / "configs" / "paper" / "frtm_fast_pretrain_davis16.py"))
    assert pre.model.gate is None and pre.model.host == cfg.model.host and pre.custom_hooks == []
    assert pre.optim_wrapper == cfg.optim_wrapper and pre.train_cfg == cfg.train_cfg

    yt = Config.fromfile(str(REPO / "configs" / "paper" / "g_frtm_fast_ytvos.py"))
    assert yt.model.gate.m1 == 0.5 and yt.train_dataloader.dataset.type == "YouTubeVOSClipDataset"  # M(0.5, 0)
    assert Config.fromfile(str(REPO / "configs" / "paper" / "frtm_fast_pretrain_ytvos.py")).model.gate is None

    init_default_scope("reusegate")
    gated = MODELS.build(cfg.model)
    assert isinstance(gated.net, ReuseGate) and type(gated.net.host).__name__ == "FRTM"
    assert gated.loss_config == LossConfig(m1=1.0, m2=0.0, ep_t=120) and gated.net.config == GateConfig(tau=0.7)
    bias = gated.net.gate_modules.gate[4].bias
    assert torch.sigmoid(bias).item() == pytest.approx(INITIAL_REUSE_PROBABILITY)  # ~15 % initial reuse
    host_keys = {k for k in MODELS.build(pre.model).state_dict()}
    assert host_keys and host_keys <= set(gated.state_dict())  # pre-training loads into the gated model


def test_the_gate_dict_holds_the_gates_and_the_losss_settings_apart():
    """Configs write both in ``gate=dict(...)``; the model splits them, so neither the gate nor its export carries
    the loss's."""
    gate = dict(tau=0.6, variant="translate", reuse_path="hold", gate_input="change", m1=0.5, ep_t=4, train_tau=0.4)
    model = ReuseGateVOS(host=dict(type="reference", width=8), adapter="reference", gate=gate)
    assert model.net.config == GateConfig(tau=0.6, reuse_path="hold") and model.net.gate_modules.gate_input == "change"
    assert model.loss_config == LossConfig(m1=0.5, ep_t=4, train_tau=0.4)
    assert ReuseGateVOS(host=dict(type="reference", width=8), adapter="reference", gate=None).loss_config is None
    with pytest.raises(TypeError, match="unexpected keyword argument 'mm1'"):
        ReuseGateVOS(host=dict(type="reference", width=8), adapter="reference", gate=dict(mm1=1.0))
    with pytest.raises(ValueError, match="ep_t must be > 0"):
        ReuseGateVOS(host=dict(type="reference", width=8), adapter="reference", gate=dict(ep_t=0))


def test_margin_hook_uses_fractional_epochs_in_iteration_loops():
    from types import SimpleNamespace

    from reusegate.integrations.mmengine import GateMarginHook

    model = ReuseGateVOS(host=dict(type="reference", width=8), adapter="reference", gate=dict(m1=1.0, ep_t=4))
    runner = SimpleNamespace(model=model, train_loop=object(), iter=6, train_dataloader=[0] * 4, epoch=0)
    GateMarginHook().before_train_iter(runner, 6)
    assert model.epoch == 1.5
    with pytest.raises(ValueError, match="set_epoch"):
        GateMarginHook().before_train_iter(SimpleNamespace(model=torch.nn.Linear(1, 1), train_loop=object(),
                                                           iter=0, train_dataloader=[0]), 0)


def _youtube_vos_tree(root: Path) -> Path:
    """A two-video YouTube-VOS train split: 16 frames, annotations every 5th frame, object 2 starting late."""
    from PIL import Image

    from reusegate.data.writer import write_palette_png

    split = root / "train"
    videos = {}
    for v in ("vid_a", "vid_b"):
        (split / "JPEGImages" / v).mkdir(parents=True)
        rng = np.random.default_rng(len(v))
        for t in range(16):
            Image.fromarray(rng.integers(0, 255, (48, 80, 3), dtype=np.uint8)).save(
                split / "JPEGImages" / v / f"{t:05d}.jpg")
        for t in range(0, 16, 5):
            labels = np.zeros((48, 80), np.uint8)
            labels[5 + t:20 + t, 10:30] = 1
            if t >= 5:
                labels[30:40, 40 + t:60 + t] = 2
            write_palette_png(split / "Annotations" / v / f"{t:05d}.png", labels)
        videos[v] = {"objects": {"1": {"category": "a", "frames": [f"{t:05d}" for t in range(0, 16, 5)]},
                                 "2": {"category": "b", "frames": [f"{t:05d}" for t in range(5, 16, 5)]}}}
    (split / "meta.json").write_text(__import__("json").dumps({"videos": videos}))
    return split


def test_youtube_vos_clips_use_annotated_frames_only(tmp_path):
    from reusegate.integrations.mmengine import YouTubeVOSClipDataset

    np.random.seed(0)
    root = _youtube_vos_tree(tmp_path / "ytvos")
    ds = YouTubeVOSClipDataset(root, clip_length=3, samples_per_epoch=6, order="sorted", min_length=4,
                               size=(32, 48))
    assert len(ds) == 6 and {ds.get_data_info(i)["sequence"] for i in range(6)} == {"vid_a", "vid_b"}
    for i in range(len(ds)):
        sample = ds[i]
        frames = sample["data_samples"].frame_indices
        assert all(f % 5 == 0 for f in frames) and frames == sorted(frames)
        masks = sample["data_samples"].gt_masks
        assert sample["inputs"].shape == (3, 3, 32, 48) and masks.shape == (3, 1, 32, 48)
        assert masks[0].sum() > 0 and set(masks.unique().tolist()) <= {0.0, 1.0}
        if sample["data_samples"].object_id == 2:
            assert frames[0] >= 5  # an object is never referenced before it starts
    with pytest.raises(ValueError, match="annotated frames"):
        YouTubeVOSClipDataset(root, clip_length=3, min_length=5)


@pytest.mark.data
def test_host_only_model_trains_on_bce_and_predicts_every_frame(davis_root):
    """gate=None: the pre-training model has no gate modules, one loss, and computes every frame."""
    model = ReuseGateVOS(host=dict(type="reference", width=8), adapter="reference", gate=None)
    assert not any(k.startswith("net.gate_modules") for k in model.state_dict())
    clip = DavisClipDataset(davis_root, sequences=["bear"], clip_length=3, size=SIZE, samples_per_object=1,
                            frames=[0, 1, 2])[0]
    out = model([clip["inputs"]], [clip["data_samples"]], mode="loss")
    assert set(out) == {"loss_seg"} and out["loss_seg"].requires_grad
    video = DavisVideoDataset(davis_root, sequences=["bear"], size=SIZE, max_frames=4)[0]
    (sample,) = model.predict([video["inputs"]], [video["data_samples"]])
    assert sample.deep_computed.all() and not sample.reused.any() and sample.reuse_rate == 0.0
    assert sample.pred_labels.shape == (4, *SIZE)


@pytest.mark.data
def test_progress_bar_counts_the_run(tmp_path, davis_root, capsys):
    cfg = load_config(str(GATED), str(tmp_path / "work"), progress=True,
                      cfg_options=tiny_options(davis_root, **{"train_cfg.max_epochs": 2}))
    build_runner(cfg).train()
    err = capsys.readouterr().err
    assert "train: 100%" in err and "2/2" in err
