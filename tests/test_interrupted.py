"""Interrupted work loses nothing (issue 15): ``run``, ``eval``, ``test`` and ``train`` stopped mid-way by SIGINT
or SIGKILL, then started again (``train --resume``), complete, and their masks and CSVs equal an uninterrupted
run's byte for byte; a resumed training ends with the uninterrupted training's weights, bit for bit
(``EpochSeedHook`` re-seeds every epoch, so a resumed epoch draws the same clips).

Each command runs in a child process. The child slows its per-item work down (a sleep wrapped around the
mask writer or the per-sequence evaluation, in the child only) and touches a file per finished item, so the
test can signal it at a known point instead of guessing with timers. Both sides of every comparison run the
same code on the same machine and thread count, so exact equality is the right test.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reusegate.tools import run as inference
from reusegate.cli import main
from vos_synth import make_davis, square

SEQUENCES = ("a", "b", "c")
FRAMES = 10

# The child: the real CLI, with each unit of work made slower and announced by a file in $PROGRESS_DIR.
CHILD = """
import os, sys, time
from pathlib import Path
progress = Path(os.environ["PROGRESS_DIR"])
from reusegate.data import writer
from reusegate.evaluation import davis
write, evaluate = writer.ResultWriter.write, davis._evaluate_one
def slow_write(self, sequence, frame, labels):
    time.sleep(0.05)
    out = write(self, sequence, frame, labels)
    (progress / f"{sequence}-{frame}").touch()
    return out
def slow_evaluate(job):
    time.sleep(0.3)
    out = evaluate(job)
    (progress / job[2]).touch()
    return out
writer.ResultWriter.write, davis._evaluate_one = slow_write, slow_evaluate
from reusegate.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def davis(tmp_path_factory) -> Path:
    """Three 10-frame sequences of a square moving over noise, DAVIS-2016 layout."""
    shape = (48, 64)
    seqs = {name: [square(shape, 6 + k, 4 + 3 * k + 6 * j, 14) for k in range(FRAMES)]
            for j, name in enumerate(SEQUENCES)}
    return make_davis(tmp_path_factory.mktemp("davis"), seqs, binary=True)


def _run_argv(davis: Path, model: Path) -> list[str]:
    return ["run", "--davis", str(davis), "--model", str(model), "--tau", "0.1", "--threads", "1"]


@pytest.fixture(scope="module")
def reference(davis, tiny_model, tmp_path_factory) -> Path:
    """An uninterrupted run's results, with an uninterrupted evaluation's CSVs (set 'val') beside them."""
    out = tmp_path_factory.mktemp("reference")
    assert main(_run_argv(davis, tiny_model) + ["--out", str(out)]) == 0
    assert main(["eval", "--gt", str(davis), "--pred", str(out), "--processes", "1"]) == 0
    return out


