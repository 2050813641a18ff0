"""What the reuse gate buys a heavy host: FRTM-ResNet-18 and FRTM-ResNet-101 at 480p.

The shipped MobileNetV2 model skips little (its deep stages are cheap); the paper's speed-ups come from ResNet
hosts whose stride-16 stage dominates. This times those hosts with the upstream decoder width and random
weights (time does not depend on the weights) while the ``oracle`` variant replays the decisions of the
ground-truth gate at ``--tau`` (reuse while the IoU of the frame's ground truth with the last computed frame's
stays at or above tau), so the reuse rate is the data's, not a random gate's. It prints, per host, the
reused/computed cost c, the oracle's reuse, its speed-up over tau = 1 and the speed-up's ratio to the Amdahl
ideal 1 / (1 - r (1 - c)), all within one interleaved run; J&F is meaningless here (random weights)::

    python benchmarks/bench_heavy_host.py --frames 10 --threads 2 \\
        --json benchmarks/results/heavy_hosts/heavy_hosts_dev.json
    python benchmarks/bench_heavy_host.py --backbones resnet18:cpu resnet101:cpu \\
        --json benchmarks/results/heavy_hosts/heavy_hosts_cpu_decoder_dev.json
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from reusegate.adapters.frtm.model import FRTM
from reusegate.tools.bench import bench, davis_clips
from reusegate.data.writer import atomic_write_text
from reusegate.core.gate import ReuseGate
from reusegate.tools.optimize import for_inference

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--davis", type=Path, default=ROOT.parent / "shared" / "data" / "davis2016-train")
    parser.add_argument("--sequences", type=Path, default=ROOT / "configs" / "splits" / "davis16_dev.txt")
    parser.add_argument("--frames", type=int, default=10, help="first N frames of each sequence")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tau", type=float, default=0.7, help="the oracle's IoU threshold (paper: 0.7)")
    parser.add_argument("--backbones", nargs="+", default=["resnet18", "resnet101"],
                        help="backbone names; NAME:cpu uses the default model's CPU decoder (stride-4 stage 32 "
                             "channels, logit at stride 2) instead of upstream's")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    clips = davis_clips(args.davis, args.sequences, args.frames)
    results = {}
    for name in args.backbones:
        backbone, _, decoder = name.partition(":")
        if decoder not in ("", "cpu"):
            raise SystemExit(f"--backbones: {name!r}: the only decoder suffix is ':cpu'")
        cpu = dict(s4_channels=32, head="stride2", head_channels=16) if decoder else {}
        host = FRTM(backbone, **cpu)  # random weights; upstream decoder (64 channels, bicubic head 32) unless :cpu
        gate = for_inference(ReuseGate(host, dict(type="frtm", input_height=480), tau=args.tau).eval())
        report = bench(gate, clips, taus=(1.0,), flops=False, others=("oracle",), others_tau=args.tau)
        rows = {r["name"]: r for r in report["variants"]}
        oracle = rows[f"oracle@{args.tau:g}"]
        results[name] = {"c": report["reuse_cost"], "ms_tau1": rows["tau=1"]["ms_per_frame"],
                         "ms_oracle": oracle["ms_per_frame"], "reuse": oracle["reuse_rate"],
                         "speedup": oracle["speedup"], "amdahl_ideal": oracle["amdahl_ideal"],
                         "amdahl_ratio": oracle["amdahl_ratio"]}
        r = results[name]
        print(f"FRTM-{name} at {report['frame_size'][0]}p, {report['timed_frames_per_variant']} frames, "
              f"{args.threads} threads: {r['ms_tau1']:.0f} ms/frame at tau=1, c = {r['c']:.3f}; oracle@{args.tau:g} "
              f"reuses {r['reuse']:.1%} for x{r['speedup']:.3f} (Amdahl ideal x{r['amdahl_ideal']:.3f}, "
              f"efficiency {r['amdahl_ratio']:.3f})", flush=True)
    if args.json is not None:
        atomic_write_text(args.json, json.dumps({"frames_per_sequence": args.frames, "threads": args.threads,
                                                 "tau": args.tau, "hosts": results}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
