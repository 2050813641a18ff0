"""``reusegate run``: DAVIS layout, summary, resume after an interruption, folder / video input, clear errors.

Everything runs a tiny untrained reference host exported in the test (never the shipped weights) on a few
DAVIS frames downscaled to 214x120, on one thread (fast and steady on a loaded machine).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import MINI_FRAMES, MINI_SEQUENCES, MINI_SIZE
from vos_synth import write_clip_folder

from reusegate.tools import run as inference
from reusegate.cli import main
from reusegate.data.writer import ResultWriter
from reusegate.evaluation import evaluate_sequences, jaccard
from reusegate.data.synthetic import make_clip

@pytest.fixture
def synthetic_folder(tmp_path) -> tuple[Path, Path]:
    """A synthetic clip as a folder of JPEG frames plus its first mask (ids) beside it."""
    return write_clip_folder(tmp_path, make_clip(((5, 2.0),), size=(72, 128), n_objects=2, seed=3))


def _run(*argv: object) -> int:
    return main(["run", *map(str, argv)])


def _count_sequences(monkeypatch) -> list[str]:
    """Record the name of every sequence that ``run`` actually computes."""
    computed: list[str] = []
    original = inference.segment_sequence

    def counting(gate, seq, *args, **kwargs):
        computed.append(seq.name)
        return original(gate, seq, *args, **kwargs)

    monkeypatch.setattr(inference, "segment_sequence", counting)
    return computed


@pytest.mark.data
def test_davis_layout_summary_and_scores(mini_davis, tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    assert _run("--davis", mini_davis, "--sequences", mini_davis / "list.txt", "--model", tiny_model,
                "--tau", 0.5, "--out", out) == 0
    for seq in MINI_SEQUENCES:
        pngs = sorted((out / seq).glob("*.png"))
        assert [p.stem for p in pngs] == [f"{i:05d}" for i in range(MINI_FRAMES)]
        for p in pngs:
            with Image.open(p) as im:
                assert im.mode == "P" and im.size == MINI_SIZE
        assert (out / seq / inference.DONE_MARKER).is_file()
        assert not list((out / seq).glob("*.tmp"))
    summary = json.loads((out / inference.SUMMARY).read_text())
    assert summary["complete"] and summary["resumed"] == []
    assert summary["settings"] == {"model": str(tiny_model.resolve()), "tau": 0.5, "variant": "decode",
                                   "gate_input": "template", "reuse_path": "translate"}
    assert list(summary["sequences"]) == list(MINI_SEQUENCES)
    for s in summary["sequences"].values():
        assert s["frames"] == MINI_FRAMES and 0.0 <= s["reuse_rate"] <= 1.0 and s["fps"] > 0
    assert summary["total"]["frames"] == MINI_FRAMES * len(MINI_SEQUENCES)
    printed = capsys.readouterr().out
    assert all(seq in printed for seq in MINI_SEQUENCES) and "FPS" in printed
    # frame 0 is the given mask (through the model's half-resolution input), later frames are segmented
    first = np.asarray(Image.open(mini_davis / "Annotations" / "480p" / "bear" / "00000.png")) > 128
    assert jaccard(np.asarray(Image.open(out / "bear" / "00000.png")) == 1, first) > 0.9
    result = evaluate_sequences(mini_davis, out, sequences=list(MINI_SEQUENCES), processes=1)
    assert 0.0 < result.jf_mean < 1.0


@pytest.mark.data
def test_resume_skips_finished_and_redoes_interrupted(mini_davis, tiny_model, tmp_path, monkeypatch):
    out = tmp_path / "out"
    args = ("--davis", mini_davis, "--sequences", mini_davis / "list.txt", "--model", tiny_model, "--out", out)
    original_write = ResultWriter.write
    writes = []

    def interrupted(self, sequence, frame_name, labels):
        if sequence == "boat" and len(writes) == 2:
            raise KeyboardInterrupt  # the user stops the run in the middle of the second sequence
        if sequence == "boat":
            writes.append(frame_name)
        return original_write(self, sequence, frame_name, labels)

    monkeypatch.setattr(ResultWriter, "write", interrupted)
    assert _run(*args) == 130  # Ctrl-C: the CLI's exit code for an interruption
    monkeypatch.setattr(ResultWriter, "write", original_write)
    assert (out / "bear" / inference.DONE_MARKER).is_file()
    assert not (out / "boat" / inference.DONE_MARKER).exists()
    assert not (out / "boat").exists()  # the interrupted sequence's masks are removed, not left half done
    partial = json.loads((out / inference.SUMMARY).read_text())
    assert not partial["complete"] and list(partial["sequences"]) == ["bear"]
    bear_times = {p.name: p.stat().st_mtime_ns for p in (out / "bear").glob("*.png")}

    computed = _count_sequences(monkeypatch)
    assert _run(*args) == 0
    assert computed == ["boat"]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "bear").glob("*.png")} == bear_times
    assert len(list((out / "boat").glob("*.png"))) == MINI_FRAMES
    summary = json.loads((out / inference.SUMMARY).read_text())
    assert summary["complete"] and summary["resumed"] == ["bear"]
    assert summary["sequences"]["bear"] == partial["sequences"]["bear"]

    # everything finished: nothing is recomputed; a deleted mask makes its sequence unfinished again
    assert _run(*args) == 0
    assert computed == ["boat"]
    (out / "bear" / "00003.png").unlink()
    assert _run(*args) == 0
    assert computed == ["boat", "bear"] and (out / "bear" / "00003.png").is_file()


@pytest.mark.data
def test_other_settings_in_same_folder_need_redo(mini_davis, tiny_model, tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    args = ("--davis", mini_davis, "--sequences", mini_davis / "list.txt", "--model", tiny_model, "--out", out)
    assert _run(*args, "--tau", 0.7) == 0
    capsys.readouterr()
    assert _run(*args, "--tau", 0.9) == 2
    err = capsys.readouterr().err
    assert "tau" in err and "--redo" in err
    computed = _count_sequences(monkeypatch)
    assert _run(*args, "--tau", 0.9, "--redo") == 0
    assert computed == list(MINI_SEQUENCES)
    assert json.loads((out / inference.SUMMARY).read_text())["settings"]["tau"] == 0.9


def test_folder_input_two_objects(synthetic_folder, tiny_model, tmp_path):
    folder, mask = synthetic_folder
    out = tmp_path / "out"
    assert _run("--input", folder, "--first-mask", mask, "--model", tiny_model, "--tau", 1, "--out", out) == 0
    pngs = sorted((out / "clip").glob("*.png"))
    assert len(pngs) == 6
    first = np.asarray(Image.open(pngs[0]))
    assert set(np.unique(first)) == {0, 1, 2}
    summary = json.loads((out / inference.SUMMARY).read_text())
    assert summary["sequences"]["clip"]["reuse_rate"] == 0.0  # tau = 1 never reuses
    assert summary["sequences"]["clip"]["deep_frames"] == 6


def test_video_input(synthetic_folder, tiny_model, tmp_path):
    cv2 = pytest.importorskip("cv2")
    folder, mask = synthetic_folder
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (128, 72))
    for f in sorted(folder.glob("*.jpg")):
        writer.write(cv2.imread(str(f)))
    writer.release()
    out = tmp_path / "out"
    assert _run("--input", video, "--first-mask", mask, "--name", "vid", "--model", tiny_model, "--out", out) == 0
    assert len(list((out / "vid").glob("*.png"))) == 6
    assert (out / "vid" / inference.DONE_MARKER).is_file()


@pytest.mark.parametrize("case, message", [
    ("no_mask", "--first-mask"),
    ("missing_input", "does not exist"),
    ("mask_size", "share one size"),
    ("empty_mask", "no object"),
    ("missing_model", "not found"),
    ("bad_tau", "tau"),
    ("oracle_without_gt", "ground truth of every frame"),
    ("out_is_file", "is a file"),
])
def test_errors(case, message, synthetic_folder, tiny_model, tmp_path, capsys):
    folder, mask = synthetic_folder
    args = ["--input", folder, "--first-mask", mask, "--model", tiny_model, "--out", tmp_path / "out"]
    if case == "no_mask":
        args = ["--input", folder, "--model", tiny_model]
    elif case == "missing_input":
        args[1] = tmp_path / "nowhere"
    elif case == "mask_size":
        Image.fromarray(np.ones((10, 10), np.uint8)).save(tmp_path / "small.png")
        args[3] = tmp_path / "small.png"
    elif case == "empty_mask":
        Image.fromarray(np.zeros((72, 128), np.uint8)).save(tmp_path / "empty.png")
        args[3] = tmp_path / "empty.png"
    elif case == "missing_model":
        args[5] = tmp_path / "absent.pth"
    elif case == "bad_tau":
        args += ["--tau", "1.5"]
    elif case == "oracle_without_gt":
        args += ["--variant", "oracle"]
    elif case == "out_is_file":
        (tmp_path / "out").write_text("not a folder")
    assert _run(*args) == 2
    err = capsys.readouterr().err
    assert err.startswith("reusegate run: error:") and message in err
    assert not (tmp_path / "out" / "clip" / inference.DONE_MARKER).exists()


def test_source_is_required_and_exclusive(synthetic_folder, capsys):
    folder, mask = synthetic_folder
    with pytest.raises(SystemExit) as exc:
        _run("--first-mask", mask)
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        _run("--input", folder, "--davis", folder)
    assert "not allowed with" in capsys.readouterr().err
    assert _run("--davis", folder, "--first-mask", mask) == 2
    assert "--first-mask" in capsys.readouterr().err


def test_fusion_variant_takes_tau2(synthetic_folder, tiny_model, tmp_path, capsys):
    folder, mask = synthetic_folder
    args = ["--input", folder, "--first-mask", mask, "--model", tiny_model, "--variant", "fusion"]
    assert _run(*args, "--tau", 0.95, "--out", tmp_path / "bad") == 2
    assert "tau2 > tau" in capsys.readouterr().err
    assert _run(*args, "--tau", 0.5, "--tau2", 0.8, "--out", tmp_path / "out") == 0
    settings = json.loads((tmp_path / "out" / inference.SUMMARY).read_text())["settings"]
    assert settings["variant"] == "fusion" and settings["tau2"] == 0.8


def test_reuse_path_overrides_the_models_and_is_recorded(synthetic_folder, tiny_model, tmp_path, capsys):
    folder, mask = synthetic_folder
    args = ["--input", folder, "--first-mask", mask, "--model", tiny_model, "--tau", 0.5]
    assert _run(*args, "--reuse-path", "copy", "--out", tmp_path / "bad") == 2
    assert "reuse_path must be one of" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    assert _run(*args, "--reuse-path", "shift", "--out", tmp_path / "retired") == 2
    err = capsys.readouterr().err
    assert "reuse_path='shift' was retired in 0.2.0" in err and "use reuse_path='hold'" in err
    assert _run(*args, "--reuse-path", "hold", "--variant", "translate", "--out", tmp_path / "out") == 0
    settings = json.loads((tmp_path / "out" / inference.SUMMARY).read_text())["settings"]
    assert settings["reuse_path"] == "hold" and settings["gate_input"] == "template"
    assert settings["variant"] == "decode"  # the old name on the command line, recorded as the new one
