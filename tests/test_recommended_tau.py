"""The recommended config (tau, variant, tau2, reuse path) lives in each exported model's ``.json`` and is the
default of ``default_gate``, ``load_gate``, ``run``, ``bench`` and ``demo``; the format-1 ``.json`` of 0.1 exports
still loads."""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image

from reusegate.adapters.reference import ReferenceHost
from reusegate.cli import main
from reusegate.core.config import GateConfig
from reusegate.core.gate import ReuseGate
from reusegate.zoo.catalog import default_gate, default_model_path, load_gate, recommended_config, save_gate
from reusegate.data.synthetic import make_clip

KWARGS = dict(width=8, refined_channels=16, input_scale=0.5)


@pytest.fixture
def model(tmp_path) -> Path:
    """A tiny exported reference model that recommends tau = 0.35 (not any built-in default)."""
    return save_gate(ReuseGate(ReferenceHost(**KWARGS), "reference"), tmp_path / "m.pth", host="reference",
                     adapter="reference", host_kwargs=KWARGS, recommended=0.35)


def test_the_shipped_models_recommend_their_measured_tau():
    # docs/experiments/change-gate-and-hold.md: the lowest tau within 1.0 J&F of tau = 1 on the development
    # split (held out by the fast model), the hard split and the unseen schoolgirls and demo clips
    # the fusion point: the fast model copies the previous mask above tau2 = 0.825 (chosen on its training
    # sequences; tests/test_frozen_taps.py checks that its training config records the same point)
    assert recommended_config("fast") == GateConfig(tau=0.75, variant="fusion", tau2=0.825, reuse_path="hold")
    assert recommended_config("accurate") == GateConfig(tau=0.75, variant="decode", reuse_path="hold")
    assert recommended_config("ttvos") == GateConfig(tau=0.475)
    assert default_gate().config == recommended_config() == recommended_config("accurate")
    for alias, gate_input in (("fast", "change_mask"), ("accurate", "change"), ("ttvos", "template")):
        gate = default_gate(model=alias)
        assert gate.gate_modules.gate_input == gate_input and gate.config == recommended_config(alias)
    assert default_gate(tau=0.8).tau == 0.8
    assert default_gate(model="fast").adapter.taps.refined_stride == 16


def test_the_shipped_descriptions_say_what_inference_needs_and_nothing_else():
    from reusegate.zoo.catalog import EMBEDDED_MODELS, FORMAT_VERSION, model_path

    for alias in EMBEDDED_MODELS:
        meta = json.loads(model_path(alias).with_suffix(".json").read_text())
        assert meta["format"] == FORMAT_VERSION == 2
        assert set(meta) <= {"format", "host", "adapter", "host_kwargs", "gate_input", "rebuilt_prefixes",
                             "recommended", "presets"}, alias
        assert set(meta["recommended"]) == {"tau", "variant", "tau2", "reuse_path"}, alias
        assert "split_s8" not in meta.get("presets", {})


@pytest.fixture
def fusion_model(tmp_path) -> Path:
    """A tiny exported reference model whose recommendation is the fusion variant at tau 0.35, tau2 0.6."""
    gate = ReuseGate(ReferenceHost(**KWARGS), "reference", tau=0.35, variant="fusion", tau2=0.6)
    return save_gate(gate, tmp_path / "f.pth", host="reference", adapter="reference", host_kwargs=KWARGS)


def test_a_recommended_variant_is_the_default_and_can_be_overridden(fusion_model, model):
    meta = json.loads(fusion_model.with_suffix(".json").read_text())
    assert meta["recommended"] == {"tau": 0.35, "variant": "fusion", "tau2": 0.6, "reuse_path": "translate"}
    assert json.loads(model.with_suffix(".json").read_text())["recommended"]["variant"] == "decode"
    gate = load_gate(fusion_model)
    assert (gate.tau, gate.variant, gate.tau2) == (0.35, "fusion", 0.6)
    assert load_gate(fusion_model, variant="decode").variant == "decode"
    assert load_gate(fusion_model, variant="translate").variant == "decode"  # the old name
    assert load_gate(fusion_model, tau2=0.7).tau2 == 0.7
    assert load_gate(fusion_model, tau=1.0).variant == "fusion"  # tau = 1 reuses nothing, whatever tau2
    assert load_gate(fusion_model, tau=0.5).tau2 == 0.6
    with pytest.raises(ValueError, match="copies the previous mask above tau2 = 0.6; tau = 0.8 is not below"):
        load_gate(fusion_model, tau=0.8)
    assert load_gate(fusion_model, tau=0.8, variant="decode").tau == 0.8
    assert load_gate(model, variant="fusion").tau2 == 0.9  # the config's default


