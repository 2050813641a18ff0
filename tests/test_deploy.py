"""Export of the shipped FRTM models to ONNX and the onnxruntime / openvino backends (docs/deploy.md).

Per stage: every graph of both shipped models passes the ONNX checker and matches torch on a real frame at its
real working size (the graphs are traced at another size, so a size kept as a constant fails here). Whole video:
label maps agree with torch on >= 99.9 % of pixels and gate decisions agree except at near-ties of tau.
"""
from __future__ import annotations

import json
from pathlib import Path
import numpy as np
import pytest
import torch

from numeric import RTOL_CONV, assert_scaled_close
from reusegate.core.session import frame_tensor
from reusegate.data import DavisReader
from reusegate.deploy import GRAPH_FORMAT, OPSET, model_stages, use_backend, write_graphs
from reusegate.deploy.backends import RUNNERS, require_runtime
from reusegate.deploy.graphs import EXAMPLE_SIZE, MANIFEST, to_onnx
from reusegate.tools.run import load_model
from reusegate.zoo.catalog import load_gate, model_path

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

MODELS = ("fast", "accurate")
NEAR_TIE = 1e-3
"""A gate decision may differ from torch's only where ``|p_reuse - tau|`` is below this."""


@pytest.fixture(scope="module")
def bear(davis_root):
    return DavisReader(davis_root).sequence("bear")


@pytest.fixture(scope="module")
def graph_dirs(tmp_path_factory):
    """Each shipped model exported once (fast and accurate)."""
    root = tmp_path_factory.mktemp("graphs")
    for model in MODELS:
        write_graphs(load_gate(model), model_path(model), root / model, model)
    return root


@pytest.mark.parametrize("model", MODELS)
def test_export_folder(graph_dirs, model):
    folder = graph_dirs / model
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["format"] == GRAPH_FORMAT and manifest["opset"] == OPSET
    assert (folder / "model.json").read_text() == model_path(model).with_suffix(".json").read_text()
    expected = {"shallow", "deep", "score", "refine_deep", "refine_shallow", "template_generator", "template_match",
                "gate", "translate"}
    assert set(manifest["graphs"]) == expected
    for name, entry in manifest["graphs"].items():
        graph = onnx.load(str(folder / entry["file"]))
        onnx.checker.check_model(graph, full_check=True)
        assert graph.opset_import[0].version == OPSET
        assert [i.name for i in graph.graph.input] == entry["inputs"]
        # only the spatial axes of maps are dynamic, each with its own name; batch, channels, weights, template fixed
        dims = [(k, d) for i in graph.graph.input for k, d in enumerate(i.type.tensor_type.shape.dim)]
        params = [d.dim_param for _, d in dims if d.dim_param]
        assert len(params) == len(set(params)), f"{name}: an axis name is shared between inputs"
        assert all(k in (2, 3) for k, d in dims if d.dim_param), f"{name}: a non-spatial axis is dynamic"
        assert all(d.dim_value > 0 for k, d in dims if k < 2), name
    assert manifest["graphs"]["score"]["inputs"] == ["s16", "project", "filter"]  # the learnt filter is an input


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("model", MODELS)
def test_stage_parity_on_real_frames(bear, model, backend):
    gate = load_gate(model)
    exported = model_stages(gate)  # traced at EXAMPLE_SIZE
    runner = RUNNERS[backend]({name: to_onnx(stage) for name, stage in exported.items()}, threads=1)
    for index in (0, 40):
        frame = frame_tensor(bear.load_frame(index))[None].float() / 255
        real = model_stages(gate, frame)
        size = tuple(next(iter(real["shallow"].inputs.values())).shape[-2:])
        assert size != tuple(next(iter(exported["shallow"].inputs.values())).shape[-2:])
        for name, stage in real.items():
            got = runner.run(name, *stage.inputs.values())
            for out, g, want in zip(stage.outputs, got, stage.reference()):
                assert_scaled_close(f"{model} {backend} frame {index} {name}.{out}", g, want, rtol=5 * RTOL_CONV)


def _video(gate, frames, first):
    session = gate.session()
    return [session.step(f, first if i == 0 else None) for i, f in enumerate(frames)]


