"""Calibrate a G-FRTM model's int8 reuse decoding and store the calibration in its ``.json``.

``reuse_precision='int8'`` runs a reused object's never-skipped decoder half with int8 convolutions; their
activation scales come from real video, observed here while the float model segments it at its recommended
setting (so both computed and reused decodes are seen). The result goes into the ``.json`` beside the weights as
the adapter setting ``int8_qparams`` (written atomically; the weights are untouched). The shipped models were
calibrated on the first 30 frames of the 24 DAVIS-2016 sequences outside the development split::

    python tools/calibrate_int8.py fast --davis ../shared/data/davis2016-train \\
        --sequences configs/splits/davis16_train_minus_dev.txt --frames 30
    python tools/calibrate_int8.py accurate --davis ../shared/data/davis2016-train \\
        --sequences configs/splits/davis16_train_minus_dev.txt --frames 30

Any exported FRTM model (``NAME.pth`` with ``NAME.json``) takes the same command with its path.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from reusegate.data.writer import atomic_write_text
from reusegate.tools.bench import davis_clips
from reusegate.tools.run import load_model, set_threads
from reusegate.zoo.catalog import model_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an embedded model's name (fast, accurate) or an exported NAME.pth")
    parser.add_argument("--davis", type=Path, required=True, help="DAVIS root with full ground truth")
    parser.add_argument("--sequences", type=Path, required=True, help="the sequences to calibrate on, one a line")
    parser.add_argument("--frames", type=int, default=30, help="first N frames of each sequence (default: 30)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    args = parser.parse_args()
    set_threads(args.threads)
    meta_path = model_path(args.model).with_suffix(".json")
    gate = load_model(args.model, reuse_precision="float32")  # BatchNorm folded, as the int8 copy is made
    if not hasattr(gate.adapter, "calibrate_int8"):
        raise SystemExit(f"{args.model}: its adapter ({type(gate.adapter).__name__}) has no int8 reuse decoding")
    clips = davis_clips(args.davis, args.sequences, args.frames or None)

    def feed() -> None:
        for clip in tqdm(clips, desc="calibrating", unit="seq"):
            session = gate.session()
            session.step(clip.frames[0], clip.gt[0].astype(np.int64))
            for frame in clip.frames[1:]:
                session.step(frame)

    qparams = gate.adapter.calibrate_int8(feed)
    qparams["calibrated_on"] = {"davis": args.davis.name, "sequences": [c.name for c in clips],
                                "frames": sum(len(c.frames) for c in clips), "tau": gate.config.tau,
                                "variant": gate.config.variant, "torch": torch.__version__}
    meta = json.loads(meta_path.read_text())
    meta["adapter"]["int8_qparams"] = qparams
    atomic_write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    print(f"wrote the int8 calibration of {len(qparams['convs'])} convolutions into {meta_path}")


if __name__ == "__main__":
    main()
