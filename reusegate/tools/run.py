"""Whole-sequence inference (``reusegate run``): segment, write, resume, shard, summarise.

Kept apart from the command modules so that the commands, the tests and notebooks share one implementation;
the speed / accuracy benchmark (``reusegate bench``) is :mod:`reusegate.tools.bench`.

**run** writes ``<out>/<sequence>/<frame>.png`` (DAVIS layout, palette PNGs, each written atomically). A
sequence counts as finished only when its done-marker ``<out>/<sequence>/.done.json`` exists; the marker is
written after the last mask, so a sequence cut off half-way has none and is redone, while finished ones are
skipped. The marker holds the sequence's figures and the settings that produced them, so a resumed run
still summarises every sequence and never mixes results of different settings silently.

"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from reusegate.core.controller import budget_figures
from reusegate.core.device import synchronize
from reusegate.core.gate import ReuseGate
from reusegate.core.session import frame_tensor
from reusegate.data.readers import VideoSequence
from reusegate.data.writer import ResultWriter, atomic_write_text, check_writable
from reusegate.tools.report import FrameRecord

__all__ = ["DONE_MARKER", "SUMMARY", "load_model", "model_name", "set_threads", "segment_sequence", "run_sequences",
           "parse_shard", "id_tables"]

DONE_MARKER = ".done.json"
SUMMARY = "summary.json"


# ---------------------------------------------------------------------------------------------- model
def load_model(path: Union[str, Path, None], tau: Optional[float] = None, variant: Optional[str] = None,
               tau2: Optional[float] = None, optimize: bool = True, preset: Optional[str] = None,
               reuse_path: Optional[str] = None, device: Union[str, torch.device, None] = None,
               window: Optional[float] = None, reuse_precision: Optional[str] = None) -> ReuseGate:
    """The exported model at ``path`` (NAME.pth with NAME.json beside it), or the embedded model it names
    (``fast``, ``accurate``; ``None``: the default), ready for inference, with the config its ``.json`` recommends
    and each setting given here in its place (:func:`reusegate.zoo.catalog.load_gate`). ``optimize``: BatchNorm
    folded and channels-last weights (:func:`reusegate.tools.optimize.for_inference`: the same function, faster on
    CPU); ``preset``: one of the ``.json``'s inference presets; ``device``: where it runs (``None``: the CPU)."""
    from reusegate.tools.optimize import for_inference
    from reusegate.zoo.catalog import load_gate

    gate = load_gate(path, tau=tau, variant=variant, tau2=tau2, preset=preset, reuse_path=reuse_path, device=device,
                     window=window, reuse_precision=reuse_precision)
    return for_inference(gate) if optimize else gate


def set_threads(threads: Optional[int]) -> None:
    """Intra-op threads for torch; on a machine loaded by other work, fewer threads than cores can be far faster."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)


def model_name(path: Union[str, Path, None]) -> str:
    """How a model is named in summaries and done-markers: ``embedded:NAME`` or the file's absolute path."""
    from reusegate.zoo.catalog import embedded_name, model_path

    resolved = model_path(path)
    if embedded_name(resolved.stem) is not None and resolved == model_path(resolved.stem):
        return f"embedded:{resolved.stem}"
    return str(resolved.resolve())


def gate_settings(model: Union[str, Path, None], gate: ReuseGate) -> Dict[str, Any]:
    """What a run's results depend on besides the frames, for summaries and done-markers: the model's name and
    the gate's threshold, variant (with fusion's ``tau2``), gate input and reuse path (the last two come from the
    model's ``.json``), and the window and a reuse precision other than float32 where there are."""
    c = gate.config
    return {"model": model_name(model), "tau": c.tau, "variant": c.variant,
            **({"tau2": c.tau2} if c.variant == "fusion" else {}),
            "gate_input": gate.gate_modules.gate_input, "reuse_path": c.reuse_path,
            **({"window": c.window} if c.window is not None else {}),
            **({"reuse_precision": c.reuse_precision} if c.reuse_precision != "float32" else {})}


def _new_objects(seq: VideoSequence, i: int) -> Optional[np.ndarray]:
    """The label map of the objects that start on frame ``i`` (others set to 0), or None."""
    ids = seq.new_objects(i)
    if not ids:
        return None
    labels = seq.load_mask(i)
    return np.where(np.isin(labels, ids), labels, 0).astype(np.uint8)


