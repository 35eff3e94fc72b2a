"""An injected clock for tests: time stands still until a sleep (or ``advance``) moves it, instantly."""

from __future__ import annotations


class FakeTime:
    """``clock`` (or the instance itself) reads the time; ``sleep`` records the wait and moves the clock."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds
