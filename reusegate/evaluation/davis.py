"""Semi-supervised J&F over a results folder, with davis2017-evaluation's numbers and CSV files.

Protocol (davis2017-evaluation's): objects are ids 1..K with K the largest id in the first
ground-truth frame; frame 0 and the last frame are excluded; per object, mean / recall / decay of J and F
over the kept frames; global numbers are means over all objects of all sequences. Ground truth in the
DAVIS-2016 0/255 encoding is read as object 1 (and so is a 0/255 prediction for it), instead of being
turned into void as the official script would.

One deliberate difference: the official script exits when a prediction carries an id above K; here the
extra id is scored as background for every real object (what vos-benchmark reports) and listed in
``EvaluationResult.extra_objects``.

Sequences are evaluated in worker processes (one per core); boundary maps are vectorised numpy and the
tolerance dilation runs on the boundaries' bounding box only (see :mod:`.metrics`).

Public API::

    evaluate_sequences(gt_root, pred_dir, sequences=None, processes=None, progress=False) -> EvaluationResult
    result.jf_mean, result.j_mean, result.j_recall, result.j_decay, result.f_mean, ...
    result.global_row() -> dict;  result.write_csvs(out_dir, set_name) -> (global_csv, per_sequence_csv)
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reusegate.data.readers import _check_numbering, decode_mask, detect_encoding, read_raw_mask, read_sequence_list
from reusegate.data.writer import atomic_write_text
from reusegate.evaluation._parallel import parallel_map
from reusegate.evaluation.metrics import db_statistics, f_measure, jaccard

__all__ = ["evaluate_sequences", "EvaluationResult", "ObjectResult", "annotations_dir", "GLOBAL_COLUMNS"]

GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
SEQUENCE_COLUMNS = ("Sequence", "J-Mean", "F-Mean")


@dataclass
class ObjectResult:
    """Per-frame J and F of one object over the kept frames, and their statistics."""

    sequence: str
    object_id: int
    j: np.ndarray
    f: np.ndarray
    j_stats: tuple[float, float, float] = field(init=False)
    f_stats: tuple[float, float, float] = field(init=False)

    def __post_init__(self) -> None:
        self.j_stats = db_statistics(self.j)
        self.f_stats = db_statistics(self.f)

    @property
    def name(self) -> str:
        return f"{self.sequence}_{self.object_id}"


@dataclass
class EvaluationResult:
    objects: list[ObjectResult]
    extra_objects: dict[str, list[int]] = field(default_factory=dict)

    def _mean(self, attr: str, k: int) -> float:
        if not self.objects:
            raise ValueError("no object was evaluated")
        return float(np.mean([getattr(o, attr)[k] for o in self.objects]))

    j_mean = property(lambda self: self._mean("j_stats", 0))
    j_recall = property(lambda self: self._mean("j_stats", 1))
    j_decay = property(lambda self: self._mean("j_stats", 2))
    f_mean = property(lambda self: self._mean("f_stats", 0))
    f_recall = property(lambda self: self._mean("f_stats", 1))
    f_decay = property(lambda self: self._mean("f_stats", 2))

    @property
    def jf_mean(self) -> float:
        return (self.j_mean + self.f_mean) / 2

    @property
    def sequences(self) -> list[str]:
        return list(dict.fromkeys(o.sequence for o in self.objects))

    def global_row(self) -> dict[str, float]:
        values = (self.jf_mean, self.j_mean, self.j_recall, self.j_decay, self.f_mean, self.f_recall,
                  self.f_decay)
        return dict(zip(GLOBAL_COLUMNS, values))

    def global_csv(self) -> str:
        row = self.global_row()
        return ",".join(GLOBAL_COLUMNS) + "\n" + ",".join(f"{row[c]:.3f}" for c in GLOBAL_COLUMNS) + "\n"

    def per_sequence_csv(self) -> str:
        lines = [",".join(SEQUENCE_COLUMNS)]
        lines += [f"{o.name},{o.j_stats[0]:.3f},{o.f_stats[0]:.3f}" for o in self.objects]
        return "\n".join(lines) + "\n"

    def write_csvs(self, out_dir: str | os.PathLike, set_name: str = "val") -> tuple[Path, Path]:
        """``global_results-<set>.csv`` and ``per-sequence_results-<set>.csv`` as davis2017-evaluation writes."""
        out_dir = Path(out_dir)
        g = atomic_write_text(out_dir / f"global_results-{set_name}.csv", self.global_csv())
        s = atomic_write_text(out_dir / f"per-sequence_results-{set_name}.csv", self.per_sequence_csv())
        return g, s


def annotations_dir(gt_root: str | os.PathLike) -> Path:
    """The folder holding ``<sequence>/<frame>.png``: a DAVIS root, its Annotations folder, or that itself."""
    root = Path(gt_root)
    if not root.is_dir():
        raise FileNotFoundError(f"ground-truth folder {root} does not exist; pass the DAVIS root")
    for cand in (root / "Annotations" / "480p", root / "Annotations"):
        if cand.is_dir():
            return cand
    # Without Annotations/, the folder itself must look like one: every subfolder holds PNG annotations.
    # Otherwise a wrong path (e.g. /tmp) would have every stray folder scored as a sequence.
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    strays = [p.name for p in folders if not _holds_png(p)]
    if not folders or strays:
        what = f"its folders {strays[:3]}{' ...' if len(strays) > 3 else ''} hold no PNG" if strays else \
            "it holds no sequence folder"
        raise ValueError(f"{root} has no Annotations/ folder and is not a folder of <sequence>/<frame>.png "
                         f"annotations either ({what}); pass the DAVIS root (holding Annotations/480p)")
    return root


def _holds_png(folder: Path) -> bool:
    try:
        return any(f.suffix.lower() == ".png" for f in folder.iterdir())
    except OSError:  # unreadable: not an annotation folder
        return False


def _missing_result(path: Path) -> str:
    return (f"results folder is missing {path}; write a mask for every ground-truth frame (frame 0 "
            f"included) as <pred>/<sequence>/<frame>.png")


def _pred_labels(path: Path, shape: tuple[int, int], gt_binary: bool) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(_missing_result(path))
    raw, _ = read_raw_mask(path)
    if raw.shape != shape:
        raise ValueError(f"result {path} is {raw.shape[1]}x{raw.shape[0]} but its ground truth is "
                         f"{shape[1]}x{shape[0]}; write results at the annotation size")
    if gt_binary and raw.max(initial=0) == 255 and np.isin(np.unique(raw), (0, 255)).all():
        return (raw > 128).astype(np.uint8)
    return raw


def _evaluate_one(job: tuple[str, str, str]) -> tuple[str, list[tuple[int, np.ndarray, np.ndarray]], list[int]]:
    gt_dir, pred_dir, name = Path(job[0]), Path(job[1]), job[2]
    seq_gt, seq_pred = gt_dir / name, pred_dir / name
    if not seq_gt.is_dir():
        raise FileNotFoundError(f"ground-truth sequence {seq_gt} does not exist; fix the sequence list")
    if not seq_pred.is_dir():
        raise FileNotFoundError(f"results folder {seq_pred} does not exist; run the tracker on sequence "
                                f"{name} or leave it out of the sequence list")
    frames = sorted(p for p in seq_gt.iterdir() if p.suffix.lower() == ".png")
    if len(frames) < 3:
        raise ValueError(f"{seq_gt} has {len(frames)} annotations; the semi-supervised protocol drops the "
                         f"first and last frame, so it needs at least 3")
    _check_numbering(frames)
    raw0, mode0 = read_raw_mask(frames[0])
    encoding = detect_encoding(raw0, mode0)
    first = decode_mask(raw0, encoding, mode0)[0]
    n_obj = int(first.max(initial=0))
    if n_obj == 0:
        raise ValueError(f"first annotation {frames[0]} contains no object; nothing to evaluate")
    ids = np.arange(1, n_obj + 1)
    kept = frames[1:-1]
    # Every result file is checked before any score is computed: a missing frame fails fast.
    for p in frames:
        if not (seq_pred / p.name).is_file():
            raise FileNotFoundError(_missing_result(seq_pred / p.name))
    j = np.empty((n_obj, len(kept)))
    f = np.empty((n_obj, len(kept)))
    extra: set[int] = set()
    for t, path in enumerate(frames):
        pred = _pred_labels(seq_pred / path.name, first.shape, encoding == "binary")
        top = int(pred.max(initial=0))
        if top > n_obj:
            extra.update(int(v) for v in np.unique(pred) if v > n_obj)
        if t == 0 or t == len(frames) - 1:
            continue
        gt = decode_mask(*_gt_raw(path, first.shape, encoding))[0]
        for k, oid in enumerate(ids):
            pm, gm = pred == oid, gt == oid
            j[k, t - 1] = jaccard(pm, gm)
            f[k, t - 1] = f_measure(pm, gm)
    return name, [(int(o), j[k], f[k]) for k, o in enumerate(ids)], sorted(extra)


def _gt_raw(path: Path, shape: tuple[int, int], encoding: str) -> tuple[np.ndarray, str, str]:
    raw, mode = read_raw_mask(path)
    if raw.shape != shape:
        raise ValueError(f"annotation {path} is {raw.shape[1]}x{raw.shape[0]} but the sequence's first "
                         f"annotation is {shape[1]}x{shape[0]}; re-export it at one size")
    return raw, encoding, mode


def _sequence_names(gt_dir: Path, sequences: Iterable[str] | str | os.PathLike | None) -> list[str]:
    if sequences is None:
        names = sorted(p.name for p in gt_dir.iterdir() if p.is_dir())
        if not names:
            raise ValueError(f"{gt_dir} holds no sequence folder")
        return names
    if isinstance(sequences, (str, os.PathLike)):
        return read_sequence_list(sequences)
    return list(sequences)


def evaluate_sequences(gt_root: str | os.PathLike, pred_dir: str | os.PathLike,
                       sequences: Iterable[str] | str | os.PathLike | None = None,
                       processes: int | None = None, progress: bool = False) -> EvaluationResult:
    """J&F of ``<pred_dir>/<seq>/<frame>.png`` against the ground truth, davis2017-evaluation style.

    ``sequences``: names, a list file, or None for every sequence folder of the ground truth.
    ``processes``: worker processes (default: one per core, at most one per sequence; 1 = in-process).
    """
    gt_dir = annotations_dir(gt_root)
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise FileNotFoundError(f"results folder {pred_dir} does not exist; pass the folder holding "
                                f"<sequence>/<frame>.png")
    names = _sequence_names(gt_dir, sequences)
    jobs = [(str(gt_dir), str(pred_dir), n) for n in names]
    outputs = parallel_map(_evaluate_one, jobs, processes, "J&F", progress)
    objects = [ObjectResult(name, oid, j, f) for name, objs, _ in outputs for oid, j, f in objs]
    extra = {name: ids for name, _, ids in outputs if ids}
    return EvaluationResult(objects, extra)
