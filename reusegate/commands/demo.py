"""``reusegate demo``: the reuse gate end to end on the embedded clip (the README's first command)."""
from __future__ import annotations

import argparse
from pathlib import Path

NAME = "demo"
DEMO_MODEL = "fast"
"""The demo's model: both embedded models reuse about half of the clip at their recommended tau (fast 50 %, J&F
95.8 against 95.7; accurate 54 %, 95.6 against 93.2); the fast one does it in about half the time."""
HELP = "run the fast embedded model with and without the gate on the embedded clip; write masks, GIF and plot"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from reusegate.commands import (add_backend_arguments, add_budget_arguments, add_device_argument,
                                    add_session_arguments)

    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default: out/demo)")
    parser.add_argument("--tau", type=float, default=None,
                        help="reuse threshold in [0, 1] (default: the model's recommended value)")
    parser.add_argument("--model", default=DEMO_MODEL, choices=("accurate", "fast", "ttvos"),
                        help="which embedded model (default: fast, the quicker to run; the accurate model's gate "
                             "opens on the clip too, README \"Default model\")")
    parser.add_argument("--preset", default=None, help="an inference preset of the model (e.g. full_fit)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice, one per core; fewer can be faster "
                             "on a machine busy with other work)")
    add_device_argument(parser)
    add_session_arguments(parser)
    add_budget_arguments(parser)
    add_backend_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from reusegate.data.writer import check_writable
    from reusegate.tools.demo import run_demo
    from reusegate.tools.run import set_threads
    from reusegate.tools.optimize import for_inference
    from reusegate.zoo.catalog import default_gate
    from reusegate.commands import budget_from_args, with_backend

    set_threads(args.threads)
    budget = budget_from_args(args)
    check_writable(args.out)
    gate = default_gate(tau=args.tau, preset=args.preset, model=args.model, device=args.device, window=args.window,
                        reuse_precision=args.reuse_precision)
    for_inference(gate)  # BatchNorm folded, channels-last: the same function, faster
    with_backend(gate, args)  # the folded model's graphs, when a graph backend runs them
    report = run_demo(gate, args.out, budget=budget)
    for line in report.lines():
        print(line)
    print(f"wrote {args.out}/masks/demo/*.png, {args.out}/overlay.gif, {args.out}/gate_timeline.png, "
          f"{args.out}/summary.json")
    return 0
