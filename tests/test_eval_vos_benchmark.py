"""J and F equal vos-benchmark's (an independent MIT implementation of davis2017-evaluation's per-frame
metrics) within 1e-6, per frame on adversarial masks and as global means on real DAVIS sequences.

vos-benchmark's ``benchmark()`` maps its ``VideoEvaluator`` over videos in a *forked* Pool, which can hang
once this process has run threaded OpenCV calls; :func:`vos_benchmark_global` calls the same evaluator in
this process and averages over all objects exactly as ``benchmark()`` does."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from vos_benchmark.benchmark import VideoEvaluator
from vos_benchmark.evaluator import Evaluator

from reusegate.data.readers import DavisReader
from reusegate.evaluation import evaluate_sequences, f_measure, jaccard
from vos_synth import make_davis, make_predictions, square

SHAPE = (60, 90)


def vos_benchmark_global(gt_dir: Path, pred_dir: Path) -> tuple[tuple[float, float, float], dict]:
    """(J&F, J, F) as fractions and {video: (J per object, F per object)} on vos-benchmark's 0-100 scale."""
    videos = sorted(p.name for p in Path(gt_dir).iterdir() if p.is_dir())
    per_obj, all_j, all_f = {}, [], []
    for video in videos:
        _, iou, bf = VideoEvaluator(str(gt_dir), str(pred_dir))(video)
        per_obj[video] = (iou, bf)
        all_j += list(iou.values())
        all_f += list(bf.values())
    j, f = np.mean(all_j) / 100, np.mean(all_f) / 100
    return ((j + f) / 2, j, f), per_obj


def _per_frame_reference(preds: list[np.ndarray], gts: list[np.ndarray]) -> tuple[dict, dict]:
    ev = Evaluator()
    for p, g in zip(preds, gts):
        ev.feed_frame(p, g)
    return ev.object_iou, ev.boundary_f


def _check_frames(preds: list[np.ndarray], gts: list[np.ndarray], ids: list[int]) -> int:
    """Compare every per-frame value vos-benchmark computed with ours; return how many were compared."""
    ref_j, ref_f = _per_frame_reference(preds, gts)
    compared = 0
    for oid in ids:
        n = len(ref_j[oid])
        offset = len(preds) - n  # vos-benchmark starts an object's series when it is first seen
        for k in range(n):
            p, g = preds[offset + k] == oid, gts[offset + k] == oid
            assert abs(jaccard(p, g) - ref_j[oid][k]) <= 1e-6, (oid, k)
            assert abs(f_measure(p, g) - ref_f[oid][k]) <= 1e-6, (oid, k)
            compared += 1
    return compared


def _random_blobs(rng: np.random.Generator, n_obj: int) -> np.ndarray:
    m = np.zeros(SHAPE, np.uint8)
    for oid in range(1, n_obj + 1):
        y, x = rng.integers(0, SHAPE[0] - 10), rng.integers(0, SHAPE[1] - 10)
        h, w = rng.integers(1, 30, size=2)
        m[y : y + h, x : x + w] = oid
        noise = rng.random(SHAPE) < 0.02
        m[noise] = oid
    return m


def test_random_multi_object_frames():
    rng = np.random.default_rng(0)
    gts = [_random_blobs(rng, 3) for _ in range(12)]
    preds = [_random_blobs(rng, 3) for _ in range(12)]
    assert _check_frames(preds, gts, [1, 2, 3]) == 36


def test_adversarial_frames():
    e = np.zeros(SHAPE, np.uint8)
    one_px = e.copy()
    one_px[30, 40] = 1
    one_px_shifted = e.copy()
    one_px_shifted[31, 41] = 1
    corner = e.copy()
    corner[-1, -1] = 1  # the bottom-right pixel has no boundary in seg2bmap
    edge_row = e.copy()
    edge_row[-1, :] = 1
    full = np.ones(SHAPE, np.uint8)
    big = square(SHAPE, 5, 5, 40)
    gts = [big, e, e, one_px, one_px, corner, edge_row, full, big, e]
    preds = [big, e, big, one_px, one_px_shifted, corner, e, full, e, one_px]
    n = _check_frames(preds, gts, [1])
    assert n == len(gts)
    # Hand values where the answer is obvious: empty/empty is perfect; predicting nothing scores 0.
    assert jaccard(e, e) == 1.0 and f_measure(e, e) == 1.0
    assert jaccard(e, big) == 0.0 and f_measure(e, big) == 0.0
    assert jaccard(big, e) == 0.0 and f_measure(big, e) == 0.0


