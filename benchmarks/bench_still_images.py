"""Cost of pseudo-video from still images: making a clip, and training the fast model's stage 1 on it.

Part 1 (data): ms per 6-frame clip of ``StillImageClipDataset`` (decode, warp, composite, pack) at the fast model's
240 x 427, per set and overall, beside ``DavisClipDataset``'s (decode two 480p JPEG/PNG per frame, resize).

Part 2 (training): ms per clip of one training step (``ReuseGateVOS.train_step``: forward, BCE, backward, Adam)
of ``configs/experiments/pseudo_video_pretrain.py``'s model (the fast host alone, ``gate=None``) on raw clips.
Fresh augmentations cannot use frozen taps, so each clip pays the MobileNetV2 pass of its 6 frames and the fit of
its target model, which the frozen-tap stage 1 (``configs/g_frtm_mnv2/1_pretrain.py``) had cached. The script
prints the estimated cost of one epoch of the config (its DAVIS and still-image clips) and compares it with the
frozen-tap stage 1's measured 23.5 min for 20 epochs of 192 clips (configs/g_frtm_mnv2/README.md).

    python benchmarks/bench_still_images.py [--threads 2] [--clips 24] [--steps 2] [--batch 4]

Figures depend on the load of the machine: say whether it was idle when you quote them. An earlier run on a loaded
machine (another session's tests, load average 1-4.5) read 3.4-6.7 s per clip for a training step; the real
training run on an idle machine (2 threads, docs/training.md) took 3.3-3.9 s per batch of 8, 0.45 s a clip with
its data: 2.9 min an epoch of the config's 384 clips. Making a pseudo-clip takes 30-52 ms (ecssd 37-52, pennfudan
40-53, ccp 30-47), reading a DAVIS clip 108-159 ms. A cProfile of one step on 4 pseudo-clips (idle, 1.8 s): the target
model's start on the augmented first frame (backbone on the augmented copies, Gauss-Newton init) 39 %, the clip's
frames through backbone and decoder 26 %, backward 20 %.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "experiments" / "pseudo_video_pretrain.py"
FROZEN_STAGE1_S_PER_CLIP = 23.5 * 60 / (20 * 192)  # configs/g_frtm_mnv2/README.md: 20 epochs of 192 clips


def _time_samples(dataset, indices) -> list[float]:
    out = []
    for i in indices:
        t = time.perf_counter()
        dataset[i]
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clips", type=int, default=24, help="clips timed per set in part 1")
    ap.add_argument("--steps", type=int, default=2, help="training steps timed in part 2 (after one warm-up)")
    ap.add_argument("--batch", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("REUSEGATE_DATA", os.fspath(REPO.parent / "shared" / "data"))

    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import OptimWrapper
    from mmengine.registry import DefaultScope

    from reusegate.integrations.mmengine import StillImageClipDataset
    from reusegate.registry import DATASETS, MODELS

    cfg = Config.fromfile(CONFIG)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        concat = DATASETS.build(cfg.train_dataloader.dataset)
        davis, stills = concat.datasets
        np.random.seed(0)
        print(f"part 1: ms per {stills.generator.num_frames}-frame clip at {stills.generator.size}, "
              f"{args.threads} threads")
        spec = {k: v for k, v in cfg.train_dataloader.dataset.datasets[1].items() if k not in ("type", "sets", "set_weights")}
        for s in ("ecssd", "pennfudan", "ccp"):
            one = StillImageClipDataset(**dict(spec, sets=(s,), samples_per_epoch=args.clips))
            ms = _time_samples(one, range(args.clips))
            print(f"  StillImageClipDataset {s:10s} mean {statistics.mean(ms):6.1f}  median {statistics.median(ms):6.1f}")
        ms_still = _time_samples(stills, range(args.clips))
        ms_davis = _time_samples(davis, range(0, len(davis), max(1, len(davis) // args.clips)))
        print(f"  StillImageClipDataset (config mix)  mean {statistics.mean(ms_still):6.1f}")
        print(f"  DavisClipDataset      (config)      mean {statistics.mean(ms_davis):6.1f}")

        model = MODELS.build(cfg.model)
        model.train()
        optim = OptimWrapper(torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-5))
        half = args.batch // 2
        batch = pseudo_collate([davis[i] for i in range(half)] + [stills[i] for i in range(args.batch - half)])
        model.train_step(batch, optim)  # warm-up
        t = time.perf_counter()
        for _ in range(args.steps):
            model.train_step(batch, optim)
        step_ms = (time.perf_counter() - t) * 1000 / args.steps / args.batch
    data_ms = (statistics.mean(ms_still) * len(stills) + statistics.mean(ms_davis) * len(davis)) / len(concat)
    per_clip_s = (step_ms + data_ms) / 1000
    epoch_min = per_clip_s * len(concat) / 60
    epochs = cfg.train_cfg.max_epochs
    print(f"part 2: one training step, batch {args.batch} (half DAVIS, half pseudo-clips), {args.threads} threads")
    print(f"  train step {step_ms:7.1f} ms per clip  (+ data {data_ms:5.1f} ms per clip)")
    print(f"  epoch of {len(concat)} clips ({len(davis)} DAVIS + {len(stills)} pseudo): {epoch_min:5.1f} min;"
          f" {epochs} epochs: {epoch_min * epochs / 60:4.1f} h")
    print(f"  frozen-tap stage 1 for comparison: {FROZEN_STAGE1_S_PER_CLIP * 1000:6.1f} ms per clip (README, 2 cores)"
          f" -> {per_clip_s / FROZEN_STAGE1_S_PER_CLIP:4.1f}x per clip")


if __name__ == "__main__":
    main()
