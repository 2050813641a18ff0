"""Sub-commands of the ``reusegate`` CLI, one module each (see :mod:`reusegate.cli`)."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from reusegate.core.gate import ReuseGate


MODEL_HELP = ("an embedded model: 'accurate' (the default: G-FRTM trained at height 360), 'fast' (height 240: about "
              "1.8x the frame rate, less J&F on hard video) or 'ttvos' (G-TTVOS: an example of a second host, far "
              "less accurate); or an exported NAME.pth (NAME.json beside it)")


def add_device_argument(parser: argparse.ArgumentParser, default: Optional[str] = "cpu",
                        default_help: str = "cpu") -> None:
    """``--device``, the same for ``run``, ``bench``, ``test`` and ``demo``; checked when the model loads
    (:func:`reusegate.core.device.resolve_device`), before any weight does."""
    parser.add_argument("--device", default=default,
                        help="where the model runs: cpu, cuda (the current GPU), cuda:N or mps (Apple GPU); frames, "
                             f"masks and caches follow the model there (default: {default_help})")


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """``--backend`` and ``--graphs``, the same for ``run``, ``bench``, ``test`` and ``demo`` (docs/deploy.md)."""
    from reusegate.core.config import BACKENDS

    parser.add_argument("--backend", choices=BACKENDS, default="torch",
                        help="what runs the host's convolutions: torch (eager, the default) or the model's ONNX "
                             "graphs on ONNX Runtime or OpenVINO (CPU; pip install 'reusegate[onnxruntime]' or "
                             "'reusegate[openvino]')")
    parser.add_argument("--graphs", type=Path, default=None, metavar="DIR",
                        help="with --backend onnxruntime|openvino: the model's graphs from reusegate export "
                             "(default: exported in memory at load, a few seconds)")


def with_backend(gate: "ReuseGate", args: argparse.Namespace, model: Optional[str] = None) -> "ReuseGate":
    """``gate`` with ``args.backend`` running its tap calls (:func:`reusegate.deploy.use_backend`); ``model``: the
    model the gate was loaded from (default ``args.model``), whose files a ``--graphs`` folder must match."""
    from reusegate.deploy import use_backend
    from reusegate.zoo.catalog import model_path

    if args.backend != "torch" and getattr(args, "device", "cpu") not in (None, "cpu"):
        raise ValueError(f"--backend {args.backend} runs on the CPU; use --backend torch with --device {args.device}")
    pth = model_path(model if model is not None else args.model)
    return use_backend(gate, args.backend, pth, args.graphs, getattr(args, "threads", None))


def add_model_and_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Options ``run`` and ``bench`` share: which DAVIS sequences, the thread count, the device, the model and how
    it reuses."""
    parser.add_argument("--sequences", type=Path, default=None,
                        help="with --davis: text file with one sequence name a line (default: every sequence)")
    parser.add_argument("--resolution", default="480p", help="with --davis: the resolution folder (default: 480p)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice, one per core)")
    add_device_argument(parser)
    parser.add_argument("--model", default=None, help=MODEL_HELP)
    parser.add_argument("--preset", default=None,
                        help="an inference preset of the model's .json (the embedded models: 'full_fit', their target "
                             "models fitted with upstream's full iteration counts); default: as trained")
    parser.add_argument("--reuse-path", default=None,  # checked by GateConfig, which names retired paths
                        help="what a reused frame decodes: 'translate' (the paper) or 'hold' (the cached score and "
                             "refined feature); default: the model's")
    add_session_arguments(parser)
    add_backend_arguments(parser)


def add_session_arguments(parser: argparse.ArgumentParser) -> None:
    """``--window`` and ``--reuse-precision``, the same for ``run``, ``bench``, ``test`` and ``demo`` (checked by
    ``GateConfig``): settings of the session that change no weights."""
    from reusegate.core.config import REUSE_PRECISIONS

    parser.add_argument("--window", type=float, default=None, metavar="MARGIN",
                        help="keep each object inside its previous mask's box grown by MARGIN times its size on each "
                             "side, plus its last motion: for several look-alike objects (0.1 is measured: "
                             "docs/experiments/locality-window.md); default: the model's (the shipped models: none)")
    parser.add_argument("--reuse-precision", choices=REUSE_PRECISIONS, default=None,
                        help="decode reused objects in int8 on a CPU: a cheaper reused frame at the same J&F "
                             "(docs/experiments/int8-reuse.md); default: the model's (the shipped models: float32)")


def _positive(text: str) -> float:
    """A positive, finite number (a frame rate or a budget), refused by argparse with the flag's name."""
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text!r}")
    return value


def add_budget_arguments(parser: argparse.ArgumentParser, many: bool = False) -> None:
    """``--target-fps`` / ``--budget-ms`` (a latency budget instead of a fixed ``--tau``) and ``--tau-min``, the
    same for ``run``, ``bench`` (``many``: a list of targets, one row each) and ``demo``."""
    group = parser.add_mutually_exclusive_group()
    nargs = "+" if many else None
    group.add_argument("--target-fps", type=_positive, nargs=nargs, default=None, metavar="F",
                       help="a frame rate to hold: a latency controller moves tau within [tau-min, 1] every frame "
                            "from the measured step time" + (" (one bench row per target)" if many else ""))
    group.add_argument("--budget-ms", type=_positive, nargs=nargs, default=None, metavar="MS",
                       help="the same as a time budget per frame in milliseconds")
    parser.add_argument("--tau-min", type=float, default=None,
                        help="with --target-fps / --budget-ms: the lowest tau the controller may take (default: the "
                             "model's recommended tau_min, else the lower of 0.7 and its tau)")


def check_tau_min(args: argparse.Namespace) -> None:
    """``--tau-min`` only beside ``--target-fps`` / ``--budget-ms``, and in [0, 1]: checked before any model loads."""
    from reusegate.core.config import GateConfig

    if args.tau_min is None:
        return
    if args.target_fps is None and args.budget_ms is None:
        raise ValueError("--tau-min is the floor of a latency budget; give --target-fps or --budget-ms with it")
    GateConfig(tau_min=args.tau_min)


def budget_from_args(args: argparse.Namespace) -> Optional[dict]:
    """The session keywords of ``--target-fps`` / ``--budget-ms`` and ``--tau-min`` (one target), or ``None``."""
    check_tau_min(args)
    if args.target_fps is None and args.budget_ms is None:
        return None
    key = "target_fps" if args.target_fps is not None else "budget_ms"
    return {key: getattr(args, key), **({"tau_min": args.tau_min} if args.tau_min is not None else {})}
