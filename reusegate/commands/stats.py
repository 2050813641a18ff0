"""``reusegate stats``: how redundant are consecutive frames of a dataset (the paper's Fig. 1a), and what a
perfect copy-only gate could reach (oracle J&F and reuse rate for each τ)."""
from __future__ import annotations

import argparse
from pathlib import Path

NAME = "stats"
HELP = ("consecutive-frame ground-truth IoU histogram (bins of 0.1, per object) with the share of pairs "
        "above 0.7, optionally plotted, and the oracle-gate J&F / reuse rate for a list of tau")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", type=Path, help="DAVIS root (JPEGImages/480p, Annotations/480p)")
    parser.add_argument("--sequences", type=Path, default=None,
                        help="text file with one sequence name a line (default: every sequence)")
    parser.add_argument("--year", type=int, choices=(2016, 2017), default=None,
                        help="annotation encoding: 2016 = 0/255, 2017 = palette ids (default: detect)")
    parser.add_argument("--plot", type=Path, default=None, help="write the histogram as a PNG here")
    parser.add_argument("--tau", type=float, nargs="*", default=[0.5, 0.6, 0.7, 0.8, 0.9],
                        help="thresholds for the oracle bound (default: 0.5 0.6 0.7 0.8 0.9; none: skip it)")
    parser.add_argument("--processes", type=int, default=None, help="worker processes (default: one per core)")


def run(args: argparse.Namespace) -> int:
    from reusegate.data.readers import DavisReader
    from reusegate.data.writer import check_output_files
    from reusegate.evaluation.redundancy import oracle_bounds, redundancy_report

    for t in args.tau or ():
        if not 0.0 <= t <= 1.0:
            raise ValueError(f"--tau {t} is outside [0, 1]; IoU thresholds lie in [0, 1]")
    check_output_files(args.plot)
    reader = DavisReader(args.root, year=args.year, sequences=args.sequences)
    seqs = [reader.sequence(n) for n in reader.sequences]
    report = redundancy_report(seqs, processes=args.processes, progress=True)
    print(f"consecutive-frame ground-truth IoU, {len(seqs)} sequences, per object "
          f"(pairs where both masks are empty skipped)")
    print(report.table())
    if args.plot:
        report.plot(args.plot)
        print(f"wrote {args.plot}")
    if args.tau:
        scores = oracle_bounds(seqs, args.tau, processes=args.processes, progress=True)
        print("oracle gate (copy the last computed frame's ground truth when its IoU with the current one >= tau)")
        print(f"{'tau':>5} {'J&F':>7} {'J':>7} {'F':>7} {'reuse':>7}")
        for t, s in scores.items():
            print(f"{t:5.2f} {s.jf_mean:7.3f} {s.j_mean:7.3f} {s.f_mean:7.3f} {100 * s.reuse_rate:6.1f}%")
    return 0
