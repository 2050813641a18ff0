"""A CPU-heavy competing load for ``bench --load``: busy processes switched on for the middle third of each video,
so a bench shows how a latency budget holds its target under load and how it recovers once the load stops,
against fixed thresholds measured on the same frames at the same moments."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import List, Optional

__all__ = ["CompetingLoad", "load_phase", "PHASES"]

PHASES = ("before", "load", "after")
"""The thirds of a video: the load runs in the middle one."""


def load_phase(t: int, n: int) -> int:
    """Index into :data:`PHASES` of frame ``t`` of an ``n``-frame video."""
    return 0 if 3 * t < n else 1 if 3 * t < 2 * n else 2


class CompetingLoad:
    """One busy-looping Python process per core (or ``processes``), started by :meth:`set` and stopped by it or
    on leaving the ``with`` block, whatever happens inside it (only the processes it started)."""

    def __init__(self, processes: Optional[int] = None) -> None:
        self.processes = processes or os.cpu_count() or 1
        self._running: List[subprocess.Popen] = []

    def set(self, on: bool) -> None:
        """Start the load (if it is off) or stop it (if it is on)."""
        if on and not self._running:
            self._running = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                             for _ in range(self.processes)]
        elif not on:
            self.stop()

    @property
    def running(self) -> bool:
        """Whether the load is on."""
        return bool(self._running)

    def stop(self) -> None:
        """Kill the processes this load started and wait for them, so none outlives the bench."""
        for process in self._running:
            process.kill()
            process.wait()
        self._running = []

    def __enter__(self) -> "CompetingLoad":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
