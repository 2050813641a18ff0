"""Core overhead benchmark on the reference host at 480x854 (prints ratios measured in one run).

* wrapper overhead at tau = 1 vs the bare host (goal <= 2 %);
* cost of evaluating the gate on a computed frame (tau just below 1, nothing reuses);
* cost of a reused frame vs a computed frame (tau = 0 vs tau = 1), in time and in executed FLOPs.

The variants run interleaved, round after round, and each figure is the median over rounds, so slow
phases of a noisy machine hit every variant alike. Usage: ``python benchmarks/bench_core.py [--rounds N]``.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from reusegate.adapters.reference import ReferenceAdapter, ReferenceHost
from reusegate.core.gate import ReuseGate
from reusegate.core.session import HostRunner


def clip(n: int, h: int, w: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    frames = [(torch.rand(3, h, w, generator=g) * 255).to(torch.uint8) for _ in range(n)]
    mask = torch.zeros(h, w, dtype=torch.long)
    mask[h // 4: h // 2, w // 4: w // 2] = 1
    return frames, mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=6, help="frames per round after the start frame")
    parser.add_argument("--size", type=int, nargs=2, default=(480, 854), metavar=("H", "W"))
    parser.add_argument("--width", type=int, default=32, help="reference host width (s4 channels)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    host = ReferenceHost(width=args.width)
    frames, mask = clip(args.frames + 1, *args.size)
    makers = {
        "bare host": lambda: HostRunner(ReferenceAdapter(host)),
        "tau=1": lambda: ReuseGate(host, ReferenceAdapter, tau=1.0).session(),
        "gate on, all compute": lambda: ReuseGate(host, ReferenceAdapter, tau=0.999).session(),
        "tau=0 (all reuse)": lambda: ReuseGate(host, ReferenceAdapter, tau=0.0).session(),
    }
    times: dict[str, list[float]] = {k: [] for k in makers}
    for _ in range(args.rounds):
        for name, make in makers.items():
            session = make()
            session.step(frames[0], mask)
            t0 = time.perf_counter()
            for f in frames[1:]:
                session.step(f)
            times[name].append((time.perf_counter() - t0) / args.frames * 1000)
    flops = {}
    for name in ("tau=1", "tau=0 (all reuse)"):
        tau = 1.0 if name == "tau=1" else 0.0
        session = ReuseGate(host, ReferenceAdapter, tau=tau).session(count_flops=True)
        session.step(frames[0], mask)
        flops[name] = session.step(frames[1]).flops
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"reference host (width {args.width}), {args.size[0]}x{args.size[1]}, 1 object, {args.rounds} rounds x {args.frames} frames,"
          f" {torch.get_num_threads()} threads")
    print(f"{'variant':<24}{'ms/frame (median)':>20}")
    for k, v in med.items():
        print(f"{k:<24}{v:>20.1f}")
    print(f"wrapper overhead at tau=1 vs bare host: {100 * (med['tau=1'] / med['bare host'] - 1):+.2f} %")
    print(f"gate evaluation on a computed frame:    {100 * (med['gate on, all compute'] / med['tau=1'] - 1):+.2f} %")
    print(f"reused / computed frame, time:          {med['tau=0 (all reuse)'] / med['tau=1']:.3f}")
    print(f"reused / computed frame, FLOPs:         {flops['tau=0 (all reuse)'] / flops['tau=1']:.3f}"
          f"  ({flops['tau=0 (all reuse)'] / 1e9:.2f} / {flops['tau=1'] / 1e9:.2f} GFLOPs)")


if __name__ == "__main__":
    main()
