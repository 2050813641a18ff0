"""Clip transforms: registered in the reusegate scope, one random draw per clip, masks stay ids."""
from __future__ import annotations

import numpy as np
import pytest
from mmengine.registry import DefaultScope

from reusegate.registry import TRANSFORMS
from vos_synth import square

SHAPE = (40, 60)


def _clip(n=4):
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, (*SHAPE, 3), dtype=np.uint8) for _ in range(n)]
    masks = [square(SHAPE, 5 + t, 10 + 2 * t, 12, 1) + square(SHAPE, 25, 40, 6, 2) for t in range(n)]
    return {"imgs": imgs, "masks": masks}


def _build(cfg):
    with DefaultScope.overwrite_default_scope("reusegate"):
        return TRANSFORMS.build(cfg)


def test_registered_in_reusegate_scope():
    for name in ("ClipResize", "ClipRandomScale", "ClipRandomCrop", "ClipRandomFlip", "ClipColorJitter"):
        assert TRANSFORMS.get(name) is not None


def test_flip_is_clip_consistent():
    np.random.seed(0)
    t = _build(dict(type="ClipRandomFlip", prob=0.5))
    flips = []
    for _ in range(20):
        clip = _clip()
        orig = [m.copy() for m in clip["masks"]]
        out = t(clip)
        flips.append(out["flip"])
        for m, o in zip(out["masks"], orig):
            assert np.array_equal(m, o[:, ::-1] if out["flip"] else o)
    assert any(flips) and not all(flips)


def test_scale_crop_keep_relative_motion():
    np.random.seed(1)
    clip = _clip()
    shift_before = [np.nonzero(m == 1)[1].min() for m in clip["masks"]]
    out = _build(dict(type="ClipRandomCrop", size=(30, 50)))(_build(dict(type="ClipRandomScale",
                                                                         scale_range=(1.5, 1.5)))(clip))
    assert out["img_shape"] == (30, 50)
    assert all(im.shape == (30, 50, 3) for im in out["imgs"]) and all(m.shape == (30, 50) for m in out["masks"])
    assert np.count_nonzero(out["masks"][0]) >= 1  # the window keeps the reference object
    x0, y0, _, _ = out["crop_box"]
    full = _build(dict(type="ClipRandomScale", scale_range=(1.5, 1.5)))(_clip())
    for m_crop, m_full in zip(out["masks"], full["masks"]):  # the same window on every frame
        assert np.array_equal(m_crop, m_full[y0 : y0 + 30, x0 : x0 + 50])
    assert set(np.unique(np.concatenate([m.ravel() for m in out["masks"]]))) <= {0, 1, 2}
    assert shift_before == sorted(shift_before)


def test_crop_pads_small_clips_and_resize():
    out = _build(dict(type="ClipRandomCrop", size=(50, 70)))(_clip())
    assert out["imgs"][0].shape == (50, 70, 3) and out["masks"][0][45:].max() == 0
    out = _build(dict(type="ClipResize", size=(20, 30)))(_clip())
    assert out["imgs"][0].shape == (20, 30, 3) and set(np.unique(out["masks"][0])) <= {0, 1, 2}


def test_color_jitter_same_parameters_masks_untouched():
    np.random.seed(2)
    clip = _clip()
    clip["imgs"] = [np.full((*SHAPE, 3), 100, np.uint8) for _ in range(4)]
    masks = [m.copy() for m in clip["masks"]]
    out = _build(dict(type="ClipColorJitter", brightness=0.4, contrast=0.0, saturation=0.0, hue=0.0))(clip)
    values = {int(im[0, 0, 0]) for im in out["imgs"]}
    assert len(values) == 1 and values != {100}  # one draw per clip, and it changed the frames
    assert all(np.array_equal(a, b) for a, b in zip(out["masks"], masks))
    with pytest.raises(ValueError, match="brightness"):
        _build(dict(type="ClipColorJitter", brightness=1.5))
