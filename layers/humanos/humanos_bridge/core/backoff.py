"""Retry policy for Humanos calls: how many attempts, how long to wait, when to give up.

Shaped like urllib3's ``Retry``: keyword arguments with documented ``DEFAULT_*`` constants, no
mutation (``new()`` returns a changed copy), and a pure ``backoff_for`` kept apart from sleeping,
so tests and the SQS dispatcher can compute waits without waiting.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from humanos_bridge.core.errors import ConfigError

if TYPE_CHECKING:
    from humanos_bridge.settings import Settings

#: Attempts per logical call, the first included.
DEFAULT_MAX_ATTEMPTS = 3
#: Upper bound of the first wait, in seconds; it doubles with every attempt.
DEFAULT_BASE_DELAY = 0.5
#: No single wait is drawn above this, in seconds (Retry-After may still ask for more).
DEFAULT_MAX_DELAY = 20.0
#: Total seconds one logical call may take, attempts and waits included.
DEFAULT_DEADLINE = 20.0

# 2**64 times any sane base is far above any cap; the clamp only keeps float() from overflowing
# when the dispatcher passes a large SQS receive count.
_MAX_EXPONENT = 64


def full_jitter(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Return a wait drawn uniformly from ``[0, min(cap, base * 2 ** (attempt - 1))]``.

    "Full jitter" (AWS Architecture Blog, *Exponential Backoff And Jitter*): spreading waits over
    the whole interval keeps many clients that failed together from retrying together.

    Parameters
    ----------
    attempt
        1 for the wait after the first failure (or the first SQS receive), 2 after the second, ...
    base, cap
        Seconds: the first interval's upper bound, and the largest upper bound.
    rng
        Source of randomness; the ``random`` module's shared generator when None.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1 (got {attempt})")
    upper = min(cap, base * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
    return rng.uniform(0.0, upper) if rng is not None else random.uniform(0.0, upper)


def equal_jitter(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Return a wait drawn uniformly from the upper half of ``full_jitter``'s interval.

    Still spread (clients that failed together do not retry together), but never shorter than half
    the interval: so many failed attempts take at least a known time (the dispatcher's promise that
    a Humanos outage of a day parks nothing rests on it).
    """
    if attempt < 1:
        raise ValueError(f"attempt counts from 1 (got {attempt})")
    upper = min(cap, base * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
    return rng.uniform(upper / 2, upper) if rng is not None else random.uniform(upper / 2, upper)


@dataclass(frozen=True)
class RetryPolicy:
    """How a Humanos call is retried. Immutable: use ``new(**changes)`` for a variant.

    >>> RetryPolicy()
    RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=20.0, deadline=20.0)
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    base_delay: float = DEFAULT_BASE_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    deadline: float = DEFAULT_DEADLINE

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"RetryPolicy.max_attempts must be at least 1 (got {self.max_attempts})")
        for name in ("base_delay", "max_delay", "deadline"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"RetryPolicy.{name} must be greater than 0 seconds (got {getattr(self, name)})")
        if self.max_delay < self.base_delay:
            raise ConfigError(
                f"RetryPolicy.max_delay ({self.max_delay}) must not be below base_delay ({self.base_delay})"
            )
        # Normalise like urllib3's Retry does, so reprs and comparisons do not depend on 20 vs 20.0.
        for name in ("base_delay", "max_delay", "deadline"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy the environment configures (``HUMANOS_MAX_ATTEMPTS``, ``HUMANOS_CALL_DEADLINE_SECONDS``)."""
        return cls(max_attempts=settings.max_attempts, deadline=settings.call_deadline_seconds)

    def new(self, **changes: Any) -> RetryPolicy:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    def backoff_for(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based). Pure: never sleeps.

        Exponential with full jitter, capped at ``max_delay``; when Humanos sent ``Retry-After``,
        at least that long, because retrying sooner only earns another 429.
        """
        delay = full_jitter(attempt, self.base_delay, self.max_delay, rng)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay
