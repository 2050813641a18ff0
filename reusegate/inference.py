"""Whole-sequence inference (``reusegate run``) and the speed / accuracy benchmark (``reusegate bench``).

Kept apart from the command modules so that the commands, the tests and notebooks share one implementation.

**run** writes ``<out>/<sequence>/<frame>.png`` (DAVIS layout, palette PNGs, each written atomically). A
sequence counts as finished only when its done-marker ``<out>/<sequence>/.done.json`` exists; the marker is
written after the last mask, so a sequence cut off half-way has none and is redone, while finished ones are
skipped. The marker holds the sequence's figures and the settings that produced them, so a resumed run
still summarises every sequence and never mixes results of different settings silently.

**bench** times every variant on the same decoded frames: the bare host (:class:`~reusegate.gate.HostRunner`),
``tau = 1``, each ``tau`` of a list, and all-reuse (``tau = 0``). Variants are interleaved frame by frame
(in a rotating order), so a slow phase of a loaded machine hits all of them alike; every figure that is a
ratio is taken within one run. FLOPs are counted in a second pass (``FlopCounterMode`` slows a step down).
"""
from __future__ import annotations

import argparse

import copy
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from .data.readers import DavisReader, VideoSequence
from .data.writer import ResultWriter, atomic_write_bytes, atomic_write_text, check_writable
from .evaluation.metrics import f_measure, jaccard
from .gate import HostRunner, ReuseGate

__all__ = ["add_model_and_data_arguments", "OTHER_VARIANTS", "DONE_MARKER", "SUMMARY", "load_model", "model_name",
           "set_threads", "segment_sequence", "run_sequences", "parse_shard", "id_tables", "BenchClip", "davis_clips",
           "demo_clips", "bench", "bench_lines", "bench_plot", "DEFAULT_TAUS"]

DONE_MARKER = ".done.json"
SUMMARY = "summary.json"
DEFAULT_TAUS = (1.0, 0.9, 0.8, 0.7, 0.5)


# ---------------------------------------------------------------------------------------------- model
def load_model(path: Optional[Path], tau: Optional[float] = None, variant: str = "translate",
               tau2: float = 0.9) -> ReuseGate:
    """The exported model at ``path`` (NAME.pth with NAME.json beside it), or the embedded default model;
    ``tau=None``: the threshold its ``.json`` recommends."""
    from .pretrained import default_model_path, load_gate

    return load_gate(path if path is not None else default_model_path(), tau=tau, variant=variant, tau2=tau2)


def add_model_and_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Options ``run`` and ``bench`` share: which DAVIS sequences, the thread count and the model."""
    parser.add_argument("--sequences", type=Path, default=None,
                        help="with --davis: text file with one sequence name a line (default: every sequence)")
    parser.add_argument("--resolution", default="480p", help="with --davis: the resolution folder (default: 480p)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice, one per core)")
    parser.add_argument("--model", type=Path, default=None,
                        help="exported model NAME.pth (NAME.json beside it); default: the embedded default model")


def set_threads(threads: Optional[int]) -> None:
    """Intra-op threads for torch; on a machine loaded by other work, fewer threads than cores can be far faster."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)


def model_name(path: Optional[Path]) -> str:
    """How a model is named in summaries and done-markers."""
    from .pretrained import DEFAULT_MODEL

    return f"default:{DEFAULT_MODEL}" if path is None else str(Path(path).resolve())


def _tensor(frame: np.ndarray) -> torch.Tensor:
    """``[3, H, W]`` uint8 view of an ``H x W x 3`` frame (copied only when the array is read-only, as PIL's are)."""
    return torch.from_numpy(np.require(frame, requirements=["C", "W"])).permute(2, 0, 1)


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
    if gate.variant == "oracle" and len(seq.annotated_indices) != len(seq):
        raise ValueError(f"the oracle variant needs the ground truth of every frame, but sequence {seq.name} "
                         f"has {len(seq.annotated_indices)} annotations for {len(seq)} frames")


