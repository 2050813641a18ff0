"""TTVOS on a whole video without a gate: the host's own inference loop, with upstream's late-object quirk as an option.

Per frame: backbone once; every object decodes from its own memory; the merge (:func:`aggregate`) turns the
per-object (bg, fg) probabilities into soft assignments; each object's memory is updated from its assignment.

Objects that start after frame 0 (``late_objects``):

* ``"own_frame"`` (default, and what :class:`reusegate.HostRunner` does through the adapter): the frame that
  introduces an object is segmented as any other for the objects already there; the new object takes its
  annotation on that frame (covering older objects), and its memory starts from that frame's features.
* ``"upstream"`` (the released code, golden MANIFEST Q2): that frame gets no inference (its output is the
  annotation alone, so older objects vanish from it), older objects' memories do not advance on it, and the new
  object's template and stride-16 memory are built from **frame 0's** features with the new frame's mask.
  Upstream also duplicates an object that is annotated again; that is not reproduced (it is re-started).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

import torch
from torch import Tensor

from .model import TTVOS, TTVOSState, pad16, two_channel, unpad

__all__ = ["LATE_OBJECTS", "aggregate", "segment_video"]

LATE_OBJECTS = ("own_frame", "upstream")
EPS = 1e-7


def aggregate(fg: Tensor, bg: Optional[Tensor] = None, eps: float = EPS) -> Tensor:
    """Soft aggregation on odds (A-GAME, as TTVOS): ``[K, H, W]`` per-object fg (and bg) -> ``[K + 1, H, W]``.

    Background = min over objects of their bg probability; each slot's odds ``p / (1 - p)`` (clamped to
    ``[eps, 1 - eps]``) are normalised to sum 1 -- a plain normalisation, not a softmax. ``bg`` defaults to
    ``1 - fg``.
    """
    bg = 1 - fg if bg is None else bg
    back = bg.min(dim=0, keepdim=True).values
    odds = torch.cat([back.clamp(eps, 1 - eps) / (1 - back).clamp(eps, 1 - eps),
                      fg.clamp(eps, 1 - eps) / bg.clamp(eps, 1 - eps)], dim=0)
    return odds / odds.sum(dim=0, keepdim=True)


@torch.no_grad()
def segment_video(
    model: TTVOS,
    frames: Tensor,
    annotations: Mapping[int, Tensor],
    late_objects: str = "own_frame",
    record: Optional[Dict[str, List[Any]]] = None,
) -> Tensor:
    """Segment ``frames`` ``[N, 3, H, W]`` (RGB in [0, 1]) from ``annotations`` ``{frame: [H, W] label map}``.

    Frame 0 must be annotated. Returns ``[N, H, W]`` int64 labels. ``record``, if given, collects every
    intermediate (keys ``init``, ``steps``, ``merge``, ``updates``, ``backbone_calls``) for inspection.
    """
    if late_objects not in LATE_OBJECTS:
        raise ValueError(f"late_objects must be one of {LATE_OBJECTS}, got {late_objects!r}")
    if 0 not in annotations:
        raise ValueError("frame 0 must carry an annotation")
    model.eval()
    log = record if record is not None else {}
    for key in ("init", "steps", "merge", "updates", "backbone_calls"):
        log.setdefault(key, [])

    def features(i: int) -> Dict[str, Tensor]:
        log["backbone_calls"].append(i)
        x, _ = pad16(model.normalize(frames[i:i + 1]))
        return model.features(x)

    states: Dict[int, TTVOSState] = {}
    outputs: List[Tensor] = []
    for i in range(frames.shape[0]):
        given = annotations.get(i)
        new_ids = [] if given is None else sorted(int(v) for v in torch.unique(given) if v != 0)
        padded = pad16(given[None, None].float())[0] if given is not None else None
        pad = pad16(frames[i:i + 1, :1])[1]
        if i > 0 and given is not None and late_objects == "upstream":
            feats0 = features(0)
            for oid in new_ids:
                mask = two_channel((padded == oid).float())
                states[oid] = model.start(feats0, mask)
                log["init"].append({"object": oid, "frame": i, "image_frame": 0, **vars(states[oid])})
            outputs.append(given.long())
            continue
        feats = features(i)
        fg: Dict[int, Tensor] = {}
        bg: Dict[int, Tensor] = {}
        for oid, state in states.items():
            if oid in new_ids:
                continue
            u16, short = model.short_term(state, feats["s16"])
            out = model.decode(state, feats, u16)
            probs = torch.softmax(out.logits, dim=1)
            log["steps"].append({"frame": i, "object": oid, **vars(state), "short_term": short, "u16": u16,
                                 **out._asdict(), "probs": probs})
            state.update_w = out.update_w
            bg[oid], fg[oid] = probs[:, :1], probs[:, 1:]
        for oid in new_ids:
            mask = (padded == oid).float()
            for old in fg:  # a new object covers older ones
                fg[old] = fg[old] * (1 - mask)
                bg[old] = 1 - fg[old]
            states[oid] = model.start(feats, two_channel(mask))
            log["init"].append({"object": oid, "frame": i, "image_frame": i, **vars(states[oid])})
        if not fg:
            outputs.append(given.long())
            continue
        for oid in new_ids:
            fg[oid] = (padded == oid).float()
            bg[oid] = 1 - fg[oid]
        ids = sorted(fg)
        merged = aggregate(torch.cat([fg[o][0] for o in ids]), torch.cat([bg[o][0] for o in ids]))
        labels = torch.tensor([0] + ids)[merged.argmax(dim=0)]
        log["merge"].append({"frame": i, "object_ids": ids, "merged": merged, "labels": labels})
        for k, oid in enumerate(ids):
            if oid in new_ids:
                continue
            state = states[oid]
            fresh = model.update(state, feats, two_channel(merged[k + 1][None, None]))
            log["updates"].append({"frame": i, "object": oid, "template_fresh": fresh, "history": state.history,
                                   "template": state.template})
        outputs.append(unpad(labels, pad))
    return torch.stack(outputs)
