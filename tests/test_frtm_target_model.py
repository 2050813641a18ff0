"""FRTM target model: golden parity with the upstream fit, solver correctness, memory and update rules.

Golden data: ../shared/golden/frtm/target_model.pt (see its MANIFEST.md). The Gauss-Newton + CG fit amplifies
rounding, so the float64 run is compared with upstream's float64 run (tight), and the float32 run with upstream's
float32 run at ~2 % of the largest magnitude, as the MANIFEST suggests. Measured (1 thread): float64 within
1e-5 (weights) and 9e-5 (scores, abs) of upstream float64 on an AVX-512 Xeon, full resolution and banded score-grid
fit alike (another machine gave 1.5e-6 and 1.7e-5: the solve amplifies the CPU's own rounding); float32 within
0.9 % (rel) of upstream float32 and 0.4 % of upstream float64. All comparisons are relative to the reference's scale.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from numeric import RTOL_ELEMENTWISE, assert_scaled_close
from reusegate.adapters.frtm.augment import augment_first_frame
from reusegate.adapters.frtm.target_model import (
    GaussNewtonCG,
    TargetModel,
    TargetModelParams,
    filter_conv,
    hinge_pixel_weights,
    score_grid_terms,
)

WEIGHT_KEYS = ("after_init_project", "after_init_filter", "after_update_filter")
SCORE_KEYS = ("scores_new_sample", "scores_new_sample2_after_update")


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """Max abs error relative to the reference's largest magnitude."""
    b = b.to(a.dtype)
    return float((a - b).abs().max() / b.abs().max())


def _replay(ref: dict, dtype: torch.dtype, fit_resolution: str = "full") -> dict:
    """Run init -> apply -> update -> apply exactly as the golden run did (upstream used one thread)."""
    tm = TargetModel(256, TargetModelParams.inference_fast(fit_resolution=fit_resolution)).to(dtype)
    tm.project.weight.data.copy_(ref["init_project"])
    tm.filter.weight.data.copy_(ref["init_filter"])
    out = {"pixel_weights_sqrt": tm.pixel_weights(ref["labels"].to(dtype)).sqrt()}
    tm.init(ref["samples"].to(dtype), ref["labels"].to(dtype))
    out.update(
        gn_steps_joint=tm.init_history,
        gn_steps_update_in_init=tm.update_history,
        after_init_project=tm.project.weight.clone(),
        after_init_filter=tm.filter.weight.clone(),
        memory_weights_after_init=tm.memory_weights.clone(),
    )
    tm.frame_num = 7  # as upstream's run: the next apply() makes it 8, a multiple of train_skipping
    out["scores_new_sample"] = tm.apply(ref["new_sample"].to(dtype))
    label = ref["train_label"].to(dtype)
    out["update_pixel_weights_sqrt"] = tm.pixel_weights(label)[0].sqrt()
    out["solved"] = tm.update(label)
    out.update(
        gn_steps_update=tm.update_history,
        memory_weights_after_update=tm.memory_weights.clone(),
        after_update_filter=tm.filter.weight.clone(),
        memory_slot3=tm._mem_b[3].clone(),  # full resolution: the label itself
        scores_new_sample2_after_update=tm.apply(ref["new_sample2"].to(dtype)),
    )
    return out


@pytest.fixture(scope="module")
def golden(golden_frtm):
    return torch.load(golden_frtm / "target_model.pt", weights_only=True)


@pytest.fixture(scope="module")
def run64(golden):
    return _replay(golden["float32"], torch.float64)


@pytest.fixture(scope="module")
def run32(golden):
    return _replay(golden["float32"], torch.float32)


def test_golden_pixel_weights(golden, run32):
    ref = golden["float32"]
    for key in ("pixel_weights_sqrt", "update_pixel_weights_sqrt"):  # elementwise maths: rounding only
        assert_scaled_close(key, run32[key], ref[key], RTOL_ELEMENTWISE)


def test_golden_memory_weights_exact(golden, run32, run64):
    ref, ref64 = golden["float32"], golden["float64_outputs"]
    for key in ("memory_weights_after_init", "memory_weights_after_update"):
        # a few scalar divisions in the same order as upstream: IEEE-exact on any CPU (no reduction involved)
        assert torch.equal(run32[key], ref[key]), key
        # upstream's float64 run kept some weights at float32 precision
        torch.testing.assert_close(run64[key], ref64[key], rtol=0, atol=1e-7)
    assert int((run32["memory_weights_after_update"] > 0).sum()) == 4
    # the soft label itself is stored (0.55..0.95 inside the box), in the first free slot
    torch.testing.assert_close(run32["memory_slot3"], ref["train_label"][0])


