"""The one way reusegate reads a weight file: ``torch.load(weights_only=True)``, with errors that name the file.

A checkpoint is a pickle, and unpickling can run arbitrary code. ``weights_only=True`` lets torch rebuild only
tensors and plain containers; anything else is refused before it runs. Here that refusal (and a damaged or
non-torch file) becomes one :class:`ValueError` that says which file, why, and what to do, instead of torch's
multi-paragraph message.

Public API::

    load_weights(path, map_location="cpu") -> object      # tensors, dicts, lists, numbers, strings
    unsafe_globals(path) -> list[str]                     # what besides tensors it would unpickle; runs nothing
    UnsafeCheckpointError                                 # ValueError: the file holds pickled code
"""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["load_weights", "unsafe_globals", "UnsafeCheckpointError"]


class UnsafeCheckpointError(ValueError):
    """The file holds pickled Python objects besides tensors; loading it with full unpickling could run code."""


def unsafe_globals(path: str | os.PathLike) -> list[str]:
    """The globals besides tensors that the file's pickle refers to (empty: it loads with ``weights_only``).

    Nothing in the file is executed: torch >= 2.5 reads the pickle's opcodes; older torch tries a
    ``weights_only=True`` load, which refuses before running anything.

    Raises:
        ValueError: not a torch file, or damaged.
    """
    path = Path(path)
    damaged = ValueError(f"cannot read {path}: it is not a torch weight file, or it is damaged; export or "
                         f"download it again")
    try:
        from torch.serialization import get_unsafe_globals_in_checkpoint
    except ImportError:  # torch < 2.5
        if not zipfile.is_zipfile(path):  # torch has saved zip files since 1.6
            raise damaged from None
        try:
            torch.load(path, map_location="cpu", weights_only=True)
            return []
        except pickle.UnpicklingError:
            return ["(objects that weights_only=True refuses)"]
        except Exception:
            raise damaged from None
    try:
        return list(get_unsafe_globals_in_checkpoint(str(path)))
    except Exception:
        raise damaged from None


def load_weights(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Read a torch file with ``weights_only=True``.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: it holds pickled objects that are not tensors (possibly code); not loaded.
        ValueError: it is damaged, truncated or not a torch file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        unsafe = unsafe_globals(path)  # a file that is no torch zip at all raises ValueError here
        if unsafe:
            shown = ", ".join(unsafe[:5]) + (" ..." if len(unsafe) > 5 else "")
            raise UnsafeCheckpointError(
                f"refused to load {path}: besides tensors it pickles {shown}, and unpickling that could run "
                f"code. reusegate loads weights with torch.load(weights_only=True) only; if the file is from a "
                f"source you trust, re-save its tensors as a plain state dict (torch.save(model.state_dict(), "
                f"path))") from None
        raise ValueError(f"cannot read {path}: it is not a torch weight file, or it is damaged; export or "
                         f"download it again") from None
    except (RuntimeError, EOFError) as exc:
        detail = str(exc).split(". ")[0][:120]
        raise ValueError(f"cannot read {path}: the file is truncated or damaged ({detail}); "
                         f"export or download it again") from None
