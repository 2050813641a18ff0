"""The stages a session calls, as ONNX graphs: what they are, how they are exported, and the folder that holds them.

A host adapter that can be deployed has ``graph_stages(image)`` (its tap calls as tensor-only modules, examples
at ``image``'s working size; graph tensors are named after the taps, and some stage takes the coarse score as
``score`` and the refined feature as ``refined``) and ``bind_graphs(runner)`` (the same adapter with those calls
answered by a :class:`GraphRunner`); the gate's own graphs come from :func:`gate_stages`. This module never
imports an adapter.

Graphs are exported with torch's TorchScript-based exporter (``dynamo=False``: it needs no ``onnxscript`` and no
network) at opset :data:`OPSET`; batch is 1 (a session segments one object at a time) and the spatial axes are
dynamic, each map with its own names, so one graph serves every working size.

An export folder holds one ``NAME.onnx`` a stage, ``model.json`` (the model's own ``.json``) and
:data:`MANIFEST`, which records the graph format, the opset, each graph's inputs, outputs and SHA-256, and the
fingerprint of the model it came from (its ``.pth`` and ``.json``): a folder from another model, another format
version or with a truncated graph is refused before anything runs.
"""
from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Protocol, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reusegate.core.gate import ReuseGate
from reusegate.core.host import resize
from reusegate.core.layers import GateLayers
from reusegate.core.paths import translate_path

__all__ = ["GraphStage", "GraphRunner", "OPSET", "GRAPH_FORMAT", "MANIFEST", "EXAMPLE_SIZE", "to_onnx",
           "example_input", "host_stages", "gate_stages", "model_stages", "model_fingerprint", "write_graphs",
           "read_graphs"]

OPSET = 17
"""ONNX opset of every exported graph (ONNX Runtime >= 1.14 and OpenVINO >= 2023.0 read it)."""

GRAPH_FORMAT = 1
"""Version of the export folder's layout and graph signatures; a reader refuses any other."""

MANIFEST = "graphs.json"
"""The export folder's description of its graphs and of the model they came from."""

EXAMPLE_SIZE = (224, 320)
"""The host-input size (after the adapter's preprocess) the graphs are traced at: no working size of the shipped
models (heights 240 and 360), so that a graph which kept a traced size as a constant fails the parity tests."""


@dataclass(frozen=True)
class GraphStage:
    """One stage as an exportable module.

    Attributes:
        module: ``forward(*inputs)`` returns one tensor or a tuple, in the order of ``outputs``.
        inputs: example inputs by graph input name, in call order.
        outputs: graph output names.
        axes: dynamic axes by tensor name (``{dim: axis name}``); a tensor not named here is static.
    """

    module: nn.Module
    inputs: Mapping[str, Tensor]
    outputs: Tuple[str, ...]
    axes: Mapping[str, Dict[int, str]]

    def dynamic_axes(self) -> Dict[str, Dict[int, str]]:
        return {n: dict(self.axes[n]) for n in (*self.inputs, *self.outputs) if n in self.axes}

    @torch.no_grad()
    def reference(self, *inputs: Tensor) -> Tuple[Tensor, ...]:
        """The torch module's outputs on ``inputs`` (default: the examples): what a runtime must match."""
        out = self.module(*(inputs or tuple(self.inputs.values())))
        return out if isinstance(out, tuple) else (out,)


class GraphRunner(Protocol):
    """What a bound adapter calls: run graph ``name`` on tensors, in its input order; outputs in its order."""

    inputs: Dict[str, List[str]]
    """Each graph's input names, in order (checked against the stage's when a backend binds)."""

    def run(self, name: str, *inputs: Tensor) -> Tuple[Tensor, ...]: ...