def test_extra_predicted_object_and_absent_objects_frames():
    rng = np.random.default_rng(1)
    gts, preds = [], []
    for t in range(8):
        g = _random_blobs(rng, 2)
        if t in (2, 3):
            g[g == 2] = 0  # object 2 absent from these frames
        p = _random_blobs(rng, 3)  # object 3 exists only in the prediction
        gts.append(g)
        preds.append(p)
    assert _check_frames(preds, gts, [1, 2, 3]) == 24


def _sequence_level(tmp_path: Path, gts: dict, preds: dict, binary: bool = False) -> tuple:
    gt_root = make_davis(tmp_path / "gt", gts, binary=binary, jpeg=False)
    pred = make_predictions(tmp_path / "pred", preds)
    ours = evaluate_sequences(gt_root, pred, processes=1)
    return ours, vos_benchmark_global(gt_root / "Annotations" / "480p", pred)[0]


def _assert_same(ours, ref) -> None:
    assert abs(ours.jf_mean - ref[0]) <= 1e-6
    assert abs(ours.j_mean - ref[1]) <= 1e-6
    assert abs(ours.f_mean - ref[2]) <= 1e-6


def test_sequences_with_adversarial_content(tmp_path):
    rng = np.random.default_rng(2)
    one_px = np.zeros(SHAPE, np.uint8)
    one_px[10, 10] = 1
    gts = {
        # Objects present on frame 1 (both evaluators then score the same frames), absent on some later ones.
        "absent": [_random_blobs(rng, 2) for _ in range(7)],
        "tiny": [one_px.copy() for _ in range(6)],
        "multi": [_random_blobs(rng, 3) for _ in range(9)],
    }
    gts["absent"][3][gts["absent"][3] == 2] = 0
    gts["absent"][4][gts["absent"][4] == 1] = 0
    preds = {
        "absent": [_random_blobs(rng, 2) for _ in range(7)],
        "tiny": [np.roll(m, t % 2, axis=1) for t, m in enumerate(gts["tiny"])],
        "multi": [_random_blobs(rng, 4) for _ in range(9)],  # id 4 is an extra predicted object
    }
    preds["absent"][2][:] = 0  # an empty predicted frame
    ours, ref = _sequence_level(tmp_path, gts, preds)
    _assert_same(ours, ref)
    assert ours.extra_objects == {"multi": [4]}
    assert len(ours.objects) == 2 + 1 + 3


def test_binary_0_255_ground_truth(tmp_path):
    """0/255 ground truth and 0/255 predictions: vos-benchmark scores id 255, we score id 1 — same numbers."""
    rng = np.random.default_rng(3)
    gts = {"bin": [(_random_blobs(rng, 1) > 0).astype(np.uint8) for _ in range(6)]}
    gt_root = make_davis(tmp_path / "gt", gts, binary=True, jpeg=False)
    pred = tmp_path / "pred"
    from vos_synth import write_gray

    for i in range(6):
        write_gray(pred / "bin" / f"{i:05d}.png", (_random_blobs(rng, 1) > 0).astype(np.uint8) * 255)
    ours = evaluate_sequences(gt_root, pred, processes=1)
    ref, per_obj = vos_benchmark_global(gt_root / "Annotations" / "480p", pred)
    assert list(per_obj["bin"][0]) == [255]
    assert [o.object_id for o in ours.objects] == [1]
    _assert_same(ours, ref)


@pytest.mark.data
def test_real_sequences_shifted_prediction(davis_root, tmp_path):
    """Real DAVIS sequences, prediction = ground truth of the previous frame, as in benchmarks/bench_eval.py."""
    names = ["bear", "car-turn", "dance-jump"]
    reader = DavisReader(davis_root, year=2016, sequences=names)
    gts, preds = {}, {}
    for seq in reader:
        masks = [seq.load_mask(i) for i in range(len(seq))]
        gts[seq.name] = masks
        preds[seq.name] = [masks[max(i - 1, 0)] for i in range(len(masks))]
    gt_idx = make_davis(tmp_path / "gt1", gts, jpeg=False)  # index 1 for vos-benchmark
    pred = make_predictions(tmp_path / "pred", preds)
    ours = evaluate_sequences(davis_root, pred, sequences=names, processes=2)  # reads the 0/255 originals
    ref, per_obj = vos_benchmark_global(gt_idx / "Annotations" / "480p", pred)
    _assert_same(ours, ref)
    for o in ours.objects:
        ref_j, ref_f = per_obj[o.sequence]
        assert abs(o.j_stats[0] * 100 - ref_j[1]) <= 1e-4 and abs(o.f_stats[0] * 100 - ref_f[1]) <= 1e-4
    assert 0.5 < ours.jf_mean < 1.0
