"""HumanosClient against the Humanos sandbox over real HTTP: what is sent, what comes back, what is retried.

The sandbox verifies signatures and API versions the way Humanos does, stores requests and honours
Idempotency-Key, so "exactly one request" below is counted where Humanos would count it. Waits go through
an injected sleep that records them (and advances an injected clock), so no test sleeps for real.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
import urllib3

from humanos_bridge import USER_AGENT
from humanos_bridge.core import client as client_module
from humanos_bridge.core import signing, wire
from humanos_bridge.core.backoff import RetryPolicy
from humanos_bridge.core.client import HumanosClient, HumanosResponse
from humanos_bridge.core.credentials import Credentials, StaticCredentials
from humanos_bridge.core.errors import AmbiguousError, AuthenticationError, MappingError, PermanentError, RetryableError
from humanos_bridge.core.ratelimit import RateLimitedLocally, TokenBucket
from humanos_bridge.settings import Settings
from humanos_bridge_local.sandbox import Fault, Sandbox
from tests.support.fake_time import FakeTime

API_VERSION = "2026-05-17"
CONTACT = "joana.silva@example.com"


def valid_body(**overrides: Any) -> dict[str, Any]:
    """A valid 2026-05-17 POST /request body; one change per test through overrides."""
    body: dict[str, Any] = {
        "contacts": [CONTACT],
        "groupIds": ["grp-consent-v1"],
        "name": "Consentimento de dados",
        "language": "ENG",
        "internalId": "order-1001",
    }
    body.update(overrides)
    return body


class RotatingCredentials:
    """A credentials source whose cache is stale until forced: what Secrets Manager looks like after a rotation."""

    def __init__(self, cached: Credentials, fresh: Credentials) -> None:
        self.cached = cached
        self.fresh = fresh
        self.forced = 0

    def get(self, *, force_refresh: bool = False, stale: Credentials | None = None) -> Credentials:
        if force_refresh:
            self.forced += 1
            self.cached = self.fresh
        return self.cached


@pytest.fixture
def pool() -> Iterator[urllib3.PoolManager]:
    manager = urllib3.PoolManager()
    yield manager
    manager.clear()


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


def make_client(
    sandbox: Sandbox,
    pool: urllib3.PoolManager,
    fake_time: FakeTime,
    *,
    credentials: Any = None,
    policy: RetryPolicy | None = None,
    read_timeout: float = 5.0,
) -> HumanosClient:
    return HumanosClient(
        sandbox.base_url,
        API_VERSION,
        credentials or StaticCredentials(sandbox.api_key, sandbox.signature_secret),
        policy=policy,
        pool=pool,
        read_timeout=read_timeout,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )


@pytest.fixture
def client(sandbox: Sandbox, pool: urllib3.PoolManager, fake_time: FakeTime) -> HumanosClient:
    return make_client(sandbox, pool, fake_time)


def statuses(sandbox: Sandbox) -> list[int]:
    return [call.status for call in sandbox.calls]


# ------------------------------------------------------------------------------------------------ success


def test_create_sends_exactly_the_signed_bytes_with_every_header(client: HumanosClient, sandbox: Sandbox) -> None:
    """The body is serialised once; those bytes are signed and sent, with API-Version, Idempotency-Key, User-Agent."""
    body = valid_body(name="Consentimento — São João")  # non-ASCII stays raw UTF-8, as JSON.stringify writes it

    response = client.create_request(body, "evt-0001")

    assert response.status == 201
    assert response.attempts == 1
    assert response.request_id == sandbox.created[0]["id"]
    (call,) = sandbox.calls
    assert (call.method, call.path, call.query) == ("POST", "/request", {})
    assert call.body == wire.dump_bytes(body)
    assert "São João".encode() in call.body
    signing.verify([sandbox.signature_secret], call.headers["x-timestamp"], call.headers["x-signature"], call.body)
    assert call.headers["authorization"] == f"Bearer {sandbox.api_key}"
    assert call.headers["api-version"] == API_VERSION
    assert call.headers["idempotency-key"] == "evt-0001"
    assert call.headers["user-agent"] == USER_AGENT
    assert call.headers["content-type"] == "application/json"


def test_create_without_key_sends_no_idempotency_header(client: HumanosClient, sandbox: Sandbox) -> None:
    """No key given, no Idempotency-Key header (never an empty one)."""
    client.create_request(valid_body(), None)
    assert "idempotency-key" not in sandbox.calls[0].headers


def test_bodyless_calls_send_no_body_and_sign_the_timestamp_alone(client: HumanosClient, sandbox: Sandbox) -> None:
    """GET and PATCH without a body send zero bytes (not '{}'), no Content-Type, and Humanos accepts the signature."""
    created = client.create_request(valid_body(), "evt-0002")
    request_id = created.request_id
    assert request_id is not None

    fetched = client.call("GET", f"/request/{request_id}")
    resent = client.call("PATCH", f"/request/resend/{request_id}", query={"contact": CONTACT})

    assert (fetched.status, fetched.data["id"]) == (200, request_id)
    assert (resent.status, resent.data) == (201, {"success": True})
    for call in sandbox.calls[1:]:
        assert call.body == b""
        assert "content-type" not in call.headers
        signing.verify([sandbox.signature_secret], call.headers["x-timestamp"], call.headers["x-signature"], None)
    assert sandbox.calls[2].query == {"contact": CONTACT}


def test_find_requests_returns_the_requests_with_that_internal_id(client: HumanosClient, sandbox: Sandbox) -> None:
    """GET /request?internalId= finds what was created with our own reference, and only that."""
    first = client.create_request(valid_body(internalId="order-7"), "evt-7")
    client.create_request(valid_body(internalId="order-8"), "evt-8")

    found = client.find_requests("order-7", page_size=5)

    assert [item["id"] for item in found] == [first.request_id]
    assert sandbox.calls[-1].query == {"internalId": "order-7", "pageIndex": "0", "pageSize": "5"}


def test_find_requests_reads_every_page(client: HumanosClient, sandbox: Sandbox) -> None:
    """Twelve requests share an internalId; with pages of five, all twelve come back, from three calls."""
    created = [client.create_request(valid_body(internalId="order-9"), f"evt-9-{n}").request_id for n in range(12)]

    found = client.find_requests("order-9", page_size=5)

    assert sorted(item["id"] for item in found) == sorted(created)
    pages = [c.query["pageIndex"] for c in sandbox.calls if c.method == "GET"]
    assert pages == ["0", "1", "2"]


def test_find_requests_refuses_an_internal_id_too_many_requests_share(
    client: HumanosClient, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the page limit the look-up stops with a mapping error that says how to fix the rule."""
    monkeypatch.setattr(client_module, "MAX_LOOKUP_PAGES", 2)
    for n in range(11):
        client.create_request(valid_body(internalId="order-10"), f"evt-10-{n}")

    with pytest.raises(MappingError, match=r"more than 10 Humanos requests share internalId 'order-10'.*unique"):
        client.find_requests("order-10", page_size=5)


