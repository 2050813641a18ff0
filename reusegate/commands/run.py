"""``reusegate run``: segment a video, DAVIS sequences or YouTube-VOS videos with a gated model, resumably, in the
DAVIS layout (YouTube-VOS: ``<out>/Annotations`` and the submission zip); ``--shard i/N`` splits the list across
processes or machines that share ``--out``."""
from __future__ import annotations

import argparse
from pathlib import Path

NAME = "run"
HELP = ("segment a video (a folder of frames or a video file, plus the first frame's mask), DAVIS sequences or "
        "YouTube-VOS videos with a gated model; writes <out>/<sequence>/<frame>.png and <out>/summary.json, and "
        "skips sequences a previous run finished")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from reusegate.core.config import VARIANT_ALIASES, VARIANTS
    from reusegate.commands import add_budget_arguments, add_model_and_data_arguments

    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", type=Path, help="a folder of frames or a video file")
    source.add_argument("--davis", type=Path, metavar="ROOT",
                        help="DAVIS root holding JPEGImages/<res> and Annotations/<res>")
    source.add_argument("--youtube", type=Path, metavar="ROOT",
                        help="YouTube-VOS root (or its split folder, with meta.json): objects may start late and "
                             "carry any ids; writes <out>/Annotations/<video>/<frame>.png and the submission zip")
    parser.add_argument("--split", default="valid", help="with --youtube: the split folder (default: valid)")
    parser.add_argument("--zip", type=Path, default=None,
                        help="with --youtube: the submission zip (default: <out>/submission.zip)")
    parser.add_argument("--shard", default=None, metavar="i/N",
                        help="take sequences i, i+N, ... of the list (0-based), for N processes or machines "
                             "sharing --out; the summary merges every shard's finished sequences")
    parser.add_argument("--first-mask", type=Path, help="with --input: the first frame's mask (PNG, ids or 0/255)")
    parser.add_argument("--name", default=None, help="with --input: the sequence name (default: the input's name)")
    add_model_and_data_arguments(parser)
    parser.add_argument("--tau", type=float, default=None, help="reuse threshold in [0, 1]; 1 = the host alone "
                        "(default: the threshold the model's .json recommends)")
    parser.add_argument("--variant", choices=[*VARIANTS, *VARIANT_ALIASES], default=None,
                        help="gate variant (default: the one the model's .json recommends, else decode; 'translate' "
                             "is decode's old name)")
    parser.add_argument("--tau2", type=float, default=None,
                        help="fusion variant: copy the previous mask above this p_reuse (default: the model's, "
                             "else 0.9)")
    parser.add_argument("--out", type=Path, default=Path("out/run"), help="results folder (default: out/run)")
    parser.add_argument("--redo", action="store_true", help="recompute sequences a previous run finished")
    add_budget_arguments(parser)
    parser.add_argument("--overlay", action="store_true",
                        help="also write <out>/overlay/<sequence>.mp4 (the masks over the frames, computed and reused "
                             "frames marked) and <sequence>_timeline.png (p_reuse and tau per frame)")
    parser.add_argument("--report", action="store_true",
                        help="also write <out>/index.html: per sequence J&F (with ground truth), reuse, FPS, the "
                             "timeline and a link to the overlay; opens from disk, no server or network")


def _sequences(args: argparse.Namespace) -> list:
    """The sequences to segment, all opened (and header-checked) before any computation starts."""
    from reusegate.data.readers import DavisReader, open_sequence

    if args.input is not None:
        if args.first_mask is None:
            raise ValueError("--input needs --first-mask PNG: the mask of the objects on the first frame")
        if args.sequences is not None:
            raise ValueError("--sequences selects DAVIS sequences; use it with --davis, not --input")
        return [open_sequence(args.input, args.first_mask, name=args.name)]
    if args.first_mask is not None or args.name is not None:
        raise ValueError("--first-mask and --name go with --input; with --davis or --youtube the masks come from "
                         "Annotations")
    reader = _youtube_reader(args) if args.youtube is not None else DavisReader(
        args.davis, year=None, resolution=args.resolution, sequences=args.sequences)
    return [reader.sequence(n) for n in reader.sequences]


def _youtube_reader(args: argparse.Namespace):
    from reusegate.data.readers import YouTubeVOSReader

    return YouTubeVOSReader(args.youtube, split=args.split, sequences=args.sequences)