def segment_sequence(gate: ReuseGate, seq: VideoSequence, writer: ResultWriter, bar: Any = None,
                     relabel: bool = False) -> Dict[str, Any]:
    """Segment ``seq`` frame by frame, write each mask as it comes, and return the sequence's figures.

    FPS counts the model's ``step`` calls after the start frame only (no decoding or writing), as the paper
    reports it. With ``relabel`` (YouTube-VOS), object ids that are not 1..K in start order are renumbered
    for the session and written back with their original ids.
    """
    _check_sequence(gate, seq, relabel)
    tables = id_tables(seq) if relabel else None
    to_session, to_original = tables if tables is not None else (None, None)
    oracle = gate.variant == "oracle"
    session = gate.session()
    names = seq.frame_names
    step_seconds = 0.0
    start = time.perf_counter()
    for i in range(len(seq)):
        frame = _tensor(seq.load_frame(i))
        new = _new_objects(seq, i)
        gt = seq.load_mask(i) if oracle else None
        if to_session is not None:
            new = None if new is None else to_session[new]
            gt = None if gt is None else to_session[gt]
        t0 = time.perf_counter()
        result = session.step(frame, new, gt=gt)
        if i > 0:
            step_seconds += time.perf_counter() - t0
        labels = result.labels.numpy().astype(np.uint8)
        writer.write(seq.name, names[i], labels if to_original is None else to_original[labels])
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
                  relabel: bool = False) -> Dict[str, Any]:
    """Segment every sequence into ``out`` (DAVIS layout), skipping finished ones; write and return the summary.

    ``settings`` (model, tau, variant, ...) is stored in each done-marker and in the summary: a finished
    sequence made with other settings is an error unless ``redo``. With ``shard=(i, N)`` this process takes
    sequences i, i + N, ... of the list; several shards may share ``out``: the summary always covers the whole
    list, merging what every shard has finished so far (read from the done-markers), and says whether it is
    complete, so the last shard to finish leaves the full summary. ``relabel``: see :func:`segment_sequence`.
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
        for name in names:  # other shards' finished sequences
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
                figures = segment_sequence(gate, seq, writer, bar, relabel)
            except BaseException:
                _discard(writer, seq)
                raise
            atomic_write_text(out / seq.name / DONE_MARKER, json.dumps({"settings": settings, "summary": figures}))
            per_sequence[seq.name] = figures
            bar.set_postfix(reuse=f"{100 * figures['reuse_rate']:.0f}%")
            write_summary()
    return write_summary()


# ---------------------------------------------------------------------------------------------- bench
@dataclass
class BenchClip:
    """Decoded frames (``[3, H, W]`` uint8) and ground-truth label maps of one benchmark sequence."""

    name: str
    frames: List[torch.Tensor]
    gt: List[np.ndarray]


def davis_clips(root: Path, sequences: Optional[Path | Iterable[str]] = None, frames: Optional[int] = None,
                resolution: str = "480p") -> List[BenchClip]:
    """The first ``frames`` frames of DAVIS sequences, decoded up front so decoding is never timed."""
    reader = DavisReader(root, year=None, resolution=resolution, sequences=sequences)
    clips = []
    for name in reader.sequences:
        seq = reader.sequence(name)
        if len(seq.annotated_indices) != len(seq):
            raise ValueError(f"sequence {name} is not annotated on every frame; bench scores J&F on every "
                             f"frame, so it needs the full ground truth (a train or val set)")
        n = len(seq) if frames is None else min(frames, len(seq))
        clips.append(BenchClip(name, [_tensor(seq.load_frame(i)) for i in range(n)],
                               [seq.load_mask(i) for i in range(n)]))
    return clips


def demo_clips(frames: Optional[int] = None) -> List[BenchClip]:
    """The embedded synthetic demo clip, for a bench without a dataset."""
    from .synthetic import demo_clip

    clip = demo_clip()
    n = len(clip) if frames is None else min(frames, len(clip))
    return [BenchClip("demo", [_tensor(f) for f in clip.frames[:n]], list(clip.labels[:n]))]


@dataclass
class _Variant:
    """One timed configuration and what the bench collects about it."""

    name: str
    tau: Optional[float]  # None: the bare host
    variant: str = "translate"  # the gate's variant (reusegate.gate.VARIANTS)
    ms: List[float] = field(default_factory=list)
    skipped: int = 0  # frames where the host's deep part did not run
    object_frames: int = 0
    reused: int = 0  # (object, frame) pairs that reused
    flops: List[int] = field(default_factory=list)
    decisions: List[bool] = field(default_factory=list)  # deep computed per timed frame (timing pass)
    flop_decisions: List[bool] = field(default_factory=list)
    j: List[float] = field(default_factory=list)  # per object of every clip
    f: List[float] = field(default_factory=list)
    per_clip: Dict[str, Dict[str, float]] = field(default_factory=dict)


def _tau_name(tau: float) -> str:
    return f"tau={tau:g}"


OTHER_VARIANTS = ("copy", "fusion", "oracle")
"""Variants ``bench`` can add at one threshold besides ``translate`` over the taus (paper §4.2 / Table 3)."""


def _variants(taus: Sequence[float], others: Sequence[str] = (), others_tau: float = 0.7) -> List[_Variant]:
    for t in list(taus) + [others_tau]:
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"every tau must lie in [0, 1], got {t:g}")
    bad = [o for o in others if o not in OTHER_VARIANTS]
    if bad:
        raise ValueError(f"unknown variants {bad}; choose from {OTHER_VARIANTS}")
    middle = sorted({float(t) for t in taus} - {0.0, 1.0}, reverse=True)
    return ([_Variant("host", None), _Variant(_tau_name(1.0), 1.0)] + [_Variant(_tau_name(t), t) for t in middle]
            + [_Variant(_tau_name(0.0), 0.0)]
            + [_Variant(f"{o}@{others_tau:g}", others_tau, variant=o) for o in dict.fromkeys(others)])


def _session(gate: ReuseGate, v: _Variant, count_flops: bool = False):
    """A video session of the bare host (``tau`` None) or of ``gate`` as ``v`` says, sharing the same weights."""
    if v.tau is None:
        return HostRunner(gate.adapter)
    at_tau = copy.copy(gate)  # shallow: same host, adapter and gate modules; only the settings differ
    at_tau.tau, at_tau.variant = v.tau, v.variant
    if v.variant == "fusion" and not gate.tau2 > v.tau:
        raise ValueError(f"the fusion variant needs tau2 > tau, got tau={v.tau:g}, tau2={gate.tau2:g}")
    return at_tau.session(count_flops)


def _step(session, v: _Variant, frame: torch.Tensor, gt: np.ndarray):
    """One step; the oracle variant reads the frame's ground truth."""
    return session.step(frame, gt=gt.astype(np.int64)) if v.variant == "oracle" else session.step(frame)


