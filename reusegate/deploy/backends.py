"""Backends: what runs the host's convolutions. ``torch`` (eager), ``onnxruntime`` or ``openvino`` (the exported
graphs, :mod:`reusegate.deploy.graphs`), chosen by one switch: :func:`use_backend`, ``default_gate(backend=...)``
and ``--backend`` of ``run``, ``bench``, ``test`` and ``demo``.

A backend is a drop-in for the adapter's tap calls: the adapter's ``bind_graphs`` gives an adapter whose tap calls
run the graphs, and sessions, gate layers, online learning and merge are the same torch code whatever the backend.

Both runtimes use ``threads`` intra-op threads (default: torch's, which ``--threads`` sets), one inter-op thread,
and no spin-waiting (ONNX Runtime's workers would otherwise spin after each graph and starve the torch code that
runs between graphs). OpenVINO compiles a graph once per input shape, i.e. once per working size, in ``f32``
(no bf16 down-conversion), and keeps it; ONNX Runtime plans a session once per graph and serves every size.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from reusegate.core.config import BACKENDS
from reusegate.core.gate import ReuseGate
from reusegate.deploy.graphs import example_input, host_stages, read_graphs, to_onnx

__all__ = ["BACKENDS", "check_backend", "use_backend", "OnnxRuntimeGraphs", "OpenVINOGraphs", "require_runtime"]


def check_backend(backend: str) -> None:
    """Refuse a backend name :data:`BACKENDS` does not hold (callers check before any weight loads)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")


def require_runtime(backend: str) -> Any:
    """The runtime's module, or an ``ImportError`` of one line naming the extra that installs it."""
    try:
        return importlib.import_module(backend)
    except ImportError:
        raise ImportError(f"the {backend} backend needs the {backend} package, which is not installed: "
                          f"pip install 'reusegate[{backend}]'") from None


def _numpy(x: Tensor) -> np.ndarray:
    """A contiguous float32 array of ``x`` (a view where it already is one; channels-last maps are copied)."""
    return x.detach().float().contiguous().numpy()


class OnnxRuntimeGraphs:
    """ONNX Runtime sessions (CPU), one a graph, made once; dynamic shapes serve every working size."""

    def __init__(self, graphs: Dict[str, bytes], threads: int) -> None:
        ort = require_runtime("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.sessions = {name: ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
                         for name, data in graphs.items()}
        self.inputs = {name: [i.name for i in s.get_inputs()] for name, s in self.sessions.items()}

    def run(self, name: str, *inputs: Tensor) -> Tuple[Tensor, ...]:
        feed = {n: _numpy(x) for n, x in zip(self.inputs[name], inputs)}
        return tuple(torch.from_numpy(y) for y in self.sessions[name].run(None, feed))


class OpenVINOGraphs:
    """OpenVINO CPU models, each compiled once per input shape (a working size) in ``f32`` and cached."""

    def __init__(self, graphs: Dict[str, bytes], threads: int) -> None:
        ov = require_runtime("openvino")
        self.core = ov.Core()
        self.config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                       "INFERENCE_PRECISION_HINT": "f32", "ENABLE_CPU_PINNING": False}
        self.models = {name: self.core.read_model(data) for name, data in graphs.items()}
        self.inputs = {name: [p.get_any_name() for p in m.inputs] for name, m in self.models.items()}
        self.compiled: Dict[Tuple[str, Tuple[Tuple[int, ...], ...]], Any] = {}

    def _request(self, name: str, shapes: Tuple[Tuple[int, ...], ...]) -> Any:
        key = (name, shapes)
        if key not in self.compiled:
            model = self.models[name].clone()
            model.reshape(dict(zip(self.inputs[name], [list(s) for s in shapes])))
            self.compiled[key] = self.core.compile_model(model, "CPU", self.config).create_infer_request()
        return self.compiled[key]

    def run(self, name: str, *inputs: Tensor) -> Tuple[Tensor, ...]:
        arrays = [_numpy(x) for x in inputs]
        request = self._request(name, tuple(a.shape for a in arrays))
        request.infer(arrays, share_inputs=True)
        return tuple(torch.from_numpy(request.get_output_tensor(i).data.copy())
                     for i in range(len(request.model_outputs)))


RUNNERS = {"onnxruntime": OnnxRuntimeGraphs, "openvino": OpenVINOGraphs}
"""The graph runner of each non-torch backend."""


def use_backend(gate: ReuseGate, backend: str, pth: Optional[Union[str, Path]] = None,
                graphs: Optional[Union[str, Path]] = None, threads: Optional[int] = None) -> ReuseGate:
    """``gate`` with its adapter's tap calls run by ``backend`` (in place; returned). ``graphs``: an export folder
    of the model at ``pth`` (``reusegate export``) to read instead of exporting the graphs in memory (about a second
    at load). ``torch`` returns ``gate`` as it is."""
    check_backend(backend)
    if backend == "torch":
        if graphs is not None:
            raise ValueError("a graph folder runs on the onnxruntime or openvino backend, not on torch")
        return gate
    require_runtime(backend)
    if any(p.device.type != "cpu" for p in gate.parameters()):
        raise ValueError(f"the {backend} backend runs on the CPU; load the model on the CPU (device='cpu', "
                         f"--device cpu)")
    if getattr(gate.adapter, "graphs", None) is not None:
        raise ValueError("this gate already runs on a graph backend; load the model again for another one")
    stages = host_stages(gate, example_input(gate))
    if graphs is not None:
        if pth is None:
            raise ValueError("reading a graph folder needs the model's .pth, to check the graphs came from it")
        data = read_graphs(Path(graphs), Path(pth), tuple(stages))
    else:
        data = {name: to_onnx(stage) for name, stage in stages.items()}
    runner = RUNNERS[backend](data, threads or torch.get_num_threads())
    for name, stage in stages.items():  # inputs are passed by position: a graph must take the stage's, in order
        if runner.inputs[name] != list(stage.inputs):
            raise ValueError(f"the {name} graph takes inputs {runner.inputs[name]}, the adapter passes "
                             f"{list(stage.inputs)}; export the graphs again with this reusegate")
    gate.adapter = gate.adapter.bind_graphs(runner)
    return gate
