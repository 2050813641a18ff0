"""``reusegate bench``: latency, FLOPs, reuse rate, J&F and Amdahl efficiency of the host, tau = 1, each tau and
all-reuse, measured interleaved in one run on real frames."""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Optional

NAME = "bench"
HELP = ("time the bare host, tau = 1, each --taus value and all-reuse (tau = 0) on the same frames; print "
        "latency, FPS, speedup, FLOPs, reuse rate, J&F and the speedup's ratio to the Amdahl ideal; optionally "
        "write JSON and a J&F-vs-FPS plot")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from reusegate.core.config import BACKENDS, REUSE_PRECISIONS
    from reusegate.tools.bench import DEFAULT_TAUS, OTHER_VARIANTS
    from reusegate.commands import add_budget_arguments, add_model_and_data_arguments

    parser.add_argument("--davis", type=Path, default=None, metavar="ROOT",
                        help="DAVIS root with full ground truth (default: the embedded synthetic demo clip)")
    add_model_and_data_arguments(parser)
    parser.add_argument("--taus", type=float, nargs="+", default=None,
                        help="thresholds to measure besides 1 and 0 (default: "
                             f"{' '.join(f'{t:g}' for t in DEFAULT_TAUS)} and the model's recommended tau)")
    parser.add_argument("--variants", nargs="+", default=None, choices=list(OTHER_VARIANTS),
                        help="also measure these variants (copy, fusion, oracle) at --variant-tau (default: the "
                             "variant the model's .json recommends, if it is not decode)")
    parser.add_argument("--variant-tau", type=float, nargs="+", default=None,
                        help="thresholds of --variants, one row each (default: the model's recommended tau, from its "
                             ".json); several trace that variant's fixed-tau frontier, which --target-fps rows of "
                             "the same variant are then compared with")
    parser.add_argument("--precisions", nargs="+", default=None, choices=REUSE_PRECISIONS,
                        help="measure every row that reuses once in each of these reuse precisions, interleaved in "
                             "one run (e.g. float32 int8; default: the model's, or --reuse-precision)")
    parser.add_argument("--tau2", type=float, default=None,
                        help="the fusion variant's copy threshold (default: the model's, else 0.9)")
    parser.add_argument("--frames", type=int, default=30,
                        help="first N frames of each sequence, N >= 3 (default: 30; 0 = all)")
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP-counting pass")
    parser.add_argument("--profile", action="store_true",
                        help="instead: print the milliseconds and share of every stage (backbone, gate, decoder, "
                             "merge...) on computed (tau = 1) and reused (tau = 0) frames")
    parser.add_argument("--backends", nargs="+", default=None, choices=BACKENDS,
                        help="instead: compare these backends, interleaved frame by frame in one run, at tau = 1 and "
                             "--taus (default: the model's recommended tau); speed against the first, J&F, pixel "
                             "agreement and differing gate decisions")
    add_budget_arguments(parser, many=True)
    parser.add_argument("--load", type=int, nargs="?", const=0, default=None, metavar="N",
                        help="run a CPU-heavy competing load (N busy processes; without N one per core) during the "
                             "middle third of every sequence; every row then gives its FPS per third (a budget: "
                             "also tau, windows)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this JSON file")
    parser.add_argument("--plot", type=Path, default=None, help="write the J&F-vs-FPS plot to this PNG file")


