"""The latency-budget controller: convergence to the highest tau meeting the budget, the [tau_min, 1] range, an
unreachable budget reported once, recovery after a load step, and its session on a real (reference) host.

No test reads the wall clock: the plant is a synthetic step-time model and the session's clock is injected.
"""
from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from test_gate import moving_clip, run

from reusegate.adapters.reference import ReferenceAdapter, ReferenceHost
from reusegate.core.config import GateConfig
from reusegate.core.controller import (DEFAULT_TAU_MIN, ControlledSession, LatencyController, budget_seconds,
                                       config_at, tau_floor, window_shares)
from reusegate.core.gate import ReuseGate
from reusegate.core.session import HostRunner
from reusegate.zoo.catalog import load_gate, recommended_config, save_gate

def exit_code(argv: list) -> int:
    """The CLI's exit status, whether it returns it or argparse raises it (a malformed flag)."""
    from reusegate.cli import main

    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


COMPUTED_S, COST = 0.040, 0.6  # a computed frame's time and a reused frame's share of it


def reuse_rate(tau: float) -> float:
    """A gate whose reuse rate grows from 0 at tau 0.9 to 80 % at tau 0.5 (monotone, like a learnt gate's)."""
    return float(np.clip((0.9 - tau) / 0.4, 0.0, 1.0)) * 0.8


def mean_step(tau: float) -> float:
    return COMPUTED_S * (1 - reuse_rate(tau) * (1 - COST))


def highest_tau_meeting(budget: float) -> float:
    """The plant's answer by bisection: the highest tau whose mean step time is within the budget."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if mean_step(mid) > budget else (mid, hi)
    return lo


def drive(controller: LatencyController, frames: int, seed: int = 0, load=lambda t: 1.0) -> tuple[list, list]:
    """Feed ``frames`` synthetic step times (each frame reused with the plant's probability at the current tau:
    the bimodal times a real gate gives) times ``load(t)``; return the taus frames ran at and their times."""
    rng = np.random.default_rng(seed)
    taus, times = [], []
    for t in range(frames):
        tau = controller.tau
        seconds = (COST if rng.random() < reuse_rate(tau) else 1.0) * COMPUTED_S * load(t)
        taus.append(tau)
        times.append(seconds)
        controller.update(seconds)
    return taus, times


def test_converges_to_the_highest_tau_meeting_the_budget_and_meets_it():
    budget = 0.034  # between tau = 1 (40 ms) and the floor tau_min = 0.5 (27.2 ms)
    target = highest_tau_meeting(budget)
    assert 0.55 < target < 0.85  # the test's budget needs the controller to move tau off both ends
    controller = LatencyController(budget, tau_min=0.5, tau=1.0)
    taus, times = drive(controller, 1500)
    assert all(0.5 <= t <= 1.0 for t in taus)
    assert abs(np.mean(taus[500:]) - target) < 0.02
    assert abs(np.mean(times[500:]) / budget - 1) < 0.03  # the running mean meets the budget
    assert controller.unreachable is None


def test_rare_long_frames_count_in_full():
    """Every 8th computed frame also runs a slow online update (5x a frame): a controller that clipped each
    frame's error would count those frames short and settle over budget; the owed error keeps the mean on it."""
    budget, rng = 0.034, np.random.default_rng(3)
    controller = LatencyController(budget, tau_min=0.3, tau=1.0)
    times, computed = [], 0
    for _ in range(3000):
        reused = rng.random() < reuse_rate(controller.tau) * 1.1
        computed += not reused
        seconds = COMPUTED_S * (COST if reused else 1.0) * (5.0 if not reused and computed % 8 == 0 else 1.0)
        times.append(seconds)
        controller.update(seconds)
    assert abs(np.mean(times[1000:]) / budget - 1) < 0.03


def test_easy_budget_runs_the_host_alone_and_never_leaves_one():
    controller = LatencyController(0.050, tau_min=0.6, tau=0.7)  # slower than tau = 1 needs
    taus, _ = drive(controller, 300)
    first_at_one = taus.index(1.0)
    assert first_at_one < 30 and all(t == 1.0 for t in taus[first_at_one:])
    assert controller.unreachable is None


