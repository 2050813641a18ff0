"""``run --target-fps``, ``run --overlay`` and ``run --report``: tau per frame in the summary, the budget recorded,
one MP4 and one timeline per sequence, and an index.html that holds its links and figures and fetches nothing.

A tiny untrained reference host (never the shipped weights) on a few downscaled DAVIS frames, one thread.
"""
from __future__ import annotations

import base64
import json
from html.parser import HTMLParser

import cv2
import pytest

from conftest import MINI_FRAMES, MINI_SEQUENCES, MINI_SIZE
from test_controller import exit_code

from reusegate.cli import main
from reusegate.evaluation import evaluate_sequences
from reusegate.tools import run as inference
from reusegate.tools.report import OVERLAY_DIR, REPORT


class Page(HTMLParser):
    """The links, images, table cells and every URL-bearing attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.links, self.images, self.urls, self.cells, self.ids = [], [], [], {}, set()
        self._cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        for key in ("href", "src"):
            if key in a:
                self.urls.append(a[key])
        if tag == "a":
            self.links.append(a["href"])
        if tag == "img":
            self.images.append(a["src"])
        if tag == "td" and a.get("class") == "jf":
            self._cell = []

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.cells.setdefault("jf", []).append("".join(self._cell))
            self._cell = None


@pytest.mark.data
def test_budget_overlay_and_report(mini_davis, tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--davis", str(mini_davis), "--sequences", str(mini_davis / "list.txt"), "--model",
                 str(tiny_model), "--tau", "0.9", "--target-fps", "100000", "--tau-min", "0.3", "--threads", "1",
                 "--overlay", "--report", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "latency budget 0.0 ms (100000.00 FPS), tau in [0.3, 1]" in printed

    summary = json.loads((out / inference.SUMMARY).read_text())
    assert summary["settings"]["target_fps"] == 100000 and summary["settings"]["tau_min"] == 0.3
    start = 1.0  # the first video's controller starts at 1, each later one where the previous one ended
    for seq in MINI_SEQUENCES:
        s = summary["sequences"][seq]
        assert len(s["tau"]) == len(s["reused_objects"]) == MINI_FRAMES
        assert s["tau"][:2] == pytest.approx([start, start], abs=1e-4) and s["tau"][-1] < 1  # 100000 FPS: tau goes down
        start = s["budget"]["tau_end"]
        assert all(0.3 <= t <= 1 for t in s["tau"])
        assert s["budget"]["budget_ms"] == pytest.approx(0.01) and s["budget"]["tau_min"] == 0.3
        assert list(s["p_reuse"]) == ["1"] and len(s["p_reuse"]["1"]) == MINI_FRAMES and s["p_reuse"]["1"][0] is None

        video = cv2.VideoCapture(str(out / OVERLAY_DIR / f"{seq}.mp4"))
        frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
        ok, first = video.read()
        video.release()
        assert ok and frames == MINI_FRAMES and first.shape[:2] == (MINI_SIZE[1], MINI_SIZE[0])
        assert (out / OVERLAY_DIR / f"{seq}_timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert not list((out / seq).glob("*.mp4")) and not list((out / OVERLAY_DIR).glob(".*"))  # no temp files

    page = Page()
    page.feed((out / REPORT).read_text())
    overlays = [link for link in page.links if link.endswith(".mp4")]
    assert sorted(set(overlays)) == sorted(f"{OVERLAY_DIR}/{seq}.mp4" for seq in MINI_SEQUENCES)
    assert all((out / link).is_file() for link in overlays)  # relative links that resolve from the file
    assert {f"#{seq}" for seq in MINI_SEQUENCES} <= set(page.links) and set(MINI_SEQUENCES) <= page.ids
    assert len(page.images) == len(MINI_SEQUENCES)
    for src in page.images:  # the timelines are inside the page
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [u for u in page.urls if u.startswith(("http:", "https:", "//"))]  # nothing from a network
    # the J&F column is the evaluator's J&F of the written masks, per sequence
    expected = [f"{100 * evaluate_sequences(mini_davis, out, sequences=[seq], processes=1).jf_mean:.1f}"
                for seq in MINI_SEQUENCES]
    assert page.cells["jf"] == expected

    # resumed: nothing is recomputed or redrawn, and the report is drawn from what the first run left
    videos = {seq: (out / OVERLAY_DIR / f"{seq}.mp4").stat().st_mtime_ns for seq in MINI_SEQUENCES}
    (out / REPORT).unlink()
    assert main(["run", "--davis", str(mini_davis), "--sequences", str(mini_davis / "list.txt"), "--model",
                 str(tiny_model), "--tau", "0.9", "--target-fps", "100000", "--tau-min", "0.3", "--threads", "1",
                 "--overlay", "--report", "--out", str(out)]) == 0
    assert videos == {seq: (out / OVERLAY_DIR / f"{seq}.mp4").stat().st_mtime_ns for seq in MINI_SEQUENCES}
    again = Page()
    again.feed((out / REPORT).read_text())
    assert again.cells["jf"] == expected and sorted(set(again.links)) == sorted(set(page.links))


def test_report_without_ground_truth_and_bad_budget(tmp_path, tiny_model, capsys):
    from vos_synth import write_clip_folder

    from reusegate.data.synthetic import make_clip

    frames, first = write_clip_folder(tmp_path, make_clip(((5, 2.0),), size=(72, 128), n_objects=2, seed=3))
    out = tmp_path / "out"
    assert main(["run", "--input", str(frames), "--first-mask", str(first), "--model", str(tiny_model),
                 "--threads", "1", "--report", "--out", str(out)]) == 0
    page = Page()
    page.feed((out / REPORT).read_text())
    assert page.cells["jf"] == ["–"] and not [link for link in page.links if link.endswith(".mp4")]
    assert len(page.images) == 1 and not (out / OVERLAY_DIR).exists()
    capsys.readouterr()
    for argv, message in ((["--target-fps", "0"], "--target-fps: must be a positive number, got '0'"),
                          (["--tau-min", "0.5"], "--tau-min is the floor of a latency budget"),
                          (["--budget-ms", "40", "--tau-min", "1.5"], "tau_min must be a number in [0, 1]")):
        assert exit_code(["run", "--input", str(frames), "--first-mask", str(first), "--model", str(tiny_model),
                          "--out", str(tmp_path / "bad"), *argv]) == 2
        assert message in capsys.readouterr().err
        assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("tau, label", [([0.7] * 5, "tau = 0.7"),
                                        ([1.0, 0.9, 0.8, 0.8, 0.75], "tau (latency controller)")])
def test_report_timeline_draws_the_record(monkeypatch, tau, label):
    """The report's timeline (the picture the demo draws too) shades each frame where an object was reused, counts
    them in its legend and names tau as constant or moving."""
    import matplotlib.figure

    from reusegate.tools.report import timeline_png

    seen = {}
    original = matplotlib.figure.Figure.savefig

    def capture(fig, *args, **kwargs):
        seen["labels"] = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        seen["shaded"] = len(fig.axes[0].patches)
        seen["title"] = fig.axes[0].get_title()
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", capture)
    figures = {"tau": tau, "reused_objects": [0, 1, 2, 0, 1],
               "p_reuse": {"1": [None, 0.8, 0.9, 0.5, 0.8], "2": [None, 0.2, 0.9, 0.4, 0.3]}}
    png = timeline_png(figures, "bear: gate timeline")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert seen["shaded"] == 3 and seen["title"] == "bear: gate timeline"
    assert "reused frame (3 of 5)" in seen["labels"] and label in seen["labels"]
    assert {"p_reuse, object 1", "p_reuse, object 2"} <= set(seen["labels"])
