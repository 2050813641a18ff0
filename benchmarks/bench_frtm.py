"""Per-stage cost of G-FRTM at 480x854, one object: MACs (FlopCounterMode FLOPs / 2) and CPU ms.

Stages: backbone segments (stride 4 / 8 always run; 16 / 32 skipped on reuse), target-model apply and update,
each refinement stage, the head, the gate's per-frame and reuse-only modules, the merge; then the computed- vs
reused-frame totals and their ratio, and the same for the narrow-decoder option (``s4_channels=32``,
``head_channels=16``). Random weights (cost does not depend on them). CPU ms are the minimum over ``--repeats``
runs on 2 threads; a shared machine makes them noisy, the MACs are exact.

Usage: ``python benchmarks/bench_frtm.py [--backbones resnet18 mobilenet_v2] [--repeats 3] [--size 480 854]``.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable, Dict, List, Tuple

import torch
from torch.utils.flop_counter import FlopCounterMode

from reusegate.adapters.frtm.adapter import FRTMAdapter
from reusegate.adapters.frtm.model import FRTM
from reusegate.adapters.frtm.refiner import Refiner
from reusegate.adapters.frtm.target_model import TargetModelParams
from reusegate.core.host import soft_aggregate
from reusegate.core.layers import GateLayers

Row = Tuple[str, float, float, float, str]  # name, GMACs, wall ms, process CPU ms, skipped on reuse?


def measure(fn: Callable[[], object], repeats: int) -> Tuple[float, float, float]:
    """(GMACs, min wall ms, min process CPU ms) of ``fn``; the FLOP-counted call doubles as warm-up.

    Process CPU time (all threads of this process) hardly moves when other jobs share the cores, while wall
    time does; on an idle machine with 2 threads, CPU ms is up to 2x wall ms.
    """
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    wall = cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.no_grad():
            fn()
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return counter.get_total_flops() / 2e9, wall * 1000, cpu * 1000


def backbone_segments(model: FRTM, x: torch.Tensor) -> Dict[str, Tuple[Callable, Callable]]:
    """Per-tap segments as (run, make-input) pairs so each is timed alone."""
    bb = model.backbone
    with torch.no_grad():
        feats = bb.forward_features(x)
    if hasattr(bb, "layer1"):  # ResNet
        stem = lambda: bb.maxpool(bb.relu(bb.bn1(bb.conv1(x))))  # noqa: E731
        with torch.no_grad():
            s = stem()
        return {
            "backbone stem (conv1..maxpool)": stem,
            "backbone -> s4 (layer1)": lambda: bb.layer1(s),
            "backbone -> s8 (layer2)": lambda: bb.layer2(feats["s4"]),
            "backbone -> s16 (layer3)": lambda: bb.layer3(feats["s8"]),
            "backbone -> s32 (layer4)": lambda: bb.layer4(feats["s16"]),
        }
    return {
        "backbone -> s4 (features.0-3)": lambda: bb._run(x, 0, 3),
        "backbone -> s8 (features.4-6)": lambda: bb._run(feats["s4"], 4, 6),
        "backbone -> s16 (features.7-13)": lambda: bb._run(feats["s8"], 7, 13),
        "backbone -> s32 (features.14-17)": lambda: bb._run(feats["s16"], 14, 17),
    }


def bench(backbone: str, size: Tuple[int, int], repeats: int, update_repeats: int) -> List[Row]:
    torch.manual_seed(0)
    h, w = size
    model = FRTM(backbone).eval()
    adapter = FRTMAdapter(model)
    gm = GateLayers(adapter.taps).eval()
    x = adapter.preprocess(torch.rand(1, 3, h, w))
    with torch.no_grad():
        feats = adapter.deep(adapter.shallow(x))
    mask = torch.zeros(1, 1, h, w)
    mask[..., h // 4: 3 * h // 4, w // 3: 2 * w // 3] = 1
    rows: List[Row] = []
    for name, fn in backbone_segments(model, x).items():
        deep = "s16" in name or "s32" in name
        rows.append((name, *measure(fn, repeats), "yes" if deep else "no"))

    # target model: apply on every computed frame; GN-CG update every 8th computed frame (memory full)
    tms = {}
    for res in ("full", "score"):
        params = TargetModelParams.inference_fast(num_aug=1, fit_resolution=res, train_skipping=10 ** 9)
        model.target_params = params
        t0 = time.perf_counter()
        c0 = time.process_time()
        tms[res] = model.start_target_model(feats, x, mask)
        init_ms, init_cpu = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
        tm = tms[res]
        for _ in range(params.memory_size):  # fill the memory (no solve: train_skipping is huge)
            tm.apply(feats["s16"])
            tm.update(mask)
        if res == "full":
            rows.append(("target model apply (1x1 -> 96, 3x3 -> 1)", *measure(lambda: tm.apply(feats["s16"]),
                                                                               repeats), "yes"))
        rows.append((f"target model GN-CG update, memory {params.memory_size}, labels at {res} res "
                     f"(every 8th computed frame)", *measure(tm.fit_filter, update_repeats), "yes"))
        rows.append((f"target model init, 1 sample, 4 GN steps, {res} res (start frame)", float("nan"), init_ms,
                     init_cpu, "-"))
    score = tms["full"].apply(feats["s16"])

    refiner = model.refiner
    with torch.no_grad():
        r32 = refiner.stages["s32"](feats["s32"], score, None)
        r16 = refiner.stages["s16"](feats["s16"], score, r32)
        r8 = refiner.stages["s8"](feats["s8"], score, r16)
        r4 = refiner.stages["s4"](feats["s4"], score, r8)
    stage_in = {"s32": None, "s16": r32, "s8": r16, "s4": r8}
    for tap in ("s32", "s16", "s8", "s4"):
        rows.append((f"refine stage {tap}", *measure(lambda t=tap: refiner.stages[t](feats[t], score, stage_in[t]),
                                                     repeats), "yes" if tap in ("s32", "s16") else "no"))
    rows.append(("upsampling head", *measure(lambda: refiner.head(r4, (h, w)), repeats), "no"))
    prob = torch.sigmoid(refiner.head(r4, (h, w)))[0]
    rows.append(("merge (soft aggregation, full res)", *measure(lambda: soft_aggregate(prob), repeats), "no"))

    match = feats["s8"]
    with torch.no_grad():
        m8 = torch.nn.functional.interpolate(mask, size=match.shape[-2:], mode="nearest")
        template = gm.template_generator(match, m8)
        d, _ = gm.match_and_gate(match, score, template)
        delta = gm.delta(d, score)
    rows.append(("gate: template generation (start frame)", *measure(lambda: gm.template_generator(match, m8),
                                                                      repeats), "-"))
    rows.append(("gate: template match + gate head (every frame)", *measure(lambda: gm.match_and_gate(match, score, template),
                                                                             repeats), "always runs"))
    rows.append(("gate: delta generator (reuse only)", *measure(lambda: gm.delta(d, score), repeats), "reuse only"))
    rows.append(("gate: refine-translator (reuse only)", *measure(lambda: gm.refine_translator(r16, delta), repeats),
                 "reuse only"))

    narrow = Refiner(model.backbone.feature_channels, s4_channels=32, head_channels=16).eval()
    with torch.no_grad():
        n4 = narrow.stages["s4"](feats["s4"], score, r8)
    rows.append(("narrow option: refine stage s4 (32 ch)", *measure(lambda: narrow.stages["s4"](feats["s4"], score, r8),
                                                                     repeats), "no"))
    rows.append(("narrow option: head (16 ch)", *measure(lambda: narrow.head(n4, (h, w)), repeats), "no"))
    return rows


def totals(rows: List[Row]) -> Dict[str, Tuple[float, float]]:
    get = {r[0]: r[1:4] for r in rows}
    backbone_shallow = [r for r in rows if r[0].startswith("backbone") and r[4] == "no"]
    backbone_deep = [r for r in rows if r[0].startswith("backbone") and r[4] == "yes"]
    apply_ = [r for r in rows if r[0].startswith("target model apply")]
    deep_ref = [r for r in rows if r[0] in ("refine stage s32", "refine stage s16")]
    tail = [r for r in rows if r[0] in ("refine stage s8", "refine stage s4", "upsampling head",
                                        "merge (soft aggregation, full res)")]
    narrow_tail = [r for r in rows if r[0] in ("refine stage s8", "narrow option: refine stage s4 (32 ch)",
                                               "narrow option: head (16 ch)", "merge (soft aggregation, full res)")]
    gate = [r for r in rows if r[0] == "gate: template match + gate head (every frame)"]
    reuse_only = [r for r in rows if r[4] == "reuse only"]
    update = get["target model GN-CG update, memory 80, labels at full res (every 8th computed frame)"]

    def s(rs, i):
        return sum(r[i] for r in rs)

    out = {}
    for label, tail_rows in (("default decoder", tail), ("narrow decoder", narrow_tail)):
        compute = [*backbone_shallow, *backbone_deep, *apply_, *deep_ref, *tail_rows, *gate]
        reuse = [*backbone_shallow, *gate, *reuse_only, *tail_rows]
        host = [*backbone_shallow, *backbone_deep, *apply_, *deep_ref, *tail_rows]
        out[f"{label}: FRTM frame (no gate)"] = (s(host, 1), s(host, 2), s(host, 3))
        out[f"{label}: G-FRTM computed frame"] = (s(compute, 1), s(compute, 2), s(compute, 3))
        out[f"{label}: G-FRTM computed frame + update/8"] = (
            s(compute, 1) + update[0] / 8, s(compute, 2) + update[1] / 8, s(compute, 3) + update[2] / 8)
        out[f"{label}: G-FRTM reused frame"] = (s(reuse, 1), s(reuse, 2), s(reuse, 3))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["resnet18", "mobilenet_v2"])
    parser.add_argument("--size", type=int, nargs=2, default=(480, 854), metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--update-repeats", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(2)
    for backbone in args.backbones:
        rows = bench(backbone, tuple(args.size), args.repeats, args.update_repeats)
        print(f"\n## {backbone} at {args.size[0]}x{args.size[1]}, 1 object\n")
        print("| stage | GMACs | wall ms | process CPU ms | skipped on reuse? |\n|---|---|---|---|---|")
        for name, macs, ms, cpu, skip in rows:
            print(f"| {name} | {macs:.3f} | {ms:.0f} | {cpu:.0f} | {skip} |")
        print("\n| frame | GMACs | wall ms | process CPU ms |\n|---|---|---|---|")
        tot = totals(rows)
        for name, (macs, ms, cpu) in tot.items():
            print(f"| {name} | {macs:.2f} | {ms:.0f} | {cpu:.0f} |")
        for label in ("default decoder", "narrow decoder"):
            c, r = tot[f"{label}: G-FRTM computed frame"], tot[f"{label}: G-FRTM reused frame"]
            cu = tot[f"{label}: G-FRTM computed frame + update/8"]
            print(f"\n{label}: reused / computed = {r[0] / c[0]:.3f} (MACs), {r[1] / c[1]:.3f} (wall), "
                  f"{r[2] / c[2]:.3f} (process CPU); with the amortised GN-CG update in the computed frame: "
                  f"{r[0] / cu[0]:.3f} (MACs), {r[1] / cu[1]:.3f} (wall), {r[2] / cu[2]:.3f} (process CPU)")


if __name__ == "__main__":
    main()