# ---------------------------------------------------------------------------------------------- run
def id_tables(seq: VideoSequence) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """Lookup tables (original id -> session id, session id -> original id) for a video whose object ids are not
    1..K in the order the objects start (YouTube-VOS), or None when they already are.

    A session numbers objects 1..K as they start, so the objects are ranked by (start frame, id)."""
    order = sorted(seq.start_frames, key=lambda o: (seq.start_frames[o], o))
    if order == list(range(1, len(order) + 1)):
        return None
    if max(order) > 255 or min(order) < 1:
        raise ValueError(f"sequence {seq.name} has object ids {order}; ids must lie in 1..255 (PNG masks)")
    to_session, to_original = np.zeros(256, np.uint8), np.zeros(256, np.uint8)
    for k, oid in enumerate(order, start=1):
        to_session[oid], to_original[k] = k, oid
    return to_session, to_original


def _check_sequence(gate: ReuseGate, seq: VideoSequence, relabel: bool = False) -> None:
    """Fail before any computation on what would otherwise stop a run half-way."""
    seq.object_ids  # noqa: B018 -- reads the first mask: an empty one is an error naming the file
    first = seq.new_objects(0)
    present = sorted(int(i) for i in np.unique(seq.load_mask(0)) if i in first)
    if relabel:
        id_tables(seq)  # ids out of range fail here
    elif present != first:
        raise ValueError(f"first-frame mask {seq.mask_paths[0]} holds object ids {present}; ids must run 1..K "
                         f"without gaps (missing: {sorted(set(first) - set(present))}) — relabel the mask")
    if gate.config.variant == "oracle" and len(seq.annotated_indices) != len(seq):
        raise ValueError(f"the oracle variant needs the ground truth of every frame, but sequence {seq.name} "
                         f"has {len(seq.annotated_indices)} annotations for {len(seq)} frames")


def segment_sequence(gate: ReuseGate, seq: VideoSequence, writer: ResultWriter, bar: Any = None,
                     relabel: bool = False, budget: Optional[Dict[str, float]] = None) -> Dict[str, Any]:
    """Segment ``seq`` frame by frame, write each mask as it comes, and return the sequence's figures.

    FPS counts the model's ``step`` calls after the start frame only (no decoding or writing), as the paper
    reports it. With ``relabel`` (YouTube-VOS), object ids that are not 1..K in start order are renumbered
    for the session and written back with their original ids. ``budget``: ``target_fps`` or ``budget_ms`` (and
    ``tau_min``) of a latency-budget session (:meth:`ReuseGate.session`). The figures hold the gate's record per
    frame (``tau``, reused objects, ``p_reuse`` per object), which the overlay and the report draw.
    """
    _check_sequence(gate, seq, relabel)
    tables = id_tables(seq) if relabel else None
    to_session, to_original = tables if tables is not None else (None, None)
    oracle = gate.config.variant == "oracle"
    session = gate.session(**(budget or {}))
    names = seq.frame_names
    record = FrameRecord()
    step_seconds = 0.0
    start = time.perf_counter()
    for i in range(len(seq)):
        frame = frame_tensor(seq.load_frame(i))
        new = _new_objects(seq, i)
        gt = seq.load_mask(i) if oracle else None
        if to_session is not None:
            new = None if new is None else to_session[new]
            gt = None if gt is None else to_session[gt]
        t0 = time.perf_counter()
        result = session.step(frame, new, gt=gt)
        synchronize(session.device)
        if i > 0:
            step_seconds += time.perf_counter() - t0
        labels = result.labels.cpu().numpy().astype(np.uint8)
        writer.write(seq.name, names[i], labels if to_original is None else to_original[labels])
        record.add(result, session.config.tau, to_original)
        if bar is not None:
            bar.update(1)
    stats = session.stats()
    return {
        "frames": len(seq),
        "reuse_rate": stats["reuse_rate"],
        "reuse_rate_weighted": stats["reuse_rate_weighted"],
        "reuse_rate_per_object": {str(k if to_original is None else int(to_original[k])): v
                                  for k, v in stats["per_object"].items()},
        "deep_frames": stats["deep_frames"],
        "fps": (len(seq) - 1) / step_seconds if step_seconds > 0 else None,
        "step_seconds": step_seconds,
        "wall_seconds": time.perf_counter() - start,
        **record.figures(),
        **({"budget": budget_figures(stats)} if budget else {}),
    }


