"""Sub-commands of the ``reusegate`` CLI, one module each (see :mod:`reusegate.cli`)."""
from __future__ import annotations

import argparse
from pathlib import Path


MODEL_HELP = ("an embedded model: 'accurate' (the default: G-FRTM trained at height 360), 'fast' (height 240: about "
              "1.8x the frame rate, less J&F on hard video) or 'ttvos' (G-TTVOS); or an exported NAME.pth "
              "(NAME.json beside it)")


def add_model_and_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Options ``run`` and ``bench`` share: which DAVIS sequences, the thread count, the model and how it reuses."""
    parser.add_argument("--sequences", type=Path, default=None,
                        help="with --davis: text file with one sequence name a line (default: every sequence)")
    parser.add_argument("--resolution", default="480p", help="with --davis: the resolution folder (default: 480p)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice, one per core)")
    parser.add_argument("--model", default=None, help=MODEL_HELP)
    parser.add_argument("--preset", default=None,
                        help="an inference preset of the model's .json (the embedded models: 'full_fit', their target "
                             "models fitted with upstream's full iteration counts); default: as trained")
    parser.add_argument("--reuse-path", default=None,  # checked by GateConfig, which names retired paths
                        help="what a reused frame decodes: 'translate' (the paper) or 'hold' (the cached score and "
                             "refined feature); default: the model's")
