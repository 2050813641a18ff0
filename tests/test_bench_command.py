"""``reusegate bench``: table, JSON figures that agree with each other and with ``reusegate run``, plot, errors.

No timing is asserted (speed is measured by the command itself, not by tests): only that the reported
numbers are consistent, e.g. speedup = FPS(tau) / FPS(tau = 1) and the Amdahl formula. Fixtures (tiny
untrained exported model, low-resolution DAVIS copy, one thread) come from ``test_run_command``.
"""
from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest
from conftest import MINI_FRAMES, MINI_SEQUENCES

from reusegate.cli import main
from reusegate.evaluation import evaluate_sequences

NAMES = ["host", "tau=1", "tau=0.8", "tau=0.5", "tau=0"]


@pytest.fixture(scope="module")
def bench_run(mini_davis, tiny_model, tmp_path_factory):  # noqa: F811
    """One bench run shared by the checks below: its exit code, printed output, JSON report and plot path."""
    out = tmp_path_factory.mktemp("bench")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = main(["bench", "--davis", str(mini_davis), "--sequences", str(mini_davis / "list.txt"),
                   "--model", str(tiny_model), "--taus", "1", "0.8", "0.5", "0", "--frames", "0",
                   "--json", str(out / "bench.json"), "--plot", str(out / "fig6.png")])
    return rc, printed.getvalue(), json.loads((out / "bench.json").read_text()), out / "fig6.png"


@pytest.mark.data
def test_table_json_and_plot(bench_run):
    rc, printed, report, plot = bench_run
    assert rc == 0
    assert "ms/frame" in printed and "ach/ideal" in printed and "wrapper overhead" in printed
    for name in NAMES:
        assert f"\n{name} " in printed
    assert report["sequences"] == list(MINI_SEQUENCES)
    assert report["frames"] == {s: MINI_FRAMES for s in MINI_SEQUENCES}
    assert report["frame_size"] == [120, 214]
    assert report["timed_frames_per_variant"] == (MINI_FRAMES - 1) * len(MINI_SEQUENCES)
    assert [v["name"] for v in report["variants"]] == NAMES
    keys = {"tau", "ms_per_frame", "fps", "speedup", "flops_per_frame", "reuse_rate", "skip_rate", "jf", "j", "f",
            "amdahl_ideal", "amdahl_ratio", "per_sequence"}
    assert all(keys <= set(v) for v in report["variants"])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.data
def test_numbers_are_consistent(bench_run):
    report = bench_run[2]
    v = {r["name"]: r for r in report["variants"]}
    base, zero = v["tau=1"], v["tau=0"]
    for r in report["variants"]:
        assert r["fps"] == pytest.approx(1000 / r["ms_per_frame"])
        assert r["speedup"] == pytest.approx(r["fps"] / base["fps"])
        assert r["flops_per_frame"] > 0
        assert r["flop_pass_same_decisions"] is True
        assert r["jf"] == pytest.approx((r["j"] + r["f"]) / 2)
        assert set(r["per_sequence"]) == set(MINI_SEQUENCES)
        objects = [o for seq in r["per_sequence"].values() for o in seq["per_object"].values()]
        assert r["j"] == pytest.approx(np.mean([o["j"] for o in objects]))  # the objects' figures pool to the row's
        for seq in r["per_sequence"].values():
            js, fs = zip(*((o["j"], o["f"]) for o in seq["per_object"].values()))
            assert seq["jf"] == pytest.approx((np.mean(js) + np.mean(fs)) / 2)
    # tau = 1 is the host: nothing reused, same masks (so the same J&F), same executed FLOPs
    assert base["reuse_rate"] == v["host"]["reuse_rate"] == 0.0 and base["skip_rate"] == 0.0
    assert base["jf"] == v["host"]["jf"] and 0.0 < base["jf"] < 1.0
    assert base["flops_per_frame"] == v["host"]["flops_per_frame"]
    assert report["overhead_tau1"] == pytest.approx(base["ms_per_frame"] / v["host"]["ms_per_frame"] - 1)
    # tau = 0 reuses every frame (p_reuse > 0 always), so c is its cost ratio to tau = 1 directly
    assert zero["reuse_rate"] == 1.0 and zero["skip_rate"] == 1.0
    c = report["reuse_cost"]
    assert c == pytest.approx(zero["ms_per_frame"] / base["ms_per_frame"])
    assert report["reuse_cost_flops"] == pytest.approx(zero["flops_per_frame"] / base["flops_per_frame"])
    for r in report["variants"][1:]:
        ideal = 1 / (1 - r["skip_rate"] * (1 - c))
        assert r["amdahl_ideal"] == pytest.approx(ideal)
        assert r["amdahl_ratio"] == pytest.approx(r["speedup"] / ideal)
    assert zero["amdahl_ratio"] == pytest.approx(1.0)  # c is defined by the all-reuse timing itself
    assert v["host"]["amdahl_ideal"] is None