def test_unreachable_budget_runs_at_tau_min_and_is_reported_once():
    budget = 0.020  # below even the floor's mean step time
    assert mean_step(0.7) > budget
    controller = LatencyController(budget, tau_min=0.7, tau=0.9)
    taus, _ = drive(controller, 200)
    assert min(taus) == 0.7 and all(t == 0.7 for t in taus[50:])
    record = controller.unreachable
    assert record is not None and record["tau_min"] == 0.7 and record["budget_ms"] == pytest.approx(20.0)
    assert record["mean_ms"] > 20.0 * 1.05 and record["frame"] < 60
    drive(controller, 200, seed=1)
    assert controller.unreachable is record  # recorded once, never overwritten


def test_holds_the_target_under_load_and_recovers_after_it():
    budget = 0.034
    unloaded = highest_tau_meeting(budget)
    controller = LatencyController(budget, tau_min=0.5, tau=1.0)
    load = lambda t: 1.15 if 600 <= t < 1200 else 1.0
    taus, times = drive(controller, 1800, load=load)
    assert np.mean(taus[800:1200]) < unloaded - 0.1  # under load it reuses more ...
    assert abs(np.mean(times[800:1200]) / budget - 1) < 0.03  # ... and keeps the budget (feasible at the floor)
    recovered = next(t for t in range(1200, 1800) if taus[t] >= unloaded - 0.02)
    assert recovered - 1200 < 150  # about 4 s at 30 FPS
    assert abs(np.mean(taus[1400:]) - unloaded) < 0.02


def test_budget_arguments_are_checked():
    assert budget_seconds(target_fps=25) == pytest.approx(0.04)
    assert budget_seconds(budget_ms=40) == pytest.approx(0.04)
    assert budget_seconds() is None
    with pytest.raises(ValueError, match="not both"):
        budget_seconds(target_fps=25, budget_ms=40)
    for bad in (0, -3, float("nan"), float("inf"), True, "25"):
        with pytest.raises(ValueError, match="target_fps must be a positive number"):
            budget_seconds(target_fps=bad)
    with pytest.raises(ValueError, match="tau_min must lie in"):
        LatencyController(0.04, tau_min=1.5, tau=0.8)
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter)
    with pytest.raises(ValueError, match="tau_min is the floor of a latency budget"):
        gate.session(tau_min=0.5)
    with pytest.raises(ValueError, match="tau_min must be a number in"):
        GateConfig(tau_min=2)


def test_floor_and_fusion_copy_threshold():
    assert tau_floor(GateConfig(tau=0.75)) == DEFAULT_TAU_MIN
    assert tau_floor(GateConfig(tau=0.475)) == 0.475  # a model recommending a lower tau keeps it reachable
    assert tau_floor(GateConfig(tau=0.75, tau_min=0.6)) == 0.6
    assert recommended_config("accurate").tau_min is None and recommended_config("ttvos").tau_min is None
    fusion = GateConfig(tau=0.75, variant="fusion", tau2=0.825)
    assert config_at(fusion, 0.7).tau2 == 0.825
    assert config_at(fusion, 0.9).tau2 == pytest.approx(0.95)  # past the model's tau2, the copy band moves up
    assert config_at(fusion, 1.0).tau == 1.0


def test_json_tau_min_round_trip(tmp_path):
    gate = ReuseGate(ReferenceHost(), "reference", GateConfig(tau=0.8, tau_min=0.65))
    path = save_gate(gate, tmp_path / "m.pth", host="reference", adapter="reference")
    assert json.loads(path.with_suffix(".json").read_text())["recommended"]["tau_min"] == 0.65
    assert load_gate(path).config.tau_min == 0.65
    plain = save_gate(ReuseGate(ReferenceHost(), "reference"), tmp_path / "p.pth", host="reference",
                      adapter="reference")
    assert "tau_min" not in json.loads(plain.with_suffix(".json").read_text())["recommended"]
    loaded = load_gate(path)
    session = loaded.session(target_fps=30)
    assert session.controller.tau_min == 0.65 and session.controller.tau == 1.0  # starts at the most accurate
    assert loaded.session(target_fps=30, tau_min=0.55).controller.tau_min == 0.55


