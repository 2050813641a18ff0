"""``reusegate train``: argument handling, export, launcher detection, and a real torchrun run on loopback."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from reusegate.cli import main
from reusegate.commands.train import TRUST_ENV, detect_launcher, load_config, trusted_checkpoints
from reusegate.core.gate import ReuseGate
from reusegate.adapters.reference import ReferenceHost

REPO = Path(__file__).resolve().parents[1]
GATED = REPO / "configs" / "examples" / "g_reference_davis16_cpu.py"


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a loaded 2-core machine, competing thread pools slow these tiny models down most."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def cli_options(davis_root: Path, name: str) -> list[str]:
    """--cfg-options that shrink the CPU config to a handful of 64x112 clips (DictAction syntax)."""
    return [
        f"train_dataloader.dataset.data_root={davis_root}",
        "train_dataloader.dataset.sequences=[bear]",
        "train_dataloader.dataset.size=(64,112)",
        "train_dataloader.dataset.clip_length=3",
        "train_dataloader.dataset.samples_per_object=2",
        "train_dataloader.batch_size=1",
        "train_cfg.max_epochs=1",
        "train_cfg.val_interval=1000",
        f"experiment_name={name}",
    ]


def test_launcher_comes_from_the_torchrun_environment(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert detect_launcher() == "none"
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert detect_launcher() == "pytorch"
    assert detect_launcher("none") == "none"


def test_cfg_options_use_mmengine_value_syntax():
    from reusegate.commands.train import parse_cfg_options

    assert parse_cfg_options(["a.b=1", "c=[x,y]", "d=(64,112)", "e=None"]) == {
        "a.b": 1, "c": ["x", "y"], "d": (64, 112), "e": None}
    assert parse_cfg_options(None) == {}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_cfg_options(["novalue"])


def test_trust_switch_is_scoped(monkeypatch):
    monkeypatch.setenv(TRUST_ENV, "0")
    with trusted_checkpoints(True):
        assert os.environ[TRUST_ENV] == "1"
    assert os.environ[TRUST_ENV] == "0"
    monkeypatch.delenv(TRUST_ENV)
    with trusted_checkpoints(False):
        assert TRUST_ENV not in os.environ


def test_config_handling(tmp_path):
    cfg = load_config(str(GATED), cfg_options={"model.gate.tau": 0.9}, progress=True)
    assert cfg.model.gate.tau == 0.9 and cfg.launcher == "none"
    assert cfg.work_dir == str(Path("work_dirs") / "g_reference_davis16_cpu")
    # every shipped model has a 1_pretrain.py: numbered stages get their model's folder, so runs never mix
    stages = [REPO / "configs" / m / "1_pretrain.py" for m in ("g_frtm_mnv2", "g_frtm_mnv2_h360")]
    assert [load_config(str(s), progress=False).work_dir for s in stages] == [
        str(Path("work_dirs") / "g_frtm_mnv2" / "1_pretrain"), str(Path("work_dirs") / "g_frtm_mnv2_h360" / "1_pretrain")]
    assert [h["type"] for h in cfg.custom_hooks] == ["GateMarginHook", "EpochSeedHook", "ProgressBarHook"]
    cfg = load_config(str(GATED), str(tmp_path), resume="auto", progress=False)
    assert cfg.resume is True and cfg.get("load_from") is None and cfg.work_dir == str(tmp_path)


def test_no_progress_also_quiets_the_frozen_tap_cache():
    stage2 = REPO / "configs" / "g_frtm_mnv2_h360" / "2_gate.py"  # a ConcatDataset of two cached datasets
    quiet = load_config(str(stage2), progress=False).train_dataloader.dataset
    assert [d.get("progress") for d in quiet.datasets] == [False, False]
    assert "progress" not in load_config(str(stage2), progress=True).train_dataloader.dataset.datasets[0]
    stage1 = load_config(str(REPO / "configs" / "g_frtm_mnv2" / "1_pretrain.py"), progress=False)
    assert stage1.train_dataloader.dataset.progress is False


def test_user_errors_print_one_line(tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing.py")]) == 2
    assert "missing.py does not exist" in capsys.readouterr().err
    assert main(["train", str(GATED), "--resume", str(tmp_path / "none.pth")]) == 2
    assert "checkpoint" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.data
def test_cli_trains_and_exports_a_weights_only_state_dict(tmp_path, davis_root):
    out = tmp_path / "g.pth"
    rc = main(["train", str(GATED), "--work-dir", str(tmp_path / "work"), "--no-progress", "--export", str(out),
               "--cfg-options", *cli_options(davis_root, f"cli_{os.getpid()}")])
    assert rc == 0
    assert (tmp_path / "work" / "epoch_1.pth").is_file()
    state = torch.load(out, weights_only=True)
    gate = ReuseGate(ReferenceHost(width=8, refined_channels=16), "reference")
    gate.load_state_dict(state, strict=True)
    assert not torch.equal(gate.host.head.weight, ReferenceHost(width=8, refined_channels=16).head.weight)
    from reusegate.zoo.catalog import load_gate

    loaded = load_gate(out, tau=0.6)  # the .json beside it names host and adapter: what `reusegate run` reads
    assert loaded.tau == 0.6 and "m1" not in out.with_suffix(".json").read_text()  # training settings stay out
    assert all(torch.equal(v, state[k]) for k, v in loaded.state_dict().items())


@pytest.mark.slow
@pytest.mark.data
def test_torchrun_two_processes_on_loopback(tmp_path, davis_root):
    out = tmp_path / "g.pth"
    # --standalone: torchrun's agent binds its rendezvous store on port 0 itself and keeps it (no port race)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
           "-m", "reusegate.cli", "train", str(GATED), "--work-dir", str(tmp_path / "work"), "--no-progress",
           "--export", str(out), "--cfg-options", *cli_options(davis_root, "torchrun")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "Error" in ln or "error:" in ln]
    assert proc.returncode == 0, "\n".join(errors[:20]) + proc.stderr[-3000:]
    (log_file,) = (tmp_path / "work").glob("*/*.log")  # rank 0's log
    log = log_file.read_text()
    assert "Distributed launcher: pytorch" in log and "Distributed training: True" in log
    assert "GPU number: 2" in log  # mmengine's name for the world size
    assert "'backend': 'gloo'" in log
    assert out.is_file()  # written once, by rank 0
    ReuseGate(ReferenceHost(width=8, refined_channels=16), "reference").load_state_dict(
        torch.load(out, weights_only=True))
