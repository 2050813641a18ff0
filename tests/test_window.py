"""The window around each object's previous mask (``GateConfig.window``, beyond the paper): its geometry, that it
removes a look-alike far from the object and nothing near it, that ``tau = 1`` still equals the bare host with the
same window, and the option through ``run`` and ``bench``."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from reusegate.adapters.reference import ReferenceAdapter, ReferenceHost
from reusegate.cli import main
from reusegate.core.config import GateConfig
from reusegate.core.gate import ReuseGate
from reusegate.core.session import WINDOW_FLOOR, HostRunner, object_window
from reusegate.data.synthetic import make_clip
from reusegate.tools import run as inference
from vos_synth import write_clip_folder

H, W = 96, 160


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf, True, "0.25"])
def test_config_refuses_a_bad_window(bad):
    with pytest.raises(ValueError, match="window must be None"):
        GateConfig(window=bad)


def test_config_reads_a_window_as_a_float():
    assert GateConfig(window=1).window == 1.0 and isinstance(GateConfig(window=1).window, float)
    assert GateConfig().window is None


def test_window_is_the_grown_bounding_box():
    previous = torch.zeros(1, 1, 100, 200)
    previous[..., 40:60, 50:90] = 0.9  # a 20 x 40 box
    box = object_window(previous, 0.25)
    floor = WINDOW_FLOOR * 200  # 8 pixels
    rows, cols = box[0, 0].any(1).nonzero().flatten(), box[0, 0].any(0).nonzero().flatten()
    assert int(rows[0]) == math.floor(40 - (0.25 * 20 + floor)) and int(rows[-1]) + 1 == math.ceil(60 + 5 + floor)
    assert int(cols[0]) == math.floor(50 - (0.25 * 40 + floor)) and int(cols[-1]) + 1 == math.ceil(90 + 10 + floor)
    assert set(box.unique().tolist()) == {0.0, 1.0}
    assert box.sum() == len(rows) * len(cols)  # a full rectangle


def test_window_keeps_room_for_the_last_motion():
    previous = torch.zeros(1, 1, 100, 200)
    previous[..., 40:60, 50:90] = 1.0
    before = torch.zeros_like(previous)
    before[..., 40:60, 38:78] = 1.0  # 12 pixels to the left: the object moves right
    still, moving = object_window(previous, 0.25), object_window(previous, 0.25, before)
    cols = lambda box: box[0, 0].any(0).nonzero().flatten()  # noqa: E731
    rows = lambda box: box[0, 0].any(1).nonzero().flatten()  # noqa: E731
    assert int(cols(moving)[-1]) - int(cols(still)[-1]) == 12 and int(cols(still)[0]) - int(cols(moving)[0]) == 12
    assert torch.equal(rows(moving), rows(still))  # no vertical motion, no vertical growth
    lost = torch.zeros_like(previous)
    assert torch.equal(object_window(previous, 0.25, lost), still)  # no motion known


def test_window_is_clipped_at_the_frame_border_and_absent_for_a_lost_object():
    previous = torch.zeros(1, 1, 50, 50)
    previous[..., 0:10, 45:50] = 1.0
    box = object_window(previous, 1.0)
    assert box[0, 0, 0, 49] == 1 and box[0, 0, 49, 0] == 0
    lost = torch.zeros(1, 1, 50, 50)
    lost[..., 3, 3:6] = 1.0  # three pixels: lost, searched for everywhere
    assert object_window(lost, 0.25) is None


class LookalikeAdapter(ReferenceAdapter):
    """The reference host's taps with a decoder that sees two copies of the object: its logits are high where the
    object is (top left) and on a look-alike in the bottom-right corner, as a host without a spatial prior does."""

    def refine_shallow(self, feats, score, refined):
        logits = torch.full_like(super().refine_shallow(feats, score, refined), -12.0)
        logits[..., 12:40, 12:52] = 12.0
        logits[..., -20:, -30:] = 12.0
        return logits


def _clip(n: int = 5) -> tuple[list[torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    frames = [(torch.rand(3, H, W, generator=g) * 255).to(torch.uint8) for _ in range(n)]
    first = torch.zeros(H, W, dtype=torch.long)
    first[10:40, 10:50] = 1  # top left, far from the look-alike
    return frames, first


def _labels(session, frames, first) -> list[torch.Tensor]:
    return [session.step(f, first if i == 0 else None).labels for i, f in enumerate(frames)]


def test_window_removes_a_far_lookalike_and_keeps_tau_one_equal_to_the_host():
    frames, first = _clip()
    host = ReferenceHost()
    plain = _labels(HostRunner(LookalikeAdapter(host)), frames, first)
    windowed = _labels(HostRunner(LookalikeAdapter(host), window=0.25), frames, first)
    assert (plain[1][-20:, -30:] == 1).all()  # without a window the look-alike takes the object's label
    for labels in windowed[1:]:
        assert not (labels[-20:, -30:] == 1).any()
        assert (labels[12:40, 12:52] == 1).all()  # the object itself is kept
    box = object_window((first == 1).float()[None, None], 0.25)[0, 0].bool()
    assert not box[-20:, -30:].any()
    # inside the window the labels are exactly the plain host's (the window multiplies by 1 there)
    assert torch.equal(windowed[1][box], plain[1][box])
    # a gated session at tau = 1 with the same window is still the bare host, bit for bit
    gate = ReuseGate(host, LookalikeAdapter, GateConfig(tau=1.0, window=0.25))
    gated = _labels(gate.session(), frames, first)
    assert all(torch.equal(a, b) for a, b in zip(gated, windowed))


def test_run_and_bench_take_the_window(tiny_model, tmp_path, capsys):
    # the tiny model predicts foreground almost everywhere: the window is what keeps object 1 near where it was
    # on frame 1 (later windows grow with the mask it fills, by a quarter of its size a side each frame)
    folder, mask = write_clip_folder(tmp_path, make_clip(((6, 2.0),), size=(48, 64), n_objects=1, seed=3))
    first = np.asarray(Image.open(mask)) == 1
    area = {}
    for name, extra in (("plain", []), ("window", ["--window", "0.25"])):
        out = tmp_path / name
        assert main(["run", "--input", str(folder), "--first-mask", str(mask), "--model", str(tiny_model),
                     "--tau", "1", "--out", str(out), *extra]) == 0
        second = np.asarray(Image.open(sorted((out / "clip").glob("*.png"))[1])) == 1
        area[name] = second.sum()
        settings = json.loads((out / inference.SUMMARY).read_text())["settings"]
        assert settings.get("window") == (0.25 if extra else None)
    assert area["window"] < 0.7 * area["plain"], area
    assert area["plain"] > 3 * first.sum()
    report = tmp_path / "bench.json"
    assert main(["bench", "--model", str(tiny_model), "--frames", "4", "--taus", "1", "--no-flops",
                 "--window", "0.25", "--json", str(report)]) == 0
    assert "window 0.25" in capsys.readouterr().out
    assert json.loads(report.read_text())["window"] == 0.25


def test_cli_refuses_a_negative_window(tiny_model, tmp_path, capsys):
    folder, mask = write_clip_folder(tmp_path, make_clip(((6, 2.0),), size=(48, 64), n_objects=1, seed=3))
    out = tmp_path / "out"
    rc = main(["run", "--input", str(folder), "--first-mask", str(mask), "--model", str(tiny_model),
               "--window", "-1", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "window must be None" in err and "Traceback" not in err
    assert not out.exists() or not any(out.rglob("*.png"))


def test_demo_takes_the_window(tmp_path, monkeypatch):
    from reusegate.zoo import catalog

    seen = {}

    def stop(**kwargs):  # the demo's model load: record what it was asked for, then stop before any work
        seen.update(kwargs)
        raise ValueError("stopped here")

    monkeypatch.setattr(catalog, "default_gate", stop)
    assert main(["demo", "--window", "0.1", "--out", str(tmp_path / "demo")]) == 2
    assert seen["window"] == 0.1  # test's --window: tests/test_test_command.py
