"""Old import path of :mod:`reusegate.zoo.catalog` (``default_gate``, ``load_gate``, ...), kept for 0.1 code."""
from reusegate.zoo.catalog import *  # noqa: F401,F403
from reusegate.zoo.catalog import __all__  # noqa: F401