def test_find_requests_refuses_an_internal_id_with_a_lone_surrogate_as_a_mapping_error(
    client: HumanosClient, sandbox: Sandbox
) -> None:
    """A query string is UTF-8, which a lone surrogate does not have: no call, a permanent error that says why
    (never a UnicodeEncodeError, which the dispatcher could only retry as a bug)."""
    with pytest.raises(MappingError) as caught:
        client.find_requests("hr-\ud800-poison")

    assert caught.value.message == (
        "internalId 'hr-\\ud800-poison' holds a lone surrogate, which has no UTF-8 form, so Humanos cannot be asked "
        "for the requests that carry it; give the rule an internalId of valid text (the default, the idempotency "
        "key, always is)"
    )
    assert not caught.value.retryable
    assert sandbox.calls == []


def test_client_without_pool_uses_the_shared_default_pool(sandbox: Sandbox, fake_time: FakeTime) -> None:
    """With no pool injected, every client of the container shares one PoolManager; reset forgets it."""
    client_module.reset_default_pool()
    try:
        first = HumanosClient(
            sandbox.base_url, API_VERSION, StaticCredentials(sandbox.api_key, sandbox.signature_secret)
        )
        second = HumanosClient(sandbox.base_url, API_VERSION, StaticCredentials("k", "s"))
        assert first.pool is second.pool is client_module.default_pool()
        assert first.create_request(valid_body(), "evt-pool").status == 201
        shared = first.pool
        client_module.reset_default_pool()
        assert first.pool is not shared
    finally:
        client_module.reset_default_pool()