@pytest.mark.data
def test_gate_is_compared_with_the_true_iou_where_it_runs(bench_run):
    """Every object-frame of a gated variant gives one (p_reuse, IoU) pair; at tau = 1 no gate runs."""
    rc, printed, report, _ = bench_run
    v = {r["name"]: r for r in report["variants"]}
    assert v["host"]["gate_pairs"] == v["tau=1"]["gate_pairs"] == 0 and v["tau=1"]["gate_iou_spearman"] is None
    for name in ("tau=0.8", "tau=0.5", "tau=0"):
        assert v[name]["gate_pairs"] == report["timed_frames_per_variant"]  # one object per mini sequence
        assert -1.0 <= v[name]["gate_iou_spearman"] <= 1.0 and 0.0 <= v[name]["gate_iou_mae"] <= 1.0
    assert "learnt gate against the true IoU" in printed and "tau=0.8 " in printed.split("true IoU")[1]
    per_sequence = v["tau=0.5"]["per_sequence"]  # the pooled pairs are the sequences' pairs
    assert sum(s["gate_pairs"] for s in per_sequence.values()) == v["tau=0.5"]["gate_pairs"]
    assert all(s["gate_pairs"] == 0 for s in v["tau=1"]["per_sequence"].values())


def test_gate_comparison_follows_each_objects_last_computed_frame():
    """The true IoU is to the ground truth of the frame an object last computed, not of the previous frame."""
    import types

    from reusegate.core.config import GateConfig
    from reusegate.tools.bench import BenchClip, _compare_gate, _spearman, _Variant

    gt = [np.zeros((4, 4), np.uint8) for _ in range(4)]
    gt[0][:2, :2] = 1  # 4 pixels
    gt[1][:2, :3] = 1  # 6: IoU 4/6 with frame 0
    gt[2][:2, :4] = 1  # 8: IoU 4/8 with frame 0, 6/8 with frame 1
    gt[3][:2, :4] = 1
    clip = BenchClip("c", [], gt)
    v, anchors = _Variant("tau=0.5", GateConfig(tau=0.5)), {1: 0}
    _compare_gate(v, types.SimpleNamespace(p_reuse={1: 0.9}, reused={1: True}), clip, 1, anchors)
    _compare_gate(v, types.SimpleNamespace(p_reuse={1: 0.2}, reused={1: False}), clip, 2, anchors)
    _compare_gate(v, types.SimpleNamespace(p_reuse={1: 0.8}, reused={1: True}), clip, 3, anchors)
    assert v.gate_vs_iou == [(0.9, pytest.approx(4 / 6)), (0.2, pytest.approx(4 / 8)), (0.8, 1.0)]
    oracle = _Variant("oracle@0.5", GateConfig(tau=0.5, variant="oracle"))
    _compare_gate(oracle, types.SimpleNamespace(p_reuse={1: 0.9}, reused={1: True}), clip, 1, {1: 0})
    assert oracle.gate_vs_iou == []  # its p_reuse is the IoU itself
    assert _spearman(np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.1, 0.5])) == pytest.approx(0.866, abs=1e-3)
    assert math.isnan(_spearman(np.array([1.0, 2.0]), np.array([0.3, 0.3])))


@pytest.mark.data
def test_jf_matches_run_and_eval(bench_run, mini_davis, tiny_model, tmp_path):  # noqa: F811
    """bench's J&F at tau = 1 equals what ``reusegate run --tau 1`` writes, scored by the DAVIS evaluator."""
    report = bench_run[2]
    out = tmp_path / "out"
    assert main(["run", "--davis", str(mini_davis), "--sequences", str(mini_davis / "list.txt"), "--model",
                 str(tiny_model), "--tau", "1", "--out", str(out)]) == 0
    result = evaluate_sequences(mini_davis, out, sequences=list(MINI_SEQUENCES), processes=1)
    base = next(r for r in report["variants"] if r["name"] == "tau=1")
    assert base["jf"] == pytest.approx(result.jf_mean, abs=1e-9)
    assert base["j"] == pytest.approx(result.j_mean, abs=1e-9)