def _step_flops(session, v: _Variant, frame: torch.Tensor, gt: np.ndarray):
    """One step with its executed FLOPs (the host runner does not count them itself)."""
    if isinstance(session, HostRunner):
        with FlopCounterMode(display=False) as counter:
            result = session.step(frame)
        return result, counter.get_total_flops()
    result = _step(session, v, frame, gt)
    return result, result.flops


def _objects(gt0: np.ndarray) -> List[int]:
    """Object ids as the DAVIS protocol counts them: 1..max of the first ground truth."""
    return list(range(1, int(gt0.max(initial=0)) + 1))


def _check_clips(clips: Sequence[BenchClip]) -> None:
    if not clips:
        raise ValueError("no sequence to benchmark")
    for c in clips:
        if len(c.frames) < 3:
            raise ValueError(f"sequence {c.name} has {len(c.frames)} frames; J&F drops the first and last frame, "
                             f"so bench needs at least 3 (raise --frames)")
        if not _objects(c.gt[0]):
            raise ValueError(f"the first ground-truth frame of {c.name} holds no object")


def _first_step(session, v: _Variant, clip: BenchClip) -> None:
    first = clip.gt[0].astype(np.int64)
    if v.variant == "oracle":
        session.step(clip.frames[0], first, gt=first)
    else:
        session.step(clip.frames[0], first)