def test_from_settings_takes_url_timeouts_attempts_and_deadline(sandbox: Sandbox, pool: urllib3.PoolManager) -> None:
    """Settings configure the client; the API version is passed in (it may come from the mapping file)."""
    settings = Settings(
        humanos_base_url=sandbox.base_url + "/", read_timeout=4.0, max_attempts=5, call_deadline_seconds=9
    )
    built = HumanosClient.from_settings(
        settings, StaticCredentials(sandbox.api_key, sandbox.signature_secret), API_VERSION, pool
    )
    assert (built.base_url, built.read_timeout, built.policy) == (
        sandbox.base_url,
        4.0,
        RetryPolicy(max_attempts=5, deadline=9),
    )
    assert built.create_request(valid_body(), "evt-settings").status == 201


# ----------------------------------------------------------------------------------------------- permanent


def test_invalid_body_is_permanent_with_humanos_list_message(client: HumanosClient, sandbox: Sandbox) -> None:
    """400 with a list of validation messages: PermanentError carrying the list, no retry."""
    body = valid_body(contacts=[])
    del body["groupIds"]

    with pytest.raises(PermanentError) as caught:
        client.create_request(body, "evt-400")

    assert caught.value.status == 400
    assert caught.value.humanos_message == [
        "contacts must contain at least 1 elements",
        "at least one of groupIds, resourcesIds or credentials must be provided",
    ]
    assert str(caught.value) == (
        "Humanos answered 400 Bad Request: contacts must contain at least 1 elements; "
        "at least one of groupIds, resourcesIds or credentials must be provided; "
        "fix the mapping or the event that produced this body"
    )
    assert statuses(sandbox) == [400]


def test_payment_required_is_permanent(client: HumanosClient, sandbox: Sandbox, fake_time: FakeTime) -> None:
    """402 needs a human (billing): no retry, even with an Idempotency-Key."""
    sandbox.inject(Fault.status(402))
    with pytest.raises(PermanentError) as caught:
        client.create_request(valid_body(), "evt-402")
    assert str(caught.value) == (
        "Humanos answered 402 Payment Required: Payment Required; check the Humanos organisation's plan and billing"
    )
    assert statuses(sandbox) == [402]
    assert fake_time.slept == []


def test_unknown_request_is_permanent_not_found(client: HumanosClient, sandbox: Sandbox) -> None:
    """404 from a real route: PermanentError with Humanos's message; a GET is not retried on 4xx either."""
    with pytest.raises(PermanentError) as caught:
        client.call("GET", "/request/000000000000000000000000")
    assert caught.value.status == 404
    assert caught.value.humanos_message == "Request not found"
    assert statuses(sandbox) == [404]


def test_reused_key_with_another_body_is_a_permanent_conflict(client: HumanosClient, sandbox: Sandbox) -> None:
    """409: the same Idempotency-Key with a different body is refused and not retried."""
    client.create_request(valid_body(), "evt-409")
    with pytest.raises(PermanentError) as caught:
        client.create_request(valid_body(name="Another"), "evt-409")
    assert caught.value.status == 409
    assert caught.value.humanos_message == "Idempotency-Key already used with a different body"
    assert statuses(sandbox) == [201, 409]
    assert len(sandbox.created) == 1


def test_wrong_api_key_is_authentication_error_after_one_call_when_secret_unchanged(
    sandbox: Sandbox, pool: urllib3.PoolManager, fake_time: FakeTime
) -> None:
    """401 with a static (unchangeable) secret: refreshing gives the same credentials, so no second call is spent."""
    client = make_client(sandbox, pool, fake_time, credentials=StaticCredentials("wrong-key", sandbox.signature_secret))
    with pytest.raises(AuthenticationError) as caught:
        client.create_request(valid_body(), "evt-401")
    assert str(caught.value) == (
        "Humanos answered 401 Unauthorized: Unauthorized; check apiKey and signatureSecret in the Humanos secret "
        "(the secret is unchanged after fetching it again)"
    )
    assert caught.value.retryable is True  # the operator's to fix: the event waits, it is not parked
    assert statuses(sandbox) == [401]


# ----------------------------------------------------------------------------------------------- retryable


def test_429_waits_the_retry_after_seconds_then_succeeds(
    client: HumanosClient, sandbox: Sandbox, fake_time: FakeTime
) -> None:
    """429 with Retry-After: 2 -> one wait of exactly 2 s (full jitter of attempt 1 is at most 0.5 s), then 201."""
    sandbox.inject(Fault.status(429, retry_after="2"), times=1)

    response = client.create_request(valid_body(), "evt-429")

    assert fake_time.slept == [2.0]
    assert (response.status, response.attempts) == (201, 2)
    assert statuses(sandbox) == [429, 201]
    assert len(sandbox.created) == 1