def _compare(name, ref, got, tau):
    agree = np.mean([float((a.labels == b.labels).float().mean()) for a, b in zip(ref, got)])
    flips = [(r.index, o, r.p_reuse[o]) for r, g in zip(ref, got) for o in r.reused if r.reused[o] != g.reused[o]]
    print(f"[deploy] {name}: pixels agree {100 * agree:.4f} %, decisions differ on {len(flips)}: {flips}")
    assert agree >= 0.999, f"{name}: only {100 * agree:.3f} % of pixels agree with torch"
    for index, oid, p in flips:
        assert abs(p - tau) < NEAR_TIE, f"{name}: frame {index} object {oid} flipped at p = {p:.4f}, tau = {tau}"
    assert sum(sum(r.reused.values()) for r in ref) > 0, f"{name}: the gate never reused; the test shows nothing"


@pytest.mark.parametrize("model", MODELS)
def test_whole_video_bear(bear, model):
    frames = [bear.load_frame(i) for i in range(len(bear))]
    first = bear.load_mask(0)
    ref = _video(load_model(model), frames, first)
    tau = load_model(model).config.tau
    for backend in ("onnxruntime", "openvino"):
        got = _video(use_backend(load_model(model), backend, threads=1), frames, first)
        _compare(f"{model} bear {backend}", ref, got, tau)


@pytest.mark.parametrize("model", MODELS)
def test_whole_video_schoolgirls(schoolgirls_root, model):
    seq = DavisReader(schoolgirls_root, resolution="240p").sequence("schoolgirls")
    frames = [seq.load_frame(i) for i in range(len(seq))]
    first = seq.load_mask(0)
    gate = load_model(model)
    ref = _video(gate, frames, first)
    for backend in ("onnxruntime", "openvino"):
        got = _video(use_backend(load_model(model), backend, threads=1), frames, first)
        _compare(f"{model} schoolgirls {backend}", ref, got, gate.config.tau)


