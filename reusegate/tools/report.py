"""What a user sees of a ``reusegate run``: the gate's record per frame, an overlay video and a timeline per
sequence (``run --overlay``), and one ``index.html`` for the whole run (``run --report``).

Everything is drawn from what the run left on disk -- the frames, the written masks and the per-frame record
(:class:`FrameRecord`) in each sequence's figures -- so sequences a previous run finished get their pictures too.
The report embeds its timelines as data URIs and links each overlay by a relative path: it opens from disk, with
no server and no network.
"""
from __future__ import annotations

import base64
import html
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Collection, Dict, List, Optional, Sequence
from urllib.parse import quote

import numpy as np
from PIL import Image

from reusegate.core.session import FrameResult
from reusegate.data.readers import VideoSequence
from reusegate.data.writer import atomic_write_bytes, atomic_write_text
from reusegate.evaluation.metrics import sequence_jf
from reusegate.tools.pictures import COMPUTED, REUSED, draw_masks, gate_timeline

__all__ = ["FrameRecord", "timeline_png", "write_overlay", "sequence_score", "report_html",
           "visualise_run", "OVERLAY_DIR", "REPORT", "OVERLAY_FPS"]

OVERLAY_DIR = "overlay"
"""``<out>/overlay/<sequence>.mp4`` and ``<sequence>_timeline.png``: beside the sequence folders, never inside
them (an evaluator reads every PNG of a sequence folder as a mask)."""

REPORT = "index.html"
OVERLAY_FPS = 24
"""The overlay's frame rate: DAVIS's capture rate."""


class FrameRecord:
    """The gate's record of one sequence, a value per frame: ``tau`` (moving under a latency budget), how many
    objects reused, and each object's ``p_reuse`` (``None`` where the gate did not run), keyed by the ids the
    masks are written with."""

    def __init__(self) -> None:
        self.tau: List[float] = []
        self.reused: List[int] = []
        self.p_reuse: Dict[str, List[Optional[float]]] = {}

    def add(self, result: FrameResult, tau: float, to_original: Optional[np.ndarray] = None) -> None:
        """Record one frame's result, segmented at threshold ``tau``; ``to_original`` maps session ids back."""
        frame = len(self.tau)
        self.tau.append(round(float(tau), 4))
        self.reused.append(int(sum(result.reused.values())))
        for oid, p in result.p_reuse.items():
            key = str(oid if to_original is None else int(to_original[oid]))
            series = self.p_reuse.setdefault(key, [None] * frame)  # an object that starts late
            series.append(None if math.isnan(p) else round(float(p), 4))
        for series in self.p_reuse.values():
            series.extend([None] * (frame + 1 - len(series)))

    def figures(self) -> Dict[str, Any]:
        """The record as a sequence's figures keep it (JSON-ready)."""
        return {"tau": self.tau, "reused_objects": self.reused, "p_reuse": self.p_reuse}


# ---------------------------------------------------------------------------------------------- pictures
def timeline_png(figures: Dict[str, Any], title: str) -> bytes:
    """The gate timeline (:func:`~reusegate.tools.pictures.gate_timeline`) of a sequence from its ``summary.json``
    figures: ``p_reuse`` per object, ``tau`` per frame, the frames where any object was reused."""
    return gate_timeline(figures["p_reuse"], figures["tau"], [bool(n) for n in figures["reused_objects"]],
                         title=title)


