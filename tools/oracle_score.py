"""Which part limits an FRTM-style host: its score (the target model) or its decoder?

Runs an exported model at tau = 1 twice on each sequence: as it is, and with the score tap replaced by the
ground truth area-pooled to the score grid (mapped onto the range of the real score: its means over the object
and over the background on the first scored frame, frame 1). With that oracle score the decoder knows where the
object is on every frame; what it still misses is the decoder's (and the features') limit, what it gains is the
score's. Single-object DAVIS-2016 sequences; J&F as ``reusegate bench`` computes them::

    python tools/oracle_score.py work_dirs/hard_base/host.pth --sequences configs/splits/davis16_hard.txt
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Dict

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from reusegate.data.readers import DavisReader, VideoSequence
from reusegate.evaluation.metrics import sequence_jf
from reusegate.core.gate import ReuseGate
from reusegate.zoo.catalog import load_gate

DEFAULT_DAVIS = Path(os.environ.get("REUSEGATE_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def run(gate: ReuseGate, seq: VideoSequence, oracle: bool) -> tuple[float, float]:
    """Mean (J, F) of one single-object sequence at tau = 1, with the host's score or the oracle score."""
    adapter = gate.adapter
    host_score = adapter.score
    gt_now: Dict[str, torch.Tensor] = {}
    scale: Dict[str, float] = {}

    def oracle_score(state, feats):
        score = host_score(state, feats)
        small = F.interpolate(gt_now["mask"], size=feats["image"].shape[-2:], mode="bilinear", align_corners=False)
        pooled = F.adaptive_avg_pool2d(small, score.shape[-2:])
        if not scale:  # the first scored frame: the real score's means inside and outside the object
            inside = pooled > 0.5
            scale["fg"] = float(score[inside].mean()) if inside.any() else float(score.max())
            scale["bg"] = float(score[~inside].mean())
        return scale["bg"] + (scale["fg"] - scale["bg"]) * pooled

    if oracle:
        adapter.score = oracle_score
    try:
        session = gate.session()
        preds, gts = [], []
        for i in range(len(seq)):
            gt = seq.load_mask(i)
            gt_now["mask"] = torch.from_numpy((gt > 0).astype(np.float32))[None, None]
            result = session.step(seq.load_frame(i), gt if i == 0 else None)
            preds.append((result.labels.numpy() > 0).astype(np.uint8))
            gts.append((gt > 0).astype(np.uint8))
    finally:
        if oracle:
            del adapter.score  # the class's method again
    j, f = sequence_jf(preds, gts, [1])[1]
    return float(j.mean()), float(f.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="exported model (.pth with its .json)")
    parser.add_argument("--davis", type=Path, default=DEFAULT_DAVIS / "davis2016-train")
    parser.add_argument("--sequences", required=True, help="a sequence list file or comma-separated names")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = args.sequences if Path(args.sequences).is_file() else args.sequences.split(",")
    reader = DavisReader(args.davis, year=2016, sequences=names)
    gate = load_gate(args.model, tau=1.0)
    rows = {}
    for seq in tqdm(reader, total=len(reader), desc="sequences", unit="seq"):
        rows[seq.name] = {mode: run(gate, seq, mode == "oracle") for mode in ("host", "oracle")}
    print(f"{'sequence':18s} {'host J&F':>9s} {'oracle-score J&F':>17s}  (J / F)")
    for name, r in rows.items():
        h, o = r["host"], r["oracle"]
        print(f"{name:18s} {50 * sum(h):9.1f} {50 * sum(o):17.1f}  ({100 * h[0]:.1f}/{100 * h[1]:.1f} -> "
              f"{100 * o[0]:.1f}/{100 * o[1]:.1f})")
    mean = {m: 50 * np.mean([sum(r[m]) for r in rows.values()]) for m in ("host", "oracle")}
    print(f"{'mean':18s} {mean['host']:9.1f} {mean['oracle']:17.1f}")
    if args.json:
        args.json.write_text(json.dumps({"model": str(args.model), "sequences": rows, "mean_jf": mean}, indent=1))


if __name__ == "__main__":
    main()