@pytest.mark.parametrize("fit_resolution", ["full", "score_exact"])
def test_golden_float64_matches_upstream_float64(golden, run64, fit_resolution):
    """Upstream's full-resolution fit, reproduced at full resolution and by the banded score-grid problem."""
    ref64 = golden["float64_outputs"]
    if fit_resolution != "full":
        run64 = _replay(golden["float32"], torch.float64, fit_resolution)
    assert run64["solved"]
    # Relative to each tensor's scale (weights ~0.03-0.1, scores ~0.9). Measured at 1 thread on an AVX-512 Xeon: up
    # to 2e-4 of the scale (weights) and 1.1e-4 (scores); upstream's own float64 rerun on 2 threads moved the weights
    # by ~1e-3 of their scale, so the CG solve's amplification of rounding stays 10x inside the bound.
    for key in WEIGHT_KEYS + SCORE_KEYS:
        assert_scaled_close(key, run64[key], ref64[key], rtol=2e-3, atol=0)


def test_golden_float32_matches_upstream_float32(golden, run32):
    ref = golden["float32"]
    assert run32["solved"]
    for key in WEIGHT_KEYS + SCORE_KEYS:
        assert _rel(run32[key], ref[key]) < 2e-2, key
        # and close to the float64 answer (measured: 0.4 %; upstream's float32 run is 1.1 % away from it)
        assert _rel(run32[key], golden["float64_outputs"][key]) < 2e-2, key


def test_golden_gauss_newton_trajectory(golden, run32):
    ref = golden["float32"]
    assert len(run32["gn_steps_joint"]) == len(ref["gn_steps_joint"]) == 4
    for step, (mine, theirs) in enumerate(zip(run32["gn_steps_joint"], ref["gn_steps_joint"])):
        # The first GN step of a float32 solve is dominated by rounding: the float64 run, which matches upstream's
        # float64 end result to 1e-6, is ~11 % away from upstream's float32 first step. Later steps settle.
        tol = 0.15 if step == 0 else 2e-2
        for m, t in zip(mine, theirs):
            assert _rel(m, t) < tol, step
    for key in ("gn_steps_update_in_init", "gn_steps_update"):
        assert len(run32[key]) == len(ref[key]) == 1
        assert _rel(run32[key][0][0], ref[key][0][0]) < 2e-2, key


# ---------------------------------------------------------------------------------------------- unit tests
def test_presets_and_validation():
    fast, full, train = TargetModelParams.inference_fast(), TargetModelParams.inference(), TargetModelParams.training()
    assert fast.init_iters == (5, 10, 10, 10) and fast.update_iters == (5,)
    assert full.init_iters == (5, 10, 10, 10, 10) and full.update_iters == (10,)
    assert (train.c_channels, train.memory_size, train.num_aug, train.pixel_weighting) == (32, 20, 15, None)
    assert train.filter_reg == (1e-5, 1e-4) and train.cg_forgetting_rate == 75
    assert fast.cg_forget_factor == pytest.approx(0.9 ** 750)
    assert TargetModelParams.inference_fast(fit_resolution="score").fit_resolution == "score"
    with pytest.raises(ValueError, match="fit_resolution"):
        TargetModelParams(fit_resolution="half")
    with pytest.raises(ValueError, match="pixel_weighting"):
        TargetModelParams(pixel_weighting="balanced")


def test_hinge_pixel_weights():
    mask = torch.zeros(3, 1, 40, 50)
    mask[0, :, :10, :10] = 1  # 5 % area: reweighted
    mask[1, :, :30, :] = 1  # 60 %: untouched
    mask[2, :, :3, :3] = 1  # 9 px: too small to reweight
    w = hinge_pixel_weights(mask, tf=0.1, min_pixels=10)
    fg0 = mask[0] > 0.5
    assert float(w[0][fg0].sum() / w[0].sum()) == pytest.approx(0.1)  # foreground carries tf of the weight
    assert float(w[0].mean()) == pytest.approx(1.0)
    assert torch.equal(w[1], torch.ones_like(w[1])) and torch.equal(w[2], torch.ones_like(w[2]))


