"""YouTube-VOS submission layout: every JPEGImages frame, Annotations/<video>/<frame>.png in the zip."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest

from reusegate.data.readers import YouTubeVOSReader
from reusegate.data.writer import ResultWriter
from reusegate.evaluation import write_youtube_vos_submission
from vos_synth import make_youtube


def test_submission_zip(tmp_path):
    reader = YouTubeVOSReader(make_youtube(tmp_path / "ytvos"))
    seq = reader.sequence("vid1")
    writer = ResultWriter(tmp_path / "out" / "Annotations")
    for name in seq.frame_names[:-1]:
        writer.write("vid1", name, np.zeros(seq.size, np.uint8))
    zip_path = tmp_path / "submission.zip"
    with pytest.raises(FileNotFoundError, match="vid1/00055.png"):
        write_youtube_vos_submission(tmp_path / "out", reader, zip_path)
    assert not zip_path.exists()
    writer.write("vid1", seq.frame_names[-1], np.ones(seq.size, np.uint8))
    write_youtube_vos_submission(tmp_path / "out", reader, zip_path)
    names = zipfile.ZipFile(zip_path).namelist()
    assert names == [f"Annotations/vid1/{n}.png" for n in seq.frame_names]
    writer.write("vid1", "00000", np.zeros((5, 5), np.uint8))
    with pytest.raises(ValueError, match="00000.png is 5x5"):
        write_youtube_vos_submission(tmp_path / "out", reader, zip_path)
