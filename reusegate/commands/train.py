"""``reusegate train CONFIG``: train from an mmengine config with the mmengine ``Runner``.

One process::

    reusegate train configs/examples/g_reference_davis16_cpu.py --work-dir work_dirs/g_ref

Several (the launcher is read from the environment ``torchrun`` sets; gloo on CPU, NCCL on GPU)::

    torchrun --nproc-per-node 2 -m reusegate.cli train CONFIG

Resuming under torch >= 2.6: mmengine 0.10 reads its own checkpoints (optimizer, message hub, numpy
scalars) with a plain ``torch.load``, which now defaults to ``weights_only=True`` and refuses them. Only
while a run loads a checkpoint it trusts does this command set ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (the
remedy that does not depend on numpy's internal class names), and it
restores the variable afterwards. Trusted means: inside the run's own work dir (``--resume`` accepts nothing
else, and follows ``last_checkpoint`` only to a file inside it), or a ``load_from`` file the user vouches for
with ``--trust-load-from``. A ``load_from`` file that loads with ``weights_only=True`` (a plain state dict,
an ``--export``) needs no trust. What reusegate writes for inference (``--export``) is such a file.
"""
from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

NAME = "train"
HELP = "Train a model from an mmengine config (one process, or one per GPU/CPU slot under torchrun)."
TRUST_ENV = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
LAUNCHERS = ("auto", "none", "pytorch")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="mmengine config file (e.g. configs/examples/g_reference_davis16_cpu.py)")
    parser.add_argument("--work-dir", help="where logs and checkpoints go (default: work_dirs/<config name>)")
    parser.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                        help="resume training: from the latest checkpoint in the work dir, or from CHECKPOINT, "
                             "which must lie inside the work dir (default work dir: CHECKPOINT's folder); "
                             "these files are unpickled in full, so --resume trusts nothing else")
    parser.add_argument("--trust-load-from", action="store_true",
                        help="load a full mmengine checkpoint given as load_from from outside the work dir "
                             "(it is unpickled in full, which can run code: only for files you made)")
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


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` (links resolved) lies inside ``folder``."""
    return path.resolve().is_relative_to(folder.resolve())


def _newest_intact_checkpoint(work_dir: Path, check: Any) -> Optional[Path]:
    """The most recent ``*.pth`` of ``work_dir`` that ``check`` reads without error (a kill may have cut the
    newest one off), or None."""
    for path in sorted(work_dir.glob("*.pth"), key=lambda p: p.stat().st_mtime, reverse=True):
        try:
            check(path)
        except ValueError:
            continue
        return path
    return None


def _resume_checkpoint(work_dir: Path, resume: str) -> Optional[Path]:
    """The checkpoint ``--resume`` will load (None: nothing to resume), refused unless inside ``work_dir``.

    mmengine unpickles it in full, and ``last_checkpoint`` may point anywhere: both are checked here."""
    from reusegate.zoo.safe_load import unsafe_globals

    if resume == "auto":
        pointer = work_dir / "last_checkpoint"
        if not pointer.is_file():
            return None
        text = pointer.read_text().strip()
        if not text:  # a kill while mmengine rewrote the pointer: take the newest intact checkpoint instead
            path = _newest_intact_checkpoint(work_dir, unsafe_globals)
            if path is None:
                return None
            print(f"{pointer} is empty (cut off by an interruption); resuming from the newest intact checkpoint")
        else:
            path = Path(text)
        origin = f"{pointer} points to {path}, which"
    else:
        path = Path(resume)
        if not path.is_file():
            raise FileNotFoundError(f"checkpoint {resume} does not exist; pass a .pth from the work dir")
        origin = f"checkpoint {path}"
    if not path.is_file():
        raise FileNotFoundError(f"{origin} does not exist; pass --resume CHECKPOINT explicitly")
    if not _inside(path, work_dir):
        raise ValueError(f"refusing to resume: {origin} lies outside the work dir {work_dir}. --resume unpickles "
                         f"the checkpoint in full (optimizer and log state), which can run code, so it trusts only "
                         f"the run's own work dir: pass --work-dir {path.parent}, or copy the file there if you "
                         f"made it")
    try:
        unsafe_globals(path)  # runs nothing: a checkpoint cut off by a kill fails here, not inside mmengine
    except ValueError as exc:
        raise ValueError(f"{exc}; or resume from an earlier checkpoint of {work_dir} with --resume CHECKPOINT") \
            from None
    return path


def needs_trust(path: Path, work_dir: Path, trust_load_from: bool = False) -> bool:
    """Whether loading ``path`` needs full unpickling, after checking it may have it.

    Files that load with ``weights_only=True`` need none; others must lie in the work dir or be vouched for."""
    from reusegate.zoo.safe_load import unsafe_globals

    if not path.is_file():
        raise FileNotFoundError(f"load_from checkpoint {path} does not exist")
    unsafe = unsafe_globals(path)  # runs nothing; a damaged file fails here, not mid-setup in mmengine
    if not unsafe:
        return False
    if trust_load_from or _inside(path, work_dir):
        return True
    raise ValueError(f"refusing to load load_from={path}: it holds pickled objects besides tensors "
                     f"({', '.join(unsafe[:4])}{' ...' if len(unsafe) > 4 else ''}) and lies outside the work dir "
                     f"{work_dir}, and unpickling it could run code. If you made it (a reusegate/mmengine "
                     f"training checkpoint), pass --trust-load-from; else load a plain state dict instead")


RUNNER_KEYS = ("model", "work_dir", "train_dataloader", "val_dataloader", "test_dataloader", "train_cfg",
               "val_cfg", "test_cfg", "auto_scale_lr", "optim_wrapper", "param_scheduler", "val_evaluator",
               "test_evaluator", "default_hooks", "custom_hooks", "data_preprocessor", "load_from", "resume",
               "launcher", "env_cfg", "log_processor", "log_level", "visualizer", "default_scope", "randomness",
               "experiment_name", "model_wrapper_cfg")
"""Top-level config keys mmengine's ``Runner.from_cfg`` reads; any other top-level key it silently ignores."""


def _check_top_level_keys(cfg: Any, config: str) -> None:
    """A top-level key one typo away from a Runner key (``trian_cfg``) would be ignored without a word: refuse
    it. Other unknown keys are the config's own variables and pass."""
    import difflib

    for key in cfg.keys():
        if key in RUNNER_KEYS:
            continue
        close = difflib.get_close_matches(key, RUNNER_KEYS, n=1, cutoff=0.8)
        if close:
            raise ValueError(f"{config}: unknown top-level key {key!r} (did you mean {close[0]!r}?); mmengine "
                             f"would ignore it silently — fix the spelling")


def read_config(config: str, cfg_options: Optional[Dict[str, Any]], example: str) -> Any:
    """The mmengine config at ``config`` with ``--cfg-options`` merged and its top-level keys checked."""
    from mmengine.config import Config

    if not Path(config).is_file():
        raise FileNotFoundError(f"config {config} does not exist; pass a file such as {example}")
    cfg = Config.fromfile(str(config))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    _check_top_level_keys(cfg, config)
    return cfg


def load_config(config: str, work_dir: Optional[str] = None, resume: Optional[str] = None,
                cfg_options: Optional[Dict[str, Any]] = None, launcher: str = "auto", progress: bool = True,
                trust_load_from: bool = False):
    """The config as the command would run it (launcher, work dir, resume, progress bar, checkpoint trust
    settled: ``cfg.trusted_checkpoint`` says whether training must unpickle a checkpoint in full)."""
    import torch

    path = Path(config)
    cfg = read_config(config, cfg_options, "configs/examples/g_reference_davis16_cpu.py")
    if "model" not in cfg or "train_dataloader" not in cfg:
        raise ValueError(f"{config} defines no model or train_dataloader; is it a training config?")
    cfg.launcher = detect_launcher(launcher)
    if resume not in (None, "auto") and not work_dir and not cfg.get("work_dir"):
        work_dir = str(Path(resume).parent)  # --resume CHECKPOINT continues the run that wrote it
    cfg.work_dir = work_dir or cfg.get("work_dir") or default_work_dir(path)
    if "env_cfg" not in cfg:
        cfg.env_cfg = {}
    if cfg.launcher == "pytorch" and not torch.cuda.is_available():
        _init_cpu_process_group(cfg)
    cfg.trusted_checkpoint = False
    if resume is not None:
        cfg.resume = True
        checkpoint = _resume_checkpoint(Path(cfg.work_dir), resume)
        if checkpoint is not None:
            cfg.load_from = str(checkpoint)  # also over a config's load_from (mmengine would resume from that)
            cfg.trusted_checkpoint = True
            if os.environ.get("RANK", "0") == "0":
                print(f"resuming from {checkpoint}: a checkpoint of this run's work dir, unpickled in full; "
                      f"--resume trusts no file outside {cfg.work_dir}")
        elif cfg.get("load_from"):
            cfg.resume = False  # nothing of this run yet: start from load_from's weights, not its epoch
    if not cfg.get("resume") and cfg.get("load_from"):
        cfg.trusted_checkpoint = needs_trust(Path(cfg.load_from), Path(cfg.work_dir), trust_load_from)
    hooks = [h for h in cfg.get("custom_hooks") or [] if progress or h.get("type") != "ProgressBarHook"]
    wanted = ["EpochSeedHook"] + (["ProgressBarHook"] if progress else [])  # seeds: a resumed run = an unbroken one
    hooks += [dict(type=name) for name in wanted if not any(h.get("type") == name for h in hooks)]
    cfg.custom_hooks = hooks
    if not progress and cfg.get("train_dataloader"):
        _quiet(cfg.train_dataloader.get("dataset"))
    return cfg


def _quiet(dataset: Any) -> None:
    """``progress=False`` for every dataset in the config (wrappers' ``dataset`` / ``datasets`` included) whose
    class, or a base it passes its keywords to, takes it: e.g. the frozen-tap cache's progress bar."""
    from reusegate.registry import DATASETS

    if not isinstance(dataset, dict):
        return
    cls = DATASETS.get(dataset.get("type")) if isinstance(dataset.get("type"), str) else None
    if cls is not None and any("progress" in inspect.signature(c.__init__).parameters for c in cls.__mro__[:-1]):
        dataset["progress"] = False
    for inner in [dataset.get("dataset"), *(dataset.get("datasets") or [])]:
        _quiet(inner)


def default_work_dir(config: Path) -> str:
    """``work_dirs/<stem>``, or ``work_dirs/<folder>/<stem>`` for a numbered stage of a model's chain
    (``configs/g_frtm_mnv2/1_pretrain.py``): every model has a ``1_pretrain.py``, and their runs must not share a
    folder (``--resume`` would continue another model's run)."""
    stem = config.stem
    return str(Path("work_dirs") / config.parent.name / stem if stem[:1].isdigit() else Path("work_dirs") / stem)


def build_runner(cfg: Any):
    """A ``Runner`` from a config (see :func:`load_config`)."""
    from mmengine.runner import Runner

    return Runner.from_cfg(cfg)


def train(cfg: Any, runner: Any = None):
    """Train (building the runner unless given); a checkpoint :func:`load_config` found trustworthy is
    unpickled in full only while the run trains, and the switch is restored afterwards."""
    runner = runner if runner is not None else build_runner(cfg)
    with trusted_checkpoints(bool(cfg.get("trusted_checkpoint"))):
        runner.train()
    return runner


def run(args: argparse.Namespace) -> int:
    _train(args)  # the runner is dropped when this returns, before the process group goes
    _finish_distributed()
    return 0


def _train(args: argparse.Namespace) -> None:
    cfg = load_config(args.config, args.work_dir, args.resume, parse_cfg_options(args.cfg_options), args.launcher,
                      progress=not args.no_progress, trust_load_from=args.trust_load_from)
    if args.export:  # written after a possibly long training: fail now if it cannot be
        from reusegate.data.writer import check_output_files

        check_output_files(args.export)
    try:
        runner = train(cfg)
    except TypeError as exc:  # mmengine builds every dict(type=...) with its keys as keyword arguments
        if "unexpected keyword argument" not in str(exc):
            raise
        raise ValueError(f"{args.config}: {exc}; a config key is misspelt or does not belong there (compare "
                         f"with the class's arguments)") from exc
    if args.export:
        from mmengine.dist import is_main_process

        from reusegate.integrations.mmengine.model import export_state_dict

        if is_main_process():
            model_cfg = cfg.model
            print(f"exported {export_state_dict(runner.model, args.export, model_cfg.get('host'), model_cfg.get('adapter'))}")
    if runner.rank == 0:
        print(f"logs and checkpoints: {runner.work_dir}")


def _finish_distributed() -> None:
    """Leave the process group together, with nothing left holding it.

    A rank that exits while gloo peers still talk to it can abort them. And the runner's DDP wrapper holds the
    process group: had the group lived into interpreter shutdown, a gloo thread that needs the GIL there is
    unwound and aborts the process ("terminate called without an active exception", about 1 run in 16 of a
    two-rank ``reusegate test``). Collecting the dropped runner first frees the group while Python is alive.
    """
    import gc

    import torch.distributed as dist

    gc.collect()
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
