"""Time J&F on all DAVIS-2016 train sequences: the ground truth scored against itself shifted by one frame.

The prediction of frame t is the ground truth of frame t-1 (frame 0 keeps its own), written as palette PNGs
with id 1. Prints the wall time of ``evaluate_sequences`` with 1 process and with one per core, and, when
vos-benchmark is installed, its time on the same folders (a ratio within one run) and the difference of
the J&F means.

    python benchmarks/bench_eval.py [--data DIR] [--processes N]
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import cv2

from reusegate.data.readers import DavisReader
from reusegate.data.writer import write_palette_png
from reusegate.evaluation import evaluate_sequences

REPO = Path(__file__).resolve().parents[1]


def make_shifted(root: Path, out: Path, gt_out: Path | None = None) -> int:
    """Write the shifted prediction (and, for vos-benchmark, the GT with index 1) and return the frame count."""
    reader = DavisReader(root, year=2016)
    n = 0
    for seq in reader:
        masks = [seq.load_mask(i) for i in range(len(seq))]
        for i, name in enumerate(seq.frame_names):
            write_palette_png(out / seq.name / f"{name}.png", masks[max(i - 1, 0)])
            if gt_out is not None:
                write_palette_png(gt_out / seq.name / f"{name}.png", masks[i])
        n += len(seq)
    return n


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("REUSEGATE_DATA", REPO.parent / "shared" / "data")) / "davis2016-train")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    # vos-benchmark forks its workers; a forked child of a process whose OpenCV thread pool has run can
    # hang, so this process keeps OpenCV single-threaded (our workers run single-threaded anyway).
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        pred, gt1 = Path(tmp) / "pred", Path(tmp) / "gt1"
        n = make_shifted(args.data, pred, gt1)
        print(f"{n} frames, {len(os.listdir(pred))} sequences, {os.cpu_count()} cores")
        times = {}
        for procs in sorted({1, args.processes}):
            t0, c0 = time.perf_counter(), _cpu_seconds()
            res = evaluate_sequences(args.data, pred, processes=procs)
            times[procs] = time.perf_counter() - t0
            # CPU seconds (this process and its workers) tell how loaded the machine was: on an idle
            # machine, wall time ~ CPU / processes.
            print(f"reusegate eval, {procs} process(es): {times[procs]:.1f} s wall, "
                  f"{_cpu_seconds() - c0:.1f} s CPU  J&F={res.jf_mean:.6f} J={res.j_mean:.6f} F={res.f_mean:.6f}")
        try:
            from vos_benchmark.benchmark import benchmark
        except ImportError:
            print("vos-benchmark not installed: no comparison")
            return
        t0 = time.perf_counter()
        jf, _, _, _ = benchmark([str(gt1)], [str(pred)], num_processes=args.processes, verbose=False)
        tv = time.perf_counter() - t0
        best = min(times.values())
        print(f"vos-benchmark, {args.processes} process(es): {tv:.1f} s  J&F={jf[0] / 100:.6f}  "
              f"(reusegate is {tv / best:.2f}x faster; |dJ&F| = {abs(jf[0] / 100 - res.jf_mean):.2e})")


if __name__ == "__main__":
    main()
