"""Fixed augmented copies of a sequence (reusegate.data.copies) and their use as extra cached sequences."""
from __future__ import annotations

import numpy as np
import pytest

from reusegate.data.copies import AugmentedSequence, check_copy, copy_tag


class _Seq:
    """A 10-frame, 60x80 sequence: a red 10x10 square (object 1) moving right on a grey gradient."""

    name, size, object_ids, start_frames = "toy", (60, 80), [1], {1: 0}

    def __len__(self) -> int:
        return 10

    def load_mask(self, i: int) -> np.ndarray:
        m = np.zeros(self.size, np.uint8)
        m[25:35, 20 + 2 * i:30 + 2 * i] = 1
        return m

    def load_frame(self, i: int) -> np.ndarray:
        f = np.repeat(np.linspace(40, 200, 80, dtype=np.uint8)[None, :, None], 60, 0).repeat(3, 2)
        f[self.load_mask(i) == 1] = (255, 0, 0)
        return f

    def load_void(self, i: int) -> None:
        return None


def test_check_copy_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="unknown keys \\['scale'\\]"):
        check_copy(dict(scale=1.2))
    with pytest.raises(ValueError, match="zoom must lie in"):
        check_copy(dict(zoom=0.8))
    with pytest.raises(ValueError, match="no room to pan"):
        check_copy(dict(pan=0.2))
    with pytest.raises(ValueError, match="changes nothing"):
        check_copy(dict(seed=3))
    assert copy_tag(dict(flip=True)) == "flip-s0"
    assert copy_tag(dict(zoom=1.3, pan=0.2, seed=1)) == "z1.3-p0.2-s1"
    assert len({copy_tag(dict(zoom=1.3, seed=s)) for s in range(3)}) == 3


def test_flip_mirrors_frames_and_masks_alike() -> None:
    base, copy = _Seq(), AugmentedSequence(_Seq(), flip=True)
    assert copy.name == "toy@flip-s0" and len(copy) == 10 and copy.object_ids == [1] and copy.size == (60, 80)
    for i in (0, 9):
        assert np.array_equal(copy.load_frame(i), base.load_frame(i)[:, ::-1])
        assert np.array_equal(copy.load_mask(i), base.load_mask(i)[:, ::-1])
    with pytest.raises(AttributeError, match="load_void"):  # would silently skip the flip
        copy.load_void(0)


def test_zoomed_panning_copy_keeps_masks_on_their_pixels() -> None:
    copy = AugmentedSequence(_Seq(), zoom=1.5, pan=0.3, seed=4)
    again = AugmentedSequence(_Seq(), zoom=1.5, pan=0.3, seed=4)
    windows = [copy._window(i) for i in range(10)]
    assert len(set(windows)) > 1  # the crop travels
    for i in range(10):
        frame, mask = copy.load_frame(i), copy.load_mask(i)
        assert frame.shape == (60, 80, 3) and mask.shape == (60, 80) and mask.dtype == np.uint8
        assert np.array_equal(frame, again.load_frame(i))  # deterministic
        red = (frame[..., 0] > 200) & (frame[..., 1] < 60)
        m = mask.astype(bool)
        shifts = [np.roll(m, s, a) for s in (-2, 2) for a in (0, 1)]
        inner, outer = m & np.logical_and.reduce(shifts), m | np.logical_or.reduce(shifts)
        assert inner.any() and red[inner].all() and not red[~outer].any()  # frame and mask share the geometry
    first = copy.load_mask(0)
    assert first.sum() > 1.5 ** 2 * 100 * 0.8  # the crop starts on the object: all of it, magnified
    assert not np.array_equal(first, _Seq().load_mask(0))


def test_colour_copy_changes_frames_only() -> None:
    base, copy = _Seq(), AugmentedSequence(_Seq(), color=0.4, seed=1)
    assert np.array_equal(copy.load_mask(3), base.load_mask(3))
    assert copy.load_frame(3).dtype == np.uint8
    assert np.abs(copy.load_frame(3).astype(int) - base.load_frame(3)).mean() > 2


class _Other(_Seq):
    """Another toy: a blue-green background, 8 frames, no object of its own that matters."""

    name = "other"

    def __len__(self) -> int:
        return 8

    def load_frame(self, i: int) -> np.ndarray:
        return np.full((60, 80, 3), (0, 90, 160), np.uint8)


def test_pasted_sequence_moves_the_objects_onto_another_background() -> None:
    from reusegate.data.copies import PastedSequence

    with pytest.raises(ValueError, match="two different sequences"):
        PastedSequence(_Seq(), _Seq())
    with pytest.raises(ValueError, match="drift"):
        PastedSequence(_Seq(), _Other(), drift=2.0)
    pasted = PastedSequence(_Seq(), _Other(), drift=0.3, seed=1)
    assert pasted.name == "toy+other@paste-d0.3-s1" and len(pasted) == 8 and pasted.object_ids == [1]
    assert np.array_equal(pasted.load_mask(0), _Seq().load_mask(0))  # no drift yet on the first frame
    for i in range(8):
        frame, mask = pasted.load_frame(i), pasted.load_mask(i) > 0
        assert mask.sum() > 50  # the square stays in view
        inner = mask & np.logical_and.reduce([np.roll(mask, s, a) for s in (-1, 1) for a in (0, 1)])
        assert inner.any() and (frame[inner] == (255, 0, 0)).all()  # the object's pixels, pasted
        assert (frame[~mask] == (0, 90, 160)).all()  # the other sequence's background everywhere else
    last = np.argwhere(pasted.load_mask(7)).mean(0) - np.argwhere(_Seq().load_mask(7)).mean(0)
    assert np.hypot(last[0] / 60, last[1] / 80) == pytest.approx(0.3, abs=0.02)  # the stated share of the frame