def run(args: argparse.Namespace) -> int:
    from reusegate.data.writer import check_output_files
    from reusegate.tools.bench import DEFAULT_TAUS, bench, bench_lines, bench_plot, davis_clips, demo_clips
    from reusegate.tools.run import load_model, model_name, set_threads
    from reusegate.zoo.catalog import recommended_config
    from reusegate.commands import with_backend

    if args.frames < 0 or 0 < args.frames < 3:
        raise ValueError(f"--frames must be 0 (all) or at least 3 (J&F drops the first and last frame), "
                         f"got {args.frames}")
    frames = args.frames or None
    targets = _targets(args)
    check_output_files(args.json, args.plot)
    set_threads(args.threads)
    if args.davis is None:
        if args.sequences is not None:
            raise ValueError("--sequences selects DAVIS sequences; pass --davis ROOT too")
        clips, source = demo_clips(frames), "embedded synthetic demo clip"
    else:
        clips, source = davis_clips(args.davis, args.sequences, frames, args.resolution), str(args.davis)
    gate = load_model(args.model, tau=1.0, tau2=args.tau2, preset=args.preset, reuse_path=args.reuse_path,
                      device=args.device, window=args.window, reuse_precision=args.reuse_precision)
    if args.backends:
        return _backends(args, gate, clips, source)
    gate = with_backend(gate, args)
    if args.profile:
        return _profile(gate, clips, {"model": model_name(args.model), "source": source}, args.json)
    recommended = recommended_config(args.model, args.preset).tau
    variant = gate.config.variant  # loaded without one: the model's recommended variant
    taus = args.taus if args.taus is not None else sorted({*DEFAULT_TAUS, recommended}, reverse=True)
    others = args.variants if args.variants is not None else [] if variant == "decode" else [variant]
    others_tau = recommended if args.variant_tau is None else args.variant_tau
    report = {"model": model_name(args.model), "source": source, "device": args.device, "recommended_tau": recommended,
              "recommended_variant": variant, "tau2": gate.config.tau2, "window": gate.config.window,
              "reuse_precision": gate.config.reuse_precision,
              "backend": args.backend,  # FLOPs count torch's operations: none on a graph backend
              **bench(gate, clips, taus, not args.no_flops and args.backend == "torch", others=others,
                      others_tau=others_tau, targets=targets, target_config=replace(gate.config, tau=recommended),
                      tau_min=args.tau_min, load=args.load, precisions=args.precisions or ())}
    _emit(f"model {report['model']} on {source}", bench_lines(report), report, args.json)
    if args.plot is not None:
        bench_plot(report, args.plot)
        print(f"wrote {args.plot}")
    return 0


def _targets(args: argparse.Namespace) -> list:
    """The frame rates of ``--target-fps`` or ``--budget-ms``, one latency-budget row each."""
    from reusegate.commands import check_tau_min

    values = args.target_fps or args.budget_ms or []
    if values and (args.profile or getattr(args, "backends", None)):
        raise ValueError("--target-fps / --budget-ms add rows to the bench table; drop --profile / --backends")
    check_tau_min(args)
    return [v if args.target_fps else 1000 / v for v in values]  # each positive (argparse)


def _profile(gate, clips, report: dict, json_path) -> int:
    """``--profile``: the per-stage table for computed and reused frames (JSON too with ``--json``)."""
    from reusegate.tools.profiling import profile_lines, profile_stages

    report.update(profile_stages(gate, [(c.frames, c.gt[0].astype("int64")) for c in clips]))
    _emit(f"model {report['model']} on {report['source']}: ms per frame by stage (first frames excluded)",
          profile_lines(report), report, json_path)
    return 0


def _backends(args: argparse.Namespace, gate, clips, source: str) -> int:
    """``--backends``: the model on each backend, interleaved in one run (JSON too with ``--json``)."""
    from reusegate.deploy import use_backend
    from reusegate.tools.bench_backends import backend_lines, bench_backends
    from reusegate.tools.run import load_model, model_name
    from reusegate.zoo.catalog import model_path, recommended_config

    if args.backend != "torch" or args.profile:
        raise ValueError("--backends compares backends itself; drop --backend and --profile")
    if args.device not in (None, "cpu"):
        raise ValueError("--backends compares CPU backends; drop --device")
    pth = model_path(args.model)
    gates = {}
    for backend in dict.fromkeys(args.backends):
        loaded = gate if not gates else load_model(args.model, tau=1.0, tau2=args.tau2, preset=args.preset,
                                                   reuse_path=args.reuse_path, window=args.window,
                                                   reuse_precision=args.reuse_precision)
        gates[backend] = use_backend(loaded, backend, pth, args.graphs if backend != "torch" else None,
                                     args.threads)
    taus = [1.0, *(args.taus if args.taus is not None else [recommended_config(args.model, args.preset).tau])]
    report = {"model": model_name(args.model), "source": source, "threads": args.threads,
              **bench_backends(gates, clips, list(dict.fromkeys(taus)))}
    _emit(f"model {report['model']} on {source}", backend_lines(report), report, args.json)
    return 0


def _emit(header: str, lines: list, report: dict, json_path: Optional[Path]) -> None:
    """Print a bench report's table and write its JSON (atomically) when asked to."""
    from reusegate.data.writer import atomic_write_text

    print(header)
    for line in lines:
        print(line)
    if json_path is not None:
        atomic_write_text(json_path, json.dumps(report, indent=2))
        print(f"wrote {json_path}")