def _interrupt(argv: list[str], progress: Path, ready: str, sig: int) -> subprocess.CompletedProcess:
    """Start the child, wait until ``progress/ready`` exists, send ``sig``, and return the finished process."""
    progress.mkdir()
    env = {**os.environ, "PROGRESS_DIR": str(progress), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (progress / ready).exists():
        assert proc.poll() is None, f"the child ended before {ready}: {proc.communicate()}"
        assert time.monotonic() < deadline, "the child never got there"
        time.sleep(0.01)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _masks(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.png"))}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_run_interrupted_then_resumed_equals_an_uninterrupted_run(davis, tiny_model, reference, tmp_path, sig):
    argv = _run_argv(davis, tiny_model)
    out = tmp_path / "out"
    proc = _interrupt(argv + ["--out", str(out)], tmp_path / "progress", "b-00003", sig)
    assert not (out / "b" / inference.DONE_MARKER).exists() and (out / "a" / inference.DONE_MARKER).is_file()
    if sig == signal.SIGINT:  # a clean stop: one line, exit 130, the half-done sequence's masks removed
        assert proc.returncode == 130 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().splitlines()[-1] == "reusegate run: interrupted"
        assert not (out / "b").exists()
    else:  # killed outright: whatever it wrote is whole (atomic renames), just unfinished
        assert proc.returncode == -signal.SIGKILL
        assert 4 <= len(list((out / "b").glob("*.png"))) < FRAMES
    assert not list(out.rglob("*.tmp"))

    assert main(argv + ["--out", str(out)]) == 0
    assert _masks(out) == _masks(reference)
    assert len(_masks(out)) == len(SEQUENCES) * FRAMES


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_eval_interrupted_then_rerun_equals_an_uninterrupted_run(davis, reference, tmp_path, sig):
    pred = tmp_path / "pred"
    for name, data in _masks(reference).items():  # the reference masks, without its CSVs
        (pred / name).parent.mkdir(parents=True, exist_ok=True)
        (pred / name).write_bytes(data)
    argv = ["eval", "--gt", str(davis), "--pred", str(pred), "--processes", "1"]
    proc = _interrupt(argv, tmp_path / "progress", "a", sig)
    assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL)
    assert list(pred.glob("*.csv")) == [] and list(pred.glob(".*.tmp")) == []  # no partial CSV

    assert main(argv) == 0
    csvs = {p.name: p.read_bytes() for p in pred.glob("*.csv")}
    assert len(csvs) == 2 and csvs == {p.name: p.read_bytes() for p in reference.glob("*.csv")}


# --------------------------------------------------------------------------------------------------- train, test
GATED = Path(__file__).resolve().parents[1] / "configs" / "examples" / "g_reference_davis16_cpu.py"
TEST_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "examples" / "test_davis2016_val.py"
# The training child: every iteration slowed down, so the kill lands inside the second epoch.
CHILD_TRAIN = """
import sys, time
from reusegate.integrations.mmengine import model
loss = model.ReuseGateVOS.loss
def slow_loss(self, *args, **kwargs):
    time.sleep(0.3)
    return loss(self, *args, **kwargs)
model.ReuseGateVOS.loss = slow_loss
from reusegate.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _train_argv(davis: Path, work: Path) -> list[str]:
    return ["train", str(GATED), "--work-dir", str(work), "--no-progress", "--export", str(work / "m.pth"),
            "--cfg-options", f"train_dataloader.dataset.data_root={davis}",
            f"train_dataloader.dataset.sequences=[{','.join(SEQUENCES)}]", "train_dataloader.dataset.size=(48,64)",
            "train_dataloader.dataset.clip_length=3", "train_dataloader.dataset.samples_per_object=2",
            "train_dataloader.batch_size=2", "train_cfg.max_epochs=2", "train_cfg.val_interval=1000",
            f"experiment_name=int_{work.name}"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_train_interrupted_then_resumed_ends_with_the_uninterrupted_weights(davis, tmp_path, sig):
    import torch

    assert main(_train_argv(davis, tmp_path / "whole")) == 0
    want = torch.load(tmp_path / "whole" / "m.pth", weights_only=True)

    work = tmp_path / "broken"
    argv = _train_argv(davis, work)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD_TRAIN, *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (work / "last_checkpoint").exists():  # written after the first epoch's checkpoint is complete
        assert proc.poll() is None, f"the child ended before its first checkpoint: {proc.communicate()}"
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.01)
    proc.send_signal(sig)
    proc.communicate(timeout=120)
    assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL)
    assert not (work / "m.pth").exists() and not (work / "epoch_2.pth").exists()  # it really stopped mid-way

    assert main(argv[:2] + ["--resume"] + argv[2:]) == 0
    got = torch.load(work / "m.pth", weights_only=True)
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)  # same code, machine and threads: exact


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_test_interrupted_then_rerun_equals_an_uninterrupted_run(davis, tiny_model, tmp_path, sig):
    options = ["--cfg-options", f"test_dataloader.dataset.data_root={davis}", "test_dataloader.dataset.split=None",
               f"test_dataloader.dataset.sequences=[{','.join(SEQUENCES)}]"]
    argv = ["test", str(TEST_CONFIG), "--model", str(tiny_model), "--tau", "0.1", "--no-progress", *options]
    whole = tmp_path / "whole"
    assert main(argv + ["--out", str(whole)]) == 0
    out = tmp_path / "out"
    proc = _interrupt(argv + ["--out", str(out)], tmp_path / "progress", "a-00005", sig)
    assert proc.returncode == (130 if sig == signal.SIGINT else -signal.SIGKILL)
    assert not list(out.glob("*.csv")) and not (out / "summary.json").exists()  # nothing claims to be complete
    assert not list(out.rglob("*.tmp"))

    assert main(argv + ["--out", str(out)]) == 0
    assert _masks(out) == _masks(whole) and len(_masks(out)) == len(SEQUENCES) * FRAMES
    for name in ("global_results-val.csv", "per-sequence_results-val.csv"):
        assert (out / name).read_bytes() == (whole / name).read_bytes()
