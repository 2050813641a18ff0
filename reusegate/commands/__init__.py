"""Sub-commands of the ``reusegate`` CLI, one module each (see :mod:`reusegate.cli`)."""
from __future__ import annotations

import argparse
from pathlib import Path


def add_model_and_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Options ``run`` and ``bench`` share: which DAVIS sequences, the thread count and the model."""
    parser.add_argument("--sequences", type=Path, default=None,
                        help="with --davis: text file with one sequence name a line (default: every sequence)")
    parser.add_argument("--resolution", default="480p", help="with --davis: the resolution folder (default: 480p)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice, one per core)")
    parser.add_argument("--model", type=Path, default=None,
                        help="exported model NAME.pth (NAME.json beside it); default: the embedded default model")
    parser.add_argument("--preset", default=None,
                        help="an inference preset of the model's .json (the default model: 'accurate', its target "
                             "models fitted with upstream's full iteration counts); default: as trained")