def _overlay_frame(frame: np.ndarray, labels: np.ndarray, reused: int, text: str) -> np.ndarray:
    """One overlay frame (BGR for OpenCV): masks tinted and outlined, a green (computed) or orange (reused)
    border and a caption."""
    import cv2

    colour = REUSED if reused else COMPUTED
    out = np.ascontiguousarray(draw_masks(frame, labels).astype(np.uint8)[:, :, ::-1])
    border = max(3, min(out.shape[:2]) // 80)
    cv2.rectangle(out, (0, 0), (out.shape[1] - 1, out.shape[0] - 1), colour[::-1], 2 * border)
    scale = max(0.4, min(out.shape[:2]) / 800)
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    cv2.rectangle(out, (2 * border, 2 * border), (2 * border + w + 8, 2 * border + h + base + 8), (0, 0, 0), -1)
    cv2.putText(out, text, (2 * border + 4, 2 * border + h + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, colour[::-1], 1,
                cv2.LINE_AA)
    return out


def write_overlay(path: Path, seq: VideoSequence, masks_dir: Path, figures: Dict[str, Any], bar: Any = None) -> Path:
    """An MP4 (MPEG-4 part 2, the encoder every OpenCV build has) of the written masks over the frames, each
    frame marked computed or reused with its ``tau``; written to a temporary file and renamed, so a stopped run
    leaves no half video."""
    import cv2

    height, width = seq.size
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4", dir=path.parent)
    os.close(fd)
    video = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), OVERLAY_FPS, (width, height))
    try:
        if not video.isOpened():
            raise OSError(f"OpenCV cannot write an MP4 video to {path.parent}")
        for i, name in enumerate(seq.frame_names):
            with Image.open(masks_dir / f"{name}.png") as im:
                labels = np.asarray(im)
            reused = figures["reused_objects"][i]
            text = f"frame {i}  {'REUSED' if reused else 'computed'}  tau={figures['tau'][i]:.2f}"
            video.write(_overlay_frame(seq.load_frame(i), labels, reused, text))
            if bar is not None:
                bar.update(1)
        video.release()
        os.replace(tmp, path)
    except BaseException:
        video.release()
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def sequence_score(seq: VideoSequence, masks_dir: Path) -> Optional[float]:
    """J&F of the written masks when the sequence has ground truth on every frame (DAVIS train / val), else
    ``None`` (your own video, YouTube-VOS)."""
    if len(seq) < 3 or len(seq.annotated_indices) != len(seq):
        return None
    gt = [seq.load_mask(i) for i in range(len(seq))]
    pred = []
    for name in seq.frame_names:
        with Image.open(masks_dir / f"{name}.png") as im:
            pred.append(np.asarray(im))
    ids = range(1, int(gt[0].max(initial=0)) + 1)
    scores = sequence_jf(pred, gt, ids).values()
    return (float(np.mean([j.mean() for j, _ in scores])) + float(np.mean([f.mean() for _, f in scores]))) / 2


# ---------------------------------------------------------------------------------------------- the report
def _href(relative: str) -> str:
    """A relative link as an attribute value: percent-encoded (a file name may hold spaces or '#'), then escaped."""
    return html.escape(quote(relative))


