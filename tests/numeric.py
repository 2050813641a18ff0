"""Machine-independent float comparisons for the tests.

The rule: ``max|got - want| <= rtol * max|want| + atol``. Float32 convolutions sum in an order that depends on
the CPU's vector width and oneDNN's kernel choice (an AVX-512 Xeon and an AVX2-only EPYC differ by ~1e-6 of the
tensor's scale, even on one thread), so an error is only meaningful relative to the magnitude of the reference.
The classes below are the tolerances the suite uses; ``tests/test_frtm_golden.py`` shows that each still rejects
realistic modelling bugs by orders of magnitude.
"""
from __future__ import annotations

import torch

# Elementwise arithmetic, resizes and data movement: only rounding (FMA contraction, vector width) can differ.
RTOL_ELEMENTWISE = 4e-6
# Chains of float32 convolutions / matmuls (a backbone, a decoder): reduction order differs across CPUs.
RTOL_CONV = 1e-5
# Floor for tensors whose scale is near zero (the MANIFEST's suggestion for the golden data).
ATOL = 1e-6


def scaled_error(got: torch.Tensor, want: torch.Tensor) -> tuple[float, float]:
    """(max abs error, max |want|) in float64, after checking the shapes agree."""
    assert got.shape == want.shape, f"shape {tuple(got.shape)} != {tuple(want.shape)}"
    got, want = got.detach().double(), want.detach().double()
    diff = torch.nan_to_num((got - want).abs(), nan=float("inf"))  # a NaN where the reference is finite fails
    return float(diff.max()), float(want.abs().max())


def error_ratio(got: torch.Tensor, want: torch.Tensor, rtol: float = RTOL_CONV, atol: float = ATOL) -> float:
    """max abs error divided by the allowed bound: <= 1 passes."""
    err, scale = scaled_error(got, want)
    bound = rtol * scale + atol
    return err / bound if bound > 0 else (0.0 if err == 0 else float("inf"))


def assert_scaled_close(name: str, got: torch.Tensor, want: torch.Tensor, rtol: float = RTOL_CONV,
                        atol: float = ATOL, scale: float | None = None) -> float:
    """Assert ``max|got - want| <= rtol * max|want| + atol``; print and return the error relative to the scale.

    ``scale`` overrides ``max|want|`` where the rounding is set by something larger (e.g. the terms of a sum)."""
    err, own_scale = scaled_error(got, want)
    scale = own_scale if scale is None else scale
    bound = rtol * scale + atol
    rel = err / scale if scale > 0 else err
    print(f"[numeric] {name}: max abs error {err:.3g} (bound {bound:.3g} = {rtol:g} * {scale:.3g} + {atol:g}), "
          f"relative to scale {rel:.3g}")
    assert err <= bound, (f"{name}: max abs error {err:.3g} > {rtol:g} * max|want| ({scale:.3g}) + {atol:g} "
                          f"= {bound:.3g} (relative error {rel:.3g})")
    return rel


def assert_labels_match(name: str, got: torch.Tensor, want: torch.Tensor, probs: torch.Tensor,
                        rtol: float = RTOL_CONV) -> int:
    """Label maps equal except at near-ties: a pixel may differ only where the reference's two largest slot
    values ([K, H, W] ``probs``) are within ``rtol`` of each other, where rounding may flip the argmax."""
    assert got.shape == want.shape, f"{name}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    differ = got != want
    top2 = probs.double().topk(2, dim=0).values
    tie = (top2[0] - top2[1]) <= rtol * float(probs.abs().max())
    bad = int((differ & ~tie).sum())
    print(f"[numeric] {name}: {int(differ.sum())} labels differ, {bad} of them away from a near-tie")
    assert bad == 0, f"{name}: {bad} labels differ away from a near-tie of the reference's slots"
    return int(differ.sum())