def test_default_source_is_the_demo_clip(tiny_model, tmp_path, capsys):  # noqa: F811
    assert main(["bench", "--model", str(tiny_model), "--taus", "0.7", "--frames", "3", "--no-flops",
                 "--json", str(tmp_path / "b.json")]) == 0
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["source"] == "embedded synthetic demo clip" and report["sequences"] == ["demo"]
    assert [v["name"] for v in report["variants"]] == ["host", "tau=1", "tau=0.7", "tau=0"]
    assert all(v["flops_per_frame"] is None for v in report["variants"])
    assert report["timed_frames_per_variant"] == 2
    assert not math.isnan(report["variants"][0]["jf"])
    assert "synthetic demo clip" in capsys.readouterr().out
    assert not (tmp_path / "fig6.png").exists()
    assert np.isfinite(report["overhead_tau1"])


@pytest.mark.parametrize("argv, message", [
    (["--frames", "2"], "--frames"),
    (["--taus", "0.5", "1.5"], "tau must be a number in [0, 1], got 1.5"),
    (["--variants", "fusion", "--variant-tau", "0.9", "--tau2", "0.8"], "the fusion variant needs tau2 > tau"),
    (["--reuse-path", "shift"], "retired in 0.2.0"),
    (["--sequences", "list.txt"], "--davis"),
    (["--davis", "nowhere"], "does not exist"),
    (["--model", "absent.pth"], "not found"),
    (["--threads", "0"], "--threads"),
])
def test_errors(argv, message, tiny_model, tmp_path, capsys, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    if "--model" not in argv:
        argv = argv + ["--model", str(tiny_model)]
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reusegate bench: error:") and message in err


def test_copy_fusion_and_oracle_variants(tiny_model, tmp_path):  # noqa: F811
    """copy and fusion gate exactly as decode at the same tau (the gate sees the same caches), so their reuse
    rates match it; the oracle reuses on the demo clip's slow start, where consecutive masks overlap by > 0.5."""
    assert main(["bench", "--model", str(tiny_model), "--taus", "0.5", "--frames", "8", "--no-flops",
                 "--variants", "copy", "fusion", "oracle", "--variant-tau", "0.5", "--tau2", "0.9",
                 "--json", str(tmp_path / "b.json"), "--plot", str(tmp_path / "p.png")]) == 0
    report = json.loads((tmp_path / "b.json").read_text())
    v = {r["name"]: r for r in report["variants"]}
    assert list(v) == ["host", "tau=1", "tau=0.5", "tau=0", "copy@0.5", "fusion@0.5", "oracle@0.5"]
    assert [v[n]["variant"] for n in ("copy@0.5", "fusion@0.5", "oracle@0.5")] == ["copy", "fusion", "oracle"]
    assert v["copy@0.5"]["reuse_rate"] == v["fusion@0.5"]["reuse_rate"] == v["tau=0.5"]["reuse_rate"]
    assert v["oracle@0.5"]["reuse_rate"] > 0
    # every reuse of copy copies; fusion only above tau2; the reuse path and the oracle never copy
    assert v["copy@0.5"]["copy_rate"] == v["copy@0.5"]["reuse_rate"]
    assert 0 <= v["fusion@0.5"]["copy_rate"] <= v["fusion@0.5"]["reuse_rate"]
    assert v["tau=0.5"]["copy_rate"] == v["oracle@0.5"]["copy_rate"] == 0
    assert main(["bench", "--model", str(tiny_model), "--taus", "0.5", "--frames", "4", "--no-flops",
                 "--variants", "copy", "--variant-tau", "0", "--json", str(tmp_path / "c.json")]) == 0
    v = {r["name"]: r for r in json.loads((tmp_path / "c.json").read_text())["variants"]}
    assert v["copy@0"]["copy_rate"] == v["copy@0"]["reuse_rate"] == 1.0 and v["tau=0"]["copy_rate"] == 0
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
