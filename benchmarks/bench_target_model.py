"""FRTM target model: full-resolution fit (upstream) vs the score-grid fits, in time and in accuracy.

Variants (``TargetModelParams.fit_resolution``): ``full`` (upstream), ``score_exact`` (the same least-squares
problem written on the score grid with banded coefficients) and ``score`` (labels folded onto the score grid,
lumped: an approximation).

Part 1 (time, 480x854 frame, ResNet18-sized stride-16 features 256x30x54, c = 96, the inference ``--fast``
iterations): first-frame ``init`` with K = 5 samples, one update solve over a full 80-sample memory, the memory
insert of ``update`` and ``apply``. Random features: the cost does not depend on their values. Each figure is the
minimum over ``--repeats`` runs, the two variants interleaved.

Part 2 (accuracy, real DAVIS-2016 frames, ImageNet MobileNetV2 stride-16 features): per sequence, fit on frame 0
(plus ``--num-aug - 1`` augmented copies), then on every later frame score it, threshold the bilinearly
upsampled score at 0.5 (the midpoint of the 0/1 targets it regresses to), and feed the ground truth back through
``update`` (oracle labels, so only the fit differs between the variants). Prints the mean IoU per variant, the IoU
between the two variants' masks, and the mean time of the update solves that ran.

    python benchmarks/bench_target_model.py [--threads N] [--repeats N] [--sequences S ...] [--frames N]

Measured 2026-11-24 on the 2-core dev machine, 2 threads, machine otherwise idle (min of 3):
init 1694 / 769 / 821 ms and update solve over 80 samples 3214 / 541 / 483 ms for full / score_exact / score
(5.9x and 6.7x cheaper solves); upstream's full-resolution update was timed at ~6.8 s in the research notes.
Accuracy, 5 sequences x 39 frames: mean IoU 0.802 / 0.802 / 0.788; masks agree with the full fit at IoU 0.997
(score_exact, rounding only) and 0.942 (score).
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from reusegate.adapters.frtm.augment import augment_first_frame
from reusegate.adapters.frtm.backbones import mobilenet_v2
from reusegate.adapters.frtm.target_model import TargetModel, TargetModelParams

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("REUSEGATE_DATA", REPO.parent / "shared" / "data")) / "davis2016-train"
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
VARIANTS = ("full", "score_exact", "score")


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> torch.Tensor:
    y, x = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return (((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1).float()


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_time(repeats: int, height: int, width: int) -> None:
    h, w = math.ceil(height / 16), math.ceil(width / 16)
    g = torch.Generator().manual_seed(0)
    samples = torch.relu(torch.randn(5, 256, h, w, generator=g))
    labels = torch.stack([_ellipse(height, width, height * (0.3 + 0.1 * i), width * 0.5, height * 0.2, width * 0.15)
                          for i in range(5)])[:, None]
    frame = torch.relu(torch.randn(1, 256, h, w, generator=g))
    times = {v: {"init": [], "solve80": [], "insert": [], "apply": []} for v in VARIANTS}
    for _ in range(repeats):
        for variant in VARIANTS:
            torch.manual_seed(0)
            # train_skipping out of reach: the memory fills without solves, the solve is timed on its own
            params = TargetModelParams.inference_fast(fit_resolution=variant, train_skipping=10 ** 9)
            tm = TargetModel(256, params)
            times[variant]["init"].append(_timed(lambda: tm.init(samples, labels)))
            inserts = []
            while tm.num_samples < params.memory_size:
                times_apply = _timed(lambda: tm.apply(frame))
                inserts.append(_timed(lambda: tm.update(labels[1:2] * 0.9)))
            times[variant]["apply"].append(times_apply)
            times[variant]["insert"].append(statistics.median(inserts))
            times[variant]["solve80"].append(_timed(tm.fit_filter))
    print(f"\n== time: {height}x{width} frame, features 256x{h}x{w}, c=96, fast iterations, "
          f"{torch.get_num_threads()} thread(s), min of {repeats} ==")
    print(f"{'':28s}" + "".join(f"{v:>14s}" for v in VARIANTS) + "   full / score_exact, full / score")
    names = {"init": "init (K=5, 4 GN + 1 update)", "solve80": "update solve, memory 80",
             "insert": "update memory insert", "apply": "apply"}
    for key, name in names.items():
        best = {v: min(times[v][key]) for v in VARIANTS}
        print(f"{name:28s}" + "".join(f"{best[v] * 1e3:11.1f} ms" for v in VARIANTS)
              + f"{best['full'] / best['score_exact']:14.1f}x{best['full'] / best['score']:12.1f}x")


def _read_frame(seq: str, i: int) -> tuple[torch.Tensor, torch.Tensor] | None:
    img = DATA / "JPEGImages" / "480p" / seq / f"{i:05d}.jpg"
    ann = DATA / "Annotations" / "480p" / seq / f"{i:05d}.png"
    if not img.is_file():
        return None
    image = torch.from_numpy(np.asarray(Image.open(img).convert("RGB"))).permute(2, 0, 1)[None].float()
    mask = np.asarray(Image.open(ann))
    if mask.ndim == 3:  # bear/00077.png is grayscale + alpha
        mask = mask[..., 0]
    return (image / 255 - MEAN) / STD, torch.from_numpy(mask > 127)[None, None].float()


def bench_accuracy(sequences: list[str], frames: int, num_aug: int) -> None:
    if not DATA.is_dir():
        print(f"\n(accuracy part skipped: no DAVIS data at {DATA}; set REUSEGATE_DATA)")
        return
    backbone = mobilenet_v2(weights="imagenet").eval()
    ious = {v: [] for v in VARIANTS}
    agree = {v: [] for v in VARIANTS[1:]}
    solve_times, init_times = {v: [] for v in VARIANTS}, {v: [] for v in VARIANTS}
    print(f"\n== accuracy: DAVIS-2016 train, MobileNetV2 (ImageNet) s16 features, first {frames} frames, "
          f"K={num_aug}, oracle labels fed back; IoU of upsampled score > 0.5 ==")
    print(f"{'sequence':16s}" + "".join(f"{'IoU ' + v:>16s}" for v in VARIANTS)
          + "".join(f"{'full vs ' + v:>20s}" for v in VARIANTS[1:]))
    for seq in sequences:
        data = [d for d in (_read_frame(seq, i) for i in range(frames)) if d is not None]
        with torch.no_grad():
            feats = [backbone.forward_features(img)["s16"] for img, _ in data]
            image0, mask0 = data[0]
            aug_img, aug_mask = augment_first_frame(image0, mask0, num_aug - 1, torch.Generator().manual_seed(0))
            samples = torch.cat([feats[0], backbone.forward_features(aug_img)["s16"]]) if num_aug > 1 else feats[0]
        labels = torch.cat([mask0, aug_mask]) if num_aug > 1 else mask0
        preds = {}
        for variant in VARIANTS:
            torch.manual_seed(0)
            tm = TargetModel(samples.shape[1], TargetModelParams.inference_fast(fit_resolution=variant))
            init_times[variant].append(_timed(lambda: tm.init(samples, labels)))
            seq_ious, masks = [], []
            for f16, (_, gt) in zip(feats[1:], data[1:]):
                score = F.interpolate(tm.apply(f16), size=gt.shape[-2:], mode="bilinear", align_corners=False)
                pred = score > 0.5
                masks.append(pred)
                union = (pred | (gt > 0.5)).sum()
                seq_ious.append(float((pred & (gt > 0.5)).sum() / union) if union > 0 else 1.0)
                t0 = time.perf_counter()
                if tm.update(gt):
                    solve_times[variant].append(time.perf_counter() - t0)
            ious[variant].append(statistics.mean(seq_ious))
            preds[variant] = torch.cat(masks)
        for v in VARIANTS[1:]:
            union = (preds["full"] | preds[v]).sum()
            agree[v].append(float((preds["full"] & preds[v]).sum() / union) if union > 0 else 1.0)
        print(f"{seq:16s}" + "".join(f"{ious[v][-1]:16.3f}" for v in VARIANTS)
              + "".join(f"{agree[v][-1]:20.3f}" for v in VARIANTS[1:]))
    print(f"{'mean':16s}" + "".join(f"{statistics.mean(ious[v]):16.3f}" for v in VARIANTS)
          + "".join(f"{statistics.mean(agree[v]):20.3f}" for v in VARIANTS[1:]))
    for v in VARIANTS:
        print(f"{v:>12s}: init {statistics.mean(init_times[v]) * 1e3:8.1f} ms, update solve "
              f"{statistics.mean(solve_times[v]) * 1e3:8.1f} ms (mean of {len(solve_times[v])}; "
              f"memory <= {num_aug + frames - 1} samples)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, nargs=2, default=(480, 854), metavar=("H", "W"))
    parser.add_argument("--sequences", nargs="+", default=["bear", "boat", "dance-jump", "kite-walk", "surf"])
    parser.add_argument("--frames", type=int, default=40, help="frames read per sequence (frame 0 included)")
    parser.add_argument("--num-aug", type=int, default=5, help="first-frame samples K (original + augmented)")
    parser.add_argument("--skip-time", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.skip_time:
        bench_time(args.repeats, *args.size)
    if not args.skip_accuracy:
        bench_accuracy(args.sequences, args.frames, args.num_aug)


if __name__ == "__main__":
    main()