def to_onnx(stage: GraphStage) -> bytes:
    """The serialised ONNX model of ``stage`` (TorchScript exporter, opset :data:`OPSET`, constants folded)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: chosen, see module doc
        # skipped no-op resizes trace as constants; the parity tests at another size than EXAMPLE_SIZE guard them
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(stage.module.eval(), tuple(stage.inputs.values()), buf, input_names=list(stage.inputs),
                          output_names=list(stage.outputs), dynamic_axes=stage.dynamic_axes(),
                          opset_version=OPSET, do_constant_folding=True, dynamo=False)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- the gate's graphs
class _TemplateGenerator(nn.Module):
    """:class:`~reusegate.core.layers.TemplateGenerator` with its ``1 / sqrt(HW)`` scale computed in the graph
    (the layer's ``math.sqrt`` of a shape would be traced as the example's constant)."""

    def __init__(self, layers: GateLayers) -> None:
        super().__init__()
        self.generator = layers.template_generator

    def forward(self, match: Tensor, mask: Tensor) -> Tensor:
        x = torch.cat([match, mask], dim=1)
        key = self.generator.conv_key(x).flatten(2)
        val = self.generator.conv_val(x).flatten(2)
        scale = torch.ones_like(key[:, :1]).sum(-1, keepdim=True).sqrt()  # sqrt(HW), [B, 1, 1]
        return torch.softmax(val @ key.transpose(1, 2) / scale, dim=-1)


class _TemplateMatch(nn.Module):
    """``(match, S(t-n), template)`` -> ``D_t`` and, with the paper's gate, ``p_reuse``."""

    def __init__(self, layers: GateLayers, with_gate: bool) -> None:
        super().__init__()
        self.layers, self.with_gate = layers, with_gate

    def forward(self, match: Tensor, prev_score: Tensor, template: Tensor) -> Union[Tensor, Tuple[Tensor, Tensor]]:
        d = self.layers.template_match(match, prev_score, template)
        return (d, torch.sigmoid(self.layers.gate(d))) if self.with_gate else d


class _ChangeGate(nn.Module):
    """``(match, anchor, region)`` -> ``p_reuse`` (the region, a resize of ``S`` or the mask, stays on the host)."""

    def __init__(self, layers: GateLayers) -> None:
        super().__init__()
        self.gate = layers.change_gate

    def forward(self, match: Tensor, anchor: Tensor, region: Tensor) -> Tensor:
        return torch.sigmoid(self.gate(match, anchor, region))


