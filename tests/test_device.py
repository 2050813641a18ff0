"""``device=`` / ``--device``: one function resolves a name, with one clear line when the device is not there, and a
session makes its frames, masks and caches on its model's device.

The CI machine has no GPU, so every device-dependent line is driven on the CPU: torch's device queries are replaced
where a test needs a GPU to exist (or not), the waits of the timers are recorded instead of made, a model on the
``meta`` device shows where a session puts what it creates, and the end-to-end placement test runs on every device
this machine has (the CPU alone on CI, every GPU where there is one), checking each tensor a session holds.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, List

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import reusegate.core.session as session_module
import reusegate.zoo.catalog as catalog
from reusegate.adapters.frtm.model import FRTM
from reusegate.adapters.frtm.target_model import TargetModelParams
from reusegate.adapters.reference import ReferenceHost
from reusegate.cli import main
from reusegate.core.config import GateConfig
from reusegate.core.device import available_devices, module_device, resolve_device, synchronize, wide_float
from reusegate.core.gate import ReuseGate
from reusegate.core.session import HostRunner, as_image

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------- fake machines
def _machine(monkeypatch, gpus: int = 0, cuda_build: bool = True, current: int = 0, mps: str = "absent") -> None:
    """Make torch report ``gpus`` CUDA GPUs (``current`` the current one) and an MPS device that is ``'absent'``
    (torch built without it), ``'unusable'`` (built, not available) or ``'present'``."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpus > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: current)
    monkeypatch.setattr(torch.version, "cuda", "12.4" if cuda_build else None)
    monkeypatch.setattr(torch.backends.mps, "is_built", lambda: mps != "absent")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps == "present")


def _error(name: str) -> str:
    with pytest.raises(ValueError) as info:
        resolve_device(name)
    message = str(info.value)
    assert "\n" not in message and repr(name) in message, message
    return message


def test_cpu_and_none_resolve_to_the_cpu():
    assert resolve_device(None) == resolve_device("cpu") == resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_cuda_on_a_cpu_only_torch_says_so_and_what_there_is(monkeypatch):
    _machine(monkeypatch, cuda_build=False)
    for name in ("cuda", "cuda:7"):
        assert _error(name) == (f"device {name!r} is not available: this torch is a CPU-only build (install a CUDA "
                                f"build of torch); available here: cpu")


def test_cuda_without_a_visible_gpu_points_at_the_driver(monkeypatch):
    _machine(monkeypatch, cuda_build=True)
    assert "no CUDA GPU is visible (check the driver and CUDA_VISIBLE_DEVICES)" in _error("cuda")


def test_a_gpu_index_past_the_last_gpu_names_the_count_and_the_gpus(monkeypatch):
    _machine(monkeypatch, gpus=1)
    assert _error("cuda:7") == ("device 'cuda:7' is not available: this machine has 1 CUDA GPU(s); available here: "
                                "cpu, cuda, cuda:0")


def test_cuda_means_the_current_gpu_and_cuda_n_that_one(monkeypatch):
    _machine(monkeypatch, gpus=2, current=1)
    assert resolve_device("cuda") == torch.device("cuda", 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)
    assert available_devices() == ["cpu", "cuda", "cuda:0", "cuda:1"]


def test_mps_missing_says_whether_torch_or_the_machine_lacks_it(monkeypatch):
    _machine(monkeypatch, mps="absent")
    assert _error("mps") == "device 'mps' is not available: this torch was built without MPS; available here: cpu"
    _machine(monkeypatch, mps="unusable")
    assert "MPS needs an Apple-silicon Mac with macOS 12.3 or later; available here: cpu" in _error("mps")


def test_mps_is_its_one_device(monkeypatch):
    _machine(monkeypatch, mps="present")
    assert resolve_device("mps") == resolve_device("mps:0") == torch.device("mps", 0)
    assert available_devices() == ["cpu", "mps"]
    assert "there is one MPS device, mps:0; available here: cpu, mps" in _error("mps:1")


def test_an_unknown_or_unsupported_device_lists_the_supported_ones(monkeypatch):
    _machine(monkeypatch)
    assert _error("tpu") == ("unknown device 'tpu'; choose one of cpu, cuda, mps (cuda:N for one GPU of several); "
                             "available here: cpu")
    assert _error("meta") == "device 'meta' is not supported: reusegate runs on cpu, cuda, mps; available here: cpu"


