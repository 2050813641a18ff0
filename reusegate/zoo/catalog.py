"""Trained gated models that ship with the package, and loading of exported ones.

An exported model is two files side by side: ``NAME.pth``, a plain state dict of the whole
:class:`~reusegate.ReuseGate` (loads with ``weights_only=True``), and ``NAME.json``, which says what inference needs
and nothing else (format 2): the architecture -- ``host``, ``adapter`` (as registered by plugins), ``host_kwargs``,
``gate_input``, ``rebuilt_prefixes`` -- so the core builds it without importing any adapter, and ``recommended``, the
:class:`~reusegate.core.config.GateConfig` it runs with by default (``tau``, ``variant``, ``tau2``, ``reuse_path``;
optional ``tau_min``, the floor of a latency-budget session's ``tau``, :mod:`reusegate.core.controller`).
Optional ``presets`` name inference-time alternatives (:func:`with_preset`). Training settings (the loss's margins)
stay with training. Format 1 (reusegate 0.1: ``gate``, ``recommended_tau``, ``recommended_variant``,
``recommended_tau2``) is still read.

A host whose frozen part comes from elsewhere (FRTM's ImageNet backbone from an offline weight wheel) lists
it in an optional attribute ``rebuilt_prefixes`` (state-dict prefixes its own settings restore): those keys
are left out of the ``.pth`` and the ``.json`` records that, so a shipped model holds only what was trained.
"""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from dataclasses import asdict, fields, replace
from typing import Any, Dict, Optional, Union

import torch

from reusegate.data.writer import atomic_torch_save, atomic_write_text
from reusegate.core.config import GateConfig
from reusegate.core.device import resolve_device
from reusegate.core.gate import ReuseGate
from reusegate.registry import build
from reusegate.zoo.safe_load import load_weights

__all__ = ["load_gate", "save_gate", "default_gate", "default_model_path", "embedded_name", "model_path",
           "recommended_config", "with_preset", "DEFAULT_ALIAS", "DEFAULT_MODEL", "EMBEDDED_MODELS", "FORMAT_VERSION",
           "PRESET_KEYS", "RECOMMENDABLE_VARIANTS"]

FORMAT_VERSION = 2
"""Version of the exported ``.json`` written; a reader refuses newer ones instead of misreading them."""

RECOMMENDABLE_VARIANTS = ("decode", "copy", "fusion")
"""Variants a ``.json`` may recommend; ``oracle`` reads the ground truth and cannot be a default."""

EMBEDDED_MODELS = {"accurate": "g_frtm_mnv2_h360", "fast": "g_frtm_mnv2", "ttvos": "g_ttvos_mnv2"}
"""The models that ship in the package, by alias: G-FRTM on the frozen ImageNet MobileNetV2 (narrow decoder),
trained on DAVIS-2016 (docs/models/) at a working height of 360 (``accurate``, the default: thin and
fast objects survive) or 240 (``fast``: about 1.8x the frame rate for less J&F on hard video), and G-TTVOS on
MobileNetV2 (``ttvos``, docs/ttvos.md). Either the alias or the file name selects one wherever a model is
taken."""

DEFAULT_ALIAS = "accurate"
"""Which embedded model ``default_gate()``, ``run``, ``bench``, ``test`` and ``demo`` take when none is named."""

DEFAULT_MODEL = EMBEDDED_MODELS[DEFAULT_ALIAS]


