"""Interrupted work loses nothing (issue 15): ``run`` and ``eval`` stopped mid-way by SIGINT or SIGKILL, then
started again, complete, and their masks and CSVs equal an uninterrupted run's byte for byte.

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

from reusegate import inference
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