def test_synchronize_waits_on_accelerators_only(monkeypatch):
    waits: List[Any] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: waits.append(("cuda", device)))
    monkeypatch.setattr(torch.mps, "synchronize", lambda: waits.append(("mps", None)))
    synchronize(torch.device("cpu"))
    assert waits == []
    synchronize(torch.device("cuda", 1))
    synchronize(torch.device("mps", 0))
    assert waits == [("cuda", torch.device("cuda", 1)), ("mps", None)]


def test_wide_sums_are_float64_except_on_apple_gpus():
    """FRTM's conjugate-gradient sums run in float64; MPS has none, so it keeps float32 rather than fail."""
    assert [wide_float(torch.device(d)) for d in ("cpu", "cuda", "mps")] == [torch.float64, torch.float64,
                                                                             torch.float32]


def test_module_device_reads_the_weights_and_defaults_to_the_cpu():
    assert module_device(nn.Linear(2, 2, device="meta")) == torch.device("meta")
    buffers_only = nn.Module()
    buffers_only.register_buffer("table", torch.zeros(3, device="meta"))
    assert module_device(buffers_only) == torch.device("meta")
    assert module_device(nn.ReLU()) == torch.device("cpu")


# ---------------------------------------------------------------------------------------------- where data goes
def _reference_gate(**config: Any) -> ReuseGate:
    torch.manual_seed(0)
    return ReuseGate(ReferenceHost(width=8, refined_channels=16), "reference", GateConfig(**config))


def test_a_session_takes_the_device_of_its_model():
    """Sessions and the bare-host runner read their device from the model, and make their computed / reused flags
    there (a model on ``meta``: nothing runs, every placement shows)."""
    gate = _reference_gate().to("meta")
    for session in (gate.session(), HostRunner(gate.adapter)):
        assert session.device == torch.device("meta")
        assert session._computed.device == session._reused.device == torch.device("meta")
    on_cpu = _reference_gate().session()
    assert on_cpu._computed.tolist() == [True] and on_cpu._reused.tolist() == [False]


def test_frames_and_label_maps_move_to_the_given_device():
    frame = torch.randint(0, 256, (3, 8, 12), dtype=torch.uint8)
    for given in (frame, frame.float() / 255, frame.permute(1, 2, 0).numpy()):
        image = as_image(given, torch.device("meta"))
        assert image.device == torch.device("meta") and image.dtype == torch.float32
    labels = session_module._as_labels(np.ones((8, 12), np.uint8), (8, 12), "mask", torch.device("meta"))
    assert labels.device == torch.device("meta") and labels.dtype == torch.int64


def test_a_session_hands_its_device_to_every_conversion(monkeypatch):
    """The frame, the new objects' masks and the oracle's ground truth all go to the session's device."""
    seen: List[tuple[str, torch.device]] = []
    real_image, real_labels = session_module.as_image, session_module._as_labels

    def spy_image(frame, device=None):
        seen.append(("frame", device))
        return real_image(frame, device)

    def spy_labels(masks, size, what, device):
        seen.append((what, device))
        return real_labels(masks, size, what, device)

    monkeypatch.setattr(session_module, "as_image", spy_image)
    monkeypatch.setattr(session_module, "_as_labels", spy_labels)
    frame, labels = torch.zeros(3, 32, 48, dtype=torch.uint8), torch.zeros(32, 48, dtype=torch.long)
    labels[8:20, 10:30] = 1
    session = _reference_gate(tau=0.5, variant="oracle").session()
    marker = session.device = torch.device("cpu", 0)  # equal to the CPU, yet not the default object
    session.step(frame, labels, gt=labels)
    session.step(frame, gt=labels)
    assert [w for w, _ in seen] == ["frame", "new_object_masks", "gt", "frame", "gt"]
    assert all(device is marker for _, device in seen)


def _tensors(value: Any, seen: set) -> Iterator[torch.Tensor]:
    """Every tensor reachable from ``value`` through attributes (a target model's memory, its parameters), lists,
    tuples and dicts."""
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v, seen)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v, seen)
    elif hasattr(value, "__dict__"):
        for v in vars(value).values():
            yield from _tensors(v, seen)


def _accelerators() -> List[str]:
    return ["cpu"] + [d for d in ("cuda", "mps") if d in available_devices()]


