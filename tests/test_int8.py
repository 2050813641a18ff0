"""Int8 reuse decoding (``reuse_precision='int8'``): the int8 convolutions and their calibration, the chain and ReLU
fusion of ``int8_copy``, the shipped models' calibration on real frames, where the option is refused, the bench's
interleaved precisions and the calibration tool."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from reusegate.core.config import GateConfig
from reusegate.core.int8 import QPARAMS_VERSION, ConvCalibration, Int8Conv, int8_copy
from reusegate.tools.bench import davis_clips
from reusegate.tools.run import gate_settings, load_model

ROOT = Path(__file__).resolve().parents[1]


def _net() -> nn.Module:
    torch.manual_seed(0)
    block = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1), nn.Identity(), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1),
                          nn.ReLU(), nn.Conv2d(16, 8, 1))
    return nn.Sequential(block, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(8, 8, 1), nn.Sigmoid())).eval()


def _calibrated(net: nn.Module, inputs: list) -> dict:
    def feed() -> None:
        for x in inputs:
            net(x)
    return ConvCalibration(net).run(feed)


def test_int8_copy_matches_float_within_its_rounding():
    """Calibrated on the data it then sees, the int8 copy stays within a few hundredths of the output's scale;
    the pooled 1x1 convolution is left float."""
    net = _net()
    inputs = [torch.randn(2, 8, 24, 40) for _ in range(4)]
    qparams = _calibrated(net, inputs)
    assert qparams["version"] == QPARAMS_VERSION
    assert sorted(qparams["convs"]) == ["0.0", "0.3", "0.5"]  # "1.1" only ever saw a 1x1 map
    assert all(len(v) == 6 for v in qparams["convs"].values())
    fast = int8_copy(net, qparams)
    with torch.no_grad():
        for x in inputs:
            want, got = net[0](x), fast[0](x)
            assert (got - want).abs().max() <= 0.05 * want.abs().max()
            assert torch.allclose(fast(x), net(x), atol=0.05)
    assert isinstance(fast[1][1], nn.Conv2d) and not isinstance(net[0][0], Int8Conv)  # the original is untouched


def test_int8_copy_chains_convolutions_and_fuses_relus():
    """In a Sequential the ReLU after an int8 convolution (past a folded BatchNorm's Identity) moves into the int8
    kernel, and consecutive int8 convolutions hand on quantized tensors: one quantize, one dequantize a chain."""
    net = _net()
    fast = int8_copy(net, _calibrated(net, [torch.randn(1, 8, 16, 16)]))
    first, second, third = fast[0][0], fast[0][3], fast[0][5]
    assert [type(m).__name__ for m in fast[0]] == ["Int8Conv", "Identity", "Identity", "Int8Conv", "Identity",
                                                 "Int8Conv"]
    assert (first.quantized_in, first.quantized_out) == (False, True)
    assert (second.quantized_in, second.quantized_out) == (True, True)
    assert (third.quantized_in, third.quantized_out) == (True, False)
    assert "ReLU" in type(first.conv).__name__ and "ReLU" not in type(third.conv).__name__
    assert not fast[0](torch.randn(1, 8, 16, 16)).is_quantized


def test_int8_weights_pack_with_onednn_and_leave_the_process_engine_alone(monkeypatch):
    """The weights pack with oneDNN whatever engine the process set (PyTorch's x86 default picks fbgemm on CPUs
    without AVX512-VNNI, 1.3x slower there on the decoder's shapes), the process's engine is restored, and an
    engine this torch lacks falls back to the process's."""
    import reusegate.core.int8 as int8
    from torch.ao.nn.quantized import Conv2d as QuantizedConv2d

    engines = torch.backends.quantized.supported_engines
    if "onednn" not in engines or "fbgemm" not in engines:
        pytest.skip(f"this torch's quantized engines are {engines}; the choice is between oneDNN and fbgemm (x86)")
    net = _net()
    x = torch.randn(1, 8, 16, 16)
    qparams = _calibrated(net, [x])
    packed_with = []
    pack = QuantizedConv2d.set_weight_bias
    monkeypatch.setattr(QuantizedConv2d, "set_weight_bias",
                        lambda self, w, b: (packed_with.append(torch.backends.quantized.engine), pack(self, w, b))[1])
    before = torch.backends.quantized.engine
    try:
        torch.backends.quantized.engine = "fbgemm"
        fast = int8_copy(net, qparams)
        assert set(packed_with) == {"onednn"} and torch.backends.quantized.engine == "fbgemm"
        with torch.no_grad():  # runs under the process's other engine
            assert (fast(x) - net(x)).abs().max() <= 0.05 * net(x).abs().max()
        packed_with.clear()
        monkeypatch.setattr(int8, "PACK_ENGINE", "no-such-engine")
        int8_copy(net, qparams)
        assert set(packed_with) == {"fbgemm"}
    finally:
        torch.backends.quantized.engine = before


def test_int8_copy_refuses_a_foreign_calibration():
    net = _net()
    qparams = _calibrated(net, [torch.randn(1, 8, 16, 16)])
    with pytest.raises(ValueError, match="format version 7"):
        int8_copy(net, {**qparams, "version": 7})
    with pytest.raises(ValueError, match=r"lacks \(0\.9\).*another model"):
        int8_copy(net, {**qparams, "convs": {**qparams["convs"], "0.9": qparams["convs"]["0.0"]}})
    with pytest.raises(ValueError, match="saw no data"):
        ConvCalibration(net).run(lambda: None)


def test_reuse_precision_is_checked_and_refused_where_unavailable(tiny_model):
    with pytest.raises(ValueError, match=r"reuse_precision must be one of \('float32', 'int8'\)"):
        GateConfig(reuse_precision="fp16")
    gate = load_model(tiny_model)  # the reference host has no int8 decoder
    with pytest.raises(ValueError, match="ReferenceAdapter offers float32 here.*use reuse_precision='float32'"):
        gate.session(GateConfig(tau=0.5, reuse_precision="int8"))
    fast = load_model("fast")
    assert fast.adapter.reuse_precisions() == ("float32", "int8")
    assert fast.adapter.bind_graphs(object()).reuse_precisions() == ("float32",)  # a graph backend runs float
    fast.adapter.int8_qparams = None  # a model exported without a calibration
    with pytest.raises(ValueError, match="not available"):
        fast.session(GateConfig(tau=0.5, reuse_precision="int8"))


@pytest.mark.parametrize("model", ["fast", "accurate"])
def test_shipped_int8_reuse_follows_float32_on_real_frames(davis_root, model):
    """Every frame reused (tau = 0): the int8 decode labels nearly every pixel as the float32 one, and scores the
    same J; at tau = 1 nothing is reused and int8 is the host, bit for bit. The setting reaches the summary."""
    clip = davis_clips(davis_root, ["bear"], 10)[0]
    gate = load_model(model)
    runs = {}
    for precision in ("float32", "int8"):
        for tau in (0.0, 1.0):
            session = gate.session(GateConfig(tau=tau, variant="decode", reuse_path="hold",
                                              reuse_precision=precision))
            session.step(clip.frames[0], clip.gt[0].astype(np.int64))
            runs[precision, tau] = [session.step(f) for f in clip.frames[1:]]
    for f32, i8, gt in zip(runs["float32", 0.0], runs["int8", 0.0], clip.gt[1:]):
        assert all(f32.reused.values()) and all(i8.reused.values())
        assert (f32.labels == i8.labels).float().mean() >= 0.995
        truth = torch.from_numpy(gt == 1)
        iou = [float(((r.labels == 1) & truth).sum() / ((r.labels == 1) | truth).sum()) for r in (f32, i8)]
        assert abs(iou[0] - iou[1]) <= 0.01
    assert not any(torch.equal(a.probs, b.probs) for a, b in zip(runs["float32", 0.0], runs["int8", 0.0]))  # int8 ran
    for f32, i8 in zip(runs["float32", 1.0], runs["int8", 1.0]):
        assert torch.equal(f32.labels, i8.labels) and torch.equal(f32.probs, i8.probs)
    settings = gate_settings(model, load_model(model, reuse_precision="int8"))
    assert settings["reuse_precision"] == "int8" and "reuse_precision" not in gate_settings(model, gate)


def test_bench_interleaves_precisions(capsys):
    from reusegate.cli import main

    assert main(["bench", "--model", "fast", "--taus", "1", "0.5", "--frames", "5", "--no-flops", "--threads", "1",
                 "--precisions", "float32", "int8"]) == 0
    out = capsys.readouterr().out
    for row in ("tau=0.5 ", "tau=0.5 int8", "tau=0 int8"):
        assert row in out
    assert "; int8 reuse " in out


def test_demo_records_the_reuse_precision(tmp_path):
    from reusegate import default_gate
    from reusegate.tools.demo import run_demo

    run_demo(default_gate(model="fast", reuse_precision="int8"), tmp_path, rounds=1)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["reuse_precision"] == "int8" and summary["reuse_rate"] > 0


def test_calibration_tool_writes_the_json_the_model_then_loads(davis_root, tmp_path):
    """The tool stores a calibration beside a model's weights (atomically, the weights untouched), and the model
    then offers int8; the stored calibration names the never-skipped decoder's convolutions."""
    src = ROOT / "reusegate" / "zoo" / "weights"
    for suffix in (".pth", ".json"):
        shutil.copy(src / f"g_frtm_mnv2{suffix}", tmp_path / f"m{suffix}")
    meta = json.loads((tmp_path / "m.json").read_text())
    del meta["adapter"]["int8_qparams"]
    (tmp_path / "m.json").write_text(json.dumps(meta))
    weights = (tmp_path / "m.pth").read_bytes()
    (tmp_path / "seqs.txt").write_text("bear\n")
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "calibrate_int8.py"), str(tmp_path / "m.pth"),
                           "--davis", str(davis_root), "--sequences", str(tmp_path / "seqs.txt"), "--frames", "4",
                           "--threads", "1"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    stored = json.loads((tmp_path / "m.json").read_text())["adapter"]["int8_qparams"]
    assert stored["version"] == QPARAMS_VERSION and stored["calibrated_on"]["sequences"] == ["bear"]
    assert len(stored["convs"]) == 25 and all(n.startswith(("stages.s8.", "stages.s4.", "head."))
                                              for n in stored["convs"])
    assert (tmp_path / "m.pth").read_bytes() == weights
    assert load_model(tmp_path / "m.pth").adapter.reuse_precisions() == ("float32", "int8")