def _cell(value: Optional[float], fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def report_html(summary: Dict[str, Any], rows: Sequence[Dict[str, Any]]) -> str:
    """The run's ``index.html``: settings, totals and, per sequence, J&F, reuse, FPS, ``tau``, the timeline
    (embedded) and a link to the overlay (relative). No script, style sheet or font is fetched."""
    s = summary["settings"]
    setting = ", ".join(f"{k} {v}" for k, v in s.items())
    total = summary["total"]
    head = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>reusegate run</title>\n"
            "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#eee}"
            "td.name{text-align:left}img{max-width:100%}.unreachable{color:#b00}</style></head><body>\n")
    reuse = None if total["reuse_rate"] is None else 100 * total["reuse_rate"]
    incomplete = "" if summary["complete"] else " (incomplete: other shards are running)"
    totals = (f"<p>{total['sequences']} sequences, {total['frames']} frames, mean reuse {_cell(reuse, '.1f')} %, "
              f"{_cell(total['fps'], '.2f')} FPS{incomplete}</p>\n")
    columns = "".join(f"<th>{c}</th>" for c in ("sequence", "frames", "J&amp;F", "reuse %", "FPS", "mean tau",
                                                "overlay"))
    parts = [head, "<h1>reusegate run</h1>\n", f"<p>{html.escape(setting)}</p>\n", totals,
             f"<table id=\"sequences\">\n<tr>{columns}</tr>\n"]
    for r in rows:
        f = r["figures"]
        taus = f.get("tau") or []
        tau = float(np.mean(taus[1:])) if len(taus) > 1 else None
        link = (f"<a href=\"{_href(r['overlay'])}\">{html.escape(Path(r['overlay']).name)}</a>"
                if r.get("overlay") else "–")
        jf = None if r["jf"] is None else 100 * r["jf"]
        parts.append(f"<tr><td class=\"name\"><a href=\"#{html.escape(r['name'])}\">{html.escape(r['name'])}</a></td>"
                     f"<td>{f['frames']}</td><td class=\"jf\">{_cell(jf, '.1f')}</td>"
                     f"<td>{100 * f['reuse_rate']:.1f}</td><td>{_cell(f['fps'], '.2f')}</td>"
                     f"<td>{_cell(tau, '.3f')}</td><td>{link}</td></tr>\n")
    parts.append("</table>\n")
    for r in rows:
        budget = r["figures"].get("budget")
        parts.append(f"<h2 id=\"{html.escape(r['name'])}\">{html.escape(r['name'])}</h2>\n")
        if budget:
            note = (f"target {budget['target_fps']:.2f} FPS ({budget['budget_ms']:.1f} ms a frame), tau within "
                    f"[{budget['tau_min']:g}, 1]")
            parts.append(f"<p>{html.escape(note)}</p>\n")
            if budget.get("unreachable"):
                u = budget["unreachable"]
                parts.append(f"<p class=\"unreachable\">budget out of reach: {u['mean_ms']:.1f} ms a frame at "
                             f"tau_min {u['tau_min']:g} (from frame {u['frame']})</p>\n")
        if r.get("timeline"):
            data = base64.b64encode(r["timeline"]).decode("ascii")
            parts.append(f"<img class=\"timeline\" alt=\"gate timeline of {html.escape(r['name'])}\" "
                         f"src=\"data:image/png;base64,{data}\">\n")
        if r.get("overlay"):
            parts.append(f"<p>overlay: <a href=\"{_href(r['overlay'])}\">{html.escape(r['overlay'])}</a> "
                         "(green border: computed, orange: reused)</p>\n")
    parts.append("</body></html>\n")
    return "".join(parts)


def visualise_run(sequences: Sequence[VideoSequence], masks_root: Path, out: Path, summary: Dict[str, Any],
                  overlay: bool, report: bool, fresh: Collection[str] = (), progress: bool = True) -> List[Path]:
    """``overlay``: ``<out>/overlay/<sequence>.mp4`` and ``<sequence>_timeline.png`` for each finished sequence of
    ``sequences`` (masks under ``masks_root``) that is ``fresh`` (segmented by this process) or has none yet;
    ``report``: ``<out>/index.html`` over every finished sequence. Returns the files written. A sequence whose
    figures lack the per-frame record (finished by an older reusegate) is listed without pictures."""
    from tqdm import tqdm

    written: List[Path] = []
    done = [s for s in sequences if s.name in summary["sequences"]]
    drawable = {s.name for s in done if "reused_objects" in summary["sequences"][s.name]}
    video = {s.name: out / OVERLAY_DIR / f"{s.name}.mp4" for s in done}
    draw = [s for s in done if overlay and s.name in drawable and (s.name in fresh or not video[s.name].is_file())]
    rows = []
    with tqdm(total=sum(len(s) for s in draw), unit="frame", desc="overlay", disable=not (progress and draw)) as bar:
        for seq in done:
            figures = summary["sequences"][seq.name]
            row: Dict[str, Any] = {"name": seq.name, "figures": figures, "jf": None, "overlay": None,
                                   "timeline": None}
            if seq.name in drawable:
                row["timeline"] = timeline_png(figures, f"{seq.name}: gate timeline")
            if seq.name in {s.name for s in draw}:
                written.append(atomic_write_bytes(out / OVERLAY_DIR / f"{seq.name}_timeline.png", row["timeline"]))
                written.append(write_overlay(video[seq.name], seq, masks_root / seq.name, figures, bar=bar))
            if video[seq.name].is_file():
                row["overlay"] = f"{OVERLAY_DIR}/{seq.name}.mp4"
            if report:
                row["jf"] = sequence_score(seq, masks_root / seq.name)
            rows.append(row)
    if report:
        written.append(atomic_write_text(out / REPORT, report_html(summary, rows)))
    return written