@pytest.mark.parametrize("device", _accelerators())
@pytest.mark.parametrize("variant", ["decode", "copy", "oracle"])
def test_every_cache_and_output_is_on_the_models_device(device, variant):
    """G-FRTM (target models with their memories, two objects) run end to end where its weights are: every tensor
    its session holds afterwards -- caches, target-model state, flags -- and every output is on that device."""
    torch.manual_seed(0)
    cheap = TargetModelParams.inference_fast(num_aug=2, init_iters=(2, 2), update_iters=(2,), train_skipping=2,
                                             fit_resolution="score", memory_size=8)
    gate = ReuseGate(FRTM("resnet18", target_params=cheap).eval(), "frtm", GateConfig(tau=0.3, variant=variant))
    gate = gate.to(resolve_device(device))
    g = torch.Generator().manual_seed(3)
    base = torch.rand(3, 64, 96, generator=g)
    labels = torch.zeros(64, 96, dtype=torch.long)
    labels[16:40, 20:50], labels[4:16, 60:80] = 1, 2
    session = gate.session()
    results = [session.step((base.roll(i, dims=2) * 255).to(torch.uint8), labels if i == 0 else None, gt=labels)
               for i in range(4)]
    want = module_device(gate)
    held = list(_tensors(session.objects, set())) + [session._computed, session._reused]
    held += [t for r in results for t in (r.labels, r.probs)]
    memories = [t for obj in session.objects.values() for tm in obj.state.models for t in _tensors(tm, set())]
    assert len(memories) > 10 and len(held) > len(memories) + 10
    assert all(t.device == want for t in held), {t.device for t in held}


def test_load_gate_puts_the_model_on_the_resolved_device(tiny_model, monkeypatch):
    monkeypatch.setattr(catalog, "resolve_device", lambda name: torch.device("meta"))
    assert module_device(catalog.load_gate(tiny_model, device="anything")) == torch.device("meta")


def test_default_gate_refuses_a_missing_device_before_loading(monkeypatch):
    _machine(monkeypatch)

    def no_load(path):
        raise AssertionError(f"{path} was read for a device that is not there")

    monkeypatch.setattr(catalog, "load_weights", no_load)
    with pytest.raises(ValueError, match=r"^device 'cuda' is not available: .*; available here: cpu$"):
        catalog.default_gate(model="fast", device="cuda")


# ---------------------------------------------------------------------------------------------- the commands
def _input_video(tmp_path: Path) -> list[str]:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        Image.fromarray(np.full((24, 32, 3), 40 * i, np.uint8)).save(frames / f"{i:05d}.jpg")
    mask = np.zeros((24, 32), np.uint8)
    mask[4:12, 6:20] = 1
    Image.fromarray(mask).save(tmp_path / "mask.png")
    return ["--input", str(frames), "--first-mask", str(tmp_path / "mask.png")]


