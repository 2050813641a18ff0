"""What the inference rewrites of :mod:`reusegate.tools.optimize` buy the default model.

Runs the embedded default model as shipped, with BatchNorm folded, and folded with channels-last weights, on the
same DAVIS frames, interleaved frame by frame (so a busy machine slows all alike), at tau = 1 (every frame
computed) and tau = 0 (every frame after the first reused), and prints milliseconds per frame, the speed-up
over the shipped model and how far each variant's outputs are from the shipped one's::

    python benchmarks/bench_fusion.py --davis ../shared/data/davis2016-train --sequence bear --frames 30
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from reusegate.data import DavisReader
from reusegate.tools.optimize import fold_batchnorm
from reusegate.zoo.catalog import default_gate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--davis", type=Path, default=Path("../shared/data/davis2016-train"))
    parser.add_argument("--sequence", default="bear")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seq = DavisReader(args.davis, year=2016).sequence(args.sequence)
    n = min(args.frames, len(seq))
    frames = [torch.from_numpy(np.array(seq.load_frame(i))).permute(2, 0, 1) for i in range(n)]
    first = torch.from_numpy(seq.load_mask(0).astype(np.int64))
    models = {"shipped": default_gate(tau=1.0), "folded": default_gate(tau=1.0),
              "folded+channels_last": default_gate(tau=1.0)}
    count = fold_batchnorm(models["folded"].eval())
    fold_batchnorm(models["folded+channels_last"].eval())
    models["folded+channels_last"].to(memory_format=torch.channels_last)
    print(f"{args.sequence}, {n} frames of {tuple(frames[0].shape[1:])}, {args.threads} threads; "
          f"{count} BatchNorms folded")
    names = list(models)
    for tau in (1.0, 0.0):
        sessions = {}
        for k, gate in models.items():
            sessions[k] = gate.session(dataclasses.replace(gate.config, tau=tau))
        ms = {k: [] for k in names}
        worst = {k: 0.0 for k in names}
        agree = {k: 1.0 for k in names}
        for t, frame in enumerate(frames):
            out = {}
            for k in names[t % len(names):] + names[:t % len(names)]:  # rotate who goes first
                start = time.perf_counter()
                out[k] = sessions[k].step(frame, first if t == 0 else None)
                if t > 0:
                    ms[k].append(1000 * (time.perf_counter() - start))
            for k in names:
                worst[k] = max(worst[k], float((out["shipped"].probs - out[k].probs).abs().max()))
                agree[k] = min(agree[k], float((out["shipped"].labels == out[k].labels).float().mean()))
        base = np.median(ms["shipped"])
        for k in names:
            print(f"tau={tau:g} {k:<22} {np.median(ms[k]):7.1f} ms/frame (median), x{base / np.median(ms[k]):.3f}; "
                  f"max |prob difference| {worst[k]:.2e}, labels equal on {100 * agree[k]:.3f} % of pixels")


if __name__ == "__main__":
    main()