def test_graph_folder_runs_and_is_checked(graph_dirs, bear, tmp_path):
    frames = [bear.load_frame(i) for i in range(6)]
    first = bear.load_mask(0)
    ref = _video(load_model("fast"), frames, first)
    got = _video(use_backend(load_model("fast"), "onnxruntime", model_path("fast"), graph_dirs / "fast"), frames,
                 first)
    assert all(torch.equal(a.labels, b.labels) for a, b in zip(ref, got))
    with pytest.raises(ValueError, match="exported from another model"):
        use_backend(load_model("accurate"), "onnxruntime", model_path("accurate"), graph_dirs / "fast")
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in (graph_dirs / "fast").iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    deep = broken / "deep.onnx"
    deep.write_bytes(deep.read_bytes()[: deep.stat().st_size // 2])
    with pytest.raises(ValueError, match="deep.onnx is missing, truncated or altered"):
        use_backend(load_model("fast"), "openvino", model_path("fast"), broken)
    manifest = json.loads((broken / MANIFEST).read_text())
    (broken / MANIFEST).write_text(json.dumps({**manifest, "format": GRAPH_FORMAT + 1}))
    with pytest.raises(ValueError, match=f"this reusegate reads format {GRAPH_FORMAT}"):
        use_backend(load_model("fast"), "onnxruntime", model_path("fast"), broken)
    with pytest.raises(FileNotFoundError, match="not a graph folder"):
        use_backend(load_model("fast"), "onnxruntime", model_path("fast"), tmp_path)


def test_export_refuses_a_foreign_folder_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not a graph folder"):
        write_graphs(load_gate("fast"), model_path("fast"), out, "fast")
    assert [p.name for p in tmp_path.iterdir()] == ["out"] and [p.name for p in out.iterdir()] == ["notes.txt"]


def test_missing_extra_names_it(monkeypatch):
    import importlib

    real = importlib.import_module

    def refuse(name, *args):
        if name == "openvino":
            raise ModuleNotFoundError("No module named 'openvino'")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", refuse)
    with pytest.raises(ImportError, match=r"pip install 'reusegate\[openvino\]'") as info:
        require_runtime("openvino")
    assert "\n" not in str(info.value)


def test_bad_backend_arguments():
    gate = load_model("fast")
    with pytest.raises(ValueError, match="backend must be one of"):
        use_backend(gate, "tensorrt")
    with pytest.raises(ValueError, match="not on torch"):
        use_backend(gate, "torch", graphs="somewhere")
    assert use_backend(gate, "torch") is gate
    use_backend(gate, "onnxruntime")
    with pytest.raises(ValueError, match="already runs on a graph backend"):
        use_backend(gate, "openvino")


def test_example_size_is_not_a_working_size():
    """The parity tests mean something only if the graphs were traced at another size than they run at."""
    for model in MODELS:
        assert EXAMPLE_SIZE[0] != load_gate(model).adapter.input_height


def test_default_gate_takes_a_backend():
    from reusegate.zoo.catalog import default_gate

    gate = default_gate(model="fast", backend="onnxruntime")
    assert gate.adapter.graphs is not None and load_gate("fast").adapter.graphs is None
    with pytest.raises(ValueError, match="backend must be one of"):
        default_gate(model="fast", backend="tflite")
    with pytest.raises(ValueError, match="has no graph export"):
        default_gate(model="ttvos", backend="openvino")


def test_commands(mini_davis, tmp_path, capsys):
    """export, then run and bench on its graphs; bench --backends interleaves; errors are one line."""
    from reusegate.cli import main

    graphs = tmp_path / "graphs"
    assert main(["export", "fast", "--out", str(graphs)]) == 0
    assert "9 graphs (ONNX opset 17, checker passed)" in capsys.readouterr().out
    names = tmp_path / "names.txt"
    names.write_text("bear\n")
    common = ["--davis", str(mini_davis), "--sequences", str(names), "--model", "fast", "--threads", "1"]
    assert main(["run", *common, "--backend", "openvino", "--graphs", str(graphs), "--out", str(tmp_path / "run")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["settings"]["backend"] == "openvino"
    capsys.readouterr()
    assert main(["bench", *common, "--frames", "4", "--backends", "torch", "onnxruntime", "openvino",
                 "--json", str(tmp_path / "b.json")]) == 0
    report = json.loads((tmp_path / "b.json").read_text())
    assert [(r["backend"], r["tau"]) for r in report["runs"]] == [
        (b, t) for t in (1.0, 0.75) for b in ("torch", "onnxruntime", "openvino")]
    assert all(r["pixel_agreement"] > 0.999 for r in report["runs"])
    capsys.readouterr()
    assert main(["run", *[a if a != "fast" else "accurate" for a in common], "--backend", "onnxruntime",
                 "--graphs", str(graphs), "--out", str(tmp_path / "run2")]) == 2
    err = capsys.readouterr().err.strip()
    assert "exported from another model" in err and "\n" not in err
    assert not (tmp_path / "run2").exists() or not any((tmp_path / "run2").rglob("*.png"))


def test_test_command_takes_a_backend(mini_davis, tmp_path):
    """``reusegate test --backend openvino`` scores the same as torch (the runner steps the bound gate)."""
    from reusegate.cli import main

    config = Path(__file__).resolve().parents[1] / "configs" / "examples" / "test_davis2016_val.py"
    options = ["--cfg-options", f"test_dataloader.dataset.data_root={mini_davis}", "test_dataloader.dataset.split=None",
               "test_dataloader.dataset.sequences=[bear]", "--no-progress", "--device", "cpu"]
    scores = {}
    for backend in ("torch", "openvino"):
        out = tmp_path / backend
        assert main(["test", str(config), "--model", "fast", "--out", str(out), "--backend", backend, *options]) == 0
        summary = json.loads((out / "summary.json").read_text())
        assert summary["backend"] == backend
        scores[backend] = summary["metrics"]["vos/J&F_Mean"]
    assert scores["openvino"] == pytest.approx(scores["torch"], abs=1e-3)


def test_export_of_a_host_without_graphs_is_one_line_and_writes_nothing(tmp_path, capsys):
    from reusegate.cli import main

    assert main(["export", "ttvos", "--out", str(tmp_path / "new" / "graphs")]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no graph export" in err and "\n" not in err
    assert not (tmp_path / "new").exists()
