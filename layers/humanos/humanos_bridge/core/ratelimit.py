"""A per-container token bucket that keeps the whole bridge under Humanos's rate limit.

Humanos allows ``L`` request creations per minute for the organisation (60 is the only figure
known). The dispatcher runs at most ``N`` containers at once (the event source's maximum
concurrency), each with its own bucket of capacity 1 refilled at ``(L - N) / N`` tokens a minute.
In any 60-second window one container then sends at most ``1 + (L - N) / N = L / N`` calls, and the
``N`` containers together at most ``L``, even when a burst arrives with every bucket full.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from humanos_bridge.core.errors import ConfigError, RetryableError

#: One call may go out at once; a larger burst would break the per-window guarantee above.
CAPACITY = 1.0


class RateLimitedLocally(RetryableError):
    """The container's share of the Humanos rate is used up for longer than the caller can wait."""

    code = "rate_limited_locally"


class CreationLimiter(Protocol):
    """What paces request creations: this container's ``TokenBucket``, or the ingest containers' shared one."""

    def acquire(self, *, max_wait: float | None = None) -> float: ...


class TokenBucket:
    """Thread-safe token bucket. ``acquire`` reserves the next token and sleeps until it is due.

    Reservations (tokens may go negative) keep waiting threads in arrival order without a queue.
    """

    def __init__(
        self,
        rate_per_second: float,
        *,
        capacity: float = CAPACITY,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_second <= 0 or capacity <= 0:
            raise ConfigError("rate limit must be greater than 0; check RATE_LIMIT_PER_MINUTE")
        self.rate_per_second = rate_per_second
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = capacity
        self._updated = clock()

    @classmethod
    def for_org_limit(cls, per_minute: int, max_concurrency: int, **kwargs: object) -> TokenBucket:
        """This container's bucket when ``max_concurrency`` containers share ``per_minute`` calls."""
        if per_minute <= 0 or max_concurrency <= 0:
            raise ConfigError("RATE_LIMIT_PER_MINUTE and DISPATCHER_MAX_CONCURRENCY must be greater than 0")
        # Keep one call per container for the initial full bucket; the rest of the share is refill.
        refill_per_minute = max(per_minute - max_concurrency, 1) / max_concurrency
        return cls(refill_per_minute / 60.0, **kwargs)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"TokenBucket(rate_per_second={self.rate_per_second:.4f}, capacity={self.capacity})"

    def acquire(self, *, max_wait: float | None = None) -> float:
        """Take one token, sleeping until it is due. Returns the seconds waited.

        Raises RateLimitedLocally, without taking a token, when the wait would exceed ``max_wait``.
        """
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate_per_second)
            self._updated = now
            wait = 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate_per_second
            if max_wait is not None and wait > max_wait:
                raise RateLimitedLocally(
                    f"this container's share of the Humanos rate limit is used up for {wait:.1f} s",
                    retry_after=wait,
                )
            self._tokens -= 1
        if wait > 0:
            self._sleep(wait)
        return wait
