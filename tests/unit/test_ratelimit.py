"""The per-container token bucket keeps the whole bridge under Humanos's org-wide limit."""

from __future__ import annotations

import pytest

from humanos_bridge.core.errors import ConfigError
from humanos_bridge.core.ratelimit import RateLimitedLocally, TokenBucket
from tests.support.fake_time import FakeTime


@pytest.mark.parametrize(("per_minute", "containers"), [(60, 1), (60, 2), (60, 5), (600, 3), (10, 4)])
def test_containers_together_never_exceed_the_limit_in_any_minute(per_minute: int, containers: int) -> None:
    """Every container starts with a full bucket and sends as fast as it may for ten minutes:
    no 60-second window ever holds more than the organisation's limit."""
    sent: list[float] = []
    for _ in range(containers):
        time = FakeTime(0.0)
        bucket = TokenBucket.for_org_limit(per_minute, containers, clock=time.clock, sleep=time.sleep)
        while time.now < 600:
            bucket.acquire()
            sent.append(time.now)
    sent.sort()
    busiest = max(sum(1 for t in sent if start <= t < start + 60) for start in sent)
    assert busiest <= per_minute


def test_a_wait_beyond_max_wait_takes_no_token() -> None:
    time = FakeTime(0.0)
    bucket = TokenBucket(1.0, clock=time.clock, sleep=time.sleep)
    bucket.acquire()
    with pytest.raises(RateLimitedLocally) as caught:
        bucket.acquire(max_wait=0.5)
    assert caught.value.retry_after == pytest.approx(1.0)
    assert bucket.acquire(max_wait=1.0) == pytest.approx(1.0)  # the refused call did not take the token


@pytest.mark.parametrize(("per_minute", "containers"), [(0, 2), (60, 0)])
def test_a_non_positive_limit_is_a_config_error(per_minute: int, containers: int) -> None:
    with pytest.raises(
        ConfigError, match="RATE_LIMIT_PER_MINUTE and DISPATCHER_MAX_CONCURRENCY must be greater than 0"
    ):
        TokenBucket.for_org_limit(per_minute, containers)
