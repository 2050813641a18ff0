"""``reusegate run``: segment a video or DAVIS sequences with a gated model, resumably, in the DAVIS layout."""
from __future__ import annotations

import argparse
from pathlib import Path

NAME = "run"
HELP = ("segment a video (a folder of frames or a video file, plus the first frame's mask) or DAVIS sequences "
        "with a gated model; writes <out>/<sequence>/<frame>.png and <out>/summary.json, and skips sequences "
        "a previous run finished")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..gate import VARIANTS
    from ..inference import add_model_and_data_arguments

    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", type=Path, help="a folder of frames or a video file")
    source.add_argument("--davis", type=Path, metavar="ROOT",
                        help="DAVIS root holding JPEGImages/<res> and Annotations/<res>")
    parser.add_argument("--first-mask", type=Path, help="with --input: the first frame's mask (PNG, ids or 0/255)")
    parser.add_argument("--name", default=None, help="with --input: the sequence name (default: the input's name)")
    add_model_and_data_arguments(parser)
    parser.add_argument("--tau", type=float, default=0.7, help="reuse threshold in [0, 1]; 1 = the host alone "
                        "(default: 0.7)")
    parser.add_argument("--variant", choices=VARIANTS, default="translate", help="gate variant (default: translate)")
    parser.add_argument("--tau2", type=float, default=0.9,
                        help="fusion variant: copy above this p_reuse (default: 0.9)")
    parser.add_argument("--out", type=Path, default=Path("out/run"), help="results folder (default: out/run)")
    parser.add_argument("--redo", action="store_true", help="recompute sequences a previous run finished")


def _sequences(args: argparse.Namespace) -> list:
    """The sequences to segment, all opened (and header-checked) before any computation starts."""
    from ..data.readers import DavisReader, open_sequence

    if args.input is not None:
        if args.first_mask is None:
            raise ValueError("--input needs --first-mask PNG: the mask of the objects on the first frame")
        if args.sequences is not None:
            raise ValueError("--sequences selects DAVIS sequences; use it with --davis, not --input")
        return [open_sequence(args.input, args.first_mask, name=args.name)]
    if args.first_mask is not None or args.name is not None:
        raise ValueError("--first-mask and --name go with --input; with --davis the masks come from Annotations")
    reader = DavisReader(args.davis, year=None, resolution=args.resolution, sequences=args.sequences)
    return [reader.sequence(n) for n in reader.sequences]


def run(args: argparse.Namespace) -> int:
    from ..inference import SUMMARY, load_model, model_name, run_sequences, set_threads

    set_threads(args.threads)
    sequences = _sequences(args)
    gate = load_model(args.model, tau=args.tau, variant=args.variant, tau2=args.tau2)
    settings = {"model": model_name(args.model), "tau": args.tau, "variant": args.variant}
    if args.variant == "fusion":
        settings["tau2"] = args.tau2
    summary = run_sequences(gate, sequences, args.out, settings, redo=args.redo)
    for name, s in summary["sequences"].items():
        fps = "-" if s["fps"] is None else f"{s['fps']:.2f}"
        note = " (finished earlier)" if name in summary["resumed"] else ""
        print(f"{name:<24} {s['frames']:>5} frames  reuse {100 * s['reuse_rate']:5.1f} %  {fps:>7} FPS{note}")
    total = summary["total"]
    fps = "-" if total["fps"] is None else f"{total['fps']:.2f}"
    print(f"{total['sequences']} sequences, {total['frames']} frames, mean reuse {100 * total['reuse_rate']:.1f} %, "
          f"{fps} FPS; wrote {args.out}/<sequence>/*.png and {args.out / SUMMARY}")
    return 0