def run(args: argparse.Namespace) -> int:
    from reusegate.tools.run import SUMMARY, gate_settings, load_model, parse_shard, run_sequences, set_threads
    from reusegate.commands import budget_from_args, with_backend

    set_threads(args.threads)
    budget = budget_from_args(args)
    shard = parse_shard(args.shard)
    if args.zip is not None and args.youtube is None:
        raise ValueError("--zip packs a YouTube-VOS submission; use it with --youtube")
    if args.shard is not None and args.input is not None:
        raise ValueError("--shard splits a list of sequences; --input is one video")
    sequences = _sequences(args)
    gate = load_model(args.model, tau=args.tau, variant=args.variant, tau2=args.tau2, preset=args.preset,
                      reuse_path=args.reuse_path, device=args.device, window=args.window,
                      reuse_precision=args.reuse_precision)
    gate = with_backend(gate, args)
    settings = gate_settings(args.model, gate)
    if args.preset is not None:
        settings["preset"] = args.preset
    if args.backend != "torch":  # its masks may differ at near-ties: a resumed run does not mix backends
        settings["backend"] = args.backend
    settings.update(budget or {})  # a budget changes the masks: a resumed run does not mix it with a fixed tau
    youtube = args.youtube is not None
    out = args.out / "Annotations" if youtube else args.out
    summary = run_sequences(gate, sequences, out, settings, redo=args.redo, shard=shard, relabel=youtube,
                            budget=budget)
    for name, s in summary["sequences"].items():
        fps = "-" if s["fps"] is None else f"{s['fps']:.2f}"
        note = " (finished earlier)" if name in summary["resumed"] else ""
        tau = f"  mean tau {s['budget']['tau_mean']:.3f}" if s.get("budget") and s["budget"]["tau_mean"] else ""
        print(f"{name:<24} {s['frames']:>5} frames  reuse {100 * s['reuse_rate']:5.1f} %  {fps:>7} FPS{tau}{note}")
    total = summary["total"]
    fps = "-" if total["fps"] is None else f"{total['fps']:.2f}"
    print(f"{total['sequences']} sequences, {total['frames']} frames, mean reuse {100 * total['reuse_rate']:.1f} %, "
          f"{fps} FPS; wrote {out}/<sequence>/*.png and {out / SUMMARY}")
    if not summary["complete"]:
        print(f"{len(sequences) - total['sequences']} sequences are left to other shards; the summary completes "
              f"when the last shard finishes")
    elif youtube:
        from reusegate.evaluation.youtube import write_youtube_vos_submission

        zip_path = args.zip or args.out / "submission.zip"
        write_youtube_vos_submission(out, _youtube_reader(args), zip_path)
        print(f"wrote the YouTube-VOS submission {zip_path} (Annotations/<video>/<frame>.png)")
    if budget is not None:
        _print_budget(summary)
    if args.overlay or args.report:
        from reusegate.tools.report import OVERLAY_DIR, REPORT, visualise_run

        mine = sequences if shard is None else sequences[shard[0]::shard[1]]
        fresh = {seq.name for seq in mine} - set(summary["resumed"])
        visualise_run(sequences, out, args.out, summary, args.overlay, args.report, fresh)
        if args.overlay:
            print(f"wrote {args.out / OVERLAY_DIR}/<sequence>.mp4 and <sequence>_timeline.png")
        if args.report:
            print(f"wrote {args.out / REPORT} (open it in a browser; no server needed)")
    return 0


def _print_budget(summary: dict) -> None:
    """One line on the latency budget, naming the sequences where it was out of reach (each said once)."""
    budgets = {n: s["budget"] for n, s in summary["sequences"].items() if s.get("budget")}
    if not budgets:
        return
    first = next(iter(budgets.values()))
    missed = {n: b["unreachable"] for n, b in budgets.items() if b["unreachable"]}
    line = (f"latency budget {first['budget_ms']:.1f} ms ({first['target_fps']:.2f} FPS), "
            f"tau in [{first['tau_min']:g}, 1]")
    if missed:
        worst = max(missed.values(), key=lambda u: u["mean_ms"])
        line += (f"; out of reach at tau_min in {len(missed)} of {len(budgets)} sequences ({', '.join(missed)}; "
                 f"up to {worst['mean_ms']:.1f} ms a frame)")
    print(line)
