"""The synchronous route keeps to its share of Humanos's rate limit, across every ingest container.

One token bucket in the idempotency table (``shared_ratelimit.SharedTokenBucket``) on moto: its clock
and sleep are injected, so no test waits on the wall clock.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from humanos_bridge.core.ratelimit import RateLimitedLocally
from humanos_bridge.ingest.shared_ratelimit import SharedTokenBucket
from humanos_bridge.settings import Settings
from tests.support.apigw import apigw_event
from tests.support.bridge import load_function
from tests.support.fake_time import FakeTime
from tests.support.ingest_env import IngestEnv, create_ingest

app = load_function("ingest")
SYNC = "post-request-shop-standard-webhooks"


def container(moto: Any, table: str, time: FakeTime, per_minute: int = 10) -> SharedTokenBucket:
    """One ingest container's view of the bucket: its own DynamoDB client, the shared table and clock."""
    return SharedTokenBucket(moto.client("dynamodb"), table, per_minute, clock=time.clock, sleep=time.sleep)


def test_one_call_at_once_then_the_share_refills(moto: Any, table: str) -> None:
    """A share of 10 a minute: the first call goes at once, the next after 60 / 9 s (capacity 1, refill 9)."""
    time = FakeTime(1_767_225_600.0)
    bucket = container(moto, table, time)

    assert bucket.acquire() == 0.0
    assert bucket.acquire() == pytest.approx(60 / 9, abs=0.01)
    assert time.slept == [pytest.approx(60 / 9, abs=0.01)]


def test_containers_share_one_bucket(moto: Any, table: str) -> None:
    """What one container spent, another cannot: the second container is told to wait, not given a token."""
    time = FakeTime(1_767_225_600.0)
    first, second = container(moto, table, time), container(moto, table, time)

    first.acquire()
    with pytest.raises(RateLimitedLocally) as caught:
        second.acquire(max_wait=1.0)

    assert caught.value.retry_after == pytest.approx(60 / 9, abs=0.01)
    assert "SyncRateLimitPerMinute" in str(caught.value)
    time.now += 60 / 9
    assert second.acquire(max_wait=1.0) == 0.0


def test_racing_containers_never_spend_one_token_twice(moto: Any, table: str) -> None:
    """Eight containers ask at the same instant for the one token a full bucket holds: exactly one gets it."""
    time = FakeTime(1_767_225_600.0)
    gate = threading.Barrier(8)
    results: list[bool] = []

    def ask() -> None:
        bucket = container(moto, table, time)
        gate.wait()
        try:
            bucket.acquire(max_wait=0.0)
            results.append(True)
        except RateLimitedLocally:
            results.append(False)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [False] * 7 + [True]


def test_the_dispatchers_get_the_rest_of_the_limit() -> None:
    """60 a minute, 10 for the synchronous route: the two dispatcher containers share 50."""
    settings = Settings(rate_limit_per_minute=60, sync_rate_limit_per_minute=10, max_concurrency=2)
    assert (settings.dispatcher_rate_per_minute, settings.per_container_rate_per_minute) == (50, 25.0)


def test_a_share_as_large_as_the_limit_is_refused_at_cold_start() -> None:
    with pytest.raises(Exception, match=r"SYNC_RATE_LIMIT_PER_MINUTE \(60\) must be below RATE_LIMIT_PER_MINUTE"):
        Settings(rate_limit_per_minute=60, sync_rate_limit_per_minute=60)


@pytest.fixture
def ingest(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[IngestEnv]:
    monkeypatch.setenv("HUMANOS_MAX_ATTEMPTS", "1")
    env = create_ingest(moto, sandbox, monkeypatch, tmp_path)
    monkeypatch.setenv("SYNC_RATE_LIMIT_PER_MINUTE", "2")  # one now, the next in a minute
    app.service.cache_clear()
    yield env
    app.service.cache_clear()


def order(order_id: str) -> bytes:
    example = Path(__file__).parents[2] / "events" / "apigw" / f"{SYNC}.json"
    body = json.loads(json.loads(example.read_text())["body"])
    body["data"]["orderId"] = order_id
    return json.dumps(body).encode()


def test_the_synchronous_route_answers_503_beyond_its_share(ingest: IngestEnv) -> None:
    """Two orders at once with a share of 2 a minute: the first is created, the second is told to come back in
    about a minute, and Humanos never sees it."""
    first = ingest.invoke(apigw_event(SYNC, body=order("ord_rate_1")))
    second = ingest.invoke(apigw_event(SYNC, body=order("ord_rate_2")))

    assert first.status == 201
    assert second.status == 503
    assert second.body["error"]["code"] == "rate_limited_locally"
    assert 55 <= int(second.headers["Retry-After"]) <= 61
    assert len(ingest.bridge.creations()) == 1
