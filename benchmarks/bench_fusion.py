"""What folding BatchNorm into the convolutions (``reusegate.optimize.fold_batchnorm``) buys the default model.

Runs the embedded default model as shipped and folded on the same DAVIS frames, interleaved frame by frame (so a
busy machine slows both alike), at tau = 1 (every frame computed) and tau = 0 (every frame after the first
reused), and prints milliseconds per frame, the speed-up and how far the folded model's outputs are from the
shipped one's::

    python benchmarks/bench_fusion.py --davis ../shared/data/davis2016-train --sequence bear --frames 30
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from reusegate.data import DavisReader
from reusegate.optimize import fold_batchnorm
from reusegate.pretrained import default_gate


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
    shipped, folded = default_gate(tau=1.0), default_gate(tau=1.0)
    count = fold_batchnorm(folded.eval())
    print(f"{args.sequence}, {n} frames of {tuple(frames[0].shape[1:])}, {args.threads} threads; "
          f"{count} BatchNorms folded")
    for tau in (1.0, 0.0):
        shipped.tau = folded.tau = tau
        sessions = {"shipped": shipped.session(), "folded": folded.session()}
        ms = {k: [] for k in sessions}
        worst, agree = 0.0, []
        for t, frame in enumerate(frames):
            out = {}
            for k in (list(sessions) if t % 2 else list(sessions)[::-1]):  # alternate who goes first
                start = time.perf_counter()
                out[k] = sessions[k].step(frame, first if t == 0 else None)
                if t > 0:
                    ms[k].append(1000 * (time.perf_counter() - start))
            worst = max(worst, float((out["shipped"].probs - out["folded"].probs).abs().max()))
            agree.append(float((out["shipped"].labels == out["folded"].labels).float().mean()))
        a, b = np.median(ms["shipped"]), np.median(ms["folded"])
        print(f"tau={tau:g}: shipped {a:7.1f} ms/frame, folded {b:7.1f} ms/frame (median), speed-up x{a / b:.3f}; "
              f"max |prob difference| {worst:.2e}, labels equal on {100 * min(agree):.3f} % of pixels (worst frame)")


if __name__ == "__main__":
    main()
