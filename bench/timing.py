"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_per_call(func: Callable[[], Any], calls: int, rounds: int = 5) -> float:
    """Best of ``rounds`` averages, in seconds per call (the minimum is the least noisy estimate)."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            func()
        best = min(best, (time.perf_counter() - started) / calls)
    return best