def test_bad_variant_recommendations_are_refused(fusion_model, tmp_path):
    meta = json.loads(fusion_model.with_suffix(".json").read_text())
    for bad, message in (({"variant": "oracle"}, "cannot recommend the 'oracle' variant"),
                         ({"variant": "warp"}, "recommended variant must be one of"),
                         ({"tau2": 1.5}, "recommended tau2 must be a number in \\[0, 1\\]"),
                         ({"tau2": 0.3}, "recommended the fusion variant needs tau2 > tau"),
                         ({"reuse_path": "shift"}, "recommended reuse_path='shift' was retired in 0.2.0"),
                         ({"m1": 1.0}, "recommended holds \\['m1'\\]")):
        recommended = {**meta["recommended"], **bad}
        fusion_model.with_suffix(".json").write_text(json.dumps({**meta, "recommended": recommended}))
        with pytest.raises(ValueError, match=message):
            load_gate(fusion_model)
    del meta["recommended"]["tau2"]
    fusion_model.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="recommends the fusion variant but no tau2"):
        recommended_config(fusion_model)
    oracle = ReuseGate(ReferenceHost(**KWARGS), "reference", variant="oracle")
    with pytest.raises(ValueError, match="cannot recommend the 'oracle' variant"):
        save_gate(oracle, tmp_path / "o.pth", host="reference", adapter="reference", host_kwargs=KWARGS)
    fusion = ReuseGate(ReferenceHost(**KWARGS), "reference", tau=0.35, variant="fusion", tau2=0.6)
    with pytest.raises(ValueError, match="needs tau2 > tau"):
        save_gate(fusion, tmp_path / "x.pth", host="reference", adapter="reference", host_kwargs=KWARGS,
                  recommended=0.7)
    assert not (tmp_path / "o.pth").exists() and not (tmp_path / "x.pth").exists()


def test_exports_record_a_recommendation_and_load_with_it(model, tmp_path):
    meta = json.loads(model.with_suffix(".json").read_text())
    assert meta["recommended"]["tau"] == 0.35 and meta["gate_input"] == "template" and "gate" not in meta
    assert load_gate(model).tau == 0.35 and load_gate(model, tau=0.9).tau == 0.9
    # without an explicit recommendation an export records the config the gate was made with
    config = GateConfig(tau=0.45, reuse_path="hold")
    configured = save_gate(ReuseGate(ReferenceHost(**KWARGS), "reference", config), tmp_path / "c.pth",
                           host="reference", adapter="reference", host_kwargs=KWARGS)
    assert recommended_config(configured) == config and load_gate(configured).config == config
    del meta["recommended"]["tau"]  # a field left out takes the config's default
    model.with_suffix(".json").write_text(json.dumps(meta))
    assert load_gate(model).tau == GateConfig().tau
    meta["recommended"]["tau"] = 1.5
    model.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="recommended tau must be a number in \\[0, 1\\]"):
        load_gate(model)


FORMAT_1 = {
    "format": 1, "host": "reference", "adapter": "reference", "host_kwargs": KWARGS,
    "gate": {"m1": 0.0, "m2": 0.0, "ep_t": 6.0, "gate_input": "change_mask", "reuse_path": "hold"},
    "rebuilt_prefixes": [], "recommended_tau": 0.35, "recommended_variant": "fusion", "recommended_tau2": 0.6,
    "presets": {"coarse": {"host_kwargs": {"input_scale": 0.25}, "recommended_tau": 0.45}},
}
"""A 0.1 export's description (the shipped models' layout before 0.2), training settings included."""


