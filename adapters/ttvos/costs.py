"""What each stage of a G-TTVOS frame costs (GMACs and milliseconds), for one object on a computed and a reused frame.

The gate can only save the stages it skips; this table says how much that is for a backbone and an input size::

    python -m reusegate.adapters.ttvos.costs --backbone resnet50s16 --size 480 854

MACs are counted by ``torch.utils.flop_counter`` (convolutions and matrix products: FLOPs / 2); times are the
median of ``repeats`` calls on this machine's threads (noisy on a shared CPU: compare ratios within one run).
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Dict, List, Tuple

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from reusegate.core.layers import GateLayers

from .adapter import TTVOSAdapter
from .model import TTVOS

__all__ = ["stage_costs", "COMPUTED", "REUSED"]

COMPUTED = ("backbone to s8", "gate: template matcher + head", "stride-16 stage", "short-term branch",
            "template query + decoder", "template update")
"""Stages of a computed frame when the gate is on (``tau < 1``; at ``tau = 1`` the gate does not run)."""
REUSED = ("backbone to s8", "gate: template matcher + head", "delta + refine-translator", "template query + decoder")
"""Stages of a reused frame."""


def _measure(fn: Callable[[], object], repeats: int) -> Tuple[float, float]:
    with FlopCounterMode(display=False) as counter:
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return counter.get_total_flops() / 2e9, statistics.median(times) * 1e3


@torch.no_grad()
def stage_costs(model: TTVOS, height: int = 480, width: int = 854, repeats: int = 3) -> Dict[str, Tuple[float, float]]:
    """``{stage: (GMACs, ms)}`` for the stages of :data:`COMPUTED` and :data:`REUSED` on one object."""
    model.eval()
    adapter = TTVOSAdapter(model)
    modules = GateLayers(adapter.taps).eval()
    x = adapter.preprocess(torch.rand(1, 3, height, width))
    feats = adapter.deep(adapter.shallow(x))
    mask = torch.zeros(1, 1, height, width)
    mask[..., height // 4:height // 2, width // 4:width // 2] = 1
    state = adapter.start_object(feats, mask)
    score = adapter.score(state, feats)
    refined = adapter.refine_deep(feats, score, state)
    match = adapter.match_feature(feats)
    template = modules.template_generator(match, F.interpolate(mask, size=match.shape[-2:]))
    matched, _ = modules.match_and_gate(match, score, template)
    state.update_w = model.decode(state, feats, refined).update_w

    def update() -> None:
        fresh = model.fresh_template(state, feats["s8"])
        model.blend_template(state.template, fresh, state.update_w)

    stages: Dict[str, Callable[[], object]] = {
        "backbone to s8": lambda: adapter.shallow(x),
        "gate: template matcher + head": lambda: modules.match_and_gate(match, score, template),
        "stride-16 stage": lambda: adapter.deep(feats),
        "short-term branch": lambda: model.short_term(state, feats["s16"]),
        "delta + refine-translator": lambda: modules.refine_translator(refined, modules.delta(matched, score)),
        "template query + decoder": lambda: model.decode(state, feats, refined),
        "template update": update,
    }
    return {name: _measure(fn, repeats) for name, fn in stages.items()}


def _table(costs: Dict[str, Tuple[float, float]]) -> List[str]:
    lines = ["| stage | GMACs | ms | computed frame | reused frame |", "|---|---|---|---|---|"]
    for name, (macs, ms) in costs.items():
        lines.append(f"| {name} | {macs:.2f} | {ms:.0f} | {'x' if name in COMPUTED else ''} | "
                     f"{'x' if name in REUSED else ''} |")
    for label, names in (("computed frame", COMPUTED), ("reused frame", REUSED)):
        macs, ms = (sum(costs[n][i] for n in names) for i in (0, 1))
        lines.append(f"| **{label}** | {macs:.2f} | {ms:.0f} | | |")
    return lines


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="mobilenet_v2s16")
    parser.add_argument("--size", type=int, nargs=2, default=(480, 854), metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    costs = stage_costs(TTVOS(args.backbone), *args.size, repeats=args.repeats)
    print(f"TTVOS-{args.backbone}, {args.size[0]}x{args.size[1]}, {torch.get_num_threads()} thread(s)")
    print("\n".join(_table(costs)))


if __name__ == "__main__":
    main()