def _timing_pass(gate: ReuseGate, variants: List[_Variant], clip: BenchClip) -> None:
    """Every variant on ``clip``, interleaved frame by frame; latency, gate decisions and J / F per object."""
    first = clip.gt[0].astype(np.int64)
    sessions = {v.name: _session(gate, v) for v in variants}
    for v in variants:
        _first_step(sessions[v.name], v, clip)
    ids = _objects(clip.gt[0])
    n = len(clip.frames)
    scores = {v.name: {oid: ([], []) for oid in ids} for v in variants}
    for t in range(1, n):
        k = t % len(variants)
        for v in variants[k:] + variants[:k]:  # rotate, so no variant always runs right after the same one
            t0 = time.perf_counter()
            result = _step(sessions[v.name], v, clip.frames[t], clip.gt[t])
            v.ms.append(1000 * (time.perf_counter() - t0))
            v.decisions.append(result.deep_computed)
            v.skipped += not result.deep_computed
            v.object_frames += len(result.reused)
            v.reused += sum(result.reused.values())
            if t < n - 1:
                labels = result.labels.numpy()
                for oid in ids:
                    scores[v.name][oid][0].append(jaccard(labels == oid, clip.gt[t] == oid))
                    scores[v.name][oid][1].append(f_measure(labels == oid, clip.gt[t] == oid))
    for v in variants:
        js = [float(np.mean(scores[v.name][o][0])) for o in ids]
        fs = [float(np.mean(scores[v.name][o][1])) for o in ids]
        v.j += js
        v.f += fs
        v.per_clip[clip.name] = {"jf": (float(np.mean(js)) + float(np.mean(fs))) / 2,
                                 "ms_per_frame": float(np.mean(v.ms[-(n - 1):]))}


def _flop_pass(gate: ReuseGate, variants: List[_Variant], clip: BenchClip) -> None:
    """FLOPs executed per frame, and the gate decisions, which must match the timing pass's."""
    for v in variants:
        session = _session(gate, v, count_flops=True)
        _first_step(session, v, clip)
        for frame, gt in zip(clip.frames[1:], clip.gt[1:]):
            result, flops = _step_flops(session, v, frame, gt)
            v.flops.append(flops)
            v.flop_decisions.append(result.deep_computed)


def _warm_up(gate: ReuseGate, variants: List[_Variant], clip: BenchClip) -> None:
    """First calls allocate memory and pick kernels: run each variant on a few frames, untimed."""
    for v in variants:
        session = _session(gate, v)
        _first_step(session, v, clip)
        for frame, gt in zip(clip.frames[1:3], clip.gt[1:3]):
            _step(session, v, frame, gt)


def bench(gate: ReuseGate, clips: Sequence[BenchClip], taus: Sequence[float] = DEFAULT_TAUS,
          flops: bool = True, progress: bool = True, others: Sequence[str] = (),
          others_tau: float = 0.7) -> Dict[str, Any]:
    """Measure ``gate`` on ``clips``: latency, FLOPs, reuse rate and J&F per variant, speedups and Amdahl.

    Returns a JSON-ready dict; ``variants`` lists the host, ``tau=1``, the other taus (descending) and
    ``tau=0``. ``reuse_cost`` is c = (reused-frame cost) / (computed-frame cost) from the ``tau=0`` and
    ``tau=1`` latencies, corrected for the frames ``tau=0`` still computed; the Amdahl ideal of a variant
    with skip rate r (fraction of frames whose deep part did not run) is 1 / (1 - r (1 - c)). ``others``
    adds the ``copy``, ``fusion`` (with the gate's ``tau2``) and ``oracle`` variants at ``others_tau``.
    """
    from tqdm import tqdm

    _check_clips(clips)
    variants = _variants(taus, others, others_tau)
    _warm_up(gate, variants, clips[0])
    for clip in tqdm(clips, desc="timing", unit="seq", disable=not progress):
        _timing_pass(gate, variants, clip)
    if flops:
        for clip in tqdm(clips, desc="FLOPs", unit="seq", disable=not progress):
            _flop_pass(gate, variants, clip)

    by_name = {v.name: v for v in variants}
    base, all_reuse = by_name[_tau_name(1.0)], by_name[_tau_name(0.0)]
    ms = {v.name: float(np.mean(v.ms)) for v in variants}
    timed = len(base.ms)

    def cost(reuse_value: float, compute_value: float, skipped: int) -> Optional[float]:
        """Per-frame cost ratio of a reused frame, with tau=0's computed frames taken out."""
        s = skipped / timed
        if s == 0:
            return None
        return (reuse_value / compute_value - (1 - s)) / s

    c_time = cost(ms[all_reuse.name], ms[base.name], all_reuse.skipped)
    c_flops = None
    if flops:
        c_flops = cost(float(np.mean(all_reuse.flops)), float(np.mean(base.flops)), all_reuse.skipped)
    rows = []
    for v in variants:
        skip = v.skipped / len(v.ms)
        ideal = None if v.tau is None or c_time is None else 1 / (1 - skip * (1 - c_time))
        speedup = ms[base.name] / ms[v.name]
        rows.append({
            "name": v.name,
            "tau": v.tau,
            "variant": None if v.tau is None else v.variant,
            "ms_per_frame": ms[v.name],
            "ms_median": float(np.median(v.ms)),
            "fps": 1000 / ms[v.name],
            "speedup": speedup,
            "flops_per_frame": float(np.mean(v.flops)) if flops else None,
            "reuse_rate": v.reused / v.object_frames if v.object_frames else 0.0,
            "skip_rate": skip,
            "j": float(np.mean(v.j)),
            "f": float(np.mean(v.f)),
            "jf": (float(np.mean(v.j)) + float(np.mean(v.f))) / 2,
            "amdahl_ideal": ideal,
            "amdahl_ratio": None if ideal is None else speedup / ideal,
            "flop_pass_same_decisions": (v.decisions == v.flop_decisions) if flops else None,
            "per_sequence": v.per_clip,
        })
    return {
        "sequences": [c.name for c in clips],
        "frames": {c.name: len(c.frames) for c in clips},
        "frame_size": list(clips[0].frames[0].shape[-2:]),
        "timed_frames_per_variant": timed,
        "threads": torch.get_num_threads(),
        "reuse_cost": c_time,
        "reuse_cost_flops": c_flops,
        "overhead_tau1": ms[base.name] / ms["host"] - 1,
        "variants": rows,
    }


