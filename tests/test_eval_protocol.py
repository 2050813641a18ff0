"""The parts of davis2017-evaluation vos-benchmark lacks: recall, decay, frame exclusion, object counting,
the two CSV files, the CLI, and the errors on bad results folders."""
from __future__ import annotations

import numpy as np
import pytest

from reusegate.cli import main
from reusegate.evaluation import db_statistics, evaluate_sequences
from reusegate.evaluation.metrics import boundary_radius, disk, seg2bmap
from vos_synth import make_davis, make_predictions, square, write_gray

SHAPE = (40, 50)


def test_statistics_by_hand():
    v = np.array([0.2, 0.6, 0.9, 0.4, 1.0])
    mean, recall, decay = db_statistics(v)
    assert mean == pytest.approx(0.62)
    assert recall == pytest.approx(3 / 5)
    # N=5: bin edges 0,1,2,3,4; first bin v[0:2], last bin v[3:5] -> 0.4 - 0.7
    assert decay == pytest.approx(-0.3)
    # N=10: linspace(1,10,5) = 1, 3.25, 5.5, 7.75, 10 -> ids 0, 2, 5, 7, 9 (5.5 rounds up)
    v = np.arange(10) / 10
    assert db_statistics(v)[2] == pytest.approx(np.mean(v[0:3]) - np.mean(v[7:10]))
    assert db_statistics(np.array([0.5, 0.51]))[1] == pytest.approx(0.5)  # strictly greater than 0.5


def test_seg2bmap_and_disk_by_hand():
    m = np.zeros((4, 4), bool)
    m[1:3, 1:3] = True
    b = seg2bmap(m)
    expected = np.array([[1, 1, 1, 0],
                         [1, 0, 1, 0],
                         [1, 1, 1, 0],
                         [0, 0, 0, 0]], bool)
    assert (b == expected).all()
    assert disk(1).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    assert boundary_radius((480, 854)) == 8 and disk(8).shape == (17, 17)


def _hand_case(tmp_path):
    """Object 1 is perfect on frames 1-2 and missed on 3-4; object 2 is perfect everywhere. 6 frames."""
    g = square(SHAPE, 5, 5, 10, 1) + square(SHAPE, 20, 30, 8, 2)
    gts = {"seq": [g.copy() for _ in range(6)]}
    miss = g.copy()
    miss[miss == 1] = 0
    preds = {"seq": [g, g, g, miss, miss, miss]}
    return make_davis(tmp_path / "gt", gts, jpeg=False), make_predictions(tmp_path / "pred", preds)


def test_first_and_last_frames_excluded_and_hand_values(tmp_path):
    gt, pred = _hand_case(tmp_path)
    res = evaluate_sequences(gt, pred, processes=1)
    o1, o2 = res.objects
    assert (o1.sequence, o1.object_id, o2.object_id) == ("seq", 1, 2)
    assert o1.j.tolist() == [1.0, 1.0, 0.0, 0.0]  # kept frames 1..4 only
    assert o1.j_stats == pytest.approx((0.5, 0.5, 1.0))  # N=4: bins [0:2] and [2:4] -> 1 - 0
    assert o1.f_stats == pytest.approx((0.5, 0.5, 1.0))
    assert o2.j_stats == pytest.approx((1.0, 1.0, 0.0))
    assert res.j_mean == pytest.approx(0.75) and res.jf_mean == pytest.approx(0.75)
    assert res.j_decay == pytest.approx(0.5) and res.f_recall == pytest.approx(0.75)


def test_csv_layout(tmp_path):
    gt, pred = _hand_case(tmp_path)
    res = evaluate_sequences(gt, pred, processes=1)
    g, s = res.write_csvs(pred, "val")
    assert g.name == "global_results-val.csv" and s.name == "per-sequence_results-val.csv"
    assert g.read_text() == ("J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay\n"
                             "0.750,0.750,0.750,0.500,0.750,0.750,0.500\n")
    assert s.read_text() == "Sequence,J-Mean,F-Mean\nseq_1,0.500,0.500\nseq_2,1.000,1.000\n"
    assert not [p for p in pred.iterdir() if p.name.endswith(".tmp")]


def test_object_count_from_first_frame_and_missing_ids(tmp_path):
    """K = max id of frame 0; an id in 1..K absent everywhere scores J = 1 (empty vs empty), like the script."""
    g0 = square(SHAPE, 5, 5, 10, 3)  # only id 3 on frame 0 -> objects 1, 2, 3
    gts = {"s": [g0] * 4}
    gt = make_davis(tmp_path / "gt", gts, jpeg=False)
    pred = make_predictions(tmp_path / "pred", gts)
    res = evaluate_sequences(gt, pred, processes=1)
    assert [o.object_id for o in res.objects] == [1, 2, 3]
    assert all(o.j_stats[0] == 1.0 for o in res.objects)


def test_cli_prints_global_row_and_writes_csvs(tmp_path, capsys):
    gt, pred = _hand_case(tmp_path)
    seqs = tmp_path / "mylist.txt"
    seqs.write_text("seq\n")
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--sequences", str(seqs), "--processes", "1"]) == 0
    out = capsys.readouterr().out
    assert "J&F-Mean" in out and "0.750" in out
    assert (pred / "global_results-mylist.csv").is_file() and (pred / "per-sequence_results-mylist.csv").is_file()


@pytest.mark.parametrize("damage, expected", [
    ("missing", "results folder is missing"),
    ("size", "but its ground truth is"),
    ("truncated", "cannot read"),
    ("rgb", "single-channel"),
    ("no_folder", "does not exist"),
])
def test_bad_results_folder_one_clear_error_and_no_csv(tmp_path, capsys, damage, expected):
    gt, pred = _hand_case(tmp_path)
    target = pred / "seq" / "00003.png"
    if damage == "missing":
        target.unlink()
    elif damage == "size":
        write_gray(target, np.zeros((10, 10), np.uint8))
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[:40])
    elif damage == "rgb":
        from PIL import Image

        Image.new("RGB", SHAPE[::-1]).save(target)
    elif damage == "no_folder":
        for p in (pred / "seq").iterdir():
            p.unlink()
        (pred / "seq").rmdir()
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--processes", "1"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]  # (the rest is the progress bar)
    assert len(err) == 1 and err[0].startswith("reusegate eval: error:") and expected in err[0]
    if damage != "no_folder":
        assert "00003.png" in err[0]
    assert not list(pred.glob("*.csv"))


def test_bad_ground_truth(tmp_path):
    gt, pred = _hand_case(tmp_path)
    (gt / "Annotations" / "480p" / "seq" / "00002.png").unlink()  # a gap in the numbering
    with pytest.raises(ValueError, match="00002.png is missing"):
        evaluate_sequences(gt, pred, processes=1)
    with pytest.raises(FileNotFoundError, match="results folder"):
        evaluate_sequences(gt, tmp_path / "nowhere")


def test_worker_errors_reach_the_caller(tmp_path):
    gt, pred = _hand_case(tmp_path)
    make_davis(gt, {"other": [square(SHAPE, 1, 1, 5)] * 4}, jpeg=False)
    make_predictions(pred, {"other": [square(SHAPE, 1, 1, 5)] * 3})  # last frame missing
    with pytest.raises(FileNotFoundError, match="other/00003.png"):
        evaluate_sequences(gt, pred, processes=2)