def test_429_with_http_date_retry_after_waits_until_that_date(
    sandbox: Sandbox, pool: urllib3.PoolManager, fake_time: FakeTime
) -> None:
    """Retry-After as an HTTP-date 30 s ahead -> a wait until that date, as the wall clock reads it.

    An HTTP-date is read against the wall clock (``time.time``), not the client's injected monotonic one, so
    the date comes from the wall clock too, and the wall clock read just before and just after the call
    bounds the wait exactly: however long the call takes, the client read the clock in between.
    (``tests/unit/test_client_errors.py`` pins the arithmetic itself with an injected ``now``.)
    """
    client = make_client(sandbox, pool, fake_time, policy=RetryPolicy(deadline=60))
    due = int(time.time()) + 30  # an HTTP-date has whole seconds
    when = format_datetime(datetime.fromtimestamp(due, tz=UTC), usegmt=True)
    sandbox.inject(Fault.status(429, retry_after=when), times=1)

    before = time.time()
    response = client.create_request(valid_body(), "evt-429-date")
    after = time.time()

    (wait,) = fake_time.slept
    assert due - after <= wait <= due - before
    assert response.attempts == 2


@pytest.mark.parametrize("code", [500, 502, 503, 504])
def test_server_errors_are_retried_with_backoff(
    client: HumanosClient, sandbox: Sandbox, fake_time: FakeTime, code: int
) -> None:
    """5xx twice, then 201: three attempts, two jittered waits within the exponential bounds."""
    sandbox.inject(Fault.status(code), times=2)

    response = client.create_request(valid_body(), f"evt-{code}")

    assert (response.status, response.attempts) == (201, 3)
    assert statuses(sandbox) == [code, code, 201]
    assert len(fake_time.slept) == 2
    assert 0.0 <= fake_time.slept[0] <= 0.5
    assert 0.0 <= fake_time.slept[1] <= 1.0


def test_persistent_503_gives_up_after_max_attempts(
    client: HumanosClient, sandbox: Sandbox, fake_time: FakeTime
) -> None:
    """Every attempt fails: RetryableError after max_attempts (3), carrying the status and attempts made."""
    sandbox.inject(Fault.status(503))
    with pytest.raises(RetryableError) as caught:
        client.create_request(valid_body(), "evt-503")
    assert type(caught.value) is RetryableError
    assert caught.value.details == {"status": 503, "attempts": 3}
    assert statuses(sandbox) == [503, 503, 503]
    assert len(fake_time.slept) == 2


def test_post_without_idempotency_key_is_never_repeated(
    client: HumanosClient, sandbox: Sandbox, fake_time: FakeTime
) -> None:
    """Without a key a repeat could message a person twice: a 503 is raised after the single attempt."""
    sandbox.inject(Fault.status(503), times=1)
    with pytest.raises(RetryableError):
        client.create_request(valid_body(), None)
    assert statuses(sandbox) == [503]
    assert fake_time.slept == []


def test_get_is_retried_without_a_key_because_it_is_safe(
    client: HumanosClient, sandbox: Sandbox, fake_time: FakeTime
) -> None:
    """GET changes nothing, so a 503 is retried even without an Idempotency-Key."""
    sandbox.inject(Fault.status(503), times=1, method="GET")
    assert client.find_requests("order-1001") == []
    assert statuses(sandbox) == [503, 200]
    assert len(fake_time.slept) == 1


def test_deadline_stops_retrying_before_the_next_wait_would_pass_it(
    sandbox: Sandbox, pool: urllib3.PoolManager, fake_time: FakeTime
) -> None:
    """Waits of 3 s against a 10 s deadline: attempts at t=0, 3, 6, 9; waiting again would end at 12 > 10."""
    policy = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=1.0, deadline=10)
    client = make_client(sandbox, pool, fake_time, policy=policy)
    sandbox.inject(Fault.status(503, retry_after="3"))

    with pytest.raises(RetryableError) as caught:
        client.create_request(valid_body(), "evt-deadline")

    assert fake_time.slept == [3.0, 3.0, 3.0]
    assert statuses(sandbox) == [503] * 4
    assert caught.value.retry_after == 3.0