def bench_lines(report: Dict[str, Any]) -> List[str]:
    """The bench table and its derived figures, as printed by ``reusegate bench``."""

    def num(value: Optional[float], fmt: str) -> str:
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)

    head = (f"{'variant':<10}{'ms/frame':>10}{'FPS':>8}{'speedup':>9}{'GFLOP/fr':>10}{'reuse %':>9}"
            f"{'J&F':>7}{'Amdahl':>8}{'ach/ideal':>10}")
    lines = [f"{len(report['sequences'])} sequences ({', '.join(report['sequences'])}), "
             f"{report['timed_frames_per_variant']} timed frames per variant at "
             f"{report['frame_size'][1]}x{report['frame_size'][0]}, {report['threads']} threads", head]
    for r in report["variants"]:
        gflops = None if r["flops_per_frame"] is None else r["flops_per_frame"] / 1e9
        lines.append(f"{r['name']:<10}{r['ms_per_frame']:>10.1f}{r['fps']:>8.2f}{r['speedup']:>9.3f}"
                     f"{num(gflops, '.3f'):>10}{100 * r['reuse_rate']:>9.1f}{100 * r['jf']:>7.1f}"
                     f"{num(r['amdahl_ideal'], '.3f'):>8}{num(r['amdahl_ratio'], '.3f'):>10}")
    lines.append(f"c = reused / computed frame cost: {num(report['reuse_cost'], '.3f')} (time), "
                 f"{num(report['reuse_cost_flops'], '.3f')} (FLOPs)")
    lines.append(f"wrapper overhead at tau=1 vs bare host: {100 * report['overhead_tau1']:+.2f} %")
    return lines


def bench_plot(report: Dict[str, Any], path: Path) -> Path:
    """J&F against FPS over tau (the paper's Fig. 6), the bare host as a separate point; PNG, written atomically."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gated = [r for r in report["variants"] if r["tau"] is not None and r.get("variant", "translate") == "translate"]
    others = [r for r in report["variants"] if r["tau"] is not None and r.get("variant", "translate") != "translate"]
    host = next(r for r in report["variants"] if r["tau"] is None)
    fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
    ax.plot([r["fps"] for r in gated], [100 * r["jf"] for r in gated], marker="o", label="reuse gate over tau")
    for r in gated:
        ax.annotate(f"τ={r['tau']:g}", (r["fps"], 100 * r["jf"]), textcoords="offset points", xytext=(4, 4),
                    fontsize=8)
    for r in others:
        ax.plot([r["fps"]], [100 * r["jf"]], marker="s", ls="", label=r["name"])
    ax.plot([host["fps"]], [100 * host["jf"]], marker="*", ms=12, ls="", color="k", label="bare host")
    ax.set_xlabel("FPS")
    ax.set_ylabel("J&F (%)")
    ax.set_title(f"J&F vs FPS over tau ({len(report['sequences'])} sequences)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