def test_score_grid_terms_reproduce_the_full_resolution_quadratic():
    torch.manual_seed(0)
    dt = torch.float64
    label = (torch.rand(2, 1, 45, 70, dtype=dt) > 0.5).to(dt)
    weights = torch.rand(2, 1, 45, 70, dtype=dt) + 0.5
    coefs, t = score_grid_terms(label, weights, (3, 5))
    assert coefs.shape == (2, 9, 3, 5) and t.shape == (2, 1, 3, 5)
    s = torch.randn(2, 1, 3, 5, dtype=dt)
    up = F.interpolate(s, size=(45, 70), mode="bilinear", align_corners=False)
    # sum_p w_p ((U s)_p - y_p)^2 == s^T B s - 2 s^T t + sum_p w_p y_p^2, per sample
    full = (weights * (up - label) ** 2).sum((1, 2, 3))
    bs = sum(coefs[:, 3 * (dh + 1) + dw + 1] * F.pad(s, (1, 1, 1, 1))[:, 0, 1 + dh:4 + dh, 1 + dw:6 + dw]
             for dh in (-1, 0, 1) for dw in (-1, 0, 1))
    folded = (s[:, 0] * bs).sum((1, 2)) - 2 * (s * t).sum((1, 2, 3)) + (weights * label ** 2).sum((1, 2, 3))
    torch.testing.assert_close(folded, full, rtol=1e-10, atol=1e-9)
    lumped, t2 = score_grid_terms(label, weights, (3, 5), lumped=True)
    torch.testing.assert_close(t2, t)
    torch.testing.assert_close(lumped[:, 4], coefs.sum(1))  # row sums U^T w on the diagonal
    assert float(lumped[:, [0, 1, 2, 3, 5, 6, 7, 8]].abs().max()) == 0
    torch.testing.assert_close(lumped.sum((1, 2, 3)), weights.sum((1, 2, 3)))  # data/regulariser balance kept


