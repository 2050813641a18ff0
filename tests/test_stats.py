"""`reusegate stats`: the consecutive-IoU histogram and the oracle reuse bound."""
from __future__ import annotations

import numpy as np
import pytest

from reusegate.cli import main
from reusegate.data.readers import DavisReader
from reusegate.evaluation import evaluate_sequences, oracle_bound, redundancy_report
from reusegate.evaluation.redundancy import consecutive_ious
from vos_synth import make_davis, make_predictions, square

SHAPE = (40, 60)


@pytest.mark.data
def test_davis2016_train_fig1a(davis_root, capsys, tmp_path):
    plot = tmp_path / "hist.png"
    assert main(["stats", str(davis_root), "--plot", str(plot), "--tau"]) == 0
    out = capsys.readouterr().out
    assert "pairs: 2037" in out
    assert "IoU>0.7: 70.0%" in out.splitlines()
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_histogram_by_hand(tmp_path):
    # Square of 100 px moving 1, 5 and 10 px right; then the object vanishes for two frames (one pair
    # object->empty IoU 0, one pair empty->empty skipped).
    frames = [square(SHAPE, 5, 5, 10), square(SHAPE, 5, 6, 10), square(SHAPE, 5, 11, 10),
              square(SHAPE, 5, 21, 10), np.zeros(SHAPE, np.uint8), np.zeros(SHAPE, np.uint8)]
    root = make_davis(tmp_path, {"s": frames})
    seq = DavisReader(root, year=2017).sequence("s")
    ious = consecutive_ious(seq)[1]
    assert ious == pytest.approx([90 / 110, 50 / 150, 0.0, 0.0])
    rep = redundancy_report([seq], processes=1)
    assert rep.n_pairs == 4
    assert rep.counts.tolist() == [2, 0, 0, 1, 0, 0, 0, 0, 1, 0]
    assert rep.fraction_above(0.7) == pytest.approx(0.25)
    assert "IoU>0.7: 25.0%" in rep.table()


def test_identical_frames_fill_the_closed_last_bin(tmp_path):
    root = make_davis(tmp_path, {"s": [square(SHAPE, 5, 5, 10)] * 4})
    rep = redundancy_report(DavisReader(root, year=2017), processes=1)
    assert rep.counts[-1] == 3 and rep.n_pairs == 3


def test_oracle_by_hand(tmp_path):
    # IoU(f0, f1) = 90/110 = 0.818, IoU(f0, f2) = 80/120 = 0.667, IoU(f1, f2) = 90/110.
    frames = [square(SHAPE, 5, 5, 10), square(SHAPE, 5, 6, 10), square(SHAPE, 5, 7, 10), square(SHAPE, 5, 7, 10)]
    root = make_davis(tmp_path, {"s": frames})
    seq = DavisReader(root, year=2017).sequence("s")
    scores = oracle_bound(seq, [0.0, 0.8, 0.9])
    # tau 0: reuse frame 0 for all 3 later frames; kept frames 1, 2 get J 90/110 and 80/120.
    assert scores[0.0].reuse_rate == 1.0
    assert scores[0.0].j_mean == pytest.approx((90 / 110 + 80 / 120) / 2)
    # tau 0.8: frame 1 reused (0.818), frame 2 computed (0.667 < 0.8), frame 3 reused (identical to 2).
    assert scores[0.8].reused == 2 and scores[0.8].frames == 3
    assert scores[0.8].j_mean == pytest.approx((90 / 110 + 1) / 2)
    # tau 0.9: frames 1 and 2 computed, frame 3 reused (IoU 1).
    assert scores[0.9].reused == 1 and scores[0.9].jf_mean == 1.0


def test_oracle_equals_evaluating_the_oracle_prediction(tmp_path):
    """The oracle's J&F equals evaluate_sequences on the copied masks written to disk."""
    rng = np.random.default_rng(0)
    frames, y, x = [], 10, 10
    for _ in range(9):
        y, x = y + int(rng.integers(-2, 3)), x + int(rng.integers(-3, 4))
        frames.append(square(SHAPE, y, x, 12))
    root = make_davis(tmp_path / "gt", {"s": frames})
    tau = 0.75
    preds, anchor = [frames[0]], 0
    for t in range(1, len(frames)):
        inter = np.count_nonzero((frames[anchor] > 0) & (frames[t] > 0))
        union = np.count_nonzero((frames[anchor] > 0) | (frames[t] > 0))
        if inter / union >= tau:
            preds.append(frames[anchor])
        else:
            preds.append(frames[t])
            anchor = t
    pred = make_predictions(tmp_path / "pred", {"s": preds})
    ref = evaluate_sequences(root, pred, processes=1)
    score = oracle_bound(DavisReader(root, year=2017).sequence("s"), [tau])[tau]
    assert score.jf_mean == pytest.approx(ref.jf_mean, abs=1e-12)
    assert 0 < score.reuse_rate < 1


def test_stats_cli_oracle_table(tmp_path, capsys):
    frames = [square(SHAPE, 5, 5 + t, 10) for t in range(6)]
    root = make_davis(tmp_path, {"a": frames, "b": frames[::-1]})
    seqs = tmp_path / "list.txt"
    seqs.write_text("a\n")
    assert main(["stats", str(root), "--sequences", str(seqs), "--tau", "0.5", "0.95", "--processes", "1"]) == 0
    out = capsys.readouterr().out
    assert "pairs: 5" in out and "IoU>0.7: 100.0%" in out
    assert " 0.50 " in out and " 0.95 " in out and "reuse" in out
    assert main(["stats", str(root), "--tau", "1.5"]) == 2
