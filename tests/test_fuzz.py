"""Fuzzing (issue 15) with hypothesis: the readers, the palette writer and the per-frame session API under
random sizes, ids, dtypes, image modes, object start frames and frame orders. Nothing may crash except with
the documented error (``ValueError`` with a message that says what to fix), and what succeeds must be right.

CI runs the small, derandomized "ci" profile registered in conftest.py; search harder with
``pytest tests/test_fuzz.py --hypothesis-profile=long``.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from reusegate.adapters.reference import ReferenceHost
from reusegate.data.readers import open_sequence, read_image, read_mask, read_raw_mask
from reusegate.data.writer import write_palette_png
from reusegate.core.config import VARIANTS
from reusegate.core.gate import ReuseGate
from reusegate.core.session import HostRunner

sizes = st.tuples(st.integers(1, 24), st.integers(1, 24))


def _tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# ------------------------------------------------------------------------------------------------ palette writer
@given(labels=hnp.arrays(st.sampled_from([np.uint8, np.int16, np.int64, np.uint16, np.bool_]),
                         hnp.array_shapes(min_dims=0, max_dims=3, max_side=12),
                         elements=st.integers(0, 1)) | hnp.arrays(
    st.sampled_from([np.int16, np.int32, np.int64]), hnp.array_shapes(min_dims=0, max_dims=3, max_side=12),
    elements=st.integers(-3, 300)) | hnp.arrays(st.sampled_from([np.float32, np.float64]),
                                                hnp.array_shapes(min_dims=2, max_dims=2, max_side=8)))
def test_palette_writer_round_trips_or_refuses_without_a_file(labels, tmp_path_factory):
    path = _tmp(tmp_path_factory) / "m.png"
    valid = (labels.ndim == 2 and (labels.dtype == bool or np.issubdtype(labels.dtype, np.integer))
             and (labels.size == 0 or (labels.min() >= 0 and labels.max() <= 255)))
    if not valid:
        with pytest.raises(ValueError, match=r"labels for .*m\.png must"):
            write_palette_png(path, labels)
        assert list(path.parent.iterdir()) == []  # neither the file nor a temporary one
        return
    if labels.size == 0:
        with pytest.raises(ValueError):  # PIL cannot store an empty image: refused, no file either
            write_palette_png(path, labels)
        assert list(path.parent.iterdir()) == []
        return
    write_palette_png(path, labels)
    raw, mode = read_raw_mask(path)
    assert mode == "P" and np.array_equal(raw, labels.astype(np.uint8))
    assert [p.name for p in path.parent.iterdir()] == ["m.png"]


# ------------------------------------------------------------------------------------------------ readers
MODES = ["L", "P", "LA", "I;16", "1", "RGB", "RGBA", "CMYK", "F"]


def _image(mode: str, size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    h, w = size
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 2 ** 16, (h, w), dtype=np.uint16))
    if mode == "F":
        return Image.fromarray(rng.random((h, w), dtype=np.float32))
    base = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return base.convert(mode) if mode != "P" else Image.fromarray(rng.integers(0, 8, (h, w), dtype=np.uint8), "P")


@given(mode=st.sampled_from(MODES), size=sizes, seed=st.integers(0, 2 ** 16),
       fmt=st.sampled_from(["PNG", "JPEG", "TIFF", "BMP"]))
def test_read_image_gives_rgb_uint8_or_a_clear_error(mode, size, seed, fmt, tmp_path_factory):
    img = _image(mode, size, seed)
    buf = io.BytesIO()
    try:
        img.save(buf, format=fmt)
    except (OSError, KeyError, ValueError):
        assume(False)  # PIL cannot write this mode in this format: not an input anyone can hand us
    path = _tmp(tmp_path_factory) / f"frame.{fmt.lower()}"
    path.write_bytes(buf.getvalue())
    try:
        frame = read_image(path)
    except ValueError as exc:
        assert str(path) in str(exc) and "float" in str(exc)
        assert Image.open(path).mode == "F"
        return
    assert frame.shape == (*size, 3) and frame.dtype == np.uint8


@given(mode=st.sampled_from(MODES), size=sizes, seed=st.integers(0, 2 ** 16))
def test_read_mask_gives_ids_or_a_clear_error(mode, size, seed, tmp_path_factory):
    path = _tmp(tmp_path_factory) / "mask.png"
    img = _image(mode, size, seed)
    try:
        img.save(path)
    except (OSError, KeyError):
        assume(False)
    try:
        ids = read_mask(path)
    except ValueError as exc:
        msg = str(exc)
        assert str(path) in msg and ("single-channel" in msg or "above 255" in msg), msg
        return
    assert ids.shape == size and ids.dtype == np.uint8
    raw, stored = read_raw_mask(path)
    if stored not in ("P", "PA") and set(np.unique(raw).tolist()) <= {0, 255} and raw.max() == 255:
        assert np.array_equal(ids, (raw > 128).astype(np.uint8))  # DAVIS-2016 0/255: one object
    else:
        assert np.array_equal(ids, np.where(raw == 255, 0, raw))  # ids, 255 = void read as background


@given(data=st.binary(min_size=0, max_size=200), suffix=st.sampled_from([".png", ".jpg"]))
def test_random_bytes_are_a_clear_error(data, suffix, tmp_path_factory):
    path = _tmp(tmp_path_factory) / f"junk{suffix}"
    path.write_bytes(data)
    for reader in (read_image, read_mask):
        with pytest.raises(ValueError, match="cannot read .*junk"):
            reader(path)


@given(sizes_=st.lists(st.sampled_from([(12, 16), (12, 16), (12, 16), (16, 12), (8, 16)]), min_size=1, max_size=5),
       mask_size=st.sampled_from([(12, 16), (16, 12)]))
def test_open_sequence_checks_every_size_up_front(sizes_, mask_size, tmp_path_factory):
    root = _tmp(tmp_path_factory)
    for i, s in enumerate(sizes_):
        Image.fromarray(np.full((*s, 3), 40 * i, np.uint8)).save(root / f"{i:05d}.png")
    mask = root.parent / f"{root.name}-first.png"
    Image.fromarray(np.ones(mask_size, np.uint8)).save(mask)
    if all(s == sizes_[0] for s in sizes_) and mask_size == sizes_[0]:
        seq = open_sequence(root, mask)
        assert len(seq) == len(sizes_) and seq.size == sizes_[0] and seq.object_ids == [1]
    else:
        with pytest.raises(ValueError, match="share one size"):
            open_sequence(root, mask)


# ------------------------------------------------------------------------------------------------ session API
HOST = dict(width=4, refined_channels=8)


@st.composite
def videos(draw):
    """A random video: frame size, dtype, number of frames, objects with random start frames, a random frame
    order (the session must not care which frames it sees in which order)."""
    h, w = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    n = draw(st.integers(1, 5))
    k = draw(st.integers(1, 3))
    starts = sorted([0] + [draw(st.integers(0, n - 1)) for _ in range(k - 1)])
    seed = draw(st.integers(0, 2 ** 16))
    order = draw(st.permutations(range(n)))
    dtype = draw(st.sampled_from(["uint8", "float32", "float64", "numpy"]))
    return h, w, n, starts, seed, list(order), dtype


def _frame(rng: np.random.Generator, h: int, w: int, dtype: str):
    pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if dtype == "numpy":
        return pixels
    t = torch.from_numpy(pixels).permute(2, 0, 1)
    return t if dtype == "uint8" else t.to(getattr(torch, dtype)) / 255


@given(video=videos(), tau=st.floats(0, 1), variant=st.sampled_from([v for v in VARIANTS if v != "oracle"]))
def test_session_any_video_gives_consistent_results(video, tau, variant):
    h, w, n, starts, seed, order, dtype = video
    tau2 = min(1.0, tau + 0.1)
    assume(variant != "fusion" or tau2 > tau)
    gate = ReuseGate(ReferenceHost(**HOST), "reference", tau=tau, variant=variant, tau2=tau2)
    session, host = gate.session(), HostRunner(gate.adapter)
    rng = np.random.default_rng(seed)
    frames = [_frame(rng, h, w, dtype) for _ in range(n)]
    known: list[int] = []
    for step, i in enumerate(order):
        new_ids = [oid + 1 for oid, s in enumerate(starts) if s == step]
        labels = None
        if new_ids:
            labels = np.zeros((h, w), np.int64)
            for oid in new_ids:  # each new object gets one random pixel at least
                labels[rng.integers(h), rng.integers(w)] = oid
            present = sorted(set(np.unique(labels)) - {0})
            if present != new_ids:  # two objects drew the same pixel: the documented error
                if not known:
                    with pytest.raises(ValueError):
                        session.step(frames[i], labels)
                    return
                with pytest.raises(ValueError, match="1..K without gaps"):
                    session.step(frames[i], labels)
                return
        result = session.step(frames[i], labels)
        bare = host.step(frames[i], labels)
        known += new_ids
        assert tuple(result.labels.shape) == (h, w) and result.labels.dtype == torch.int64
        assert set(result.labels.unique().tolist()) <= {0, *known}
        assert sorted(result.reused) == sorted(known) and sorted(result.p_reuse) == sorted(known)
        assert result.probs.shape == (len(known) + 1, h, w) and torch.isfinite(result.probs).all()
        for oid in new_ids:
            assert not result.reused[oid] and np.isnan(result.p_reuse[oid])
        for oid, p in result.p_reuse.items():
            assert np.isnan(p) or 0.0 <= p <= 1.0
            assert not result.reused[oid] or p > tau  # reuse iff p_reuse > tau (strict)
        if tau >= 1.0:  # tau = 1 is the host itself, bit for bit
            assert torch.equal(result.labels, bare.labels)
    stats = session.stats()
    assert 0.0 <= stats["reuse_rate"] <= 1.0


@given(h=st.integers(1, 16), w=st.integers(1, 16), dh=st.integers(-3, 3), dw=st.integers(-3, 3),
       mask_dtype=st.sampled_from(["int64", "uint8", "bool", "float32"]))
def test_session_refuses_inconsistent_steps_with_the_documented_errors(h, w, dh, dw, mask_dtype):
    session = ReuseGate(ReferenceHost(**HOST), "reference", tau=0.5).session()
    frame = torch.randint(0, 256, (3, h, w), dtype=torch.uint8)
    mask = torch.zeros(h, w, dtype=getattr(torch, mask_dtype))
    mask[0, 0] = 1
    if mask_dtype == "float32":
        with pytest.raises(ValueError, match="integer label map"):
            session.step(frame, mask)
        return
    session.step(frame, mask)
    other = torch.randint(0, 256, (3, max(1, h + dh), max(1, w + dw)), dtype=torch.uint8)
    if tuple(other.shape) != tuple(frame.shape):
        with pytest.raises(ValueError, match="same size"):
            session.step(other)
        assert session.index == 1
    again = torch.zeros(h, w, dtype=torch.long)
    again[-1, -1] = 1
    with pytest.raises(ValueError, match="already exist"):
        session.step(frame, again)
    assert session.step(frame).index == 1
