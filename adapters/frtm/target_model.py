"""FRTM's online target model: a tiny per-object network fitted on the fly by Gauss-Newton + conjugate gradient.

Re-implemented from FRTM's paper (Robinson et al., CVPR 2020) and a description of its released code (that code is
GPL-3.0 and was not consulted); docs/upstream-differences.md lists where this one differs. The model is ``project`` (1x1 conv, C16 -> c, no bias) followed by ``filter`` (3x3 conv,
c -> 1, no bias, padding 1); its raw output is the coarse score ``S`` at stride 16.

It is trained by weighted least squares against object masks: the score is bilinearly upsampled to the label
resolution, each residual is scaled by sqrt(pixel weight) * sqrt(sample weight), and each parameter tensor ``W_i``
adds a Tikhonov residual ``filter_reg[i] * W_i``. Upstream fits at *full image resolution*, which makes each
update of an 80-sample memory cost seconds on a CPU.

The solver works on the score grid: with U the bilinear upsampling and W the pixel weights, the data term is
s^T (U^T W U) s - 2 s^T U^T W y + const, so only the operator B = U^T W U and the vector t = U^T W y are needed.
``fit_resolution`` chooses how they are formed:

* ``"full"`` (upstream): B u is computed as U^T (W (U u)) at image resolution on every CG iteration;
* ``"score_exact"``: B is banded (a bilinear output pixel mixes 2x2 score cells, so B couples each cell with its
  3x3 neighbourhood); its 9 coefficient maps and t are computed once when a label enters the memory. Same
  optimum and same iterates as ``"full"`` up to rounding, at score-grid cost;
* ``"score"``: the labels are folded onto the score grid and fitted there, cell by cell (B replaced by its row
  sums, U^T w: a "lumped" diagonal). The cheapest per CG step, and an approximation.

``benchmarks/bench_target_model.py`` measures what each costs in accuracy and saves in time.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reusegate.core.device import wide_float
from reusegate.core.host import resize

__all__ = [
    "TargetModelParams",
    "TargetModel",
    "GaussNewtonCG",
    "hinge_pixel_weights",
    "score_grid_terms",
    "filter_conv",
]

FIT_RESOLUTIONS = ("full", "score_exact", "score")


@dataclass(frozen=True)
class TargetModelParams:
    """Hyper-parameters of the target model; the class methods give upstream's named sets.

    Args:
        c_channels: width of the projection (96 at inference, 32 in training).
        num_aug: first-frame samples K (original + K-1 augmentations); read by the caller that builds them.
        init_iters: CG iterations of each Gauss-Newton step of the first-frame joint solve.
        update_iters: CG iterations of each Gauss-Newton step of an update solve (filter only).
        filter_reg: Tikhonov factor per parameter tensor (project, filter).
        precond: diagonal preconditioner per parameter tensor (project, filter); CG divides by it.
        precond_lr: with ``cg_forgetting_rate`` gives the CG direction forgetting factor
            ``(1 - precond_lr) ** cg_forgetting_rate`` applied between solver runs.
        cg_forgetting_rate: see ``precond_lr``.
        memory_size: capacity of the sample memory.
        learning_rate: exponential-forgetting rate of the sample weights.
        train_skipping: run the update solve only when the frame counter is a multiple of this.
        pixel_weighting: ``"hinge"`` (reweight small objects) or ``None`` (all pixels weigh 1).
        hinge_tf: minimum share of the total weight the foreground carries under ``"hinge"``.
        min_pixels: masks with fewer foreground pixels (> 0.5) are neither reweighted nor learned from.
        gn_step: first Gauss-Newton step length; it grows by 1.2 per step, capped at 1 (1 = plain GN).
        fit_resolution: ``"full"`` (upstream: labels at image resolution), ``"score_exact"`` (the same
            problem on the score grid) or ``"score"`` (labels folded onto the score grid, approximate); see the
            module docstring.
    """

    c_channels: int = 96
    num_aug: int = 5
    init_iters: Tuple[int, ...] = (5, 10, 10, 10, 10)
    update_iters: Tuple[int, ...] = (10,)
    filter_reg: Tuple[float, float] = (1e-4, 1e-2)
    precond: Tuple[float, float] = (1e-4, 1e-2)
    precond_lr: float = 0.1
    cg_forgetting_rate: float = 750.0
    memory_size: int = 80
    learning_rate: float = 0.1
    train_skipping: int = 8
    pixel_weighting: Optional[str] = "hinge"
    hinge_tf: float = 0.1
    min_pixels: int = 10
    gn_step: float = 1.0
    fit_resolution: str = "full"

    def __post_init__(self) -> None:
        if self.fit_resolution not in FIT_RESOLUTIONS:
            raise ValueError(f"fit_resolution must be one of {FIT_RESOLUTIONS}, got {self.fit_resolution!r}")
        if self.pixel_weighting not in (None, "hinge"):
            raise ValueError(f"pixel_weighting must be 'hinge' or None, got {self.pixel_weighting!r}")
        if len(self.filter_reg) != 2 or len(self.precond) != 2:
            raise ValueError("filter_reg and precond need one value per parameter tensor: (project, filter)")
        if self.memory_size < 1 or self.train_skipping < 1 or self.c_channels < 1:
            raise ValueError("memory_size, train_skipping and c_channels must be >= 1")
        if not 0.0 < self.learning_rate < 1.0:
            raise ValueError(f"learning_rate must lie in (0, 1), got {self.learning_rate}")

    @classmethod
    def inference(cls, **overrides) -> "TargetModelParams":
        """Upstream FRTM evaluation settings (normal iteration counts)."""
        return replace(cls(), **overrides)

    @classmethod
    def inference_fast(cls, **overrides) -> "TargetModelParams":
        """Upstream ``--fast`` (FRTM-fast; what Reuse_VOS's evaluation always runs): fewer GN/CG steps."""
        return replace(cls(init_iters=(5, 10, 10, 10), update_iters=(5,)), **overrides)

    @classmethod
    def training(cls, **overrides) -> "TargetModelParams":
        """Upstream training settings (target models fitted once per reference frame, no online updates)."""
        base = cls(
            c_channels=32,
            num_aug=15,
            memory_size=20,
            filter_reg=(1e-5, 1e-4),
            precond=(1e-5, 1e-4),
            cg_forgetting_rate=75.0,
            pixel_weighting=None,
        )
        return replace(base, **overrides)

    @property
    def cg_forget_factor(self) -> float:
        return (1.0 - self.precond_lr) ** self.cg_forgetting_rate


def hinge_pixel_weights(mask: Tensor, tf: float = 0.1, min_pixels: int = 10) -> Tensor:
    """Per-pixel weights that give a small object's foreground at least ``tf`` of the total weight.

    With foreground fraction ``af < tf`` the foreground gets ``tf / af`` and the background ``(1-tf)/(1-af)``
    (the weights still average to 1); larger objects and objects under ``min_pixels`` keep weight 1.
    ``mask`` is ``[N, 1, H, W]``; foreground is ``mask > 0.5``. Returns ``[N, 1, H, W]``.
    """
    fg = (mask > 0.5).to(mask.dtype)
    count = fg.flatten(1).sum(1)
    af = count / fg[0].numel()
    weights = torch.ones_like(mask)
    for i in range(mask.shape[0]):
        if count[i] >= min_pixels and af[i] < tf:
            weights[i] = fg[i] * (tf / af[i]) + (1 - fg[i]) * ((1 - tf) / (1 - af[i]))
    return weights


def _upsample_adjoint(t: Tensor, size: Sequence[int]) -> Tensor:
    """U^T t, where U is the bilinear upsampling from ``size`` to ``t``'s resolution."""
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    with torch.enable_grad():
        z = t.new_zeros(*t.shape[:-2], *size, requires_grad=True)
        (grad,) = torch.autograd.grad(resize(z, t.shape[-2:]), z, t)
    return grad


def _upsample_matrix(n_out: int, n_in: int, like: Tensor) -> Tensor:
    """The 1-D bilinear (align_corners=False) upsampling matrix [n_out, n_in], as F.interpolate applies it."""
    eye = torch.eye(n_in, dtype=like.dtype, device=like.device)[None, None]
    return resize(eye, (n_out, n_in))[0, 0]


def _shift_cols(m: Tensor, d: int) -> Tensor:
    """Column j of the result is column j + d of ``m`` (zero where that is outside)."""
    if d == 0:
        return m
    out = torch.zeros_like(m)
    if d > 0:
        out[:, :-d] = m[:, d:]
    else:
        out[:, -d:] = m[:, :d]
    return out


def score_grid_terms(label: Tensor, pixel_weights: Tensor, size: Sequence[int], lumped: bool = False
                     ) -> Tuple[Tensor, Tensor]:
    """The weighted least-squares data term of full-resolution labels, moved onto the score grid.

    sum_p w_p ((U s)_p - y_p)^2 = s^T B s - 2 s^T t + const with B = U^T W U and t = U^T W y. Bilinear upsampling
    is separable (U = U_h (x) U_w) and mixes 2x2 neighbouring cells, so B couples each score cell only with its
    3x3 neighbourhood: B[q, q + d] = sum_p w_p U[p, q] U[p, q + d] = (A_h^T W A_w)[q] with
    A_h[p, q] = U_h[p, q] U_h[p, q + d_h] (likewise A_w), i.e. two small matrix products per offset d.
    With ``lumped`` the coefficients are summed into the centre (B replaced by its row sums U^T w), which is
    fitting the weight-averaged label U^T (w y) / U^T w cell by cell.

    Args:
        label, pixel_weights: ``[N, 1, H, W]``.
        size: the score grid ``(h, w)``.
    Returns:
        ``coefs [N, 9, h, w]`` (offset (dh, dw) in -1..1 at index 3 (dh + 1) + dw + 1) and ``t [N, 1, h, w]``.
    """
    (big_h, big_w), (h, w) = label.shape[-2:], tuple(size)
    u_h, u_w = _upsample_matrix(big_h, h, label), _upsample_matrix(big_w, w, label)
    weights = pixel_weights[:, 0]
    t = (u_h.t() @ (weights * label[:, 0]) @ u_w)[:, None]
    rows = {dh: (u_h * _shift_cols(u_h, dh)).t() @ weights for dh in (-1, 0, 1)}  # [N, h, W] each
    coefs = torch.stack([rows[dh] @ (u_w * _shift_cols(u_w, dw)) for dh in (-1, 0, 1) for dw in (-1, 0, 1)], 1)
    if lumped:
        centre = torch.zeros_like(coefs)
        centre[:, 4] = coefs.sum(1)
        coefs = centre
    return coefs, t


def _banded_apply(coefs: Tensor, u: Tensor) -> Tensor:
    """B u for B given by :func:`score_grid_terms` coefficients: sum_d coefs_d * u shifted by d."""
    h, w = u.shape[-2:]
    padded = F.pad(u, (1, 1, 1, 1))
    out = coefs[:, 4:5] * u
    for k in (0, 1, 2, 3, 5, 6, 7, 8):
        dh, dw = k // 3 - 1, k % 3 - 1
        out = out + coefs[:, k:k + 1] * padded[:, :, 1 + dh:1 + dh + h, 1 + dw:1 + dw + w]
    return out


def filter_conv(x: Tensor, weight: Tensor) -> Tensor:
    """``F.conv2d(x, weight, padding=1)`` for a ``[1, C, 3, 3]`` filter, as a matrix product and 9 shifted adds.

    CPU convolutions with a single output channel run far below matrix-product speed; the solves evaluate this
    (and its double backward) a dozen times per Gauss-Newton step over the whole memory, and this form halves
    their cost. Equal to the convolution up to rounding.
    """
    n, c, h, w = x.shape
    taps = F.pad(torch.einsum("nchw,ck->nkhw", x, weight.reshape(c, 9)), (1, 1, 1, 1))
    out = taps[:, 4:5, 1:1 + h, 1:1 + w]
    for k in (0, 1, 2, 3, 5, 6, 7, 8):
        out = out + taps[:, k:k + 1, k // 3:k // 3 + h, k % 3:k % 3 + w]
    return out


TensorList = List[Tensor]
ScoreGraph = Callable[[Tensor, Tensor, Tensor], Tuple[Tensor, Tensor]]
"""A compiled score apply: ``(f16, project weight, filter weight) -> (projected f16, score)``."""


def _dot(a: TensorList, b: TensorList) -> Tensor:
    wide = wide_float(a[0].device)
    return sum((x.to(wide) * y.to(wide)).sum() for x, y in zip(a, b)).to(a[0].dtype)


class GaussNewtonCG:
    """Gauss-Newton on a least-squares problem, each step solved approximately by preconditioned CG.

    The problem is min_x  s(x)^T B s(x) - 2 s(x)^T t + sum_i reg_i^2 |x_i|^2 for a model output ``s(x)`` and a
    positive semi-definite operator ``B`` on it (a weighted least-squares data term; see
    :func:`score_grid_terms`). Jacobian-vector products J v come from a double backward through autograd (the
    gradient J^T u is linear in a dummy u; differentiating it w.r.t. u in direction v gives J v), J^T products
    from a plain backward. The CG search direction survives between runs (warm start); at the start of each
    run the previous ``rho`` is divided by ``forget_factor`` so the old direction fades (0 = restart every run).
    Polak-Ribiere beta, clamped at 0, and the standard alpha = rho / p^T A p.

    Args:
        params: tensors to optimise (updated in place).
        reg: Tikhonov factor per tensor (the residual ``reg[i] * params[i]``).
        precond: diagonal preconditioner per tensor (the CG divides the residual by it).
        forget_factor: see above.
        step: first GN step length, multiplied by 1.2 per GN step and capped at 1.
    """

    def __init__(self, params: TensorList, reg: Sequence[float], precond: Sequence[float],
                 forget_factor: float, step: float = 1.0) -> None:
        if not (len(params) == len(reg) == len(precond)):
            raise ValueError("params, reg and precond must have one entry per tensor")
        self.params = params
        self.reg = list(reg)
        self.precond = list(precond)
        self.forget_factor = forget_factor
        self.step = step
        self._direction: Optional[TensorList] = None
        self._rho: Optional[Tensor] = None
        self._r_prev: Optional[TensorList] = None

    def run(self, model: Callable[[TensorList], Tensor], metric: Callable[[Tensor], Tensor],
            gradient: Callable[[Tensor], Tensor], cg_iters: Sequence[int]) -> List[TensorList]:
        """One GN step per entry of ``cg_iters``; returns a copy of the parameters after each step.

        Args:
            model: maps the parameters to the output ``s``.
            metric: ``u -> B u`` on outputs.
            gradient: ``s -> B s - t``, the data term's gradient w.r.t. the output (halved). Passed separately
                from ``metric`` so that it can be formed without cancellation (e.g. U^T W (U s - y)).
        """
        history = []
        step = self.step
        for n_cg in cg_iters:
            self._gn_step(model, metric, gradient, n_cg, min(step, 1.0))
            step *= 1.2
            history.append([p.detach().clone() for p in self.params])
        return history

    def _gn_step(self, model: Callable[[TensorList], Tensor], metric: Callable[[Tensor], Tensor],
                 gradient: Callable[[Tensor], Tensor], n_cg: int, step: float) -> None:
        reg2 = [r * r for r in self.reg]
        with torch.enable_grad():
            x = [p.detach().requires_grad_(True) for p in self.params]
            s = model(x)
            dummy = torch.zeros_like(s, requires_grad=True)
            jt_dummy = torch.autograd.grad(s, x, dummy, create_graph=True)
            grad = torch.autograd.grad(s, x, gradient(s.detach()), retain_graph=True)

            def normal_op(v: TensorList) -> TensorList:
                (jv,) = torch.autograd.grad(jt_dummy, dummy, v, retain_graph=True)
                jtbjv = torch.autograd.grad(s, x, metric(jv), retain_graph=True)
                return [a + r * vi for a, r, vi in zip(jtbjv, reg2, v)]

            b = [-(gi + r * xi.detach()) for gi, r, xi in zip(grad, reg2, x)]
            delta = self._cg(b, normal_op, n_cg)
        with torch.no_grad():
            for p, d in zip(self.params, delta):
                p.add_(d, alpha=step)

    def _cg(self, b: TensorList, normal_op: Callable[[TensorList], TensorList], n_iter: int) -> TensorList:
        if self.forget_factor == 0:
            self._direction, self._rho, self._r_prev = None, None, None
        elif self._direction is not None:
            self._rho = self._rho / self.forget_factor
        r = [t.clone() for t in b]
        x = [torch.zeros_like(t) for t in b]
        for i in range(n_iter):
            z = [ri / c for ri, c in zip(r, self.precond)]
            rho_prev, rho = self._rho, _dot(r, z)
            self._rho = rho
            if rho.abs() < torch.finfo(rho.dtype).tiny:
                break
            if self._direction is None:
                p = z
            else:
                beta = ((rho - _dot(self._r_prev, z)) / rho_prev).clamp_min(0)
                p = [zi + beta * pi for zi, pi in zip(z, self._direction)]
            self._direction = p
            q = normal_op(p)
            alpha = rho / _dot(p, q)
            self._r_prev = r
            x = [xi + alpha * pi for xi, pi in zip(x, p)]
            if i < n_iter - 1:
                r = [ri - alpha * qi for ri, qi in zip(r, q)]
        return x


class TargetModel(nn.Module):
    """Per-object FRTM target model with its sample memory and online updates.

    Usage per object: :meth:`init` on the first-frame samples, then per computed frame :meth:`apply` (the score)
    and, after the masks are merged, :meth:`update` with the object's soft mask. The initial weights are the
    module's own (PyTorch's default conv initialisation, seed it for reproducibility); set them before
    :meth:`init` to start from given values.

    Args:
        in_channels: channels of the stride-16 feature (256 for ResNet18, 1024 for ResNet50/101).
        params: hyper-parameters; default :meth:`TargetModelParams.inference_fast`.
    """

    def __init__(self, in_channels: int, params: Optional[TargetModelParams] = None) -> None:
        super().__init__()
        self.params = params if params is not None else TargetModelParams.inference_fast()
        c = self.params.c_channels
        self.project = nn.Conv2d(in_channels, c, 1, bias=False)
        self.filter = nn.Conv2d(c, 1, 3, padding=1, bias=False)
        self.project.weight.requires_grad_(False)
        self.filter.weight.requires_grad_(False)
        self.frame_num = 0
        self.init_history: List[TensorList] = []
        self.update_history: List[TensorList] = []
        self.memory_weights: Optional[Tensor] = None
        # per memory slot: projected feature, and the label's data term -- "full": (pixel weights, label) at image
        # resolution; score modes: (banded coefficients [9, h, w], t [1, h, w]) on the score grid
        self._mem_feats: Optional[Tensor] = None
        self._mem_a: Optional[Tensor] = None
        self._mem_b: Optional[Tensor] = None
        self._prev_slot: Optional[int] = None
        self._candidate: Optional[Tensor] = None
        self._updater: Optional[GaussNewtonCG] = None

    # ------------------------------------------------------------------ helpers
    def pixel_weights(self, mask: Tensor) -> Tensor:
        """Pixel weights of ``[N, 1, H, W]`` masks under the configured weighting (ones when ``None``)."""
        if self.params.pixel_weighting == "hinge":
            return hinge_pixel_weights(mask, self.params.hinge_tf, self.params.min_pixels)
        return torch.ones_like(mask)

    def _label_terms(self, labels: Tensor, score_size: Sequence[int]) -> Tuple[Tensor, Tensor]:
        """What the memory keeps of ``[N, 1, H, W]`` labels (see ``_mem_a`` / ``_mem_b``)."""
        weights = self.pixel_weights(labels)
        if self.params.fit_resolution == "full":
            return weights, labels
        return score_grid_terms(labels, weights, score_size, lumped=self.params.fit_resolution == "score")

    def _data_term(self, a: Tensor, b: Tensor, sample_weights: Tensor, score_size: Sequence[int]
                   ) -> Tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]:
        """``(u -> B u, s -> B s - t)`` of stored label terms, each sample scaled by its weight."""
        sw = sample_weights.view(-1, 1, 1, 1)
        if self.params.fit_resolution == "full":
            weights, size = a * sw, a.shape[-2:]
            return (lambda u: _upsample_adjoint(weights * resize(u, size), score_size),
                    lambda s: _upsample_adjoint(weights * (resize(s, size) - b), score_size))
        coefs, t = a * sw, b * sw
        # B s and t nearly cancel at the optimum: subtract them in float64 (a score-grid-sized operation; float32
        # on mps, which has no float64)
        wide = wide_float(coefs.device)
        return (lambda u: _banded_apply(coefs, u),
                lambda s: (_banded_apply(coefs.to(wide), s.to(wide)) - t.to(wide)).to(s.dtype))

    # ------------------------------------------------------------------ first frame
    def init(self, samples: Tensor, labels: Tensor) -> None:
        """Fit project + filter on the first-frame samples, then freeze project and fill the memory.

        Args:
            samples: ``[K, C16, h, w]`` stride-16 features; sample 0 is the original frame.
            labels: ``[K, 1, H, W]`` their 0/1 masks at image resolution.
        """
        p = self.params
        k = samples.shape[0]
        if labels.shape[0] != k or labels.dim() != 4 or labels.shape[1] != 1:
            raise ValueError(f"labels must be [K, 1, H, W] with K = {k} samples, got {tuple(labels.shape)}")
        if k > p.memory_size:
            raise ValueError(f"{k} first-frame samples do not fit a memory of {p.memory_size}")
        with torch.inference_mode(False):  # the solve needs autograd even if the caller runs in inference mode
            self._init(samples.detach().clone() if samples.is_inference() else samples.detach(),
                       labels.clone() if labels.is_inference() else labels)

    def _init(self, samples: Tensor, labels: Tensor) -> None:
        p = self.params
        for conv in (self.project, self.filter):
            if conv.weight.is_inference():  # built under inference mode: give the solver a weight it can update
                conv.weight = nn.Parameter(conv.weight.clone(), requires_grad=False)
        k = samples.shape[0]
        score_size = samples.shape[-2:]
        # the original frame counts twice: weights 2/K, 1/K, ... normalised (used by the joint solve too)
        weights = samples.new_zeros(p.memory_size)
        weights[:k] = 1.0 / k
        weights[0] = 2.0 / k
        weights /= weights.sum()
        a, b = self._label_terms(labels.to(samples.dtype), score_size)
        metric, gradient = self._data_term(a, b, weights[:k], score_size)
        params = [self.project.weight.data, self.filter.weight.data]
        solver = GaussNewtonCG(params, p.filter_reg, p.precond, p.cg_forget_factor, p.gn_step)
        self.init_history = solver.run(lambda x: filter_conv(F.conv2d(samples, x[0]), x[1]),
                                       metric, gradient, p.init_iters)

        with torch.no_grad():
            feats = self.project(samples)
        self._mem_feats = feats.new_zeros(p.memory_size, *feats.shape[1:])
        self._mem_a = a.new_zeros(p.memory_size, *a.shape[1:])
        self._mem_b = b.new_zeros(p.memory_size, *b.shape[1:])
        self._mem_feats[:k], self._mem_a[:k], self._mem_b[:k] = feats, a, b
        self.memory_weights = weights
        self._prev_slot = None
        self.frame_num = 0
        self._candidate = None

        self._updater = GaussNewtonCG([self.filter.weight.data], p.filter_reg[1:], p.precond[1:],
                                      p.cg_forget_factor, p.gn_step)
        self.fit_filter()

    def fit_filter(self) -> None:
        """Run the update solve (GN-CG on the filter) over the memory now; :meth:`update` calls it every
        ``train_skipping`` frames. Only non-empty slots enter the sum (empty ones weigh 0: same optimum).
        """
        if self._updater is None:
            raise RuntimeError("TargetModel.fit_filter() before init()")
        with torch.inference_mode(False):
            self._fit_filter()

    def _fit_filter(self) -> None:
        used = torch.nonzero(self.memory_weights > 0).flatten()
        if used.numel() == self.memory_weights.numel():
            feats, a, b = self._mem_feats, self._mem_a, self._mem_b
        else:
            feats, a, b = self._mem_feats[used], self._mem_a[used], self._mem_b[used]
        metric, gradient = self._data_term(a, b, self.memory_weights[used], feats.shape[-2:])
        self.update_history = self._updater.run(lambda x: filter_conv(feats, x[0]), metric, gradient,
                                                self.params.update_iters)

    # ------------------------------------------------------------------ per frame
    @torch.no_grad()
    def apply(self, f16: Tensor, graph: Optional[ScoreGraph] = None) -> Tensor:
        """Score ``[1, 1, h, w]`` of a stride-16 feature ``[1, C16, h, w]``; caches it as the next sample.

        ``graph``: a compiled ``(f16, project weight, filter weight) -> (projected, score)`` in place of the two
        convolutions (a deployment backend; the weights stay this model's, so updates need no recompiling).
        """
        if self._updater is None:
            raise RuntimeError("TargetModel.apply() before init(): fit the model on the first frame first")
        if graph is None:
            feats = self.project(f16)
            score = self.filter(feats)
        else:
            feats, score = graph(f16, self.project.weight, self.filter.weight)
        self.frame_num += 1
        self._candidate = feats
        return score

    def discard_apply(self) -> None:
        """Take back the last :meth:`apply`: its frame neither counts towards ``train_skipping`` nor enters the
        memory (training scores frames that the gate then reuses, which a session never scores)."""
        if self._candidate is not None:
            self.frame_num -= 1
            self._candidate = None

    @torch.no_grad()
    def update(self, soft_label: Tensor) -> bool:
        """Learn from the last applied frame with its (soft) merged mask ``[1, 1, H, W]``.

        The sample enters the memory on every call with enough foreground; the filter is re-solved only when
        the frame counter is a multiple of ``train_skipping``. Returns whether a solve ran.
        """
        p = self.params
        if self._candidate is None:
            raise RuntimeError("TargetModel.update() needs a preceding apply() on the same frame")
        if int((soft_label > 0.5).sum()) < p.min_pixels:
            return False
        a, b = self._label_terms(soft_label.to(self._mem_feats.dtype), self._candidate.shape[-2:])
        if a.shape[1:] != self._mem_a.shape[1:]:
            raise ValueError(f"label size {tuple(soft_label.shape[-2:])} differs from the first frame's")
        slot = self._insert_weight()
        self._mem_feats[slot] = self._candidate[0]
        self._mem_a[slot] = a[0]
        self._mem_b[slot] = b[0]
        self._candidate = None
        if self.frame_num % p.train_skipping != 0:
            return False
        self.fit_filter()
        return True

    def _insert_weight(self) -> int:
        """Exponential forgetting: the newest sample outweighs the previous newest by 1 / (1 - lr)."""
        lr = self.params.learning_rate
        w = self.memory_weights
        slot = int(torch.argmin(w))
        if self._prev_slot is None:
            w /= 1 - lr
            w[slot] = lr
        else:
            w[slot] = w[self._prev_slot] / (1 - lr)
        w /= w.sum()
        self._prev_slot = slot
        return slot

    @property
    def num_samples(self) -> int:
        """Samples currently held in the memory."""
        return 0 if self.memory_weights is None else int((self.memory_weights > 0).sum())