def save_gate(gate: ReuseGate, path: Union[str, Path], host: str, adapter: str,
              host_kwargs: Dict[str, Any] | None = None, extra: Dict[str, Any] | None = None,
              recommended: Optional[float] = None) -> Path:
    """Export ``gate`` as ``path`` (.pth state dict) plus its ``.json`` description, each written atomically.

    The ``.json`` recommends the gate's :attr:`~ReuseGate.config`, the default of ``load_gate``, ``run``, ``bench``
    and ``demo``; ``recommended`` replaces its threshold (measure one with ``reusegate bench``).
    """
    config = gate.config if recommended is None else replace(gate.config, tau=recommended)
    _check_recommendable(config.variant, "a model")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rebuilt = [f"host.{p}" for p in getattr(gate.host, "rebuilt_prefixes", ())]
    meta = {"format": FORMAT_VERSION, "host": host, "adapter": adapter, "host_kwargs": host_kwargs or {},
            "gate_input": gate.gate_modules.gate_input, "rebuilt_prefixes": rebuilt,
            # tau_min and window only when set, reuse_precision only when not the paper's float32
            "recommended": {k: v for k, v in asdict(config).items()
                            if v is not None and (k, v) != ("reuse_precision", "float32")},
            **(extra or {})}
    state = {k: v for k, v in gate.state_dict().items() if not k.startswith(tuple(rebuilt))}
    atomic_torch_save(state, path)  # a full disk leaves no truncated .pth (nor a stray temp file)
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=2))
    return path


def load_gate(path: Union[str, Path, None], tau: Optional[float] = None, variant: Optional[str] = None,
              preset: Optional[str] = None, tau2: Optional[float] = None,
              reuse_path: Optional[str] = None, device: Union[str, torch.device, None] = None,
              window: Optional[float] = None, reuse_precision: Optional[str] = None) -> ReuseGate:
    """Build the exported model at ``path`` (``.pth`` with its ``.json`` beside it; or an embedded model's name,
    :func:`model_path`). Its config is the one the ``.json`` recommends (:func:`recommended_config`) with each
    setting given here in place of the recommended one; ``reuse_path``, ``window`` and ``reuse_precision`` change
    no weights. ``preset`` names one of the ``.json``'s ``presets``: inference-time settings (``host_kwargs``,
    ``adapter``, ``recommended``) merged over the trained ones, e.g. a target model fitted with more iterations; the
    weights are the same. ``device`` (``'cpu'``, the default, ``'cuda'``, ``'cuda:N'``, ``'mps'``) is where the model
    runs: its sessions make their frames, masks and caches there; one that is not there is refused before anything
    loads."""
    device = resolve_device(device)
    path = model_path(path)
    meta_path = path.with_suffix(".json")
    for p in (path, meta_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found: an exported model is NAME.pth plus NAME.json side by side")
    meta = with_preset(_read_meta(meta_path), preset, meta_path)
    recommended = _recommended(meta, meta_path)
    if variant is None and recommended.variant == "fusion" and tau2 is None and tau is not None \
            and recommended.tau2 <= tau < 1:
        raise ValueError(f"{meta_path} recommends the fusion variant, which copies the previous mask above "
                         f"tau2 = {recommended.tau2:g}; tau = {tau:g} is not below that: pass variant='decode' "
                         f"(--variant decode) or a tau2 above tau (--tau2)")
    given = {k: v for k, v in (("tau", tau), ("variant", variant), ("tau2", tau2), ("reuse_path", reuse_path),
                               ("window", window), ("reuse_precision", reuse_precision)) if v is not None}
    config = replace(recommended, **given)
    host = build("host", dict(meta.get("host_kwargs", {}), type=meta["host"]))
    gate = ReuseGate(host, meta["adapter"], config, gate_input=meta.get("gate_input", "template"))
    state = load_weights(path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} is not a state dict of tensors; export the model with reusegate train --export")
    own = gate.state_dict()
    shapes = [f"{k} {tuple(v.shape)} (model: {tuple(own[k].shape)})" for k, v in state.items()
              if k in own and v.shape != own[k].shape]
    if shapes:  # a checkpoint of another backbone or width: say which tensors, not torch's wall of text
        raise ValueError(f"{path} does not fit the model its .json describes: {len(shapes)} tensors differ in "
                         f"shape, e.g. {'; '.join(shapes[:3])}; was it exported for another host or backbone?")
    rebuilt = tuple(meta.get("rebuilt_prefixes", ()))
    missing, unexpected = gate.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith(rebuilt)]
    if missing or unexpected:
        raise ValueError(f"{path} does not fit the model its .json describes: missing keys {missing[:5]}"
                         f"{' ...' if len(missing) > 5 else ''}, unexpected keys {unexpected[:5]}"
                         f"{' ...' if len(unexpected) > 5 else ''}; export it again with reusegate train --export")
    return gate.to(device).eval()


