"""Sub-commands of the ``reusegate`` CLI, one module each (see :mod:`reusegate.cli`)."""
