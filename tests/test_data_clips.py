"""Clip sampling (reference + later frames within max skip, object choice) and synthetic "Syn" clips."""
from __future__ import annotations

import numpy as np
import pytest

from reusegate.data.clips import ClipSampler, SyntheticClipGenerator
from reusegate.data.readers import DavisReader, YouTubeVOSReader
from vos_synth import make_davis, make_youtube, square

SHAPE = (32, 48)


def _video(tmp_path, n=20):
    # Object 1 everywhere; object 2 only from frame 8 on; object 3 only on frame 0 (never later).
    masks = []
    for t in range(n):
        m = square(SHAPE, 2, 2 + t % 10, 6, 1)
        if t >= 8:
            m[20:26, 30:36] = 2
        if t == 0:
            m[25:27, 2:4] = 3
        masks.append(m)
    return DavisReader(make_davis(tmp_path, {"v": masks}), year=2017).sequence("v")


def test_sorted_clips_respect_max_skip_and_length(tmp_path):
    seq = _video(tmp_path)
    sampler = ClipSampler(num_frames=6, max_skip=3, num_objects=2)
    rng = np.random.default_rng(0)
    for _ in range(50):
        clip = sampler.sample(seq, rng)
        idx = clip["frame_indices"]
        assert len(idx) == len(clip["imgs"]) == len(clip["masks"]) == 6
        steps = np.diff(idx)
        assert (steps >= 1).all() and (steps <= 3).all() and idx[-1] < len(seq)
        # Chosen objects are visible on the reference frame and relabelled 1..k in chosen order.
        for new, old in enumerate(clip["object_ids"], start=1):
            assert np.array_equal(clip["masks"][0] == new, seq.load_mask(idx[0]) == old)
        assert clip["masks"][0].max() == len(clip["object_ids"])
        assert set(np.unique(np.concatenate([m.ravel() for m in clip["masks"]]))) <= set(range(3))


def test_object_choice_and_random_order(tmp_path):
    seq = _video(tmp_path)
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(60):
        seen.update(ClipSampler(num_frames=4, num_objects=1).sample(seq, rng)["object_ids"])
    assert seen == {1, 2, 3}
    orders = [ClipSampler(num_frames=6, order="random").sample(seq, rng)["frame_indices"] for _ in range(30)]
    assert any(o[1:] != sorted(o[1:]) for o in orders)  # upstream's unsorted draws
    assert all(len(set(o)) == 6 for o in orders)


def test_sparse_annotations_and_late_objects(tmp_path):
    seq = YouTubeVOSReader(make_youtube(tmp_path)).sequence("vid1")
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match="2 annotated frames"):
        ClipSampler(num_frames=6).sample(seq, rng)
    clip = ClipSampler(num_frames=2, num_objects=2, max_skip=1).sample(seq, rng)
    assert clip["frame_indices"] == [0, 2] and clip["object_ids"] == [1]


def test_bad_sampler_arguments():
    with pytest.raises(ValueError, match="order"):
        ClipSampler(order="backwards")
    with pytest.raises(ValueError, match="max_skip"):
        ClipSampler(max_skip=0)


def test_synthetic_clip_moves_smoothly():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
    mask = square((64, 80), 20, 25, 20, 1)
    gen = SyntheticClipGenerator(num_frames=6, max_shift=0.04, max_rotation=4, max_scale=0.03)
    clip = gen.make_clip(image, mask, rng)
    assert len(clip["imgs"]) == len(clip["masks"]) == 6 and clip["object_ids"] == [1]
    assert np.array_equal(clip["masks"][0], mask)  # frame 0 is the still image's own mask
    assert np.array_equal(clip["imgs"][0][mask > 0], image[mask > 0])
    ious, centres = [], []
    for a, b in zip(clip["masks"], clip["masks"][1:]):
        ious.append(np.count_nonzero((a > 0) & (b > 0)) / np.count_nonzero((a > 0) | (b > 0)))
    for m in clip["masks"]:
        ys, xs = np.nonzero(m)
        centres.append((ys.mean(), xs.mean()))
    assert 0.4 < min(ious) and max(ious) < 1.0  # it moves, but smoothly
    steps = np.linalg.norm(np.diff(np.array(centres), axis=0), axis=1)
    assert steps.max() < 0.04 * 80 * 2.5
    with pytest.raises(ValueError, match="no object"):
        gen.make_clip(image, np.zeros((64, 80), np.uint8), rng)
