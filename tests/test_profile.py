"""``reusegate.tools.profiling`` and ``reusegate bench --profile``: which stages run on computed and on reused frames.

No timing is asserted: only that each stage is charged where it runs (a reused frame runs no deep backbone,
score, deep decoder or online update; a computed frame runs no gate, delta or translator at tau = 1), that the
rows add up to the measured step time, and that the instrumentation leaves the model as it found it.
"""
from __future__ import annotations

import contextlib
import io
import json

import pytest
import torch

from reusegate.adapters.reference import ReferenceAdapter, ReferenceHost
from reusegate.cli import main
from reusegate.core.gate import ReuseGate
from reusegate.tools.profiling import REST, StageTimer, profile_lines, profile_stages

SKIPPED_ON_REUSE = ("deep backbone", "score", "deep decoder", "online update (amortised)")
GATE_ONLY = ("template matching + gate", "delta", "translator")


def _clip(n: int = 5) -> tuple[list[torch.Tensor], torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    frames = [(torch.rand(3, 48, 64, generator=gen) * 255).to(torch.uint8) for _ in range(n)]
    first = torch.zeros(48, 64, dtype=torch.int64)
    first[10:30, 12:40] = 1
    first[32:44, 44:60] = 2
    return frames, first


def test_stage_timer_charges_nested_time_to_the_inner_stage():
    timer = StageTimer()
    with timer.stage("outer"):
        with timer.stage("inner"):
            sum(range(200_000))
    totals = timer.take()
    assert set(totals) == {"outer", "inner"} and totals["inner"] > totals["outer"] >= 0
    assert timer.take() == {}


def test_computed_and_reused_frames_charge_the_stages_they_run():
    torch.manual_seed(0)
    host = ReferenceHost(width=8, refined_channels=16)
    gate = ReuseGate(host, ReferenceAdapter, tau=0.6)
    report = profile_stages(gate, [_clip()])
    rows = {r["stage"]: r for r in report["stages"]}
    assert report["frames"] == 4 and gate.tau == 0.6  # first frame excluded; the gate's config untouched
    for stage in SKIPPED_ON_REUSE[:3]:
        assert rows[stage]["computed_ms"] > 0 and rows[stage]["reused_ms"] == 0, stage
    for stage in GATE_ONLY:
        assert rows[stage]["reused_ms"] > 0 and rows[stage]["computed_ms"] == 0, stage
    for stage in ("shallow backbone", "shallow decoder + head", "merge / argmax / resize"):
        assert rows[stage]["computed_ms"] > 0 and rows[stage]["reused_ms"] > 0, stage
    for kind in ("computed", "reused"):
        total = sum(r[f"{kind}_ms"] for r in report["stages"])
        assert abs(total - report[f"{kind}_ms"]) <= 1e-9 * report[f"{kind}_ms"], kind
        assert rows[REST][f"{kind}_ms"] >= 0
    # the instrumentation is gone: no shadowing attribute, no hook left on the gate modules
    assert "shallow" not in vars(gate.adapter) and "match_and_gate" not in vars(gate.gate_modules)
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in gate.modules())
    lines = profile_lines(report)
    assert lines[0].split()[:3] == ["stage", "computed", "ms"] and lines[-1].startswith("c = reused / computed")


def test_the_hold_path_runs_no_delta_or_translator_on_reused_frames():
    torch.manual_seed(0)
    gate = ReuseGate(ReferenceHost(width=8, refined_channels=16), ReferenceAdapter, tau=0.5,
                     gate_input="change_mask", reuse_path="hold")
    report = profile_stages(gate, [_clip()])
    rows = {r["stage"]: r for r in report["stages"]}
    assert rows["template matching + gate"]["reused_ms"] > 0  # the change gate decides
    assert rows["delta"]["reused_ms"] == rows["translator"]["reused_ms"] == 0


def test_a_copying_gate_is_also_profiled_copying():
    """A fusion gate's reused frames decode or copy: the profile shows both, and a copied frame runs no decoder."""
    torch.manual_seed(0)
    gate = ReuseGate(ReferenceHost(width=8, refined_channels=16), ReferenceAdapter, tau=0.5, variant="fusion",
                     tau2=0.8)
    report = profile_stages(gate, [_clip()])
    rows = {r["stage"]: r for r in report["stages"]}
    assert (gate.tau, gate.variant) == (0.5, "fusion")  # untouched: each kind ran with its own config
    assert rows["shallow decoder + head"]["copied_ms"] == 0 and rows["shallow decoder + head"]["reused_ms"] > 0
    assert rows["shallow backbone"]["copied_ms"] > 0 and rows["template matching + gate"]["copied_ms"] > 0
    assert report["copied_ms"] < report["reused_ms"]
    assert abs(sum(r["copied_ms"] for r in report["stages"]) - report["copied_ms"]) <= 1e-9 * report["copied_ms"]
    lines = profile_lines(report)
    assert lines[0].split()[7:9] == ["copied", "ms"] and lines[-1].startswith("a copied frame costs")
    assert "copied_ms" not in profile_stages(ReuseGate(ReferenceHost(width=8, refined_channels=16),
                                                       ReferenceAdapter), [_clip(3)])


def test_profile_needs_two_frames():
    gate = ReuseGate(ReferenceHost(width=8, refined_channels=16), ReferenceAdapter)
    frames, first = _clip(1)
    with pytest.raises(ValueError, match="at least 2 frames"):
        profile_stages(gate, [(frames, first)])


@pytest.mark.data
def test_bench_profile_prints_the_table_and_writes_json(mini_davis, tiny_model, tmp_path):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        rc = main(["bench", "--profile", "--davis", str(mini_davis), "--sequences", str(mini_davis / "list.txt"),
                   "--model", str(tiny_model), "--frames", "0", "--json", str(tmp_path / "profile.json")])
    assert rc == 0
    text = printed.getvalue()
    assert "shallow backbone" in text and "template matching + gate" in text and "c = reused / computed" in text
    report = json.loads((tmp_path / "profile.json").read_text())
    assert report["frames"] == 8  # two sequences of five frames, first frames excluded
    assert {r["stage"] for r in report["stages"]} >= {"deep backbone", "translator", REST}