def _finished(seq: VideoSequence, seq_dir: Path, settings: Dict[str, Any], redo: bool) -> Optional[Dict[str, Any]]:
    """The stored figures of a finished sequence, or None when it has to be (re)computed."""
    marker = seq_dir / DONE_MARKER
    if not marker.is_file():
        return None
    if redo:
        marker.unlink()
        return None
    try:
        info = json.loads(marker.read_text())
        stored, figures = info["settings"], info["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        marker.unlink()  # damaged marker: the sequence is not known to be finished
        return None
    if stored != settings:
        raise ValueError(f"{seq_dir} holds results made with {stored}, not {settings}; pass another --out, "
                         f"or --redo to recompute every sequence")
    if any(not (seq_dir / f"{n}.png").is_file() for n in seq.frame_names):
        marker.unlink()  # masks were removed since: redo the sequence
        return None
    return figures


def _discard(writer: ResultWriter, seq: VideoSequence) -> None:
    """Remove the masks a failed or interrupted sequence wrote, so its folder never looks half done (it has
    no done-marker either way, and a later run redoes it from the start)."""
    for name in seq.frame_names:
        writer.path(seq.name, name).unlink(missing_ok=True)
    folder = writer.out_dir / seq.name
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def _totals(per_sequence: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    seconds = sum(s["step_seconds"] for s in per_sequence.values())
    timed = sum(s["frames"] - 1 for s in per_sequence.values())
    return {
        "sequences": len(per_sequence),
        "frames": sum(s["frames"] for s in per_sequence.values()),
        "reuse_rate": float(np.mean([s["reuse_rate"] for s in per_sequence.values()])) if per_sequence else None,
        "fps": timed / seconds if seconds > 0 else None,
    }


def parse_shard(text: Optional[str]) -> Optional[tuple[int, int]]:
    """``'i/N'`` (0-based shard i of N) -> ``(i, N)``; None passes through."""
    if text is None:
        return None
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes i/N with 0 <= i < N (e.g. 0/2 and 1/2), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard takes i/N with 0 <= i < N (e.g. 0/2 and 1/2), got {text!r}")
    return i, n


def _stored_figures(seq_dir: Path, settings: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Read-only: the figures another process (shard) stored for a finished sequence with these settings."""
    try:
        info = json.loads((seq_dir / DONE_MARKER).read_text())
    except (OSError, ValueError):
        return None
    return info.get("summary") if isinstance(info, dict) and info.get("settings") == settings else None


def run_sequences(gate: ReuseGate, sequences: Sequence[VideoSequence], out: Path, settings: Dict[str, Any],
                  redo: bool = False, progress: bool = True, shard: Optional[tuple[int, int]] = None,
                  relabel: bool = False, budget: Optional[Dict[str, float]] = None) -> Dict[str, Any]:
    """Segment every sequence into ``out`` (DAVIS layout), skipping finished ones; write and return the summary.

    ``settings`` (model, tau, variant, ...) is stored in each done-marker and in the summary: a finished
    sequence made with other settings is an error unless ``redo``. With ``shard=(i, N)`` this process takes
    sequences i, i + N, ... of the list; several shards may share ``out``: the summary always covers the whole
    list, merging what every shard has finished so far (read from the done-markers), and says whether it is
    complete, so the last shard to finish leaves the full summary. ``relabel``, ``budget``: see
    :func:`segment_sequence`.
    """
    from tqdm import tqdm

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; pass a folder for the results")
    names = [s.name for s in sequences]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"sequence names {dupes} appear twice; each sequence needs its own result folder")
    mine = list(sequences) if shard is None else list(sequences)[shard[0]::shard[1]]
    for seq in mine:
        _check_sequence(gate, seq, relabel)
    writer = ResultWriter(out)
    per_sequence: Dict[str, Dict[str, Any]] = {}
    resumed: List[str] = []
    todo = []
    for seq in mine:
        figures = _finished(seq, out / seq.name, settings, redo)
        if figures is None:
            todo.append(seq)
        else:
            per_sequence[seq.name] = figures
            resumed.append(seq.name)

    def write_summary() -> Dict[str, Any]:
        others = names if shard is not None else []  # unsharded, every sequence is this process's own
        for name in others:  # other shards' finished sequences
            if name not in per_sequence:
                figures = _stored_figures(out / name, settings)
                if figures is not None:
                    per_sequence[name] = figures
        ordered = {n: per_sequence[n] for n in names if n in per_sequence}
        summary = {"settings": settings, "sequences": ordered, "resumed": resumed, "total": _totals(ordered),
                   "complete": len(ordered) == len(names)}
        if shard is not None:
            summary["shard"] = f"{shard[0]}/{shard[1]}"
        atomic_write_text(out / SUMMARY, json.dumps(summary, indent=2))
        return summary

    if todo:
        check_writable(out)
    with tqdm(total=sum(len(s) for s in todo), unit="frame", disable=not progress) as bar:
        for seq in todo:
            bar.set_description(seq.name)
            try:
                figures = segment_sequence(gate, seq, writer, bar, relabel, budget)
            except BaseException:
                _discard(writer, seq)
                raise
            atomic_write_text(out / seq.name / DONE_MARKER, json.dumps({"settings": settings, "summary": figures}))
            per_sequence[seq.name] = figures
            if budget:  # the next video starts where this one's controller ended: the machine is the same
                budget = {**budget, "tau_start": figures["budget"]["tau_end"]}
            bar.set_postfix(reuse=f"{100 * figures['reuse_rate']:.0f}%")
            write_summary()
    return write_summary()
