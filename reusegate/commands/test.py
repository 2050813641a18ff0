"""``reusegate test CONFIG``: an exported model through mmengine's test loop, on one process or many.

The config supplies the data (``test_dataloader``, e.g. ``DavisVideoDataset``) and the metric
(``test_evaluator``, ``VOSMetric``); the model is an exported one (``--model``, default: the embedded default
model), so the same file that ``reusegate run`` takes is scored here. Under ``torchrun`` the videos are sharded
across processes by mmengine's sampler (gloo on CPU, NCCL on GPU); each process writes the masks of its own
videos, and rank 0 gathers one J&F table, the reuse rate and the FPS::

    reusegate test configs/examples/test_davis2016_val.py --out results/val
    torchrun --standalone --nproc-per-node 2 -m reusegate.cli test configs/examples/test_davis2016_val.py \\
        --out results/val
"""
from __future__ import annotations

import argparse
import json
import uuid
from pathlib import Path
from typing import Any

from reusegate.commands import (MODEL_HELP, add_backend_arguments, add_device_argument, add_session_arguments,
                                with_backend)

NAME = "test"
HELP = ("score an exported model with mmengine's test loop (one process, or sharded under torchrun): writes the "
        "masks in the DAVIS layout, the J&F CSVs and summary.json to --out")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from reusegate.core.config import VARIANT_ALIASES, VARIANTS
    from reusegate.commands.train import LAUNCHERS

    parser.add_argument("config", help="mmengine config with test_dataloader and test_evaluator "
                                       "(e.g. configs/examples/test_davis2016_val.py)")
    parser.add_argument("--model", default=None, help=MODEL_HELP)
    add_device_argument(parser, default=None, default_help="mmengine's choice: a GPU where there is one, each "
                                                           "torchrun process its own, else cpu")
    parser.add_argument("--tau", type=float, default=None, help="reuse threshold (default: the model's own)")
    parser.add_argument("--variant", choices=[*VARIANTS, *VARIANT_ALIASES], default=None,
                        help="gate variant (default: the one the model's .json recommends, else decode; 'translate' "
                             "is decode's old name)")
    parser.add_argument("--tau2", type=float, default=None,
                        help="fusion variant: copy the previous mask above this p_reuse (default: the model's)")
    add_session_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("out/test"), help="results folder (default: out/test)")
    parser.add_argument("--work-dir", help="where mmengine's logs go (default: <out>/logs)")
    parser.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE",
                        help="override config entries, e.g. test_dataloader.dataset.data_root=DIR")
    parser.add_argument("--launcher", choices=LAUNCHERS, default="auto",
                        help="'auto' (default): 'pytorch' under torchrun, else 'none'")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    add_backend_arguments(parser)


def load_test_config(config: str, out: Path, work_dir: str | None, cfg_options: dict, launcher: str,
                     progress: bool) -> Any:
    """The config as the test loop runs it: launcher settled, the metric writing to ``out``."""
    import torch

    from reusegate.commands.train import _init_cpu_process_group, detect_launcher, read_config

    cfg = read_config(config, cfg_options, "configs/examples/test_davis2016_val.py")
    if not cfg.get("test_dataloader") or not cfg.get("test_evaluator"):
        raise ValueError(f"{config} defines no test_dataloader or test_evaluator; `reusegate test` needs both "
                         f"(see configs/examples/test_davis2016_val.py)")
    cfg.launcher = detect_launcher(launcher)
    cfg.work_dir = work_dir or str(out / "logs")
    cfg.test_evaluator = dict(cfg.test_evaluator, out_dir=str(out))
    cfg.test_cfg = cfg.get("test_cfg") or dict(type="TestLoop")
    if "env_cfg" not in cfg:
        cfg.env_cfg = {}
    if cfg.launcher == "pytorch" and not torch.cuda.is_available():
        _init_cpu_process_group(cfg)
    hooks = [h for h in (cfg.get("custom_hooks") or []) if h.get("type") != "GateMarginHook"]
    if progress and not any(h.get("type") == "ProgressBarHook" for h in hooks):
        hooks.append(dict(type="ProgressBarHook"))
    cfg.custom_hooks = hooks
    return cfg