class StepClock:
    """A clock that advances by ``seconds(call)`` between the two reads of each step."""

    def __init__(self, seconds):
        self.now, self.calls, self.seconds = 0.0, 0, seconds

    def __call__(self) -> float:
        if self.calls % 2 == 1:
            self.now += self.seconds(self.calls // 2)
        self.calls += 1
        return self.now


def test_session_feeds_measured_times_and_tau_one_is_the_host():
    frames, labels = moving_clip(10)
    host = ReferenceHost()
    gate = ReuseGate(host, ReferenceAdapter, tau=1.0)
    easy = gate.session(target_fps=10, clock=StepClock(lambda i: 0.01))  # 10 ms frames against 100 ms
    assert isinstance(easy, ControlledSession)
    results = run(easy, frames, labels[0])
    bare = run(HostRunner(ReferenceAdapter(host)), frames, labels[0])
    for b, r in zip(bare, results):  # tau stays at 1: the host's masks, bit for bit
        assert torch.equal(b.labels, r.labels) and not any(r.reused.values())
        assert all(math.isnan(p) for p in r.p_reuse.values())  # and no gate evaluated where none can fire
    stats = easy.stats()
    assert stats["tau"] == [1.0] * 10 and stats["unreachable"] is None and stats["target_fps"] == 10
    assert easy.step_seconds[0] is None and easy.step_seconds[1:] == pytest.approx([0.01] * 9)


def test_session_under_an_unreachable_budget_falls_to_the_floor_and_reuses():
    frames, labels = moving_clip(12)
    gate = ReuseGate(ReferenceHost(), ReferenceAdapter, tau=1.0)
    controller = LatencyController(0.25, tau_min=0.0, tau=1.0, gain=0.2)  # a 5-frame window
    slow = ControlledSession(gate.adapter, gate.gate_modules, gate.config, controller, StepClock(lambda i: 0.75))
    results = run(slow, frames, labels[0])
    taus = slow.stats()["tau"]
    assert taus == pytest.approx([1.0, 1.0, 0.8, 0.6, 0.4, 0.2] + [0.0] * 6, abs=1e-9)
    assert all(r.reused.values() for r in results[6:])  # tau left 1 on frame 2: the gate's caches existed
    assert [all(math.isnan(p) for p in r.p_reuse.values()) for r in results[1:4]] == [True, False, False]
    assert slow.stats()["unreachable"] == {"frame": 11, "mean_ms": pytest.approx(750.0), "budget_ms": 250.0,
                                           "tau_min": 0.0}


def test_bench_frontier_of_the_budget_variant(tiny_model):
    """A budget that runs the fusion variant is compared with fixed-tau fusion rows where the bench measured them
    (several ``others_tau``), and with the decode rows where it did not: like with like, named in the row."""
    from reusegate.tools.bench import bench, demo_clips
    from reusegate.zoo.catalog import load_gate

    gate = load_gate(tiny_model)
    fusion = replace(gate.config, tau=0.5, variant="fusion", tau2=0.9)
    clips = demo_clips(8)
    both = bench(gate, clips, taus=(0.5,), flops=False, progress=False, others=("fusion",), others_tau=(0.5, 0.6, 0.5),
                 targets=(0.01,), target_config=fusion)
    names = [r["name"] for r in both["variants"]]
    assert names == ["host", "tau=1", "tau=0.5", "tau=0", "fusion@0.6", "fusion@0.5", "fps=0.01"]
    assert both["variants"][-1]["frontier_variant"] == "fusion"
    alone = bench(gate, clips, taus=(0.5,), flops=False, progress=False, targets=(0.01,), target_config=fusion)
    assert alone["variants"][-1]["frontier_variant"] == "decode"


def test_window_shares():
    assert window_shares([0.125] * 20, target_fps=8) == (2, 2)  # 2.5 s: the partial window is dropped
    assert window_shares([0.125] * 16 + [0.25] * 8, target_fps=8) == (2, 4)
    assert window_shares([0.125] * 7, target_fps=8) == (0, 0)


def test_bench_rows_per_target(tiny_model, tmp_path, capsys):
    """One row per target: an easy one keeps tau at 1 (the host's masks), an impossible one walks tau down to the
    floor, where even this untrained gate reuses; the printed line and the JSON carry the achieved rate, the
    windows and the frontier's J&F."""
    from reusegate.cli import main

    assert main(["bench", "--model", str(tiny_model), "--taus", "0.5", "--frames", "20", "--no-flops", "--threads",
                 "1", "--budget-ms", "100000", "0.001", "--tau-min", "0", "--json", str(tmp_path / "b.json"),
                 "--plot", str(tmp_path / "p.png")]) == 0
    report = json.loads((tmp_path / "b.json").read_text())
    v = {r["name"]: r for r in report["variants"]}
    assert list(v) == ["host", "tau=1", "tau=0.5", "tau=0", "fps=0.01", "fps=1e+06"]
    easy, hard = v["fps=0.01"], v["fps=1e+06"]
    assert easy["tau_lowest"] == easy["tau_mean"] == 1.0 and easy["unreachable"] == []
    assert easy["reuse_rate"] == 0 and easy["jf"] == v["tau=1"]["jf"]
    assert hard["tau_lowest"] == pytest.approx(0.0, abs=1e-9) and hard["tau_mean"] < 0.7 and hard["reuse_rate"] > 0
    assert hard["fps_error"] < 0 and easy["fps_error"] > 0 and hard["flops_per_frame"] is None
    assert hard["per_sequence"]["demo"]["tau_mean"] == pytest.approx(hard["tau_mean"])
    assert "frontier_jf" in hard and "windows_within_15pct" in hard
    printed = capsys.readouterr().out
    assert "target 1e+06 FPS (decode): achieved" in printed and "1-s windows within 15 %" in printed
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    for argv, message in ((["--target-fps", "-1"], "--target-fps: must be a positive number, got '-1'"),
                          (["--tau-min", "0.5"], "--tau-min is the floor of a latency budget"),
                          (["--target-fps", "30", "--profile"], "drop --profile")):
        assert exit_code(["bench", "--model", str(tiny_model), *argv]) == 2
        assert message in capsys.readouterr().err


def test_demo_under_a_budget_records_tau_per_frame(tmp_path):
    """``demo --budget-ms``: the summary holds the budget and tau per frame, the timeline draws tau moving, and an
    out-of-reach budget says so in the printed lines."""
    from reusegate.tools.demo import run_demo

    gate = ReuseGate(ReferenceHost(width=8, refined_channels=16, input_scale=0.5), ReferenceAdapter, tau=0.9)
    report = run_demo(gate, tmp_path, rounds=1, budget={"budget_ms": 0.001, "tau_min": 0.4})
    summary = json.loads((tmp_path / "summary.json").read_text())
    taus = summary["tau_per_frame"]
    assert taus[:2] == [1.0, 1.0] and min(taus) == 0.4 and all(0.4 <= t <= 1 for t in taus)
    assert summary["budget"]["tau_min"] == 0.4 and summary["budget"]["unreachable"]["tau_min"] == 0.4
    assert report.tau == round(float(np.mean(taus[1:])), 3)
    assert "out of reach at tau_min" in report.lines()[-1]
    assert (tmp_path / "gate_timeline.png").read_bytes()[:4] == b"\x89PNG"


def test_competing_load_thirds_and_cleanup():
    from reusegate.tools.load import CompetingLoad, load_phase

    assert [load_phase(t, 9) for t in range(9)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    with pytest.raises(RuntimeError), CompetingLoad(processes=2) as load:
        load.set(True)
        started = list(load._running)
        assert load.running and len(started) == 2 and all(p.poll() is None for p in started)
        load.set(True)  # already on: no more processes
        assert load._running == started
        raise RuntimeError("the bench failed")
    assert not load.running and all(p.poll() is not None for p in started)  # stopped whatever happened


def test_bench_load_mode_reports_each_third(tiny_model, tmp_path, capsys, monkeypatch):
    """``bench --load``: every row has its FPS per third, a budget row its tau and windows per third; the load is
    on exactly in the middle third (recorded by a stand-in, so the test does not load the machine)."""
    from reusegate.cli import main
    from reusegate.tools import load as load_module

    switched = []
    monkeypatch.setattr(load_module.CompetingLoad, "set", lambda self, on: switched.append(on))
    assert main(["bench", "--model", str(tiny_model), "--taus", "0.5", "--frames", "10", "--no-flops", "--threads",
                 "1", "--target-fps", "50", "--load", "--json", str(tmp_path / "b.json")]) == 0
    assert switched == [load_module.load_phase(t, 10) == 1 for t in range(1, 10)]
    rows = {r["name"]: r for r in json.loads((tmp_path / "b.json").read_text())["variants"]}
    assert set(rows["tau=1"]["phases"]) == {"before", "load", "after"}
    assert all(ph["fps"] > 0 for ph in rows["tau=1"]["phases"].values())
    assert {"tau_mean", "windows", "windows_within_15pct"} <= set(rows["fps=50"]["phases"]["load"])
    assert "fps=50 before / under / after the load:" in capsys.readouterr().out
    counts = []  # --load N: N busy processes (a lighter load than one per core)
    monkeypatch.setattr(load_module.CompetingLoad, "set", lambda self, on: counts.append(self.processes))
    assert main(["bench", "--model", str(tiny_model), "--taus", "0.5", "--frames", "4", "--no-flops", "--threads",
                 "1", "--load", "1"]) == 0
    assert counts and set(counts) == {1}