def _read_meta(meta_path: Path) -> Dict[str, Any]:
    """The exported model's description in format 2, checked for the keys and the format version this reusegate
    reads (format 1 is translated, :func:`_from_format_1`)."""
    try:
        meta = json.loads(meta_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{meta_path} is not valid JSON ({exc}); export the model again") from None
    if not isinstance(meta, dict) or not {"host", "adapter"} <= set(meta):
        raise ValueError(f"{meta_path} does not describe an exported model (it needs 'host' and 'adapter'); "
                         f"export the model again with reusegate train --export")
    version = meta.get("format", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ValueError(f"{meta_path} has format {version!r}, newer than the {FORMAT_VERSION} this reusegate "
                         f"reads; upgrade reusegate (pip install -U reusegate)")
    return _from_format_1(meta) if version < 2 else meta


_FORMAT_1_RECOMMENDED = {"recommended_tau": "tau", "recommended_variant": "variant", "recommended_tau2": "tau2"}
"""Format 1's top-level recommendation keys (also allowed in its presets) and their ``recommended`` field."""


def _recommended_of_format_1(section: Dict[str, Any]) -> Dict[str, Any]:
    """``section`` (a format-1 description or preset) with its ``recommended_*`` keys as one ``recommended``."""
    out = {k: v for k, v in section.items() if k not in _FORMAT_1_RECOMMENDED}
    recommended = {field: section[key] for key, field in _FORMAT_1_RECOMMENDED.items() if key in section}
    if recommended:
        out["recommended"] = recommended
    return out


def _from_format_1(meta: Dict[str, Any]) -> Dict[str, Any]:
    """A 0.1 export's description in format 2: ``gate``'s ``gate_input`` becomes architecture and its
    ``reuse_path`` a recommendation; its training settings (``m1``, ``m2``, ``ep_t``) are dropped."""
    gate = meta.get("gate") or {}
    out = _recommended_of_format_1({k: v for k, v in meta.items() if k != "gate"})
    out["format"] = FORMAT_VERSION
    out["gate_input"] = gate.get("gate_input", "template")
    if "reuse_path" in gate:
        out["recommended"] = {**out.get("recommended", {}), "reuse_path": gate["reuse_path"]}
    if isinstance(meta.get("presets"), dict):
        out["presets"] = {name: _recommended_of_format_1(p) if isinstance(p, dict) else p
                          for name, p in meta["presets"].items()}
    return out


PRESET_KEYS = ("host_kwargs", "adapter", "recommended")
"""What a preset may change: settings read at inference, never the trained architecture's weights."""


def _merged(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _merged(base.get(k), v) for k, v in over.items()}}
    return over


def with_preset(meta: Dict[str, Any], preset: Optional[str], meta_path: Path) -> Dict[str, Any]:
    """``meta`` with the named preset's settings merged in (nested dicts merge key by key); ``None``: as is."""
    if preset is None:
        return meta
    presets = meta.get("presets") or {}
    if preset not in presets:
        raise ValueError(f"{meta_path} has no preset {preset!r}; its presets: {', '.join(sorted(presets)) or 'none'}")
    bad = sorted(set(presets[preset]) - set(PRESET_KEYS))
    if bad:
        raise ValueError(f"{meta_path}: preset {preset!r} sets {bad}; a preset may set only {list(PRESET_KEYS)}")
    return _merged(meta, presets[preset])


def _check_recommendable(variant: str, what: str) -> None:
    if variant not in RECOMMENDABLE_VARIANTS:
        raise ValueError(f"{what} cannot recommend the {variant!r} variant; recommend one of "
                         f"{RECOMMENDABLE_VARIANTS}")


def _recommended(meta: Dict[str, Any], meta_path: Path) -> GateConfig:
    """The description's ``recommended`` config, checked (a missing field takes :class:`GateConfig`'s default)."""
    recommended = meta.get("recommended") or {}
    known = {f.name for f in fields(GateConfig)}
    unknown = sorted(set(recommended) - known)
    if unknown:
        raise ValueError(f"{meta_path}: recommended holds {unknown}; it may hold only {sorted(known)}")
    try:
        config = GateConfig(**recommended)
    except ValueError as exc:
        raise ValueError(f"{meta_path}: recommended {exc}") from None
    _check_recommendable(config.variant, str(meta_path))
    if config.variant == "fusion" and "tau2" not in recommended:
        raise ValueError(f"{meta_path} recommends the fusion variant but no tau2 (its copy threshold)")
    return config


def recommended_config(path: Union[str, Path, None] = None, preset: Optional[str] = None) -> GateConfig:
    """The config an exported model's ``.json`` (or its ``preset``) recommends (the embedded default model's when
    ``path`` is ``None``); a field it does not name takes :class:`GateConfig`'s default."""
    meta_path = model_path(path).with_suffix(".json")
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: an exported model is NAME.pth plus NAME.json side by side")
    return _recommended(with_preset(_read_meta(meta_path), preset, meta_path), meta_path)


def default_model_path() -> Path:
    """Where the embedded default model's ``.pth`` lies (its ``.json`` is beside it)."""
    return _embedded(DEFAULT_MODEL)


def _embedded(name: str) -> Path:
    return Path(str(resources.files("reusegate.zoo") / "weights" / f"{name}.pth"))


def embedded_name(model: Union[str, Path]) -> Optional[str]:
    """The file name of the embedded model that ``model`` names (an alias or a file name of
    :data:`EMBEDDED_MODELS`), or ``None`` when it names none."""
    name = EMBEDDED_MODELS.get(str(model), str(model))
    return name if name in EMBEDDED_MODELS.values() else None


def model_path(model: Union[str, Path, None]) -> Path:
    """The ``.pth`` that ``model`` names: ``None`` the embedded default, an alias or file name of
    :data:`EMBEDDED_MODELS` (``accurate``, ``fast``, ``ttvos``, ``g_frtm_mnv2``) an embedded model, anything else
    a path.

    A bare word that is neither an embedded name nor an existing file is refused with the names there are, since
    it is far more likely a misspelt name than a model file without its ``.pth`` suffix.
    """
    if model is None:
        return default_model_path()
    name = embedded_name(model)
    if name is not None:
        return _embedded(name)
    path = Path(model)
    if not path.suffix and len(path.parts) == 1 and not path.exists():
        names = ", ".join(f"{alias} ({file})" for alias, file in EMBEDDED_MODELS.items())
        raise FileNotFoundError(f"no embedded model {str(model)!r} and no such file; the embedded models are {names}, "
                                f"or give an exported NAME.pth")
    return path


def default_gate(tau: Optional[float] = None, variant: Optional[str] = None, preset: Optional[str] = None,
                 model: Optional[str] = None, tau2: Optional[float] = None,
                 reuse_path: Optional[str] = None, device: Union[str, torch.device, None] = None,
                 backend: str = "torch", window: Optional[float] = None,
                 reuse_precision: Optional[str] = None) -> ReuseGate:
    """An embedded model (:data:`EMBEDDED_MODELS`: ``accurate``, ``fast``, ``ttvos``; ``None``:
    :data:`DEFAULT_ALIAS`) with its recommended config, each setting given here in its place (docs/models);
    ``preset='full_fit'``: its target models fitted with upstream's full iteration counts (a little more J&F for
    about 5 % more time a frame); ``device``: where it runs (:func:`load_gate`); ``backend``: what runs the host's
    convolutions, ``'torch'``, ``'onnxruntime'`` or ``'openvino'`` (:func:`reusegate.deploy.use_backend`)."""
    from reusegate.deploy.backends import check_backend, use_backend

    if model is not None and embedded_name(model) is None:
        raise ValueError(f"no embedded model {model!r}; the embedded models are {', '.join(EMBEDDED_MODELS)}")
    check_backend(backend)  # before any weight loads
    gate = load_gate(model, tau=tau, variant=variant, preset=preset, tau2=tau2, reuse_path=reuse_path,
                     device=device, window=window, reuse_precision=reuse_precision)
    return use_backend(gate, backend, model_path(model))