def test_a_format_1_description_still_loads(tmp_path):
    gate = ReuseGate(ReferenceHost(**KWARGS), "reference", gate_input="change_mask")
    path = save_gate(gate, tmp_path / "old.pth", host="reference", adapter="reference", host_kwargs=KWARGS)
    path.with_suffix(".json").write_text(json.dumps(FORMAT_1))
    loaded = load_gate(path)
    assert loaded.config == GateConfig(tau=0.35, variant="fusion", tau2=0.6, reuse_path="hold")
    assert loaded.gate_modules.gate_input == "change_mask"
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in gate.state_dict().items())
    coarse = load_gate(path, preset="coarse")  # a format-1 preset's recommended_tau
    assert coarse.host.input_scale == 0.25 and coarse.config.tau == 0.45 and coarse.config.variant == "fusion"
    old = {k: v for k, v in FORMAT_1.items() if k not in ("recommended_tau", "recommended_variant",
                                                         "recommended_tau2")}
    # from before any recommendation: the config's defaults
    path.with_suffix(".json").write_text(json.dumps({**old, "gate": {"m1": 1.0, "gate_input": "change_mask"}}))
    assert load_gate(path).config == GateConfig()
    path.with_suffix(".json").write_text(json.dumps({**FORMAT_1, "recommended_variant": "translate"}))
    assert load_gate(path).config.variant == "decode"  # the old name of the variant
    path.with_suffix(".json").write_text(json.dumps({**FORMAT_1, "gate": {**FORMAT_1["gate"], "reuse_path": "shift"}}))
    with pytest.raises(ValueError, match="reuse_path='shift' was retired in 0.2.0.*use reuse_path='hold'"):
        load_gate(path)


def _run_args(tmp_path: Path, model: Path) -> list:
    """``reusegate run`` on three frames of a procedural clip written as PNGs, into ``tmp_path / "out"``."""
    clip = make_clip(((5, 2.0),), size=(48, 64), n_objects=1, seed=3)
    folder = tmp_path / "clip"
    folder.mkdir()
    for i, frame in enumerate(clip.frames[:3]):
        Image.fromarray(frame).save(folder / f"{i:05d}.png")
    Image.fromarray(clip.labels[0]).save(tmp_path / "first.png")
    return ["run", "--input", str(folder), "--first-mask", str(tmp_path / "first.png"), "--model", str(model),
            "--out", str(tmp_path / "out")]


def test_run_defaults_to_the_models_recommendation(model, tmp_path):
    out = tmp_path / "out"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(_run_args(tmp_path, model)) == 0
    assert json.loads((out / "summary.json").read_text())["settings"]["tau"] == 0.35
    assert json.loads((out / "summary.json").read_text())["settings"]["variant"] == "decode"


def test_run_and_bench_default_to_a_recommended_fusion(fusion_model, tmp_path):
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(_run_args(tmp_path, fusion_model)) == 0
        assert main(["bench", "--model", str(fusion_model), "--frames", "3", "--no-flops", "--taus", "0.5",
                     "--json", str(tmp_path / "b.json")]) == 0
    settings = json.loads((tmp_path / "out" / "summary.json").read_text())["settings"]
    assert (settings["tau"], settings["variant"], settings["tau2"]) == (0.35, "fusion", 0.6)
    report = json.loads((tmp_path / "b.json").read_text())
    assert (report["recommended_variant"], report["tau2"]) == ("fusion", 0.6)
    assert [v["name"] for v in report["variants"]] == ["host", "tau=1", "tau=0.5", "tau=0", "fusion@0.35"]


def test_bench_measures_the_recommendation_and_runs_variants_at_it(model, tmp_path):
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["bench", "--model", str(model), "--frames", "3", "--no-flops", "--variants", "copy",
                     "--json", str(tmp_path / "b.json")]) == 0
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["recommended_tau"] == 0.35
    names = json.dumps(report)
    assert "tau=0.35" in names and "copy" in names


