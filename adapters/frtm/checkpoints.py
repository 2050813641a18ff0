"""Load upstream FRTM and G-FRTM (Reuse_VOS) checkpoints into reusegate's modules by an explicit key map.

* FRTM: ``torch.load(path)['model']`` holds the 140 ``refiner.*`` tensors of its ``SegNetwork``.
* G-FRTM: 189 tensors -- the 140 refiner keys plus ``refiner.Diff_process.*`` (refine-translator), ``convGS.*``
  (gate head), ``Tmatching.Tmatching.*`` / ``Tmatching.Tgenerate.*`` (template matcher / generator) and
  ``Convert_Diff.*`` (delta generator).

Upstream names its refinement stages by FRTM feature key (``layer5`` = stride 32 ... ``layer2`` = stride 4) and
its blocks ``TSE`` / ``RRB1`` / ``CAB`` / ``RRB2`` / ``project``; :class:`~reusegate.adapters.frtm.refiner.Refiner`
keys stages by stride. The gate head of G-FRTM has two logits (index 0 = reuse, softmax); reusegate's has one
(sigmoid = p_reuse). ``softmax([l0, l1])[0] == sigmoid(l0 - l1)``, so the last conv becomes
``w0 - w1, b0 - b1`` -- the same decisions and probabilities up to rounding.

Loading is strict: a missing or unexpected key is an error that lists them. Files are read with
``weights_only=True``.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Mapping, Tuple, Union

from torch import Tensor, nn

from reusegate.zoo.safe_load import load_weights

__all__ = [
    "FRTM_STAGE_KEYS",
    "read_checkpoint",
    "map_refiner_key",
    "map_gate_key",
    "split_gfrtm_state_dict",
    "load_frtm_checkpoint",
    "load_gfrtm_checkpoint",
    "load_gfrtm_into",
    "load_strict",
]

StateDict = Dict[str, Tensor]

FRTM_STAGE_KEYS = {"layer5": "s32", "layer4": "s16", "layer3": "s8", "layer2": "s4"}
"""FRTM feature key of a refinement stage -> reusegate tap (stride)."""

_BLOCKS = {"TSE": "tse", "RRB1": "rrb1", "RRB2": "rrb2", "CAB": "cab"}
_GATE_PREFIXES = {
    "Tmatching.Tgenerate.": "template_generator.",
    "Tmatching.Tmatching.": "template_matcher.",
    "convGS.": "gate.",
    "Convert_Diff.": "delta_generator.",
    "refiner.Diff_process.conv_multi.convBlend.": "refine_translator.conv_multi.blend.",
    "refiner.Diff_process.conv_multi.": "refine_translator.conv_multi.",
    "refiner.Diff_process.postRBB.": "refine_translator.post.",
}
_GATE_LAST = ("gate.4.weight", "gate.4.bias")


def read_checkpoint(path: Union[str, Path]) -> StateDict:
    """Read an upstream checkpoint file and return its ``model`` state dict (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    ckpt = load_weights(path)
    if isinstance(ckpt, dict) and isinstance(ckpt.get("model"), dict):
        return ckpt["model"]
    if isinstance(ckpt, dict) and all(isinstance(v, Tensor) for v in ckpt.values()):
        return ckpt
    raise ValueError(f"{path} is not an FRTM/G-FRTM checkpoint: expected a dict with a 'model' state dict")


def map_refiner_key(key: str) -> str:
    """Upstream ``refiner.*`` key (without ``Diff_process``) -> :class:`Refiner` key; ``ValueError`` if unknown."""
    m = re.fullmatch(r"refiner\.(TSE|RRB1|RRB2|CAB)\.(layer[2-5])\.(.+)", key)
    if m:
        block, layer, rest = m.groups()
        if block == "CAB":
            if not rest.startswith("convreluconv."):
                raise ValueError(f"unknown upstream refiner key {key!r}")
            rest = "attention." + rest[len("convreluconv."):]
        return f"stages.{FRTM_STAGE_KEYS[layer]}.{_BLOCKS[block]}.{rest}"
    m = re.fullmatch(r"refiner\.project\.(conv[12]\.(?:weight|bias))", key)
    if m:
        return "head." + m.group(1)
    raise ValueError(f"unknown upstream refiner key {key!r}")


def map_gate_key(key: str) -> str:
    """Upstream G-FRTM gate-module key -> :class:`reusegate.core.layers.GateLayers` key; ``ValueError`` if unknown."""
    for old, new in _GATE_PREFIXES.items():
        if key.startswith(old):
            return new + key[len(old):]
    raise ValueError(f"unknown upstream G-FRTM key {key!r}")


def split_gfrtm_state_dict(state: Mapping[str, Tensor]) -> Tuple[StateDict, StateDict]:
    """Split and rename an upstream state dict into ``(refiner_state, gate_state)``.

    FRTM checkpoints give an empty ``gate_state``. The two-logit gate conv is folded into one logit here.
    Unknown keys raise ``ValueError`` listing all of them.
    """
    refiner: StateDict = {}
    gate: StateDict = {}
    unknown = []
    for key, value in state.items():
        try:
            if key.startswith("refiner.") and not key.startswith("refiner.Diff_process."):
                refiner[map_refiner_key(key)] = value
            else:
                gate[map_gate_key(key)] = value
        except ValueError:
            unknown.append(key)
    if unknown:
        raise ValueError(f"checkpoint has {len(unknown)} keys that are neither FRTM nor G-FRTM: {sorted(unknown)}")
    if any(k in gate for k in _GATE_LAST):
        w, b = gate.get(_GATE_LAST[0]), gate.get(_GATE_LAST[1])
        if w is None or b is None or w.shape[0] != 2 or b.shape[0] != 2:
            raise ValueError("G-FRTM gate head convGS.4 must have a 2-output weight and bias")
        gate[_GATE_LAST[0]] = (w[0] - w[1]).unsqueeze(0)
        gate[_GATE_LAST[1]] = (b[0] - b[1]).unsqueeze(0)
    return refiner, gate


def _few(keys: list) -> str:
    return f"{keys[:20]}{' ...' if len(keys) > 20 else ''}"


def load_strict(module: nn.Module, state: Mapping[str, Tensor], what: str, hint: str) -> None:
    """Load ``state`` into ``module`` only if keys and shapes match exactly; else a ``ValueError`` that lists the
    offending keys, followed by ``hint`` (what the user should do)."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ValueError(
            f"{what} does not fit {type(module).__name__}: missing keys {_few(missing)}, unexpected keys "
            f"{_few(unexpected)} ({len(missing)} missing, {len(unexpected)} unexpected). {hint}"
        )
    wrong = [f"{k}: given {tuple(state[k].shape)} vs model {tuple(v.shape)}"
             for k, v in own.items() if state[k].shape != v.shape]
    if wrong:
        raise ValueError(f"{what} does not fit {type(module).__name__}: shape mismatches {wrong[:10]}. {hint}")
    module.load_state_dict(state, strict=True)


_CHECKPOINT_HINT = "Is it for the wrong backbone or decoder width?"


def load_frtm_checkpoint(refiner: nn.Module, checkpoint: Union[str, Path, Mapping[str, Tensor]]) -> None:
    """Load an FRTM checkpoint (140 ``refiner.*`` keys) into ``refiner``, strictly."""
    state = read_checkpoint(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    refiner_state, gate_state = split_gfrtm_state_dict(state)
    if gate_state:
        raise ValueError(
            f"this is a G-FRTM checkpoint (it has gate keys such as {sorted(gate_state)[:3]}); "
            "load it with load_gfrtm_checkpoint(refiner, gate_modules, path)"
        )
    load_strict(refiner, refiner_state, "FRTM checkpoint", _CHECKPOINT_HINT)


def load_gfrtm_checkpoint(refiner: nn.Module, gate_modules: nn.Module,
                          checkpoint: Union[str, Path, Mapping[str, Tensor]]) -> None:
    """Load a G-FRTM checkpoint (189 keys) into ``refiner`` and ``gate_modules`` (a ``GateLayers``), strictly."""
    state = read_checkpoint(checkpoint) if isinstance(checkpoint, (str, Path)) else checkpoint
    refiner_state, gate_state = split_gfrtm_state_dict(state)
    load_strict(refiner, refiner_state, "G-FRTM checkpoint (refiner part)", _CHECKPOINT_HINT)
    load_strict(gate_modules, gate_state, "G-FRTM checkpoint (gate part)", _CHECKPOINT_HINT)


def load_gfrtm_into(reuse_gate: nn.Module, checkpoint: Union[str, Path, Mapping[str, Tensor]]) -> nn.Module:
    """Load a G-FRTM checkpoint into ``ReuseGate(FRTM(...), "frtm")``: its host's refiner and its gate modules.

    Returns ``reuse_gate``. The backbone is not in G-FRTM checkpoints: build the FRTM host with
    ``backbone_weights`` (torchvision's ImageNet file of the same backbone).
    """
    host, gate_modules = getattr(reuse_gate, "host", None), getattr(reuse_gate, "gate_modules", None)
    if not isinstance(getattr(host, "refiner", None), nn.Module) or not isinstance(gate_modules, nn.Module):
        raise ValueError("load_gfrtm_into needs a ReuseGate wrapping an FRTM host (with .host.refiner and "
                         ".gate_modules)")
    load_gfrtm_checkpoint(host.refiner, gate_modules, checkpoint)
    return reuse_gate
