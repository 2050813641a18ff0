"""``reusegate run --shard i/N`` (shards share one output folder and merge one summary) and
``reusegate run --youtube`` (late objects, ids that are not 1..K, the submission zip) on real frames.

The YouTube-VOS fixture is built from the real DAVIS-2017 schoolgirls frames in the YouTube-VOS 'valid' layout:
``meta.json``, JPEG frames, and an annotation only on the frame where each object first appears, with the
objects renumbered 3, 7 and 9 and object 3 starting on the fourth frame.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import DATA, MINI_SEQUENCES, _require

from reusegate.tools import run as inference
from reusegate.cli import main
from reusegate.data.readers import YouTubeVOSReader
from reusegate.data.writer import write_palette_png
from reusegate.evaluation import jaccard

YT_FRAMES = 8
# schoolgirls object id -> (YouTube-VOS id, first frame)
YT_OBJECTS = {3: (7, 0), 5: (9, 0), 1: (3, 3)}


@pytest.fixture(scope="module")
def youtube_root(tmp_path_factory) -> Path:
    src = _require(DATA / "davis2017-schoolgirls", "DAVIS-2017 schoolgirls data")
    root = tmp_path_factory.mktemp("ytvos")
    split = root / "valid"
    frames = sorted((src / "JPEGImages" / "240p" / "schoolgirls").glob("*.jpg"))[:YT_FRAMES]
    stems = [f"{5 * i:05d}" for i in range(YT_FRAMES)]  # YouTube-VOS names every 5th frame
    (split / "JPEGImages" / "vid_a").mkdir(parents=True)
    for f, stem in zip(frames, stems):
        Image.open(f).save(split / "JPEGImages" / "vid_a" / f"{stem}.jpg", quality=95)
    starts = sorted({start for _, start in YT_OBJECTS.values()})
    for start in starts:
        raw = np.asarray(Image.open(src / "Annotations" / "240p" / "schoolgirls" / f"{frames[start].stem}.png"))
        labels = np.zeros(raw.shape, np.uint8)
        for davis_id, (yt_id, first) in YT_OBJECTS.items():
            if first == start:
                labels[raw == davis_id] = yt_id
        write_palette_png(split / "Annotations" / "vid_a" / f"{stems[start]}.png", labels)
    meta = {"videos": {"vid_a": {"objects": {str(yt): {"category": "person", "frames": stems[first:]}
                                             for yt, first in YT_OBJECTS.values()}}}}
    (split / "meta.json").write_text(json.dumps(meta))
    return root


def test_id_tables_rank_objects_by_start_frame(youtube_root):
    seq = YouTubeVOSReader(youtube_root, "valid").sequence("vid_a")
    to_session, to_original = inference.id_tables(seq)
    assert [int(to_session[o]) for o in (7, 9, 3)] == [1, 2, 3]  # frame-0 objects first, then the late one
    assert [int(to_original[k]) for k in (0, 1, 2, 3)] == [0, 7, 9, 3]


@pytest.mark.data
def test_youtube_run_writes_original_ids_and_a_valid_submission(youtube_root, tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--youtube", str(youtube_root), "--model", str(tiny_model), "--tau", "0.5",
                 "--out", str(out)]) == 0
    assert "submission" in capsys.readouterr().out
    with zipfile.ZipFile(out / "submission.zip") as zf:
        names = sorted(zf.namelist())
        assert names == [f"Annotations/vid_a/{5 * i:05d}.png" for i in range(YT_FRAMES)]
        first, late = (np.asarray(Image.open(zf.open(f"Annotations/vid_a/{s}.png"))) for s in ("00000", "00015"))
    ann = youtube_root / "valid" / "Annotations" / "vid_a"
    given0, given3 = (np.asarray(Image.open(ann / f"{s}.png")) for s in ("00000", "00015"))
    # a start frame returns its given mask (through the model's half-resolution input), original ids written back
    assert set(np.unique(first).tolist()) == {0, 7, 9}
    for oid, pred, given in ((7, first, given0), (9, first, given0), (3, late, given3)):
        assert jaccard(pred == oid, given == oid) > 0.8, oid
    summary = json.loads((out / "Annotations" / inference.SUMMARY).read_text())
    assert summary["complete"] and set(summary["sequences"]["vid_a"]["reuse_rate_per_object"]) == {"3", "7", "9"}


@pytest.mark.data
def test_two_shards_share_one_folder_and_merge_the_summary(mini_davis, tiny_model, tmp_path):
    args = ["--davis", str(mini_davis), "--sequences", str(mini_davis / "list.txt"), "--model", str(tiny_model),
            "--tau", "0.5"]
    assert main(["run", *args, "--out", str(tmp_path / "single")]) == 0
    shared = tmp_path / "sharded"
    assert main(["run", *args, "--out", str(shared), "--shard", "1/2"]) == 0
    half = json.loads((shared / inference.SUMMARY).read_text())
    assert not half["complete"] and list(half["sequences"]) == [MINI_SEQUENCES[1]]
    assert main(["run", *args, "--out", str(shared), "--shard", "0/2"]) == 0
    merged = json.loads((shared / inference.SUMMARY).read_text())
    single = json.loads((tmp_path / "single" / inference.SUMMARY).read_text())
    assert merged["complete"] and list(merged["sequences"]) == list(MINI_SEQUENCES)
    for seq in MINI_SEQUENCES:
        for png in sorted((tmp_path / "single" / seq).glob("*.png")):  # one machine, same kernels: exact
            assert np.array_equal(np.asarray(Image.open(png)), np.asarray(Image.open(shared / seq / png.name)))
        assert merged["sequences"][seq]["reuse_rate"] == single["sequences"][seq]["reuse_rate"]


@pytest.mark.parametrize("bad", ["2/2", "1", "a/b", "-1/2"])
def test_bad_shard_is_one_clear_error(bad, capsys):
    with pytest.raises(ValueError, match="--shard takes i/N"):
        inference.parse_shard(bad)
