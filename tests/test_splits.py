"""The committed DAVIS-2016 splits: the five validation folds partition the 30 training sequences, each fold's
training list is exactly the other 24, and the old development split is disjoint from its training list."""
from __future__ import annotations

from pathlib import Path

SPLITS = Path(__file__).resolve().parents[1] / "configs" / "splits"


def _names(name: str) -> set[str]:
    return set((SPLITS / name).read_text().split())


def test_folds_partition_the_training_sequences():
    folds = [_names(f"davis16_fold{i}.txt") for i in range(5)]
    every = set().union(*folds)
    assert len(every) == 30 and all(len(f) == 6 for f in folds)  # disjoint: 5 x 6 distinct names
    assert every == _names("davis16_dev.txt") | _names("davis16_train_minus_dev.txt")
    for i, fold in enumerate(folds):
        assert _names(f"davis16_fold{i}_train.txt") == every - fold
    assert not _names("davis16_dev.txt") & _names("davis16_train_minus_dev.txt")