def test_read_timeout_is_ambiguous_after_all_attempts(
    sandbox: Sandbox, pool: urllib3.PoolManager, fake_time: FakeTime
) -> None:
    """Humanos hangs past the read timeout every time: AmbiguousError (it may have processed the request)."""
    client = make_client(sandbox, pool, fake_time, read_timeout=0.2)
    sandbox.inject(Fault.hang(5.0))

    with pytest.raises(AmbiguousError) as caught:
        client.create_request(valid_body(), "evt-timeout")

    assert caught.value.details == {"transport": "ReadTimeoutError", "attempts": 3}
    assert len(fake_time.slept) == 2


def test_dropped_connection_is_retried_with_the_same_key(
    client: HumanosClient, sandbox: Sandbox, fake_time: FakeTime
) -> None:
    """The connection drops before an answer: the keyed call is repeated and succeeds."""
    sandbox.inject(Fault.drop(), times=1)

    response = client.create_request(valid_body(), "evt-drop")

    assert response.attempts == 2
    assert [(c.status, c.fault) for c in sandbox.calls] == [(0, "drop"), (201, None)]
    assert len(sandbox.created) == 1


def test_dropped_connection_without_key_is_ambiguous_and_not_repeated(
    client: HumanosClient, sandbox: Sandbox, fake_time: FakeTime
) -> None:
    """No key: the dropped call is not repeated; the caller learns the request may exist."""
    sandbox.inject(Fault.drop_after_processing(), times=1)
    with pytest.raises(AmbiguousError) as caught:
        client.create_request(valid_body(), None)
    assert caught.value.details["attempts"] == 1
    assert fake_time.slept == []
    assert len(sandbox.created) == 1  # it did exist: exactly why a repeat without a key is refused


def test_drop_after_processing_with_same_key_creates_exactly_one_request(
    client: HumanosClient, sandbox: Sandbox, fake_time: FakeTime
) -> None:
    """Humanos stored the request but the answer was lost; the retry with the same key replays it: one request."""
    sandbox.inject(Fault.drop_after_processing(), times=1)

    response = client.create_request(valid_body(), "evt-once")

    assert len(sandbox.created) == 1
    assert response.request_id == sandbox.created[0]["id"]
    assert [(c.status, c.fault) for c in sandbox.calls] == [(0, "drop_after_processing"), (201, None)]
    # Each attempt was signed afresh, and both carried the same key.
    first, second = sandbox.calls
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == "evt-once"
    assert first.body == second.body


# ------------------------------------------------------------------------------------------------ rotation


def test_401_after_rotation_fetches_the_secret_again_and_retries_once(
    sandbox: Sandbox, pool: urllib3.PoolManager, fake_time: FakeTime
) -> None:
    """The secret rotated on Humanos; the cached one fails with 401, the fetched one succeeds: one extra call."""
    old = Credentials(sandbox.api_key, sandbox.signature_secret)
    new_secret = sandbox.rotate_secret("rotated-signature-secret")
    source = RotatingCredentials(old, Credentials(sandbox.api_key, new_secret))
    client = make_client(sandbox, pool, fake_time, credentials=source)

    response = client.create_request(valid_body(), "evt-rotate")

    assert (response.status, response.attempts) == (201, 2)
    assert source.forced == 1
    assert statuses(sandbox) == [401, 201]
    assert fake_time.slept == []


def test_second_401_after_refresh_is_final(sandbox: Sandbox, pool: urllib3.PoolManager, fake_time: FakeTime) -> None:
    """The fetched secret is also wrong: AuthenticationError after exactly two calls, never a third."""
    source = RotatingCredentials(
        Credentials(sandbox.api_key, "stale-secret"), Credentials(sandbox.api_key, "also-wrong-secret")
    )
    client = make_client(sandbox, pool, fake_time, credentials=source)

    with pytest.raises(AuthenticationError) as caught:
        client.create_request(valid_body(), "evt-401-twice")

    assert str(caught.value) == (
        "Humanos answered 401 Unauthorized: Invalid signature; check apiKey and signatureSecret in the Humanos secret "
        "(still refused after fetching the secret again)"
    )
    assert caught.value.details == {"status": 401, "attempts": 2}
    assert statuses(sandbox) == [401, 401]
    assert source.forced == 1


# -------------------------------------------------------------------------------------------------- leaks


