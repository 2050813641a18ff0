"""``reusegate test CONFIG``: an exported model through mmengine's test loop, in one process and sharded over two
under ``torchrun`` on loopback: the same masks, mask for mask, and the same J&F table."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import MINI_SEQUENCES

from reusegate.cli import main

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "examples" / "test_davis2016_val.py"


def _options(mini_davis: Path) -> list[str]:
    return ["--cfg-options", f"test_dataloader.dataset.data_root={mini_davis}", "test_dataloader.dataset.split=None",
            f"test_dataloader.dataset.sequences=[{','.join(MINI_SEQUENCES)}]"]


@pytest.fixture(scope="module")
def one_process(mini_davis, tiny_model, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("test1") / "out"
    assert main(["test", str(CONFIG), "--model", str(tiny_model), "--tau", "0.5", "--out", str(out),
                 "--no-progress", *_options(mini_davis)]) == 0
    return out


@pytest.mark.data
def test_one_process_writes_masks_csvs_and_summary(one_process, tiny_model):
    for seq in MINI_SEQUENCES:
        assert len(list((one_process / seq).glob("*.png"))) == 5
    summary = json.loads((one_process / "summary.json").read_text())
    assert summary["processes"] == 1 and summary["tau"] == 0.5 and summary["model"] == str(tiny_model.resolve())
    metrics = summary["metrics"]
    assert 0 < metrics["vos/J&F_Mean"] < 1 and 0 <= metrics["vos/reuse_rate"] <= 1 and metrics["vos/fps"] > 0
    rows = (one_process / "per-sequence_results-val.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == [f"{s}_1" for s in MINI_SEQUENCES]


@pytest.mark.data
@pytest.mark.slow
def test_torchrun_two_processes_equal_one_process(one_process, mini_davis, tiny_model, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m",
           "reusegate.cli", "test", str(CONFIG), "--model", str(tiny_model), "--tau", "0.5", "--out", str(out),
           "--no-progress", *_options(mini_davis)]
    proc = subprocess.run(cmd, cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    single = json.loads((one_process / "summary.json").read_text())
    assert summary["processes"] == 2
    for key, value in single["metrics"].items():
        if key != "vos/fps":  # same frames on one machine with the same kernels: identical figures
            assert summary["metrics"][key] == value, key
    for name in ("global_results-val.csv", "per-sequence_results-val.csv"):
        assert (out / name).read_text() == (one_process / name).read_text()
    for seq in MINI_SEQUENCES:
        pngs = sorted((one_process / seq).glob("*.png"))
        assert pngs and [p.name for p in pngs] == sorted(p.name for p in (out / seq).glob("*.png"))
        for png in pngs:
            assert np.array_equal(np.asarray(Image.open(png)), np.asarray(Image.open(out / seq / png.name))), png


def test_a_config_without_test_data_is_one_clear_error(tmp_path, capsys):
    config = tmp_path / "train_only.py"
    config.write_text("train_dataloader = dict()\n")
    assert main(["test", str(config), "--out", str(tmp_path / "out")]) == 2
    assert "defines no test_dataloader or test_evaluator" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.data
def test_no_runner_holds_the_process_group_when_it_is_destroyed(mini_davis, tiny_model, tmp_path, monkeypatch):
    """A DDP wrapper still alive at ``destroy_process_group`` frees the gloo group during interpreter shutdown,
    where a gloo thread can abort the process (``terminate called without an active exception``)."""
    import gc

    import torch.distributed as dist
    from mmengine.model import MMDistributedDataParallel

    for name, value in dict(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", LOCAL_WORLD_SIZE="1").items():
        monkeypatch.setenv(name, value)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # else mmengine sets them to 1 for the rest of the session
        monkeypatch.setenv(name, os.environ.get(name, str(torch.get_num_threads())))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    alive: list[int] = []
    destroy = dist.destroy_process_group

    def counting_destroy(*args, **kwargs):
        alive.append(sum(isinstance(o, MMDistributedDataParallel) for o in gc.get_objects()))
        destroy(*args, **kwargs)

    monkeypatch.setattr(dist, "destroy_process_group", counting_destroy)
    try:
        assert main(["test", str(CONFIG), "--model", str(tiny_model), "--launcher", "pytorch", "--out",
                     str(tmp_path / "out"), "--no-progress", *_options(mini_davis)]) == 0
    finally:
        if dist.is_initialized():
            destroy()
    assert alive == [0]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["processes"] == 1


def test_variant_tau2_and_window_reach_the_model(tmp_path, monkeypatch, capsys):
    """``--variant`` / ``--tau2`` / ``--window`` / ``--reuse-precision`` pass to the loaded model like ``run``'s (a
    model recommending fusion needs ``--variant decode`` to be tested above its tau2); unset, the model's
    recommendation applies."""
    import reusegate.tools.run

    seen = []

    def fake_load_model(path, **kwargs):
        seen.append(kwargs)
        raise ValueError("stop here")

    monkeypatch.setattr(reusegate.tools.run, "load_model", fake_load_model)
    for extra in (["--variant", "fusion", "--tau2", "0.8", "--window", "0.1", "--reuse-precision", "int8"], []):
        assert main(["test", str(CONFIG), "--model", "fast", "--out", str(tmp_path / "out"), *extra]) == 2
    assert "stop here" in capsys.readouterr().err
    assert seen == [dict(tau=None, variant="fusion", tau2=0.8, device=None, window=0.1, reuse_precision="int8"),
                    dict(tau=None, variant=None, tau2=None, device=None, window=None, reuse_precision=None)]
