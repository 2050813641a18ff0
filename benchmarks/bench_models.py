"""Two or more exported models side by side: ms per frame and J&F at fixed thresholds, in one interleaved run.

Comparing models from separate ``reusegate bench`` runs mixes the machine's drift into the ratio; this steps
every model on the same decoded frames, frame by frame in a rotating order, so a slow phase of a loaded machine
hits all alike. For each tau it prints every model's mean ms per frame (what its FPS is: it includes the target
model's update, amortised over the frames it runs on) and median, its speed-up over the first model (from the
means), its reuse rate and J&F (the DAVIS protocol of :mod:`reusegate.evaluation`)::

    python benchmarks/bench_models.py old/g_frtm_mnv2.pth reusegate/zoo/weights/g_frtm_mnv2.pth --taus 1 0

``MODEL:PRESET`` runs a model with one of its ``.json``'s inference presets (``fast:full_fit``); a model is a
``NAME.pth`` or an embedded model's name (``accurate``, ``fast``).
"""
from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from reusegate.tools.bench import davis_clips, davis_object_ids
from reusegate.evaluation.metrics import sequence_jf
from reusegate.tools.run import load_model
from reusegate.zoo.catalog import embedded_name

ROOT = Path(__file__).resolve().parents[1]


def _model_and_preset(spec: str) -> tuple[str, str | None]:
    """``MODEL`` or ``MODEL:PRESET`` -> (model, preset); a model is a ``NAME.pth`` or an embedded model's name."""
    model, sep, preset = spec.rpartition(":")
    if sep and (model.endswith(".pth") or embedded_name(model) is not None):
        return model, preset
    return spec, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", help="exported NAME.pth files (NAME.json beside each) or embedded "
                        "models (accurate, fast), each optionally as MODEL:PRESET for one of its inference presets")
    parser.add_argument("--davis", type=Path, default=ROOT.parent / "shared" / "data" / "davis2016-train")
    parser.add_argument("--sequences", type=Path, default=ROOT / "configs" / "splits" / "davis16_dev.txt")
    parser.add_argument("--frames", type=int, default=0, help="first N frames of each sequence (0 = all)")
    parser.add_argument("--taus", type=float, nargs="+", default=[1.0, 0.0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clips = davis_clips(args.davis, args.sequences, args.frames or None)
    names = list(args.models)
    gates = {}
    for name in names:
        path, preset = _model_and_preset(name)
        gates[name] = load_model(path, preset=preset)
    print(f"{len(clips)} sequences, {sum(len(c.frames) for c in clips)} frames, {args.threads} threads")
    for tau in args.taus:
        ms = {k: [] for k in names}
        jf = {k: [] for k in names}
        reused = {k: [0, 0] for k in names}
        for clip in clips:
            sessions = {}
            for k, gate in gates.items():
                sessions[k] = gate.session(dataclasses.replace(gate.config, tau=tau))
            labels = {k: [] for k in names}
            first = torch.from_numpy(clip.gt[0].astype(np.int64))
            for t, frame in enumerate(clip.frames):
                for k in names[t % len(names):] + names[:t % len(names)]:  # rotate who goes first
                    start = time.perf_counter()
                    result = sessions[k].step(frame, first if t == 0 else None)
                    if t > 0:
                        ms[k].append(1000 * (time.perf_counter() - start))
                        reused[k][0] += sum(result.reused.values())
                        reused[k][1] += len(result.reused)
                    labels[k].append(result.labels.numpy())
            objects = davis_object_ids(clip.gt[0])
            for k in names:  # DAVIS: J and F averaged per object over its scored frames
                jf[k] += [(j.mean() + f.mean()) / 2 for j, f in sequence_jf(labels[k], clip.gt, objects).values()]
        base = np.mean(ms[names[0]])
        for k in names:
            print(f"tau={tau:g} {k:<48} {np.mean(ms[k]):7.1f} ms/frame (mean; median {np.median(ms[k]):.1f}), "
                  f"x{base / np.mean(ms[k]):.3f}; "
                  f"reuse {100 * reused[k][0] / max(1, reused[k][1]):5.1f} %; J&F {100 * np.mean(jf[k]):5.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
