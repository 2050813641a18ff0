"""Map a function over sequences in worker processes, with a progress bar that is closed even on error.

Workers are *spawned*, not forked: a forked child inherits OpenCV's (and torch's) thread pools in a broken
state whenever the parent has already run a threaded cv2 call, and then waits forever on a lock. Spawning
costs one interpreter start per worker (about a second), paid once per evaluation.
"""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable


def _single_thread_worker() -> None:
    """One OpenCV thread per worker: the processes already use every core, more threads only contend."""
    import cv2

    cv2.setNumThreads(1)


def parallel_map(fn: Callable, items: list, processes: int | None, desc: str, progress: bool) -> list:
    """``[fn(x) for x in items]`` in order; ``processes`` defaults to one per core (1 = in this process)."""
    n = max(1, min(processes or os.cpu_count() or 1, len(items)))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc=desc, unit="seq")
    pool = None
    try:
        if n == 1:
            it = map(fn, items)
        else:
            pool = multiprocessing.get_context("spawn").Pool(n, initializer=_single_thread_worker)
            it = pool.imap(fn, items)
        out = []
        for r in it:
            out.append(r)
            if bar is not None:
                bar.update()
        return out
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        if bar is not None:
            bar.close()
