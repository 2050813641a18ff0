"""Training hooks: the gate-loss margin schedule and a progress bar.

``GateMarginHook`` gives the model the current epoch before every training epoch, so the gate-probability
loss target ``max(m, IoU)`` uses ``m = m1 * min(1, epoch / ep_T)``. The value derives from ``runner.epoch``
alone (no state of its own), so a resumed run continues the schedule at the right epoch, and the DDP wrapper
is looked through. With an iteration-based loop the epoch is ``iter / iterations per epoch`` (fractional).
"""
from __future__ import annotations

from typing import Any, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import EpochBasedTrainLoop

from reusegate.core import losses
from reusegate.registry import HOOKS

__all__ = ["GateMarginHook", "EpochSeedHook", "ProgressBarHook", "unwrap"]


def unwrap(model: Any) -> Any:
    """The model inside a DDP (or other mmengine) wrapper."""
    return model.module if is_model_wrapper(model) else model


@HOOKS.register_module()
class GateMarginHook(Hook):
    """Feeds the epoch to ``ReuseGateVOS.set_epoch`` (the margin schedule of eq. 4)."""

    priority = "NORMAL"

    def _set(self, runner, epoch: float) -> Optional[float]:
        model = unwrap(runner.model)
        if not hasattr(model, "set_epoch"):
            raise ValueError(f"GateMarginHook needs a model with set_epoch(epoch) (ReuseGateVOS), got "
                             f"{type(model).__name__}; remove the hook from custom_hooks")
        model.set_epoch(epoch)
        config = getattr(model, "loss_config", None)  # None: the host alone, no margin
        return None if config is None else losses.margin(config.m1, epoch, config.ep_t)

    def before_train_epoch(self, runner) -> None:
        margin = self._set(runner, runner.epoch)
        if margin is not None:
            runner.logger.info(f"GateMarginHook: epoch {runner.epoch}, gate-loss margin {margin:.4f}")

    def before_train_iter(self, runner, batch_idx: int, data_batch: Any = None) -> None:
        if not isinstance(runner.train_loop, EpochBasedTrainLoop):
            self._set(runner, runner.iter / max(1, len(runner.train_dataloader)))


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Re-seeds Python's, numpy's and torch's random generators at the start of every training epoch from
    ``(runner.seed, epoch)``.

    Clip sampling and augmentation draw from these global generators; without this, an epoch's draws depend on
    every draw before it, so a run resumed from an epoch checkpoint would see other clips than the
    uninterrupted run. With it, epoch ``e`` draws the same clips either way (``num_workers=0``, or workers that
    are re-created each epoch), and a resumed run ends with the uninterrupted run's weights.
    ``reusegate train`` adds it to every run.
    """

    priority = "HIGHEST"

    def before_train_epoch(self, runner) -> None:
        import random

        import numpy as np
        import torch

        seed = (int(runner.seed) * 1_000_003 + int(runner.epoch)) % 2**32
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """A tqdm bar over the whole run's training iterations (main process only), with the latest loss."""

    priority = "VERY_LOW"

    def __init__(self) -> None:
        self.bar = None

    def before_train(self, runner) -> None:
        if is_main_process():
            from tqdm import tqdm

            self.bar = tqdm(total=runner.max_iters, initial=runner.iter, desc="train", unit="it", dynamic_ncols=True)

    def after_train_iter(self, runner, batch_idx: int, data_batch: Any = None, outputs: Optional[dict] = None) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        if outputs and "loss" in outputs:
            self.bar.set_postfix(epoch=runner.epoch + 1, loss=f"{float(outputs['loss'].detach()):.4f}", refresh=False)

    def after_train(self, runner) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
