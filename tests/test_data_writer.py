"""Palette PNG writer: DAVIS colour map, exact ids back, atomic replacement."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from reusegate.data.readers import read_mask
from reusegate.data.writer import ResultWriter, davis_palette, write_palette_png


def test_round_trip_and_palette(tmp_path):
    labels = np.arange(12 * 20, dtype=np.int64).reshape(12, 20) % 7
    path = ResultWriter(tmp_path).write("seq", "00003", labels)
    assert path == tmp_path / "seq" / "00003.png"
    img = Image.open(path)
    assert img.mode == "P"
    assert np.array_equal(np.asarray(img), labels)
    assert np.array_equal(read_mask(path), labels)
    pal = davis_palette()
    assert len(pal) == 768 and pal[3:12] == [128, 0, 0, 0, 128, 0, 128, 128, 0] and pal[:3] == [0, 0, 0]
    assert img.getpalette()[3:6] == [128, 0, 0]
    assert pal[3 * 255 : 3 * 256] == [224, 224, 192]  # the VOC void colour


def test_rejects_bad_labels_and_leaves_old_file(tmp_path):
    path = tmp_path / "a.png"
    write_palette_png(path, np.ones((4, 4), np.uint8))
    before = path.read_bytes()
    for bad in (np.full((4, 4), 300), np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4), np.float32)):
        with pytest.raises(ValueError, match="a.png"):
            write_palette_png(path, bad)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["a.png"]  # no temporary file left behind


def test_interrupted_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "a.png"
    write_palette_png(path, np.ones((4, 4), np.uint8))
    before = path.read_bytes()

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        write_palette_png(path, np.zeros((4, 4), np.uint8))
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["a.png"]
