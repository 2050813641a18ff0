"""What the window around each object's previous mask (``GateConfig.window``) costs a frame.

Segments the same decoded frames with and without the window, alternating the two sessions frame by frame
(``--rounds`` passes, the best pass of each kept), so a busy machine slows both alike; prints ms per frame of each
and their ratio, and the window's own share per object and frame.

    python benchmarks/bench_window.py [--model fast] [--davis ../shared/data/davis2017-schoolgirls --resolution 240p]
        [--sequence schoolgirls] [--window 0.1] [--threads 2] [--rounds 3]

Measured on the project's 2-core AMD EPYC (idle, 2 threads), fast model at τ = 1: see
docs/experiments/locality-window.md.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    from reusegate.core.session import frame_tensor
    from reusegate.data.readers import DavisReader
    from reusegate.tools.run import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="fast")
    parser.add_argument("--davis", type=Path, default=REPO.parent / "shared" / "data" / "davis2017-schoolgirls")
    parser.add_argument("--resolution", default="240p")
    parser.add_argument("--sequence", default="schoolgirls")
    parser.add_argument("--window", type=float, default=0.1)
    parser.add_argument("--tau", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    seq = DavisReader(args.davis, year=None, resolution=args.resolution).sequence(args.sequence)
    frames = [frame_tensor(seq.load_frame(i)) for i in range(len(seq))]
    first = seq.load_mask(0)
    gate = load_model(args.model, tau=args.tau)
    configs = {"no window": gate.config, f"window {args.window:g}": replace(gate.config, window=args.window)}
    best = {name: float("inf") for name in configs}
    for _ in range(args.rounds):
        sessions = {name: gate.session(c) for name, c in configs.items()}
        spent = dict.fromkeys(configs, 0.0)
        for i, frame in enumerate(frames):
            for name, session in sessions.items():
                t0 = time.perf_counter()
                session.step(frame, first if i == 0 else None)
                if i:
                    spent[name] += time.perf_counter() - t0
        for name in configs:
            best[name] = min(best[name], 1000 * spent[name] / (len(frames) - 1))
    objects = len(sessions["no window"].objects)
    (plain, base), (windowed, cost) = best.items()
    print(f"{args.model} model on {args.sequence} ({len(frames)} frames, {objects} objects), tau={args.tau:g}, "
          f"{args.threads} threads, best of {args.rounds} interleaved passes")
    print(f"{plain:>14}: {base:7.2f} ms/frame")
    print(f"{windowed:>14}: {cost:7.2f} ms/frame  ({100 * (cost / base - 1):+.1f} %, "
          f"{1000 * (cost - base) / objects:+.0f} us per object and frame)")


if __name__ == "__main__":
    main()