@pytest.mark.parametrize("command", ["run", "bench", "demo", "test"])
@pytest.mark.parametrize("device", ["cuda", "cuda:7", "mps", "tpu"])
def test_every_command_refuses_a_missing_device_in_one_line_and_writes_nothing(command, device, tmp_path,
                                                                               tiny_model, monkeypatch, capsys):
    _machine(monkeypatch)
    out = tmp_path / "out"
    args = {"run": ["run", *_input_video(tmp_path), "--model", str(tiny_model)],
            "bench": ["bench", "--model", str(tiny_model), "--frames", "3", "--no-flops"],
            "demo": ["demo"],
            "test": ["test", str(REPO / "configs" / "examples" / "test_davis2016_val.py"), "--model",
                     str(tiny_model)]}[command]
    assert main([*args, "--out" if command != "bench" else "--json", str(out), "--device", device]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and repr(device) in err, err
    assert err.startswith(f"reusegate {command}: error: ") and err.endswith("available here: cpu"), err
    assert not out.exists()


def test_run_and_bench_take_the_device_to_the_model(tmp_path, tiny_model, monkeypatch):
    """``--device`` reaches ``load_model`` (``run``, ``bench``) and ``default_gate`` (``demo``); the default is the
    CPU."""
    import reusegate.tools.run
    import reusegate.zoo.catalog

    seen = []

    def stop(*args, **kwargs):
        seen.append(kwargs["device"])
        raise ValueError("stop here")

    monkeypatch.setattr(reusegate.tools.run, "load_model", stop)
    monkeypatch.setattr(reusegate.zoo.catalog, "default_gate", stop)
    video = _input_video(tmp_path)
    for extra in ([], ["--device", "cuda:1"]):
        assert main(["run", *video, "--model", str(tiny_model), "--out", str(tmp_path / "out"), *extra]) == 2
        assert main(["bench", "--model", str(tiny_model), "--frames", "3", *extra]) == 2
        assert main(["demo", "--out", str(tmp_path / "demo"), *extra]) == 2
    assert seen == ["cpu"] * 3 + ["cuda:1"] * 3


def test_test_keeps_mmengines_device_unless_told_and_refuses_another_kind_under_torchrun(monkeypatch):
    import mmengine.device

    from reusegate.commands.test import runner_device

    monkeypatch.setattr(mmengine.device, "get_device", lambda: "cuda")
    assert runner_device("none", None) is None and runner_device("pytorch", None) is None
    assert runner_device("none", "cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"^under torchrun mmengine runs every process on cuda; --device cpu cannot "
                                         r"change that: drop --device, or run one process$"):
        runner_device("pytorch", "cpu")


def test_test_puts_the_model_back_where_device_says_after_mmengine_placed_it(tiny_model, tmp_path, monkeypatch):
    """mmengine's Runner moves the model to its own choice (a GPU where there is one); one process with ``--device``
    moves it back there, so the weights and the session's data meet."""
    from mmengine.model import BaseModel

    from reusegate.commands.test import build_test_runner, load_test_config

    moves = []
    real_to = BaseModel.to

    def spy_to(self, *args, **kwargs):
        moves.append(args[0] if args else kwargs.get("device"))
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(BaseModel, "to", spy_to)
    cfg = load_test_config(str(REPO / "configs" / "examples" / "test_davis2016_val.py"), tmp_path / "out", None, {},
                           "none", progress=False)
    build_test_runner(cfg, tiny_model, None, device=None)
    assert len(moves) == 1  # mmengine's own move only
    runner, gate = build_test_runner(cfg, tiny_model, None, device="cpu")
    assert len(moves) == 3 and moves[-1] == torch.device("cpu")
    assert module_device(runner.model) == module_device(gate) == torch.device("cpu")


def test_every_timer_waits_for_the_device_after_each_timed_step(tmp_path, monkeypatch):
    """``run``, ``bench``, ``demo``, ``bench --profile`` and ``test`` read the clock only after the session's device
    has finished the step (on a GPU the step only queues kernels); here each wait is recorded."""
    from mmengine.structures import BaseDataElement

    import reusegate.integrations.mmengine.model as vos_model
    import reusegate.tools.bench as bench_tool
    import reusegate.tools.demo as demo_tool
    import reusegate.tools.profiling as profiling
    import reusegate.tools.run as run_tool
    from reusegate.data.readers import open_sequence
    from reusegate.data.synthetic import SyntheticClip
    from reusegate.data.writer import ResultWriter

    waits: List[torch.device] = []
    for module in (bench_tool, demo_tool, profiling, run_tool, vos_model):
        monkeypatch.setattr(module, "synchronize", waits.append)
    gate = _reference_gate(tau=0.5)
    frames = [torch.full((3, 24, 32), 40 * i, dtype=torch.uint8) for i in range(4)]
    gt = np.zeros((24, 32), np.int64)
    gt[4:12, 6:20] = 1

    video = _input_video(tmp_path)
    run_tool.segment_sequence(gate, open_sequence(video[1], video[3]), ResultWriter(tmp_path / "masks"))
    assert len(waits) == 3  # every step of the 3-frame video
    bench_tool.bench(gate, [bench_tool.BenchClip("c", frames, [gt] * 4)], taus=(1.0,), flops=False, progress=False)
    assert len(waits) == 3 + 3 * 3  # host, tau = 1 and tau = 0 on each frame after the first
    clip = SyntheticClip(np.stack([f.permute(1, 2, 0).numpy() for f in frames]), np.stack([gt] * 4).astype(np.uint8),
                         np.zeros(4))
    demo_tool._run(gate, clip, gate.config)
    assert len(waits) == 3 + 9 + 1  # once, after the timed frames
    net = vos_model.ReuseGateVOS(host=gate.host, adapter=gate.adapter, gate=None)
    net.net = gate
    net._run_video(torch.stack(frames), BaseDataElement(gt_labels=torch.from_numpy(np.stack([gt] * 4))))
    assert len(waits) == 13 + 4
    profiling.profile_stages(gate, [(frames, gt)])
    assert len(waits) > 17 + 2 * 3 * 2  # every stage boundary, and each timed step, of both kinds of frame
    assert set(waits) == {torch.device("cpu")}
