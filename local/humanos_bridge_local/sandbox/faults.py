"""Fault injection for the sandbox: what can go wrong, and which calls it happens to.

A :class:`Fault` says *what* happens (a status answer, a delay, a dropped connection); a rule made by
:meth:`FaultPlan.add` says *to which calls* (method, path prefix, the next N calls or each call with a
probability). Rules are tried in the order they were injected and the first one that fires wins.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

#: The fault kinds, as recorded in ``RecordedCall.fault``.
STATUS = "status"
LATENCY = "latency"
DROP = "drop"
DROP_AFTER_PROCESSING = "drop_after_processing"
HANG = "hang"


@dataclass(frozen=True)
class Fault:
    """One thing that can go wrong with a call. Build it with the classmethods, not the constructor."""

    kind: str
    #: HTTP status answered by a ``status`` fault.
    code: int | None = None
    #: ``Retry-After`` header value sent with a ``status`` fault, verbatim.
    retry_after: str | None = None
    #: Delay of a ``latency`` or ``hang`` fault.
    seconds: float = 0.0

    @classmethod
    def status(cls, code: int, retry_after: str | None = None) -> Fault:
        """Answer ``code`` in the NestJS error shape without processing (nothing is stored)."""
        if not 400 <= code <= 599:
            raise ValueError(f"status fault code must be an HTTP error status (400-599), got {code}")
        return cls(STATUS, code=code, retry_after=retry_after)

    @classmethod
    def latency(cls, seconds: float) -> Fault:
        """Wait ``seconds``, then handle the call normally."""
        return cls(LATENCY, seconds=_non_negative(seconds))

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without any answer, before processing (nothing is stored)."""
        return cls(DROP)

    @classmethod
    def drop_after_processing(cls) -> Fault:
        """Process (and store) the call normally, then close the connection without answering."""
        return cls(DROP_AFTER_PROCESSING)

    @classmethod
    def hang(cls, seconds: float) -> Fault:
        """Sleep ``seconds`` before handling normally: long enough to trip a client's read timeout."""
        return cls(HANG, seconds=_non_negative(seconds))


def _non_negative(seconds: float) -> float:
    if seconds < 0:
        raise ValueError(f"fault delay must be zero or more seconds, got {seconds}")
    return float(seconds)


@dataclass
class _Rule:
    fault: Fault
    remaining: int | None
    probability: float | None
    method: str | None
    path_prefix: str
    body_contains: bytes | None = None

    def matches(self, method: str, path: str, body: bytes) -> bool:
        return (
            (self.method is None or self.method == method)
            and path.startswith(self.path_prefix)
            and (self.body_contains is None or self.body_contains in body)
        )


class FaultPlan:
    """The injected rules, shared by every handler thread."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()

    def add(
        self,
        fault: Fault,
        *,
        times: int | None = None,
        probability: float | None = None,
        method: str | None = "POST",
        path_prefix: str = "/request",
        body_contains: bytes | None = None,
    ) -> None:
        """Apply ``fault`` to matching calls: the next ``times`` of them, each with ``probability``, or all.

        ``body_contains`` narrows the rule to calls whose body holds those bytes (one event of many)."""
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        if probability is not None and not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be between 0 and 1, got {probability}")
        rule = _Rule(fault, times, probability, method.upper() if method else None, path_prefix, body_contains)
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def pick(self, method: str, path: str, body: bytes = b"") -> Fault | None:
        """The fault for this call, or None; consumes one use of a ``times`` rule."""
        with self._lock:
            for rule in self._rules:
                if not rule.matches(method, path, body):
                    continue
                if rule.probability is not None and self._rng.random() >= rule.probability:
                    continue
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining == 0:
                        self._rules.remove(rule)
                return rule.fault
        return None
