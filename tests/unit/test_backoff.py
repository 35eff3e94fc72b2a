"""The retry policy: exponential waits with full jitter, Retry-After as a floor, pure and immutable."""

from __future__ import annotations

import dataclasses
import random

import pytest

from humanos_bridge.core import backoff
from humanos_bridge.core.backoff import RetryPolicy, full_jitter
from humanos_bridge.core.classify import parse_retry_after
from humanos_bridge.core.errors import ConfigError
from humanos_bridge.dispatch.service import MAX_VISIBILITY_SECONDS, Backoff
from humanos_bridge.settings import Settings


class _Extremes(random.Random):
    """A random source that always draws one end of the interval: shows the interval's bounds."""

    def __init__(self, top: bool) -> None:
        super().__init__(0)
        self.top = top

    def uniform(self, a: float, b: float) -> float:
        return b if self.top else a


def test_defaults_match_the_documented_constants() -> None:
    """RetryPolicy() uses the DEFAULT_* constants and says so in its repr."""
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.base_delay, policy.max_delay, policy.deadline) == (
        backoff.DEFAULT_MAX_ATTEMPTS,
        backoff.DEFAULT_BASE_DELAY,
        backoff.DEFAULT_MAX_DELAY,
        backoff.DEFAULT_DEADLINE,
    )
    assert repr(policy) == "RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=20.0, deadline=20.0)"


def test_policy_is_immutable_and_new_returns_a_changed_copy() -> None:
    """A policy cannot be mutated; new() gives a validated variant and leaves the original alone."""
    policy = RetryPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_attempts = 5  # type: ignore[misc]
    changed = policy.new(max_attempts=5, deadline=30)
    assert changed == RetryPolicy(max_attempts=5, deadline=30.0)
    assert policy.max_attempts == 3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_attempts": 0}, "RetryPolicy.max_attempts must be at least 1 (got 0)"),
        ({"base_delay": 0}, "RetryPolicy.base_delay must be greater than 0 seconds (got 0)"),
        ({"max_delay": -1}, "RetryPolicy.max_delay must be greater than 0 seconds (got -1)"),
        ({"deadline": 0}, "RetryPolicy.deadline must be greater than 0 seconds (got 0)"),
        ({"base_delay": 5, "max_delay": 1}, "RetryPolicy.max_delay (1) must not be below base_delay (5)"),
    ],
)
def test_invalid_policy_is_refused_with_the_field_named(changes: dict[str, float], message: str) -> None:
    """Each impossible setting raises ConfigError naming the field and the value."""
    with pytest.raises(ConfigError) as caught:
        RetryPolicy(**changes)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_from_settings_takes_attempts_and_deadline() -> None:
    """HUMANOS_MAX_ATTEMPTS and HUMANOS_CALL_DEADLINE_SECONDS become the policy's limits."""
    policy = RetryPolicy.from_settings(Settings(max_attempts=5, call_deadline_seconds=12.5))
    assert policy == RetryPolicy(max_attempts=5, deadline=12.5)


@pytest.mark.parametrize(
    ("attempt", "upper"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (6, 16.0), (7, 20.0), (50, 20.0), (10_000, 20.0)],
)
def test_full_jitter_interval_doubles_up_to_the_cap(attempt: int, upper: float) -> None:
    """The wait is drawn from [0, min(cap, base * 2**(attempt-1))]; huge attempts do not overflow."""
    assert full_jitter(attempt, 0.5, 20.0, _Extremes(top=True)) == upper
    assert full_jitter(attempt, 0.5, 20.0, _Extremes(top=False)) == 0.0


def test_full_jitter_spreads_waits_over_the_whole_interval() -> None:
    """With a real generator, draws cover the interval (not just its top), which is what desynchronises clients."""
    rng = random.Random(7)
    draws = [full_jitter(3, 0.5, 20.0, rng) for _ in range(2000)]
    assert min(draws) >= 0.0
    assert max(draws) <= 2.0
    assert min(draws) < 0.1
    assert max(draws) > 1.9