def test_demo_defaults_to_its_models_recommendation(monkeypatch, tmp_path):
    import reusegate.tools.demo
    import reusegate.zoo.catalog

    seen = {}

    def fake_run_demo(gate, out, budget=None):  # the demo itself is tested in test_demo.py; here: which config it gets
        seen.update(gate_tau=gate.config.tau)
        return argparse.Namespace(lines=lambda: [])

    monkeypatch.setattr(reusegate.tools.demo, "run_demo", fake_run_demo)
    # the demo's model with another recommendation: the demo must read it, not a constant of its own
    shipped = reusegate.zoo.catalog.model_path("fast")
    copy = tmp_path / shipped.name
    shutil.copyfile(shipped, copy)
    meta = json.loads(shipped.with_suffix(".json").read_text())
    copy.with_suffix(".json").write_text(json.dumps({**meta, "recommended": {**meta["recommended"], "tau": 0.55}}))
    monkeypatch.setattr(reusegate.zoo.catalog, "_embedded", lambda name: copy)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["demo", "--out", str(tmp_path / "out")]) == 0
    assert seen == {"gate_tau": 0.55}


def test_presets_merge_inference_settings_over_the_trained_ones(model):
    meta = json.loads(model.with_suffix(".json").read_text())
    meta["presets"] = {"coarse": {"host_kwargs": {"input_scale": 0.25}, "recommended": {"tau": 0.8}}}
    model.with_suffix(".json").write_text(json.dumps(meta))
    assert load_gate(model).host.input_scale == 0.5 and load_gate(model).tau == 0.35
    coarse = load_gate(model, preset="coarse")
    assert coarse.host.input_scale == 0.25  # merged over the trained settings
    assert coarse.adapter.taps.refined_channels == 16  # the other trained settings stay
    assert coarse.tau == 0.8 and recommended_config(model, "coarse").tau == 0.8
    with pytest.raises(ValueError, match="has no preset 'fast'; its presets: coarse"):
        load_gate(model, preset="fast")
    meta["presets"]["bad"] = {"gate": {"m1": 1.0}}
    model.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="a preset may set only"):
        load_gate(model, preset="bad")


def test_the_shipped_model_has_a_full_fit_preset():
    """docs/models/: upstream's full target-model iterations, +0.5 J&F at tau = 1 on the dev split."""
    full = default_gate(preset="full_fit")
    assert full.host.target_params.update_iters == (10,) and full.config == recommended_config()
    assert default_gate().host.target_params.update_iters == (5,)
    assert full.host.target_params.fit_resolution == "score_exact"  # merged, not replaced


def test_embedded_models_are_chosen_by_alias_or_file_name(tmp_path):
    """``--model accurate|fast|ttvos`` (or the file names) select the shipped models; a misspelt name says what
    exists."""
    from reusegate.tools.run import model_name
    from reusegate.zoo.catalog import DEFAULT_ALIAS, DEFAULT_MODEL, EMBEDDED_MODELS, embedded_name, model_path

    assert embedded_name("fast") == embedded_name("g_frtm_mnv2") == "g_frtm_mnv2"
    assert embedded_name("fast.pth") is None and embedded_name(Path("accurate")) == EMBEDDED_MODELS["accurate"]

    assert set(EMBEDDED_MODELS) == {"accurate", "fast", "ttvos"} and EMBEDDED_MODELS[DEFAULT_ALIAS] == DEFAULT_MODEL
    assert model_path(None) == model_path(DEFAULT_ALIAS) == model_path(DEFAULT_MODEL) == default_model_path()
    assert model_path("fast") == model_path("g_frtm_mnv2") != model_path("accurate")
    for alias, name in EMBEDDED_MODELS.items():
        assert model_path(alias).is_file() and model_path(alias).with_suffix(".json").is_file(), alias
        assert model_name(alias) == model_name(name) == f"embedded:{name}"
    assert model_path(tmp_path / "mine.pth") == tmp_path / "mine.pth"
    with pytest.raises(FileNotFoundError, match="no embedded model 'acurate'.*accurate \\(g_frtm_mnv2_h360\\)"):
        model_path("acurate")
    with pytest.raises(ValueError, match="no embedded model 'mine.pth'"):
        default_gate(model="mine.pth")
    assert model_name(None) == f"embedded:{DEFAULT_MODEL}"
    assert model_name(tmp_path / "g_frtm_mnv2.pth") == str((tmp_path / "g_frtm_mnv2.pth").resolve())
