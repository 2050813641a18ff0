"""``reusegate train CONFIG``: train from an mmengine config with the mmengine ``Runner``.

One process::

    reusegate train configs/cpu/g_reference_davis16_cpu.py --work-dir work_dirs/g_ref

Several (the launcher is read from the environment ``torchrun`` sets; gloo on CPU, NCCL on GPU)::

    torchrun --nproc-per-node 2 -m reusegate.cli train CONFIG

Resuming under torch >= 2.6: mmengine 0.10 reads its own checkpoints (optimizer, message hub, numpy
scalars) with a plain ``torch.load``, which now defaults to ``weights_only=True`` and refuses them. Only
while a run resumes or loads ``load_from`` does this command set ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (the
remedy of ``research/ecosystem.md`` §1.4 that does not depend on numpy's internal class names), and it
restores the variable afterwards: those files are the run's own checkpoints, which the user trusts as much as
the config itself. What reusegate writes for inference (``--export``) is a plain state dict that loads with
``weights_only=True``.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

NAME = "train"
HELP = "Train a model from an mmengine config (one process, or one per GPU/CPU slot under torchrun)."
TRUST_ENV = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
LAUNCHERS = ("auto", "none", "pytorch")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="mmengine config file (e.g. configs/cpu/g_reference_davis16_cpu.py)")
    parser.add_argument("--work-dir", help="where logs and checkpoints go (default: work_dirs/<config name>)")
    parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                        help="resume training: from the latest checkpoint in the work dir, or from CHECKPOINT")
    parser.add_argument("--cfg-options", nargs="+", metavar="KEY=VALUE",
                        help="override config entries, e.g. train_cfg.max_epochs=2 model.gate.tau=0.8")
    parser.add_argument("--export", metavar="FILE",
                        help="after training, write the network for inference here: FILE (a plain state dict, "
                             "loads with weights_only) and FILE's .json (host and adapter, for reusegate run)")
    parser.add_argument("--launcher", choices=LAUNCHERS, default="auto",
                        help="'auto' (default): 'pytorch' under torchrun, else 'none'")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")


def parse_cfg_options(pairs: Optional[list]) -> Dict[str, Any]:
    """``KEY=VALUE`` strings -> dict, with mmengine's value syntax (``a=1``, ``b=[x,y]``, ``c=(1,2)``).

    Parsed here rather than by an argparse action so that ``reusegate --help`` does not import mmengine."""
    if not pairs:
        return {}
    from mmengine.config import DictAction

    bad = [p for p in pairs if "=" not in p]
    if bad:
        raise ValueError(f"--cfg-options takes KEY=VALUE pairs, got {bad}")
    namespace = argparse.Namespace()
    DictAction(option_strings=["--cfg-options"], dest="options")(None, namespace, pairs)
    return namespace.options


def detect_launcher(requested: str = "auto") -> str:
    """``'pytorch'`` when torchrun (or torch.distributed.launch) started this process, else ``'none'``."""
    if requested != "auto":
        return requested
    return "pytorch" if "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ else "none"


@contextlib.contextmanager
def trusted_checkpoints(enabled: bool = True) -> Iterator[None]:
    """Let mmengine's plain ``torch.load`` read its own training checkpoints while the block runs."""
    if not enabled:
        yield
        return
    previous = os.environ.get(TRUST_ENV)
    os.environ[TRUST_ENV] = "1"
    try:
        with warnings.catch_warnings():  # torch warns on every such load; here it is the intent
            warnings.filterwarnings("ignore", message=f"Environment variable {TRUST_ENV} detected")
            yield
    finally:
        if previous is None:
            os.environ.pop(TRUST_ENV, None)
        else:
            os.environ[TRUST_ENV] = previous


def _init_cpu_process_group(cfg: Any) -> None:
    """Start gloo ourselves: mmengine's 'pytorch' launcher calls ``torch.cuda.set_device``, which a CPU-only
    torch build lacks, and DDP on CPU modules needs ``device_ids=None``."""
    import torch.distributed as dist

    cfg.env_cfg.setdefault("dist_cfg", {})["backend"] = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend="gloo")
    wrapper = dict(cfg.get("model_wrapper_cfg") or dict(type="MMDistributedDataParallel"))
    wrapper.setdefault("device_ids", None)
    cfg.model_wrapper_cfg = wrapper


def load_config(config: str, work_dir: Optional[str] = None, resume: Optional[str] = None,
                cfg_options: Optional[Dict[str, Any]] = None, launcher: str = "auto", progress: bool = True):
    """The config as the command would run it (launcher, work dir, resume, progress bar settled)."""
    import torch
    from mmengine.config import Config

    path = Path(config)
    if not path.is_file():
        raise FileNotFoundError(f"config {config} does not exist; pass a file such as configs/cpu/g_reference_davis16_cpu.py")
    cfg = Config.fromfile(str(path))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if "model" not in cfg or "train_dataloader" not in cfg:
        raise ValueError(f"{config} defines no model or train_dataloader; is it a training config?")
    cfg.launcher = detect_launcher(launcher)
    cfg.work_dir = work_dir or cfg.get("work_dir") or str(Path("work_dirs") / path.stem)
    if "env_cfg" not in cfg:
        cfg.env_cfg = {}
    if cfg.launcher == "pytorch" and not torch.cuda.is_available():
        _init_cpu_process_group(cfg)
    if resume is not None:
        cfg.resume = True
        if resume != "auto":
            if not Path(resume).is_file():
                raise FileNotFoundError(f"checkpoint {resume} does not exist; pass a .pth from the work dir")
            cfg.load_from = resume
    if progress:
        hooks = list(cfg.get("custom_hooks") or [])
        if not any(h.get("type") == "ProgressBarHook" for h in hooks):
            hooks.append(dict(type="ProgressBarHook"))
        cfg.custom_hooks = hooks
    return cfg


def build_runner(cfg: Any):
    """A ``Runner`` from a config (see :func:`load_config`)."""
    from mmengine.runner import Runner

    return Runner.from_cfg(cfg)


def train(cfg: Any, runner: Any = None):
    """Train (building the runner unless given); checkpoints are trusted only while a run with resume or
    load_from trains, and the switch is restored afterwards."""
    runner = runner if runner is not None else build_runner(cfg)
    with trusted_checkpoints(bool(cfg.get("resume")) or cfg.get("load_from") is not None):
        runner.train()
    return runner


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.work_dir, args.resume, parse_cfg_options(args.cfg_options), args.launcher,
                      progress=not args.no_progress)
    runner = train(cfg)
    if args.export:
        from mmengine.dist import is_main_process

        from reusegate.integrations.mmengine.model import export_state_dict

        if is_main_process():
            model_cfg = cfg.model
            print(f"exported {export_state_dict(runner.model, args.export, model_cfg.get('host'), model_cfg.get('adapter'))}")
    if runner.rank == 0:
        print(f"logs and checkpoints: {runner.work_dir}")
    _finish_distributed()
    return 0


def _finish_distributed() -> None:
    """Leave the process group together: a rank that exits while gloo peers still talk to it can abort them."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
