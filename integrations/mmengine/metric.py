"""``VOSMetric``: J&F with davis2017-evaluation's protocol, plus the reuse rate, FPS and FLOPs per frame.

Scores the predictions that ``ReuseGateVOS`` puts into the data samples (``pred_labels`` against
``gt_labels``, at the dataset's resolution: keep ``size=None`` in the video dataset for benchmark numbers).
Frame 0 and the last frame are excluded, as in the official semi-supervised evaluation; per-object
statistics and the CSV files come from :mod:`reusegate.evaluation`. With ``out_dir`` the masks are also
written as indexed PNGs in the DAVIS results layout, so ``reusegate eval`` or the official script can score
them again.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from reusegate.data.writer import ResultWriter
from reusegate.evaluation import EvaluationResult, ObjectResult, sequence_jf
from reusegate.registry import METRICS

__all__ = ["VOSMetric"]


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


@METRICS.register_module()
class VOSMetric(BaseMetric):
    """J&F (mean, recall, decay), reuse rate and FLOPs per frame of predicted videos (logged as ``vos/...``).

    Args:
        out_dir: write ``<out_dir>/<sequence>/<frame>.png`` and the two DAVIS CSV files there.
        set_name: suffix of the CSV files (``global_results-<set_name>.csv``).
        collect_device, prefix: as for any ``BaseMetric``.
    """

    default_prefix = "vos"

    def __init__(self, out_dir: Optional[str] = None, set_name: str = "val", collect_device: str = "cpu",
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.out_dir = None if out_dir is None else os.fspath(out_dir)
        self.set_name = set_name

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if "pred_labels" not in sample:
                raise ValueError("VOSMetric needs pred_labels in the data samples; run the model in predict mode")
            pred, gt = _numpy(sample["pred_labels"]), _numpy(sample["gt_labels"])
            if pred.shape != gt.shape:
                raise ValueError(f"prediction {pred.shape} and ground truth {gt.shape} of {sample['sequence']} "
                                 "differ in shape")
            name = sample["sequence"]
            if self.out_dir is not None:
                writer = ResultWriter(self.out_dir)
                for t, frame in enumerate(sample.get("frame_names") or [f"{i:05d}" for i in range(len(pred))]):
                    writer.write(name, frame, pred[t])
            ids = sorted(int(o) for o in (sample.get("start_frames") or {1: 0}))
            objects = [ObjectResult(name, oid, j, f) for oid, (j, f) in sequence_jf(pred, gt, ids).items()]
            flops = sample.get("flops")
            self.results.append(dict(
                objects=objects,
                reuse_rate=float(sample.get("reuse_rate", 0.0)),
                deep_fraction=float(_numpy(sample["deep_computed"]).mean()) if "deep_computed" in sample else 1.0,
                flops_per_frame=None if flops is None else float(_numpy(flops).mean()),
                timed_frames=len(pred) - 1,
                step_seconds=float(sample.get("step_seconds", 0.0)),
            ))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        evaluation = EvaluationResult([o for r in results for o in r["objects"]])
        if self.out_dir is not None:
            evaluation.write_csvs(self.out_dir, self.set_name)
        metrics = {key.replace("-", "_"): value for key, value in evaluation.global_row().items()}
        metrics["reuse_rate"] = float(np.mean([r["reuse_rate"] for r in results]))
        metrics["deep_fraction"] = float(np.mean([r["deep_fraction"] for r in results]))
        flops = [r["flops_per_frame"] for r in results if r["flops_per_frame"] is not None]
        if flops:
            metrics["gflops_per_frame"] = float(np.mean(flops)) / 1e9
        seconds = sum(r.get("step_seconds", 0.0) for r in results)
        if seconds > 0:  # frames after each video's first over the model's step time, summed over processes
            metrics["fps"] = sum(r.get("timed_frames", 0) for r in results) / seconds
        return metrics
