"""``reusegate bench``: latency, FLOPs, reuse rate, J&F and Amdahl efficiency of the host, tau = 1, each tau and
all-reuse, measured interleaved in one run on real frames."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "bench"
HELP = ("time the bare host, tau = 1, each --taus value and all-reuse (tau = 0) on the same frames; print "
        "latency, FPS, speedup, FLOPs, reuse rate, J&F and the speedup's ratio to the Amdahl ideal; optionally "
        "write JSON and a J&F-vs-FPS plot")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from reusegate.tools.bench import DEFAULT_TAUS, OTHER_VARIANTS
    from reusegate.commands import add_model_and_data_arguments

    parser.add_argument("--davis", type=Path, default=None, metavar="ROOT",
                        help="DAVIS root with full ground truth (default: the embedded synthetic demo clip)")
    add_model_and_data_arguments(parser)
    parser.add_argument("--taus", type=float, nargs="+", default=None,
                        help="thresholds to measure besides 1 and 0 (default: "
                             f"{' '.join(f'{t:g}' for t in DEFAULT_TAUS)} and the model's recommended tau)")
    parser.add_argument("--variants", nargs="+", default=None, choices=list(OTHER_VARIANTS),
                        help="also measure these variants (copy, fusion, oracle) at --variant-tau (default: the "
                             "variant the model's .json recommends, if it is not decode)")
    parser.add_argument("--variant-tau", type=float, default=None,
                        help="threshold of --variants (default: the model's recommended tau, from its .json)")
    parser.add_argument("--tau2", type=float, default=None,
                        help="the fusion variant's copy threshold (default: the model's, else 0.9)")
    parser.add_argument("--frames", type=int, default=30,
                        help="first N frames of each sequence, N >= 3 (default: 30; 0 = all)")
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP-counting pass")
    parser.add_argument("--profile", action="store_true",
                        help="instead: print the milliseconds and share of every stage (backbone, gate, decoder, "
                             "merge...) on computed (tau = 1) and reused (tau = 0) frames")
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this JSON file")
    parser.add_argument("--plot", type=Path, default=None, help="write the J&F-vs-FPS plot to this PNG file")


def run(args: argparse.Namespace) -> int:
    from reusegate.data.writer import atomic_write_text, check_output_files
    from reusegate.tools.bench import DEFAULT_TAUS, bench, bench_lines, bench_plot, davis_clips, demo_clips
    from reusegate.tools.run import load_model, model_name, set_threads
    from reusegate.zoo.catalog import recommended_config

    if args.frames < 0 or 0 < args.frames < 3:
        raise ValueError(f"--frames must be 0 (all) or at least 3 (J&F drops the first and last frame), "
                         f"got {args.frames}")
    frames = args.frames or None
    check_output_files(args.json, args.plot)
    set_threads(args.threads)
    if args.davis is None:
        if args.sequences is not None:
            raise ValueError("--sequences selects DAVIS sequences; pass --davis ROOT too")
        clips, source = demo_clips(frames), "embedded synthetic demo clip"
    else:
        clips, source = davis_clips(args.davis, args.sequences, frames, args.resolution), str(args.davis)
    gate = load_model(args.model, tau=1.0, tau2=args.tau2, preset=args.preset, reuse_path=args.reuse_path)
    if args.profile:
        return _profile(gate, clips, {"model": model_name(args.model), "source": source}, args.json)
    recommended = recommended_config(args.model, args.preset).tau
    variant = gate.config.variant  # loaded without one: the model's recommended variant
    taus = args.taus if args.taus is not None else sorted({*DEFAULT_TAUS, recommended}, reverse=True)
    others = args.variants if args.variants is not None else [] if variant == "decode" else [variant]
    others_tau = recommended if args.variant_tau is None else args.variant_tau
    report = {"model": model_name(args.model), "source": source, "recommended_tau": recommended,
              "recommended_variant": variant, "tau2": gate.config.tau2,
              **bench(gate, clips, taus, not args.no_flops, others=others, others_tau=others_tau)}
    print(f"model {report['model']} on {source}")
    for line in bench_lines(report):
        print(line)
    if args.json is not None:
        atomic_write_text(args.json, json.dumps(report, indent=2))
        print(f"wrote {args.json}")
    if args.plot is not None:
        bench_plot(report, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _profile(gate, clips, report: dict, json_path) -> int:
    """``--profile``: the per-stage table for computed and reused frames (JSON too with ``--json``)."""
    from reusegate.data.writer import atomic_write_text
    from reusegate.tools.profiling import profile_lines, profile_stages

    report.update(profile_stages(gate, [(c.frames, c.gt[0].astype("int64")) for c in clips]))
    print(f"model {report['model']} on {report['source']}: ms per frame by stage (first frames excluded)")
    for line in profile_lines(report):
        print(line)
    if json_path is not None:
        atomic_write_text(json_path, json.dumps(report, indent=2))
        print(f"wrote {json_path}")
    return 0
