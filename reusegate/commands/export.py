"""``reusegate export``: every stage a session of a model calls, as ONNX graphs in one folder (docs/deploy.md)."""
from __future__ import annotations

import argparse
from pathlib import Path

NAME = "export"
HELP = ("export the stages a session calls (backbone halves, score apply, decoder halves, gate) to ONNX graphs, "
        "one file a stage, with the model's .json and graphs.json; run them with --backend onnxruntime|openvino "
        "--graphs DIR")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from reusegate.commands import MODEL_HELP

    parser.add_argument("model", nargs="?", default=None, help=MODEL_HELP)
    parser.add_argument("--format", choices=("onnx",), default="onnx", help="graph format (default: onnx)")
    parser.add_argument("--out", type=Path, required=True,
                        help="the graph folder to write (new, empty, or an earlier export, which it replaces)")


def run(args: argparse.Namespace) -> int:
    from reusegate.deploy.graphs import OPSET, write_graphs
    from reusegate.tools.run import model_name
    from reusegate.zoo.catalog import load_gate, model_path

    pth = model_path(args.model)
    gate = load_gate(pth)
    graphs = write_graphs(gate, pth, args.out, model_name(args.model))
    for name, entry in graphs.items():
        inputs, outputs = ", ".join(entry["inputs"]), ", ".join(entry["outputs"])
        print(f"{name:<20} ({inputs}) -> ({outputs})")
    print(f"wrote {len(graphs)} graphs (ONNX opset {OPSET}, checker passed), model.json and graphs.json to {args.out}")
    return 0
