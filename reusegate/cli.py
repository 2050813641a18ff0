"""The ``reusegate`` command line. Each sub-command lives in its own module under :mod:`reusegate.commands`.

A command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; this file
finds them, so adding a command touches no shared code.

Errors: anything a user can fix (bad paths, bad files, bad settings, a missing optional package, a broken
plugin, a disk that is full or not writable) prints one line ``reusegate COMMAND: error: ...`` and exits with
2; ``--debug`` adds the traceback. Ctrl-C exits with 130. Anything else is a bug: it prints the traceback
and exits with 1.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import pickle
import pkgutil
import re
import sys
import traceback
import warnings
from typing import Callable, Sequence

from reusegate import commands
from reusegate.plugins.manager import PluginError, PluginWarning

DESCRIPTION = ("Make a video object segmentation network faster on slow-moving video with the reuse gate "
               "(Park et al., CVPR 2021): segment videos, evaluate J&F, benchmark speed, train.")
EPILOG = "Run 'reusegate COMMAND --help' for the options of a command; 'reusegate demo' is the quickest start."
EXIT_USER_ERROR = 2
EXIT_BUG = 1
EXIT_INTERRUPTED = 130

USER_ERRORS = (ValueError, KeyError, OSError, ImportError, PluginError, pickle.UnpicklingError)
"""Exceptions whose message tells the user what to fix; everything else is reported as a bug."""

# Optional packages a command may need, and how to get them (module name -> install hint).
_INSTALL_HINTS = {
    "mmcv": 'install mmcv-lite, reusegate\'s "mmcv" extra: pip install "mmcv-lite>=2.1,<2.3"',
    "onnx": 'install reusegate\'s "onnxruntime" or "openvino" extra: pip install "reusegate[onnxruntime]"',
    "onnxruntime": 'install reusegate\'s "onnxruntime" extra: pip install "reusegate[onnxruntime]"',
    "openvino": 'install reusegate\'s "openvino" extra: pip install "reusegate[openvino]"',
}


def _version() -> str:
    """``reusegate X (torch Y, Python Z)``: what a bug report needs first."""
    import importlib.metadata as md
    import platform

    try:
        own = md.version("reusegate")
    except md.PackageNotFoundError:
        own = "(not installed: run pip install -e . in the checkout)"
    try:
        torch_version = md.version("torch")
    except md.PackageNotFoundError:
        torch_version = "missing"
    return f"reusegate {own} (torch {torch_version}, Python {platform.python_version()})"


def _add_debug(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show the full traceback of an error (for bug reports)")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per module in :mod:`reusegate.commands`."""
    parser = argparse.ArgumentParser(prog="reusegate", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=_version())
    _add_debug(parser, False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        _add_debug(p, argparse.SUPPRESS)  # SUPPRESS: `reusegate --debug run` is not reset by the sub-parser
        p.set_defaults(_run=module.run)
    return parser


def describe_error(exc: BaseException) -> str:
    """One line that says what went wrong and, where the exception alone does not, how to fix it."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, ModuleNotFoundError):
        named = exc.name or next(iter(re.findall(r"No module named '([\w.]+)'", str(exc))), "")
        top = named.split(".")[0]  # (mmengine re-raises without .name, so the message is read too)
        hint = _INSTALL_HINTS.get(top, f"install it with pip install {top}")
        return f"this needs the Python package {top!r}, which is not installed: {hint}"
    if isinstance(exc, pickle.UnpicklingError):
        return (f"refused to load a file that holds pickled Python objects besides tensors ({exc}); reusegate "
                f"loads checkpoints with torch.load(weights_only=True), so such a file could run code. Load only "
                f"files you trust, and re-export them as plain state dicts")
    if isinstance(exc, OSError) and exc.strerror:  # raised by the OS (ours carry only a message)
        where = f": {exc.filename}" if exc.filename else ""
        fix = {errno.ENOSPC: "free some space or write to another disk",
               errno.EDQUOT: "free some space or write to another disk",
               errno.EACCES: "choose a folder you can write to, or fix its permissions",
               errno.EPERM: "choose a folder you can write to, or fix its permissions",
               errno.EROFS: "choose a folder on a writable file system",
               errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
               errno.EEXIST: "a file of that name is in the way: choose another path"}.get(exc.errno or 0, "check the path")
        return f"{exc.strerror}{where}; {fix}"
    return str(exc)


def _show_plugin_warnings(default: Callable[..., None]) -> Callable[..., None]:
    """A skipped plugin is news for the user, not a developer's source line: print it as one line."""
    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, PluginWarning):
            print(f"reusegate: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)
    return show


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; errors a user can fix print one line, not a traceback."""
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_plugin_warnings(warnings.showwarning)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"\nreusegate {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except USER_ERRORS as exc:
        if args.debug:
            traceback.print_exc()
        print(f"reusegate {args.command}: error: {describe_error(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception:
        traceback.print_exc()
        print(f"reusegate {args.command}: internal error (a bug in reusegate or a library it uses); please "
              f"report it with the traceback above and the output of 'reusegate --version'", file=sys.stderr)
        return EXIT_BUG


if __name__ == "__main__":
    sys.exit(main())