class _Translate(nn.Module):
    """``(D_t, S(t-n), R(t-n))`` -> ``(delta, S, R)`` of a reused frame on the paper's translate path."""

    def __init__(self, layers: GateLayers) -> None:
        super().__init__()
        self.layers = layers

    def forward(self, matched: Tensor, prev_score: Tensor, prev_refined: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        return translate_path(self.layers, matched, prev_score, prev_refined)


def _spatial(name: str) -> Dict[int, str]:
    return {2: f"{name}_height", 3: f"{name}_width"}


def gate_stages(layers: GateLayers, match: Tensor, score: Tensor, refined: Tensor) -> Dict[str, GraphStage]:
    """The gate's graphs at the examples' size: the template generator (an object's start), the decision (the
    paper's template matcher and gate head, or the change gate) and the translate path (``D_t`` and the
    refine-translator: reused frames of ``reuse_path='translate'``)."""
    generator = torch.Generator().manual_seed(0)  # example caches; the global RNG is left alone
    mask = (torch.rand(match[:, :1].shape, generator=generator) > 0.5).float()
    prev_score = resize(mask, tuple(score.shape[-2:]), "nearest")
    with torch.no_grad():
        template = _TemplateGenerator(layers)(match, mask)
        d = layers.template_match(match, prev_score, template)
    axes = {n: _spatial(n) for n in ("match", "mask", "anchor", "region", "prev_score", "matched", "prev_refined",
                                     "delta", "score", "refined")}
    stages = {"template_generator": GraphStage(_TemplateGenerator(layers), {"match": match, "mask": mask},
                                               ("template",), axes)}
    trio = {"match": match, "prev_score": prev_score, "template": template}
    if layers.gate_input == "template":
        stages["gate"] = GraphStage(_TemplateMatch(layers, True), trio, ("matched", "p_reuse"), axes)
    else:
        stages["template_match"] = GraphStage(_TemplateMatch(layers, False), trio, ("matched",), axes)
        anchor = match.roll(1, dims=-1)  # a shifted frame: some change, some similarity
        region = layers.region(match, prev_score, F.interpolate(mask, scale_factor=8.0))
        stages["gate"] = GraphStage(_ChangeGate(layers), {"match": match, "anchor": anchor, "region": region},
                                    ("p_reuse",), axes)
    stages["translate"] = GraphStage(_Translate(layers), {"matched": d, "prev_score": prev_score,
                                                          "prev_refined": refined}, ("delta", "score", "refined"),
                                     axes)
    return stages


# ---------------------------------------------------------------------------------------------- the model's graphs
def example_input(gate: ReuseGate, frame: Optional[Tensor] = None) -> Tensor:
    """The host's input: ``frame`` (``[1, 3, H, W]`` in [0, 1]) through the adapter's preprocess, or without one an
    image of :data:`EXAMPLE_SIZE` with values in the normalised range."""
    if frame is None:
        return torch.randn(1, 3, *EXAMPLE_SIZE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return gate.adapter.preprocess(frame).contiguous()


def host_stages(gate: ReuseGate, image: Tensor) -> Dict[str, GraphStage]:
    """The adapter's stages at the normalised ``image``; a clear error for an adapter without graph export."""
    hook = getattr(gate.adapter, "graph_stages", None)
    if hook is None or not callable(getattr(gate.adapter, "bind_graphs", None)):
        raise ValueError(f"the {type(gate.adapter).__name__} host adapter has no graph export (graph_stages and "
                         f"bind_graphs); export and the onnxruntime/openvino backends run FRTM hosts")
    return hook(image)


def model_stages(gate: ReuseGate, frame: Optional[Tensor] = None) -> Dict[str, GraphStage]:
    """Every stage a session of ``gate`` calls, host then gate, with examples computed from ``frame`` (``[1, 3, H,
    W]`` in [0, 1]; default: a random host input of :data:`EXAMPLE_SIZE`)."""
    image = example_input(gate, frame)
    stages = host_stages(gate, image)
    examples = {n: t for stage in stages.values() for n, t in stage.inputs.items()}
    missing = [n for n in ("score", "refined") if n not in examples]
    if missing:
        raise ValueError(f"the {type(gate.adapter).__name__} graph stages take no input named {missing}; a host's "
                         f"graphs name the coarse score 'score' and the refined feature 'refined'")
    a = gate.adapter
    with torch.no_grad():
        match = a.match_feature(a.deep(a.shallow(image)))
    return {**stages, **gate_stages(gate.gate_modules, match, examples["score"], examples["refined"])}


def model_fingerprint(pth: Path) -> str:
    """SHA-256 over a model's ``.pth`` and ``.json``: which weights and architecture a graph folder holds."""
    digest = hashlib.sha256()
    for path in (pth, pth.with_suffix(".json")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def write_graphs(gate: ReuseGate, pth: Path, out: Path, model: str) -> Dict[str, Dict[str, object]]:
    """Export every stage of ``gate`` (loaded from ``pth``) to ``out``, checked by the ONNX checker; all or nothing:
    the graphs are written to a sibling temporary folder that replaces ``out`` only once complete.

    Returns the manifest's per-graph entries."""
    import onnx

    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise ValueError(f"{out} exists and is not a graph folder; choose an empty or new folder for --out")
    stages = model_stages(gate)  # an adapter without graph export fails here, before anything is written
    graphs: Dict[str, Dict[str, object]] = {}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, stage in stages.items():
            data = to_onnx(stage)
            onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
            (tmp / f"{name}.onnx").write_bytes(data)
            graphs[name] = {"file": f"{name}.onnx", "inputs": list(stage.inputs), "outputs": list(stage.outputs),
                            "dynamic_axes": stage.dynamic_axes(), "sha256": hashlib.sha256(data).hexdigest()}
        shutil.copyfile(pth.with_suffix(".json"), tmp / "model.json")
        manifest = {"format": GRAPH_FORMAT, "opset": OPSET, "exporter": "torch.onnx (TorchScript, dynamo=False)",
                    "torch": torch.__version__, "model": model, "fingerprint": model_fingerprint(pth),
                    "batch": 1, "graphs": graphs}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            out.rename(old / out.name)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return graphs


def read_graphs(folder: Path, pth: Path, names: Tuple[str, ...]) -> Dict[str, bytes]:
    """The serialised graphs ``names`` from an export folder, after checking that it is one, of this graph format,
    exported from the model at ``pth``, and that each graph file is whole."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{folder} holds no {MANIFEST}: not a graph folder; write one with reusegate export")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{manifest_path} is not valid JSON ({exc}); export the graphs again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != GRAPH_FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else None
        raise ValueError(f"{folder} holds graphs of format {got!r}, this reusegate reads format {GRAPH_FORMAT}; "
                         f"export them again with reusegate export")
    if manifest.get("fingerprint") != model_fingerprint(pth):
        raise ValueError(f"{folder} was exported from another model ({manifest.get('model')!r}) than {pth.name}; "
                         f"export this model's graphs with reusegate export")
    out: Dict[str, bytes] = {}
    for name in names:
        entry = manifest.get("graphs", {}).get(name)
        if entry is None:
            raise ValueError(f"{folder} lacks the graph {name!r}; export the graphs again with reusegate export")
        path = folder / entry["file"]
        data = path.read_bytes() if path.is_file() else b""
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ValueError(f"{path} is missing, truncated or altered (its SHA-256 differs from {MANIFEST}); "
                             f"export the graphs again with reusegate export")
        out[name] = data
    return out
