"""How often a pixel-difference pre-check could declare an object unchanged, and what copying it would cost.

Issue 27 item 3 suggests skipping the gate's features where a cheap pixel difference already says "unchanged".
Before building it, this measures the ceiling from the ground truth alone (no network): per sequence, each
frame's grey thumbnail (1/8 of 480p) is compared with the thumbnail of the last frame that was not copied (the
anchor), inside the anchor mask's box plus 4 thumbnail pixels; below the threshold the frame would copy the
anchor's mask, whose ground-truth IoU with the frame's is what such a copy scores at best::

    python tools/pixel_still_stats.py --davis ../shared/data/davis2016-train
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def _thumb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L").reduce(8), np.float32) / 255


def _mask(path: Path) -> np.ndarray:
    a = np.asarray(Image.open(path))
    return (a[..., 0] if a.ndim == 3 else a) > 127


def sequence_copies(frames: list[Path], masks: list[Path], threshold: float) -> tuple[list[float], int]:
    """IoUs of the frames the pre-check would copy, and the number of frames it judged."""
    thumbs, gts = [_thumb(f) for f in frames], [_mask(m) for m in masks]
    anchor, ious = 0, []
    for i in range(1, len(frames)):
        small = np.asarray(Image.fromarray(gts[anchor].astype(np.uint8) * 255).reduce(8)) > 0
        ys, xs = np.nonzero(small)
        if len(ys) == 0:
            anchor = i
            continue
        y0, y1, x0, x1 = max(0, ys.min() - 4), ys.max() + 5, max(0, xs.min() - 4), xs.max() + 5
        if np.abs(thumbs[i][y0:y1, x0:x1] - thumbs[anchor][y0:y1, x0:x1]).mean() < threshold:
            ious.append(float((gts[i] & gts[anchor]).sum() / max((gts[i] | gts[anchor]).sum(), 1)))
        else:
            anchor = i
    return ious, len(frames) - 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--davis", type=Path, default=Path("../shared/data/davis2016-train"))
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.005, 0.01, 0.015, 0.02, 0.03])
    args = ap.parse_args()
    seqs = (args.davis / "train.txt").read_text().split()
    for t in args.thresholds:
        ious, judged = [], 0
        for s in seqs:
            frames = sorted((args.davis / "JPEGImages/480p" / s).glob("*.jpg"))
            masks = [args.davis / "Annotations/480p" / s / f"{f.stem}.png" for f in frames]
            got, n = sequence_copies(frames, masks, t)
            ious += got
            judged += n
        mean = f"{np.mean(ious):.3f}, lowest {np.min(ious):.3f}" if ious else "-"
        print(f"threshold {t}: {len(ious)}/{judged} frames copied ({len(ious) / judged:.1%}), mean IoU {mean}")


if __name__ == "__main__":
    main()