def test_filter_conv_is_the_3x3_convolution():
    torch.manual_seed(0)
    x, w = torch.randn(3, 7, 5, 9, dtype=torch.float64), torch.randn(1, 7, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(filter_conv(x, w), F.conv2d(x, w, padding=1), rtol=1e-12, atol=1e-12)


def test_gauss_newton_cg_solves_ridge_regression():
    torch.manual_seed(0)
    a, t = torch.randn(60, 8, dtype=torch.float64), torch.randn(60, dtype=torch.float64)
    x = torch.zeros(8, dtype=torch.float64)
    solver = GaussNewtonCG([x], reg=[0.3], precond=[1.0], forget_factor=0.0)
    # |a x - t|^2 = x^T a^T a x - 2 (a x)^T t + const: output a x, metric identity, gradient a x - t.
    # A linear problem: one GN step, and CG is exact after 8 steps in 8 dimensions.
    history = solver.run(lambda p: a @ p[0], lambda u: u, lambda s: s - t, [8])
    expected = torch.linalg.solve(a.T @ a + 0.09 * torch.eye(8, dtype=torch.float64), a.T @ t)
    torch.testing.assert_close(x, expected, rtol=1e-8, atol=1e-8)
    assert len(history) == 1 and torch.equal(history[0][0], x)


def test_gauss_newton_step_length_grows_to_one():
    a, t = torch.eye(3, dtype=torch.float64), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    x = torch.zeros(3, dtype=torch.float64)
    solver = GaussNewtonCG([x], reg=[0.0], precond=[1.0], forget_factor=0.0, step=0.5)
    history = solver.run(lambda p: a @ p[0], lambda u: u, lambda s: s - t, [3, 3, 3, 3, 3])
    # steps 0.5, 0.6, 0.72, 0.864, then 1 (capped): each leaves (1 - step) of the error to the solution t
    fractions = [1 - float(h[0][0]) for h in history]
    assert fractions == pytest.approx([0.5, 0.5 * 0.4, 0.5 * 0.4 * 0.28, 0.5 * 0.4 * 0.28 * 0.136, 0.0], abs=1e-12)


def _toy_model(fit_resolution: str = "full", dtype: torch.dtype = torch.float32
               ) -> tuple[TargetModel, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    params = TargetModelParams.inference_fast(c_channels=8, memory_size=4, fit_resolution=fit_resolution)
    tm = TargetModel(16, params).to(dtype)
    feats = torch.relu(torch.randn(2, 16, 6, 8, dtype=dtype))
    labels = torch.zeros(2, 1, 96, 128, dtype=dtype)
    labels[:, :, 20:70, 30:90] = 1
    tm.init(feats, labels)
    return tm, feats, labels


def test_update_memory_and_skipping():
    tm, feats, labels = _toy_model()
    assert tm.num_samples == 2 and tm.memory_weights[:2].tolist() == pytest.approx([2 / 3, 1 / 3])
    filt = tm.filter.weight.clone()
    tm.apply(feats[:1])
    assert tm.update(torch.zeros(1, 1, 96, 128)) is False  # empty mask: nothing learned
    assert tm.num_samples == 2
    solved, slots = [], []
    for _ in range(tm.params.train_skipping + 2):
        tm.apply(feats[1:])
        solved.append(tm.update(labels[1:] * 0.9))
        slots.append(tm._prev_slot)
    assert solved.count(True) == 1 and solved[tm.params.train_skipping - 2] is True  # frame 8 of 1..10
    assert not torch.equal(tm.filter.weight, filt)
    assert tm.num_samples == 4 and float(tm.memory_weights.sum()) == pytest.approx(1.0)
    # once full, the lowest-weight slot is recycled: the two newest-but-one samples weigh less than the
    # first-frame ones (2/3, 1/3 at the start), so slots 2 and 3 take turns and the originals stay
    assert set(slots) == {2, 3} and slots[-1] != slots[-2]
    w = tm.memory_weights
    # exponential forgetting: the newest sample outweighs the previous newest by 1 / (1 - lr)
    assert float(w[slots[-1]] / w[slots[-2]]) == pytest.approx(1 / (1 - tm.params.learning_rate))
    with pytest.raises(RuntimeError, match="apply"):
        tm.update(labels[:1])  # the cached sample was consumed


def test_apply_before_init_raises():
    with pytest.raises(RuntimeError, match="init"):
        TargetModel(16, TargetModelParams.inference_fast(c_channels=4)).apply(torch.zeros(1, 16, 4, 4))


def test_lumped_score_fit_is_an_approximation():
    ious, filters = [], []
    for mode in ("full", "score"):
        tm, feats, labels = _toy_model(mode)
        assert tm._mem_a.shape[-2:] == ((96, 128) if mode == "full" else (6, 8))
        score = F.interpolate(tm.apply(feats[:1]), size=(96, 128), mode="bilinear", align_corners=False)
        pred, gt = score > 0.5, labels[0] > 0.5
        ious.append(float((pred & gt).sum() / (pred | gt).sum()))
        filters.append(tm.filter.weight)
    assert not torch.allclose(filters[0], filters[1], rtol=1e-2, atol=0)  # a different problem...
    assert ious[0] > 0.8 and ious[1] > 0.8  # ...whose masks still fit the object


def test_params_are_frozen_dataclass():
    params = TargetModelParams.inference_fast()
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.memory_size = 3  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------- augmentation
def _still_frame() -> tuple[torch.Tensor, torch.Tensor]:
    y, x = torch.meshgrid(torch.linspace(-1, 1, 60), torch.linspace(-1, 1, 90), indexing="ij")
    image = torch.stack([x, y, x * y])[None]
    mask = ((x / 0.3) ** 2 + (y / 0.4) ** 2 <= 1).float()[None, None]
    image = image + mask * 3.0  # a bright object on a smooth background
    return image, mask


def test_augment_first_frame_reposes_the_object():
    image, mask = _still_frame()
    images, masks = augment_first_frame(image, mask, 4, torch.Generator().manual_seed(0))
    assert images.shape == (4, 3, 60, 90) and masks.shape == (4, 1, 60, 90)
    assert images.dtype == image.dtype and set(masks.unique().tolist()) <= {0.0, 1.0}
    for img, m in zip(images, masks):
        assert not torch.equal(m, mask[0])  # rotated / scaled / flipped: a new silhouette
        inside, outside = img[0][m[0] > 0.5], img[0][m[0] < 0.5]
        # the object's pixels travel with its mask; the hole it left is filled with background
        assert float(inside.mean()) > 2.0 and float(outside.mean()) < 1.0
    again, _ = augment_first_frame(image, mask, 4, torch.Generator().manual_seed(0))
    assert torch.equal(images, again)
    other, _ = augment_first_frame(image, mask, 4, torch.Generator().manual_seed(1))
    assert not torch.equal(images, other)


def test_augment_first_frame_edge_cases():
    image, mask = _still_frame()
    images, masks = augment_first_frame(image, mask, 0, torch.Generator())
    assert images.shape == (0, 3, 60, 90) and masks.shape == (0, 1, 60, 90)
    images, masks = augment_first_frame(image, torch.zeros_like(mask), 2, torch.Generator().manual_seed(0))
    assert images.shape == (2, 3, 60, 90) and float(masks.sum()) == 0  # no object: background changes only


def test_runs_under_inference_mode():
    """Callers may track under torch.inference_mode(); the solves still need autograd."""
    torch.manual_seed(0)
    with torch.inference_mode():
        feats = torch.relu(torch.randn(2, 16, 6, 8))
        labels = torch.zeros(2, 1, 96, 128)
        labels[:, :, 20:70, 30:90] = 1
        tm = TargetModel(16, TargetModelParams.inference_fast(c_channels=8, memory_size=4, train_skipping=1))
        before = tm.filter.weight.clone()
        tm.init(feats, labels)
        tm.apply(feats[:1])
        assert tm.update(labels[:1] * 0.9)
    assert not torch.equal(tm.filter.weight, before) and tm.num_samples == 3


def test_init_rejects_bad_inputs():
    tm = TargetModel(16, TargetModelParams.inference_fast(c_channels=4, memory_size=2))
    with pytest.raises(ValueError, match="K = 2"):
        tm.init(torch.zeros(2, 16, 4, 4), torch.zeros(3, 1, 64, 64))
    with pytest.raises(ValueError, match="memory of 2"):
        tm.init(torch.zeros(3, 16, 4, 4), torch.zeros(3, 1, 64, 64))