def test_retries_are_logged_at_warning_with_status_attempt_and_wait(
    client: HumanosClient, sandbox: Sandbox, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    """One WARNING per retry, with status, attempt and wait: enough to follow a call, nothing more."""
    sandbox.inject(Fault.status(429, retry_after="1"), times=1)
    sandbox.inject(Fault.status(503), times=1)
    with caplog.at_level(logging.WARNING):
        client.create_request(valid_body(), "evt-logs")
    retries = [r for r in caplog.records if r.getMessage() == "Humanos call failed; retrying"]
    assert [(r.levelno, r.status, r.attempt) for r in retries] == [(logging.WARNING, 429, 1), (logging.WARNING, 503, 2)]  # type: ignore[attr-defined]
    assert [r.wait_seconds for r in retries] == [round(w, 3) for w in fake_time.slept]  # type: ignore[attr-defined]


@pytest.mark.parametrize("scenario", ["rejected", "refused", "unavailable", "dropped", "rotated"])
def test_no_secret_key_signature_or_contact_in_errors_or_logs(
    sandbox: Sandbox,
    pool: urllib3.PoolManager,
    fake_time: FakeTime,
    caplog: pytest.LogCaptureFixture,
    scenario: str,
) -> None:
    """Whatever fails, neither the API key, the secret, a signature nor the contact reaches str(exc) or a log."""
    secret = sandbox.signature_secret
    credentials: Any = StaticCredentials(sandbox.api_key, secret)
    body = valid_body(contacts=[CONTACT, "+351912345678"])
    if scenario == "rejected":
        body["securityLevel"] = CONTACT  # invalid: 400
    elif scenario == "refused":
        credentials = StaticCredentials(sandbox.api_key, "a-wrong-secret-value")
        secret = "a-wrong-secret-value"
    elif scenario == "unavailable":
        sandbox.inject(Fault.status(503))
    elif scenario == "dropped":
        sandbox.inject(Fault.drop())
    else:
        new = sandbox.rotate_secret("rotated-secret-value")
        credentials = RotatingCredentials(Credentials(sandbox.api_key, secret), Credentials(sandbox.api_key, new))
        sandbox.inject(Fault.status(503))
    client = make_client(sandbox, pool, fake_time, credentials=credentials)

    with caplog.at_level(logging.DEBUG), pytest.raises((PermanentError, AuthenticationError, RetryableError)) as caught:
        client.create_request(body, "evt-leak")

    signatures = [call.headers["x-signature"] for call in sandbox.calls]
    assert signatures
    exposed = [str(caught.value), repr(caught.value.details), repr(caught.value.humanos_message), repr(client)]
    exposed += [caplog.text] + [repr(vars(record)) for record in caplog.records]
    forbidden = [sandbox.api_key, secret, sandbox.signature_secret, CONTACT, "+351912345678", "912345678", *signatures]
    for text in exposed:
        for value in forbidden:
            assert value not in text


def test_response_request_id_is_none_without_an_id() -> None:
    """request_id reads data["id"] only when it is a string."""
    assert HumanosResponse(200, {"data": []}, 1, 0.0).request_id is None
    assert HumanosResponse(200, None, 1, 0.0).request_id is None
    assert HumanosResponse(201, {"id": "abc"}, 1, 0.0).request_id == "abc"


def test_every_creation_attempt_takes_a_rate_limit_token(
    sandbox: Sandbox, pool: urllib3.PoolManager, fake_time: FakeTime
) -> None:
    """Humanos counts retried creations against its limit too: the retry waits for its own token."""
    client = make_client(sandbox, pool, fake_time)
    client.creation_limiter = TokenBucket(0.5, clock=fake_time.clock, sleep=fake_time.sleep)
    sandbox.inject(Fault.status(503), times=1)
    client.create_request(valid_body(), "order-1001:limit")
    backoff_wait, token_wait = fake_time.slept
    assert token_wait == pytest.approx(2.0 - backoff_wait)  # 1 token per 2 s, minus the back-off already waited
    assert statuses(sandbox) == [503, 201]


def test_a_token_further_away_than_the_deadline_is_a_local_rate_limit(
    sandbox: Sandbox, pool: urllib3.PoolManager, fake_time: FakeTime
) -> None:
    """Waiting past the call's deadline would not help: the event is retried later instead."""
    client = make_client(sandbox, pool, fake_time, policy=RetryPolicy(deadline=5.0))
    client.creation_limiter = TokenBucket(0.1, clock=fake_time.clock, sleep=fake_time.sleep)
    client.create_request(valid_body(), "order-1001:first")
    with pytest.raises(RateLimitedLocally) as caught:
        client.create_request(valid_body(internalId="order-1002"), "order-1002:second")
    assert caught.value.retryable and caught.value.retry_after == pytest.approx(10.0)
    assert statuses(sandbox) == [201]
