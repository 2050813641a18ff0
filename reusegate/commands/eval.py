"""``reusegate eval``: J&F of a results folder against DAVIS-layout ground truth (davis2017-evaluation)."""
from __future__ import annotations

import argparse
from pathlib import Path

NAME = "eval"
HELP = ("J&F of <pred>/<sequence>/<frame>.png against the ground truth, as davis2017-evaluation computes it; "
        "prints the global row and writes global_results-<set>.csv and per-sequence_results-<set>.csv into "
        "the results folder")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gt", required=True, type=Path,
                        help="DAVIS root (with Annotations/480p), or a folder of <sequence>/<frame>.png")
    parser.add_argument("--pred", required=True, type=Path, help="results folder <sequence>/<frame>.png")
    parser.add_argument("--sequences", type=Path, default=None,
                        help="text file with one sequence name a line (default: every ground-truth sequence)")
    parser.add_argument("--set", dest="set_name", default=None,
                        help="name in the CSV file names (default: the --sequences file's stem, else 'val')")
    parser.add_argument("--processes", type=int, default=None, help="worker processes (default: one per core)")


def run(args: argparse.Namespace) -> int:
    from reusegate.data.writer import check_writable
    from reusegate.evaluation import GLOBAL_COLUMNS, evaluate_sequences

    if args.pred.is_dir():  # the CSVs go there at the end: fail now if they cannot
        check_writable(args.pred)
    result = evaluate_sequences(args.gt, args.pred, sequences=args.sequences, processes=args.processes,
                                progress=True)
    set_name = args.set_name or (args.sequences.stem if args.sequences else "val")
    g, s = result.write_csvs(args.pred, set_name)
    row = result.global_row()
    print(f"{len(result.objects)} objects in {len(result.sequences)} sequences")
    print(" ".join(f"{c:>9}" for c in GLOBAL_COLUMNS))
    print(" ".join(f"{row[c]:9.3f}" for c in GLOBAL_COLUMNS))
    for seq, ids in result.extra_objects.items():
        print(f"warning: {seq}: predicted ids {ids} are not in the ground truth; scored as background")
    print(f"wrote {g} and {s}")
    return 0
