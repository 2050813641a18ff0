"""The k-fold validation protocol over the 30 DAVIS-2016 training sequences, from ground-truth statistics only.

A single hand-picked development split can be much easier than unseen video (the old one: larger, slower objects
than the rest). Here every sequence is held out exactly once: the sequences are ranked by how fast their object
changes (mean IoU of consecutive ground-truth masks) and dealt to the folds in a snake order, so each fold holds
fast and slow, small and large objects alike. The folds depend on the ground truth alone, never on a model, and
were written before any tuning on them. The hard split (``davis16_hard.txt``, issue 11's screening protocol:
one training run per setting instead of five) is, by the same statistic, the six fastest-changing sequences
outside the old development split::

    python tools/davis16_folds.py --davis ../shared/data/davis2016-train --write configs/splits

prints each sequence's statistics, each fold's means, and how the old development split and the hard split compare.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from reusegate.data import DavisReader
from reusegate.evaluation import consecutive_ious


def sequence_stats(root: Path) -> dict[str, tuple[float, float]]:
    """Per sequence: (mean consecutive-frame IoU of the object, mean object area as a fraction of the frame)."""
    reader = DavisReader(root, year=2016)
    stats = {}
    for name in reader.sequences:
        seq = reader.sequence(name)
        ious = np.concatenate(list(consecutive_ious(seq).values()))
        area = np.mean([np.count_nonzero(seq.load_mask(i)) / seq.load_mask(i).size for i in range(0, len(seq), 5)])
        stats[name] = (float(np.mean(ious)), float(area))
    return stats


def folds(stats: dict[str, tuple[float, float]], k: int = 5) -> list[list[str]]:
    """Sequences ranked by mean consecutive IoU, dealt 0, 1, ..., k-1, k-1, ..., 0, 0, 1, ... (snake order)."""
    ranked = sorted(stats, key=lambda n: (stats[n][0], n))
    out: list[list[str]] = [[] for _ in range(k)]
    for i, name in enumerate(ranked):
        lap, pos = divmod(i, k)
        out[pos if lap % 2 == 0 else k - 1 - pos].append(name)
    return [sorted(f) for f in out]


def hard_split(stats: dict[str, tuple[float, float]], exclude: list[str], n: int = 6) -> list[str]:
    """The ``n`` sequences outside ``exclude`` whose object changes most between frames (lowest mean IoU)."""
    return sorted((name for name in stats if name not in exclude), key=lambda name: (stats[name][0], name))[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--davis", type=Path, default=Path("../shared/data/davis2016-train"))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--write", type=Path, default=None,
                        help="write davis16_fold<i>.txt (held out) and davis16_fold<i>_train.txt into this folder")
    parser.add_argument("--old-dev", type=Path, default=Path("configs/splits/davis16_dev.txt"))
    args = parser.parse_args()
    stats = sequence_stats(args.davis)
    for name, (iou, area) in sorted(stats.items(), key=lambda kv: kv[1][0]):
        print(f"{name:<20} consecutive IoU {iou:.3f}  object area {100 * area:5.1f} %")
    print()
    for i, names in enumerate(folds(stats, args.folds)):
        iou, area = np.mean([stats[n] for n in names], axis=0)
        print(f"fold {i}: IoU {iou:.3f}, area {100 * area:4.1f} %: {' '.join(names)}")
        if args.write is not None:  # the held-out fold and its training set, the other sequences
            (args.write / f"davis16_fold{i}.txt").write_text("\n".join(names) + "\n")
            rest = sorted(n for n in stats if n not in names)
            (args.write / f"davis16_fold{i}_train.txt").write_text("\n".join(rest) + "\n")
    dev = args.old_dev.read_text().split() if args.old_dev.is_file() else []
    hard = hard_split(stats, dev)
    groups = [("hard split", hard), ("all 30", list(stats))]
    if dev:
        groups = [("old development split", dev), ("the other 24", [n for n in stats if n not in dev])] + groups
    for label, names in groups:
        iou, area = np.mean([stats[n] for n in names], axis=0)
        print(f"{label}: IoU {iou:.3f}, area {100 * area:4.1f} %")
    print(f"hard split: {' '.join(hard)}")
    if args.write is not None:
        header = ("# Hard development split (issue 11), fixed before any tuning by tools/davis16_folds.py from the\n"
                  "# ground truth alone: the six sequences outside davis16_dev.txt whose object changes most between\n"
                  "# frames (lowest mean IoU of consecutive masks): fast motion, deformation, small and thin objects.\n")
        (args.write / "davis16_hard.txt").write_text(header + "\n".join(hard) + "\n")
        rest = sorted(n for n in stats if n not in hard)
        (args.write / "davis16_hard_train.txt").write_text(
            "# The 24 DAVIS-2016 train sequences outside davis16_hard.txt (its protocol's training set).\n"
            + "\n".join(rest) + "\n")


if __name__ == "__main__":
    main()