def test_full_jitter_is_reproducible_with_a_seeded_generator() -> None:
    """The same seed gives the same waits: tests and the dispatcher can pin them."""
    first = [full_jitter(n, 1.0, 60.0, random.Random(42)) for n in range(1, 6)]
    second = [full_jitter(n, 1.0, 60.0, random.Random(42)) for n in range(1, 6)]
    assert first == second


def test_full_jitter_refuses_attempt_zero() -> None:
    """Attempts count from 1; 0 is a programming error, said plainly."""
    with pytest.raises(ValueError, match=r"^attempt counts from 1 \(got 0\)$"):
        full_jitter(0, 0.5, 20.0)


def test_backoff_for_is_full_jitter_with_the_policy_bounds() -> None:
    """backoff_for uses base_delay and max_delay of the policy."""
    policy = RetryPolicy(base_delay=1.0, max_delay=3.0)
    assert policy.backoff_for(1, rng=_Extremes(top=True)) == 1.0
    assert policy.backoff_for(2, rng=_Extremes(top=True)) == 2.0
    assert policy.backoff_for(5, rng=_Extremes(top=True)) == 3.0


@pytest.mark.parametrize(("retry_after", "expected"), [(2.0, 2.0), (0.0, 0.0), (45.0, 45.0)])
def test_retry_after_is_a_floor_for_the_wait(retry_after: float, expected: float) -> None:
    """When Humanos says Retry-After, the wait is at least that, even beyond max_delay."""
    policy = RetryPolicy()
    assert policy.backoff_for(1, retry_after, _Extremes(top=False)) == expected


def test_retry_after_below_the_jittered_wait_does_not_shorten_it() -> None:
    """A small Retry-After does not cut an exponential wait that is already longer."""
    policy = RetryPolicy()
    assert policy.backoff_for(4, 1.0, _Extremes(top=True)) == 4.0


# -- the dispatcher's back-off: how long a failed message stays invisible ------------------------------


@pytest.mark.parametrize("receive_count", [1, 2, 5, 8, 50, 10_000])
def test_a_redelivery_waits_at_least_half_its_interval_and_at_most_the_cap(receive_count: int) -> None:
    """10 s doubling to 15 minutes, each wait in the upper half of its interval: never 0 s, never above 15 min."""
    upper = min(900.0, 10.0 * 2.0 ** min(receive_count - 1, 64))
    low = Backoff().visibility_for(receive_count, None, _Extremes(top=False))
    high = Backoff().visibility_for(receive_count, None, _Extremes(top=True))
    assert (low, high) == (int(upper / 2), int(upper))


@pytest.mark.parametrize("retry_after", [120.0, 899.5, 3_600.0])
def test_retry_after_is_a_floor_for_the_visibility(retry_after: float) -> None:
    """Humanos's Retry-After outweighs a shorter back-off (the mutation that ignored it passed the old suite)."""
    visibility = Backoff().visibility_for(1, retry_after, _Extremes(top=True))
    assert visibility == int(retry_after)


def test_retry_after_as_an_http_date_is_a_floor_too() -> None:
    """An HTTP-date Retry-After, read against one injected clock, becomes the same floor."""
    now = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    seconds = parse_retry_after("Thu, 01 Jan 2026 00:05:00 GMT", now=now)
    assert seconds == 300.0
    assert Backoff().visibility_for(1, seconds, _Extremes(top=True)) == 300


def test_no_visibility_exceeds_sqs_s_twelve_hours() -> None:
    """SQS refuses visibility timeouts above 12 hours: a huge Retry-After or back-off is cut there."""
    assert Backoff().visibility_for(3, 10**9, _Extremes(top=True)) == MAX_VISIBILITY_SECONDS == 43_200
    assert Backoff(base_seconds=10.0, max_seconds=10**9).visibility_for(60, None, _Extremes(top=True)) == 43_200


def test_min_seconds_until_sums_the_lower_halves() -> None:
    """The least time before the n-th receive: the sum of the lower bounds of the n - 1 waits before it."""
    assert Backoff().min_seconds_until(1) == 0
    assert Backoff().min_seconds_until(4) == (10 + 20 + 40) / 2
    assert Backoff().min_seconds_until(200) == 635 + 192 * 450  # 24.2 hours
