"""Readers: DAVIS 2016/2017, YouTube-VOS, folder / video inputs, and one clear error per broken dataset."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from reusegate.data.readers import DavisReader, YouTubeVOSReader, open_sequence, read_mask
from reusegate.data.writer import write_palette_png
from vos_synth import make_davis, make_youtube, square, write_frames, write_gray

SHAPE = (30, 40)


@pytest.mark.data
def test_davis2016_real(davis_root):
    reader = DavisReader(davis_root, year=2016)
    assert len(reader.sequences) == 30 and "bear" in reader.sequences
    seq = reader.sequence("bear")
    assert len(seq) == len(seq.frames) == 82 and seq.object_ids == [1]
    assert seq.size == (480, 854)
    frame = seq.load_frame(0)
    assert frame.shape == (480, 854, 3) and frame.dtype == np.uint8
    assert Image.open(seq.mask_paths[77]).mode == "LA"  # the odd file of the release
    m77, m76 = seq.load_mask(77), seq.masks[76]
    assert set(np.unique(m77)) == {0, 1} and m77.dtype == np.uint8
    # The LA frame's object is a real mask, close to its neighbour's.
    assert np.count_nonzero(m77 & m76) / np.count_nonzero(m77 | m76) > 0.8
    auto = DavisReader(davis_root, year=None, sequences=["bear"]).sequence("bear")
    assert auto.encoding == "binary" and np.array_equal(auto.load_mask(77), m77)


def test_davis2017_palette_ids_and_void(tmp_path):
    m = square(SHAPE, 2, 2, 6, 1) + square(SHAPE, 15, 20, 5, 2)
    m[0, :] = 255  # void border
    root = make_davis(tmp_path, {"s": [m, m, m]})
    seq = DavisReader(root, year=2017).sequence("s")
    assert seq.object_ids == [1, 2] and seq.start_frames == {1: 0, 2: 0}
    labels = seq.load_mask(1)
    assert labels[0].max() == 0 and set(np.unique(labels)) == {0, 1, 2}
    assert seq.load_void(1)[0].all() and not seq.load_void(1)[1:].any()
    assert len(seq.masks) == 3 and np.array_equal(seq.masks[2], labels)


def test_palette_files_read_as_davis2016_merge_into_one_object(tmp_path):
    m = square(SHAPE, 2, 2, 6, 1) + square(SHAPE, 15, 20, 5, 2)
    m[0, 0] = 255
    root = make_davis(tmp_path, {"s": [m, m]})
    seq = DavisReader(root, year=2016).sequence("s")
    assert seq.object_ids == [1]
    assert np.array_equal(seq.load_mask(1), ((m > 0) & (m != 255)).astype(np.uint8))


def test_grayscale_ids_and_2016_style_file_in_2017_reader(tmp_path):
    ids = square(SHAPE, 2, 2, 6, 1) + square(SHAPE, 15, 20, 5, 3)
    write_gray(tmp_path / "ids.png", ids)
    assert set(np.unique(read_mask(tmp_path / "ids.png"))) == {0, 1, 3}
    write_gray(tmp_path / "bin.png", square(SHAPE, 2, 2, 6, 255), mode="LA")
    assert set(np.unique(read_mask(tmp_path / "bin.png"))) == {0, 1}  # not turned into void


def test_youtube_vos_sparse_and_late_objects(tmp_path):
    root = make_youtube(tmp_path)
    reader = YouTubeVOSReader(root, split="valid")
    assert reader.sequences == ["vid1"]
    seq = reader.sequence("vid1")
    assert len(seq) == 12 and seq.frame_names[:3] == ["00000", "00005", "00010"]
    assert seq.annotated_indices == [0, 2]
    assert seq.object_ids == [1, 2] and seq.start_frames == {1: 0, 2: 2}
    assert seq.new_objects(0) == [1] and seq.new_objects(2) == [2] and seq.new_objects(1) == []
    assert seq.load_mask(2).max() == 2 and not seq.has_mask(1)
    with pytest.raises(ValueError, match="has no annotation"):
        seq.load_mask(1)


def test_youtube_vos_object_start_without_annotation(tmp_path):
    root = make_youtube(tmp_path)
    (root / "valid" / "Annotations" / "vid1" / "00010.png").unlink()
    with pytest.raises(ValueError, match="00010.png does not exist"):
        YouTubeVOSReader(root).sequence("vid1")


def test_folder_and_video_inputs(tmp_path):
    write_frames(tmp_path / "frames", 5, SHAPE)
    write_palette_png(tmp_path / "first.png", square(SHAPE, 3, 3, 8, 1))
    seq = open_sequence(tmp_path / "frames", tmp_path / "first.png")
    assert len(seq) == 5 and seq.object_ids == [1] and seq.annotated_indices == [0]
    assert seq.load_frame(4).shape == (*SHAPE, 3)

    cv2 = pytest.importorskip("cv2")
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (SHAPE[1], SHAPE[0]))
    for i in range(7):
        writer.write(np.full((*SHAPE, 3), 30 * i, np.uint8))
    writer.release()
    video = open_sequence(path, tmp_path / "first.png")
    assert len(video) == 7 and video.frame_names[-1] == "00006" and video.size == SHAPE
    # Random access and sequential access give the same frames.
    f5 = video.load_frame(5)
    assert abs(int(f5.mean()) - 150) <= 3 and np.array_equal(video.load_frame(5), f5)
    assert abs(int(video.load_frame(6).mean()) - 180) <= 3
    write_palette_png(tmp_path / "wrong.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="wrong.png is 10x10"):
        open_sequence(path, tmp_path / "wrong.png")


def _davis(tmp_path, n=4):
    return make_davis(tmp_path, {"s": [square(SHAPE, 2 + t, 2, 6) for t in range(n)]})


@pytest.mark.parametrize("damage, error, match", [
    ("missing_frame", ValueError, r"JPEGImages/480p/s/00002.jpg is missing"),
    ("missing_annotation", ValueError, r"Annotations/480p/s/00002.png is missing"),
    ("extra_annotation", ValueError, r"annotation .*00009.png has no frame"),
    ("no_first_annotation", ValueError, r"no annotation for the first frame .*00000.png"),
    ("frame_size", ValueError, r"frame .*00001.jpg is 10x8"),
    ("mask_size", ValueError, r"annotation .*00003.png is 10x8"),
    ("truncated_frame", ValueError, r"cannot read .*00002.jpg"),
    ("not_an_image", ValueError, r"cannot read .*00001.png"),
    ("no_sequence", FileNotFoundError, r"sequence folder .*nope does not exist"),
    ("empty_first", ValueError, r"00000.png contains no object"),
])
def test_davis_bad_input(tmp_path, damage, error, match):
    root = _davis(tmp_path)
    frames, annots = root / "JPEGImages" / "480p" / "s", root / "Annotations" / "480p" / "s"
    names = None
    if damage == "missing_frame":
        (frames / "00002.jpg").unlink()
        (annots / "00002.png").unlink()
    elif damage == "missing_annotation":
        (annots / "00002.png").unlink()
    elif damage == "extra_annotation":
        write_palette_png(annots / "00009.png", np.zeros(SHAPE, np.uint8))
    elif damage == "no_first_annotation":
        (annots / "00000.png").unlink()
    elif damage == "frame_size":
        Image.new("RGB", (10, 8)).save(frames / "00001.jpg")
    elif damage == "mask_size":
        write_palette_png(annots / "00003.png", np.zeros((8, 10), np.uint8))
    elif damage == "truncated_frame":
        data = (frames / "00002.jpg").read_bytes()
        (frames / "00002.jpg").write_bytes(data[: len(data) // 2])
    elif damage == "not_an_image":
        (annots / "00001.png").write_text("not a png")
    elif damage == "no_sequence":
        names = ["s", "nope"]
    elif damage == "empty_first":
        write_palette_png(annots / "00000.png", np.zeros(SHAPE, np.uint8))
    with pytest.raises(error, match=match):
        reader = DavisReader(root, year=2017, sequences=names)
        for seq in reader:
            seq.object_ids
            for i in range(len(seq)):
                seq.load_frame(i)
                seq.load_mask(i)


def test_first_frame_only_annotations_are_accepted(tmp_path):
    root = _davis(tmp_path)
    for p in sorted((root / "Annotations" / "480p" / "s").iterdir())[1:]:
        p.unlink()
    seq = DavisReader(root, year=2017).sequence("s")
    assert seq.annotated_indices == [0] and len(seq) == 4


def test_sequence_list_file(tmp_path):
    root = make_davis(tmp_path, {"a": [square(SHAPE, 2, 2, 6)] * 3, "b": [square(SHAPE, 2, 2, 6)] * 3})
    (tmp_path / "list.txt").write_text("# held-out\nb\n\n")
    assert DavisReader(root, year=2017, sequences=tmp_path / "list.txt").sequences == ["b"]
    (tmp_path / "ImageSets" / "2017").mkdir(parents=True)
    (tmp_path / "ImageSets" / "2017" / "val.txt").write_text("a\n")
    assert DavisReader(root, year=2017, split="val").sequences == ["a"]
    bad = tmp_path / "meta.json"
    bad.write_text(json.dumps({"nothing": 1}))
    with pytest.raises(ValueError, match="not a YouTube-VOS meta.json"):
        YouTubeVOSReader(tmp_path)
