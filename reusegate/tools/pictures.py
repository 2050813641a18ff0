"""The pictures the demo and ``run --overlay`` share: masks drawn over frames (each object tinted in a colour unlike
DAVIS's reds and browns and outlined in white, the frame marked green (computed) or orange (reused)), and the gate
timeline, so that a user reads the same picture whichever command made it."""
from __future__ import annotations

import io
from typing import Any, Mapping, Optional, Sequence

import numpy as np

__all__ = ["COMPUTED", "REUSED", "TINTS", "outline", "draw_masks", "gate_timeline"]

COMPUTED, REUSED = (40, 190, 70), (255, 150, 0)
TINTS = np.array([(0, 200, 255), (255, 230, 0), (255, 0, 200), (120, 255, 120), (160, 120, 255)], np.float32)
"""Mask tints, by object id: cyan, yellow, magenta, ..."""


def outline(mask: np.ndarray) -> np.ndarray:
    """The mask's boundary pixels (inside the mask, next to a pixel outside it)."""
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def draw_masks(frame: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``frame`` (``H x W x 3`` RGB) as float32 with every object of ``labels`` tinted and outlined."""
    img = frame.astype(np.float32)
    for oid in np.unique(labels[labels > 0]):
        mask = labels == oid
        img[mask] = 0.45 * img[mask] + 0.55 * TINTS[(int(oid) - 1) % len(TINTS)]
        img[outline(mask)] = 255
    return img


def gate_timeline(p_reuse: Mapping[Any, Sequence[Optional[float]]], tau: Sequence[float], reused: Sequence[bool],
                  copied: Optional[Sequence[bool]] = None, tau2: Optional[float] = None,
                  speeds: Optional[Sequence[float]] = None, title: Optional[str] = None) -> bytes:
    """The gate timeline as PNG bytes: ``p_reuse`` per object over time (``None`` / NaN where not gated), ``tau``
    per frame (a dashed line when constant, a step line under a latency budget), each reused frame shaded.

    ``copied``: per frame, whether its reuse copied the previous mask (give it for a copying variant): those frames
    are shaded darker and the legend counts decoded and copied reuses apart. ``tau2``: fusion's copy threshold,
    drawn dotted.
    ``speeds``: an object speed per frame on a second axis (the demo's synthetic clip knows it).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    tau = np.asarray(tau, dtype=float)
    t = np.arange(len(tau))
    split = copied is not None
    copied = list(copied) if split else [False] * len(tau)
    fig, ax = plt.subplots(figsize=(9, 3.2), dpi=110)
    for oid, series in sorted(p_reuse.items(), key=lambda kv: int(kv[0])):
        ax.plot(t, [np.nan if p is None else p for p in series], marker=".", ms=4, lw=1, label=f"p_reuse, object {oid}")
    for i, (r, c) in enumerate(zip(reused, copied)):
        if r:
            ax.axvspan(i - 0.5, i + 0.5, color="orange", alpha=0.6 if c else 0.25, lw=0)
    moving = len(set(tau[1:].tolist())) > 1
    ax.step(t, tau, where="mid", color="k", lw=1.2 if moving else 1, ls="-" if moving else "--",
            label="tau (latency controller)" if moving else f"tau = {tau[0]:g}")
    if tau2 is not None:
        ax.axhline(tau2, color="k", ls=":", lw=1, label=f"tau2 = {tau2:g} (copy above)")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(-0.5, max(len(tau) - 0.5, 0.5))
    ax.set_xlabel("frame (shaded: reused)")
    ax.set_ylabel("p_reuse, tau")
    if title:
        ax.set_title(title, fontsize=10)
    n_reused, n_copied = sum(map(bool, reused)), sum(bool(r and c) for r, c in zip(reused, copied))
    shades = [Patch(color="orange", alpha=0.25, label=f"reused frame ({n_reused} of {len(tau)})")]
    if split:
        shades = [Patch(color="orange", alpha=0.25, label=f"reused, decoded ({n_reused - n_copied})"),
                  Patch(color="orange", alpha=0.6, label=f"reused, mask copied ({n_copied})")]
    extra = []
    if speeds is not None:
        axis = ax.twinx()
        line, = axis.plot(t, speeds, color="grey", lw=1, alpha=0.7, label="object speed (right axis)")
        axis.set_ylabel("object speed (px/frame)", color="grey")
        extra = [line]
    handles, _ = ax.get_legend_handles_labels()
    ax.legend(handles=[*handles, *shades, *extra], loc="lower left", fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