def runner_device(launcher: str, device: str | None) -> Any:
    """The ``torch.device`` that ``--device`` names for this launcher, or ``None`` for mmengine's choice (its
    default). Under ``torchrun`` mmengine places every process itself (a GPU each where there are GPUs, the CPU
    otherwise), so a ``--device`` of another kind is refused rather than half-applied."""
    from mmengine.device import get_device

    from reusegate.core.device import resolve_device

    if device is None:
        return None
    resolved = resolve_device(device)
    if launcher != "none" and resolved.type != get_device():
        raise ValueError(f"under torchrun mmengine runs every process on {get_device()}; --device {device} cannot "
                         f"change that: drop --device, or run one process")
    return resolved


def build_test_runner(cfg: Any, model_path: str | Path | None, tau: float | None, variant: str | None = None,
                      tau2: float | None = None, device: str | None = None,
                      window: float | None = None, reuse_precision: str | None = None) -> tuple[Any, Any]:
    """A ``Runner`` that tests the exported model (built here, not from the config's ``model``), and the model;
    ``None`` settings are the model's recommended ones, ``device=None`` mmengine's choice (:func:`runner_device`)."""
    from mmengine.runner import Runner

    from reusegate.tools.run import load_model
    from reusegate.integrations.mmengine.model import ReuseGateVOS

    place = runner_device(cfg.launcher, device)
    gate = load_model(model_path, tau=tau, variant=variant, tau2=tau2, device=place, window=window,
                      reuse_precision=reuse_precision)
    model = ReuseGateVOS(host=gate.host, adapter=gate.adapter, gate=None)  # host-only shell: no modules to discard
    model.net = gate  # ... then the loaded gated network in its place
    keys = ("work_dir", "test_dataloader", "test_cfg", "test_evaluator", "default_hooks", "custom_hooks",
            "launcher", "env_cfg", "log_processor", "log_level", "default_scope", "randomness",
            "visualizer")  # model_wrapper_cfg is read from cfg
    kwargs = {k: cfg[k] for k in keys if cfg.get(k) is not None}
    kwargs["default_hooks"] = {k: v for k, v in (cfg.get("default_hooks") or {}).items()
                               if k in ("timer", "logger")}  # no checkpoints or schedulers: nothing trains
    # mmengine names its logger and scope instances after the run; its default (config name and the second)
    # collides when one process tests twice within a second
    kwargs["experiment_name"] = cfg.get("experiment_name") or f"test_{uuid.uuid4().hex[:12]}"
    runner = Runner(model=model, cfg=cfg, **kwargs)
    if place is not None and cfg.launcher == "none":  # the Runner moved the model to mmengine's choice: undo that
        runner.model.to(place)
    return runner, gate


def run(args: argparse.Namespace) -> int:
    from reusegate.commands.train import _finish_distributed

    _test(args)  # the runner is dropped when this returns, before the process group goes
    _finish_distributed()
    return 0


def _test(args: argparse.Namespace) -> None:
    from reusegate.data.writer import atomic_write_text, check_writable
    from reusegate.commands.train import parse_cfg_options

    check_writable(args.out)  # masks, CSVs and summary go there: fail before the model and data load
    cfg = load_test_config(args.config, args.out, args.work_dir, parse_cfg_options(args.cfg_options),
                           args.launcher, progress=not args.no_progress)
    runner, gate = build_test_runner(cfg, args.model, args.tau, args.variant, args.tau2, args.device, args.window,
                                     args.reuse_precision)
    with_backend(gate, args)  # in place: the runner's model steps the same gate
    metrics = runner.test()
    if runner.rank == 0:
        from reusegate.tools.run import gate_settings

        summary = {**gate_settings(args.model, gate), "processes": runner.world_size,
                   "metrics": {k: float(v) for k, v in metrics.items()}, "backend": args.backend}
        atomic_write_text(args.out / "summary.json", json.dumps(summary, indent=2))
        for key, value in metrics.items():
            print(f"{key:<24} {value:.4f}")
        print(f"{runner.world_size} process(es); wrote {args.out}/<sequence>/*.png, the J&F CSVs and "
              f"{args.out / 'summary.json'}")
