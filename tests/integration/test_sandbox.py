"""The Humanos sandbox, exercised over real HTTP with urllib3 and the bridge's signing helpers.

The sandbox is the oracle the bridge's client and validator are tested against, so these tests pin
its behaviour to the Humanos notes: signing, versions, validation, idempotency, rate limit, faults.
The rate-limit window and the rotation grace period run on a fake clock the tests move, so no test
waits for them to pass.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import urllib3
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from humanos_bridge.core import signing, wire
from humanos_bridge_local.sandbox import Fault, Sandbox
from humanos_bridge_local.sandbox.validation import VersionError
from tests.support.fake_time import FakeTime

API_KEY = "test-api-key"
SECRET = "test-signature-secret"
V1 = "2026-05-17"  # body uses contacts
V2 = "2026-07-07"  # body uses users
V3 = "2026-09-01"
NO_BODY = object()


@pytest.fixture
def http() -> Iterator[urllib3.PoolManager]:
    """A pooled urllib3 client that never retries, so every fault reaches the test."""
    pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2.0, read=5.0))
    yield pool
    pool.clear()


@pytest.fixture
def clock() -> FakeTime:
    return FakeTime()


@pytest.fixture
def timed_sandbox(clock: FakeTime) -> Iterator[Sandbox]:
    """A sandbox whose rate-limit window and rotation grace period run on ``clock``."""
    with Sandbox(API_KEY, SECRET, clock=clock) as sb:
        yield sb


def valid_body(**changes: Any) -> dict[str, Any]:
    """A valid 2026-05-17 body; a change to None removes that field."""
    body: dict[str, Any] = {
        "contacts": ["ana@example.com", "+351912345678"],
        "groupIds": ["grp-onboarding"],
        "internalId": "order-1",
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


def users_body(**changes: Any) -> dict[str, Any]:
    """A valid body for 2026-07-07 and later (``users`` instead of ``contacts``)."""
    changes.setdefault("users", [{"contact": "ana@example.com", "language": "ENG"}])
    return valid_body(contacts=None, **changes)


def call(
    http: urllib3.PoolManager,
    sb: Sandbox,
    method: str,
    path: str,
    body: Any = NO_BODY,
    *,
    raw: bytes | None = None,
    secret: str = SECRET,
    api_key: str = API_KEY,
    timestamp: int | None = None,
    api_version: str | None = V1,
    headers: dict[str, str] | None = None,
    timeout: float | None = None,
) -> urllib3.BaseHTTPResponse:
    """Sign and send one call the way Humanos documents it; ``raw`` sends other bytes than signed."""
    data = None if body is NO_BODY else wire.dump_bytes(body)
    sent = signing.signed_headers(api_key, secret, data, timestamp=timestamp)
    if api_version is not None:
        sent["API-Version"] = api_version
    sent.update(headers or {})
    kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    return http.request(method, sb.base_url + path, body=raw if raw is not None else data, headers=sent, **kwargs)


def create(http: urllib3.PoolManager, sb: Sandbox, body: Any = None, **kwargs: Any) -> urllib3.BaseHTTPResponse:
    return call(http, sb, "POST", "/request", valid_body() if body is None else body, **kwargs)


def error(status: int, message: str | list[str], name: str) -> dict[str, Any]:
    return {"statusCode": status, "message": message, "error": name}


# --------------------------------------------------------------------------- creation


def test_valid_create_answers_201_stores_and_records(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """A signed, valid body gets 201 with ids; the sandbox stores it and records the call as sent."""
    response = create(http, sandbox, headers={"Idempotency-Key": "evt-1"})

    assert response.status == 201
    answer = response.json()
    assert set(answer) == {"id", "credentials", "subjects"}
    assert len(answer["id"]) == 24 and int(answer["id"], 16) >= 0
    assert [c["name"] for c in answer["credentials"]] == ["Group grp-onboarding"]
    assert [s["contact"] for s in answer["subjects"]] == ["ana@example.com", "+351912345678"]
    [stored] = sandbox.created
    assert stored["id"] == answer["id"]
    assert stored["internalId"] == "order-1"
    assert stored["idempotencyKey"] == "evt-1"
    assert stored["apiVersion"] == V1
    assert stored["body"] == valid_body()
    [recorded] = sandbox.calls
    assert (recorded.method, recorded.path, recorded.status, recorded.fault) == ("POST", "/request", 201, None)
    assert recorded.body == wire.dump_bytes(valid_body())
    assert recorded.headers["authorization"] == f"Bearer {API_KEY}"
    assert recorded.headers["api-version"] == V1
    assert recorded.response == answer


def test_fixture_uses_fixed_credentials(sandbox: Sandbox) -> None:
    """Tests can sign with known credentials."""
    assert (sandbox.api_key, sandbox.signature_secret) == (API_KEY, SECRET)
    assert sandbox.base_url.startswith("http://127.0.0.1:")


def test_generated_credentials_differ_per_sandbox() -> None:
    """Without credentials, each sandbox makes its own."""
    first, second = Sandbox(), Sandbox()
    assert first.api_key and first.signature_secret
    assert (first.api_key, first.signature_secret) != (second.api_key, second.signature_secret)


def test_connections_are_kept_alive(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """HTTP/1.1 keep-alive: several calls travel over one pooled connection."""
    for _ in range(3):
        assert call(http, sandbox, "GET", "/request").status == 200
    assert http.connection_from_url(sandbox.base_url).num_connections == 1


# ----------------------------------------------------------------------- authentication


@pytest.mark.parametrize("api_key", ["wrong-key", ""])
def test_wrong_api_key_is_refused(http: urllib3.PoolManager, sandbox: Sandbox, api_key: str) -> None:
    """A key other than the sandbox's gets 401 Unauthorized and nothing is stored."""
    response = create(http, sandbox, api_key=api_key)
    assert response.status == 401
    assert response.json() == error(401, "Unauthorized", "Unauthorized")
    assert sandbox.created == []


def test_signature_with_wrong_secret_is_refused(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """A body signed with another secret gets 401 Invalid signature."""
    response = create(http, sandbox, secret="another-secret")
    assert response.status == 401
    assert response.json() == error(401, "Invalid signature", "Unauthorized")
    assert sandbox.created == []


@pytest.mark.parametrize("skew_ms", [-301_000, 301_000], ids=["stale", "future"])
def test_timestamp_beyond_tolerance_is_refused(http: urllib3.PoolManager, sandbox: Sandbox, skew_ms: int) -> None:
    """A correctly signed call with a timestamp 301 s off either way is refused."""
    response = create(http, sandbox, timestamp=signing.now_ms() + skew_ms)
    assert response.status == 401
    assert response.json() == error(401, "Timestamp outside the allowed window", "Unauthorized")


@pytest.mark.parametrize("skew_ms", [-240_000, 240_000], ids=["past", "future"])
def test_timestamp_within_tolerance_is_accepted(http: urllib3.PoolManager, sandbox: Sandbox, skew_ms: int) -> None:
    """Clock skew inside the 300 s tolerance is fine in both directions."""
    assert create(http, sandbox, timestamp=signing.now_ms() + skew_ms).status == 201


def test_missing_timestamp_is_refused(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """Without X-Timestamp the call cannot be verified."""
    body = wire.dump_bytes(valid_body())
    headers = {"Authorization": f"Bearer {API_KEY}", "X-Signature": "00" * 32, "Content-Type": "application/json"}
    response = http.request("POST", sandbox.base_url + "/request", body=body, headers=headers | {"API-Version": V1})
    assert response.status == 401
    assert response.json() == error(401, "Invalid timestamp", "Unauthorized")


def test_signature_is_checked_against_the_reserialised_body(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """Signing pretty-printed JSON fails (Humanos re-serialises compactly); the compact form passes."""
    value = valid_body(name="Consentimento ção")
    spaced = json.dumps(value, indent=2, ensure_ascii=False).encode("utf-8")
    stamp = signing.now_ms()
    headers = signing.signed_headers(API_KEY, SECRET, spaced, timestamp=stamp) | {"API-Version": V1}

    refused = http.request("POST", sandbox.base_url + "/request", body=spaced, headers=headers)
    accepted = create(http, sandbox, value)

    assert refused.status == 401
    assert refused.json() == error(401, "Invalid signature", "Unauthorized")
    assert accepted.status == 201


def test_compact_signature_accepts_spaced_bytes_of_the_same_json(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """The signature covers the parsed value, so the compact signature verifies even if the bytes had spaces."""
    value = valid_body()
    spaced = json.dumps(value, indent=1).encode("utf-8")
    response = create(http, sandbox, value, raw=spaced)
    assert response.status == 201


# ----------------------------------------------------------------------------- versions


@pytest.mark.parametrize(
    ("api_version", "message"),
    [
        ("2099-01-01", "API-Version 2099-01-01 is in the future"),
        ("2026/05/17", "API-Version must be a date in YYYY-MM-DD format"),
        ("2026-02-30", "API-Version must be a date in YYYY-MM-DD format"),
        ("2025-12-31", "API-Version 2025-12-31 is not supported; the earliest is 2026-05-17"),
    ],
    ids=["future", "format", "impossible-date", "too-old"],
)
def test_bad_api_version_is_refused(
    http: urllib3.PoolManager, sandbox: Sandbox, api_version: str | None, message: str
) -> None:
    """An API-Version that is sent must be usable; otherwise 400 naming the header."""
    response = call(http, sandbox, "GET", "/request", api_version=api_version)
    assert response.status == 400
    assert response.json() == error(400, message, "Bad Request")


def test_without_api_version_the_latest_version_a_new_key_gets_applies(
    http: urllib3.PoolManager, sandbox: Sandbox
) -> None:
    """No header: the key's pinned version, by default the latest (Humanos gives it to new keys), bodies and all."""
    assert sandbox.pinned_api_version == V3
    assert call(http, sandbox, "GET", "/request", api_version=None).status == 200
    refused = create(http, sandbox, valid_body(), api_version=None)
    assert refused.json() == error(400, ["property contacts should not exist", "users must be an array"], "Bad Request")
    assert create(http, sandbox, users_body(), api_version=None).status == 201
    assert sandbox.created[0]["apiVersion"] == V3


def test_a_key_pinned_to_an_older_version_serves_calls_without_the_header_under_it(http: urllib3.PoolManager) -> None:
    """pinned_api_version is the key's version: a date between versions selects the latest not after it."""
    with Sandbox(API_KEY, SECRET, pinned_api_version="2026-07-01") as sb:
        assert sb.pinned_api_version == V1
        assert create(http, sb, valid_body(), api_version=None).status == 201
        assert create(http, sb, users_body(), api_version=V3).status == 201  # a header still wins
        assert [r["apiVersion"] for r in sb.created] == [V1, V3]
        assert sb.pin_api_version(V2) == V2
        assert create(http, sb, users_body(), api_version=None).status == 201
        assert sb.created[-1]["apiVersion"] == V2


@pytest.mark.parametrize(
    ("pinned", "message"),
    [
        ("2099-01-01", "API-Version 2099-01-01 is in the future"),
        ("May 2026", "API-Version must be a date in YYYY-MM-DD format"),
        ("  ", "a pinned API version must be a date such as 2026-09-01"),
    ],
)
def test_a_pinned_version_humanos_could_not_give_a_key_is_refused(pinned: str, message: str) -> None:
    """Pinning checks the date as the header is checked, when the sandbox is made and when it is changed."""
    with pytest.raises(VersionError, match=f"^{message}$"):
        Sandbox(API_KEY, SECRET, pinned_api_version=pinned)
    with pytest.raises(VersionError, match=f"^{message}$"):
        Sandbox(API_KEY, SECRET).pin_api_version(pinned)


@pytest.mark.parametrize(
    ("api_version", "resolved", "body"),
    [
        (V1, V1, valid_body()),
        ("2026-07-06", V1, valid_body()),
        (V2, V2, users_body()),
        ("2026-08-15", V2, users_body()),
        (V3, V3, users_body()),
        ("2026-11-01", V3, users_body()),
    ],
)
def test_version_dates_map_to_the_latest_version_not_after_them(
    http: urllib3.PoolManager, sandbox: Sandbox, api_version: str, resolved: str, body: dict[str, Any]
) -> None:
    """A date between versions selects the latest one not after it, and that version's body shape."""
    assert create(http, sandbox, body, api_version=api_version).status == 201
    assert sandbox.created[0]["apiVersion"] == resolved


def test_users_entries_become_subjects(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """From 2026-07-07 the people come from users[].contact."""
    body = users_body(users=[{"contact": "+351912345678", "secondaryContact": "bo@example.org", "docId": "X1"}])
    response = create(http, sandbox, body, api_version=V3)
    assert response.status == 201
    assert [s["contact"] for s in response.json()["subjects"]] == ["+351912345678"]


@pytest.mark.parametrize(
    ("api_version", "body", "messages"),
    [
        (V1, users_body(), ["property users should not exist", "contacts must be an array"]),
        (V2, valid_body(), ["property contacts should not exist", "users must be an array"]),
        (V3, valid_body(), ["property contacts should not exist", "users must be an array"]),
    ],
)
def test_body_shape_of_another_version_is_refused(
    http: urllib3.PoolManager, sandbox: Sandbox, api_version: str, body: dict[str, Any], messages: list[str]
) -> None:
    """contacts belongs to 2026-05-17 only, users to 2026-07-07 and later."""
    response = create(http, sandbox, body, api_version=api_version)
    assert response.status == 400
    assert response.json() == error(400, messages, "Bad Request")


# --------------------------------------------------------------------------- validation

CONTACT_RULE = "each value in contacts must be a valid e-mail or international phone number"
RESOURCE_RULE = "at least one of groupIds, resourcesIds or credentials must be provided"
LEVEL_RULE = (
    "securityLevel must be one of the following values: CONTACT, ORGANIZATION_KYC, HUMANOS_KYC, HUMANOS_REVALIDATION"
)


@pytest.mark.parametrize(
    ("body", "messages"),
    [
        (valid_body(contacts=None), ["contacts must be an array"]),
        (valid_body(contacts=[]), ["contacts must contain at least 1 elements"]),
        (
            valid_body(contacts=[f"p{i}@example.com" for i in range(21)]),
            ["contacts must contain no more than 20 elements"],
        ),
        (valid_body(contacts=["ana@example.com", "912345678"]), [CONTACT_RULE]),
        (valid_body(contacts=["+3519"]), [CONTACT_RULE]),
        (valid_body(contacts=["+1234567890123456"]), [CONTACT_RULE]),
        (valid_body(contacts=["ana@localhost"]), [CONTACT_RULE]),
        (valid_body(contacts=[351912345678]), [CONTACT_RULE]),
        (valid_body(groupIds=None), [RESOURCE_RULE]),
        (valid_body(groupIds=[], resourcesIds=[], credentials=[]), [RESOURCE_RULE]),
        (valid_body(groupIds="grp"), ["groupIds must be an array", RESOURCE_RULE]),
        (valid_body(resourcesIds=[""]), ["each value in resourcesIds must be a non-empty string"]),
        (
            valid_body(groupIds=None, credentials=[{"type": "consent", "name": f"c{i}"} for i in range(11)]),
            ["credentials must contain no more than 10 elements"],
        ),
        (
            valid_body(credentials=[{"name": "Terms"}, {"type": "consent", "name": ""}, {"type": 3, "name": "x"}]),
            [
                "credentials.0.type should not be empty",
                "credentials.1.name should not be empty",
                "credentials.2.type must be a string",
            ],
        ),
        (valid_body(credentials=["consent"]), ["credentials.0 must be an object"]),
        (
            valid_body(credentials=[{"type": "POLICY", "name": "a", "maxExecutions": n} for n in (0, 1.5, "2")]),
            [
                "credentials.0.maxExecutions must not be less than 1",
                "credentials.1.maxExecutions must be an integer number",
                "credentials.2.maxExecutions must be an integer number",
            ],
        ),
        (valid_body(securityLevel="HIGH"), [LEVEL_RULE]),
        (valid_body(internalId=42), ["internalId must be a string"]),
        ([valid_body()], ["request body must be a JSON object"]),
    ],
)
def test_invalid_body_is_refused_with_class_validator_messages(
    http: urllib3.PoolManager, sandbox: Sandbox, body: Any, messages: list[str]
) -> None:
    """Each rule of POST /request answers 400 with its message; nothing is stored."""
    response = create(http, sandbox, body)
    assert response.status == 400
    assert response.json() == error(400, messages, "Bad Request")
    assert sandbox.created == []


@pytest.mark.parametrize(
    ("users", "messages"),
    [
        ([], ["users must contain at least 1 elements"]),
        ([{"contact": "nope"}], ["users.0.contact must be a valid e-mail or international phone number"]),
        ([{"language": "ENG"}], ["users.0.contact must be a valid e-mail or international phone number"]),
        (
            [{"contact": "ana@example.com", "secondaryContact": "123"}],
            ["users.0.secondaryContact must be a valid e-mail or international phone number"],
        ),
        ([{"contact": "ana@example.com", "docId": 7}], ["users.0.docId must be a string"]),
        (["ana@example.com"], ["users.0 must be an object"]),
        ([{"contact": f"p{i}@example.com"} for i in range(21)], ["users must contain no more than 20 elements"]),
    ],
)
def test_invalid_users_are_refused(
    http: urllib3.PoolManager, sandbox: Sandbox, users: list[Any], messages: list[str]
) -> None:
    """users[] entries are checked one by one, naming the index."""
    response = create(http, sandbox, users_body(users=users), api_version=V3)
    assert response.status == 400
    assert response.json() == error(400, messages, "Bad Request")


def test_refusal_never_echoes_the_contact(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """A bad contact is not repeated in the error body (it is personal data)."""
    response = create(http, sandbox, valid_body(contacts=["+3519123"]))
    assert response.status == 400
    assert response.json() == error(400, [CONTACT_RULE], "Bad Request")
    assert b"3519123" not in response.data


def test_every_valid_security_level_is_accepted(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """The four documented levels pass; the default is CONTACT."""
    levels = ["CONTACT", "ORGANIZATION_KYC", "HUMANOS_KYC", "HUMANOS_REVALIDATION", None]
    for level in levels:
        assert create(http, sandbox, valid_body(securityLevel=level)).status == 201
    assert [r["securityLevel"] for r in sandbox.created] == [*levels[:4], "CONTACT"]


# -------------------------------------------------------------------------- idempotency


def test_same_key_same_body_replays_the_first_answer(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """A retry with the same Idempotency-Key and body gets the same 201 body; one request exists."""
    first = create(http, sandbox, headers={"Idempotency-Key": "evt-7"})
    again = create(http, sandbox, headers={"Idempotency-Key": "evt-7"})
    assert (first.status, again.status) == (201, 201)
    assert again.json() == first.json()
    assert len(sandbox.created) == 1


def test_same_key_different_body_is_a_conflict(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """Reusing a key for another body gets 409 and creates nothing."""
    assert create(http, sandbox, headers={"Idempotency-Key": "evt-8"}).status == 201
    response = create(http, sandbox, valid_body(internalId="order-2"), headers={"Idempotency-Key": "evt-8"})
    assert response.status == 409
    assert response.json() == error(409, "Idempotency-Key already used with a different body", "Conflict")
    assert len(sandbox.created) == 1


def test_refused_body_does_not_consume_the_key(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """A 400 leaves the key free: the corrected body may use it."""
    assert create(http, sandbox, valid_body(contacts=[]), headers={"Idempotency-Key": "evt-9"}).status == 400
    assert create(http, sandbox, headers={"Idempotency-Key": "evt-9"}).status == 201


def test_different_keys_create_separate_requests(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """Without a shared key the same body creates (and messages) twice: why keys matter."""
    create(http, sandbox, headers={"Idempotency-Key": "a"})
    create(http, sandbox, headers={"Idempotency-Key": "b"})
    create(http, sandbox)
    assert len({r["id"] for r in sandbox.created}) == 3


def test_concurrent_retries_with_one_key_create_once(sandbox: Sandbox) -> None:
    """Eight threads sending the same keyed call at once still store one request."""
    statuses: list[int] = []
    lock = threading.Lock()

    def send() -> None:
        pool = urllib3.PoolManager(retries=False)
        status = create(pool, sandbox, headers={"Idempotency-Key": "evt-race"}).status
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [201] * 8
    assert len(sandbox.created) == 1


# --------------------------------------------------------------------------- rate limit


def test_creations_beyond_the_rate_limit_get_429_with_retry_after(
    http: urllib3.PoolManager, timed_sandbox: Sandbox, clock: FakeTime
) -> None:
    """With 2 creations per minute, the third gets 429 and the whole seconds, rounded up, until the oldest
    creation leaves the window; reads are not limited."""
    timed_sandbox.set_rate_limit(2)
    assert [create(http, timed_sandbox).status for _ in range(2)] == [201, 201]

    refused = create(http, timed_sandbox)
    assert refused.status == 429
    assert refused.json() == error(429, "ThrottlerException: Too Many Requests", "Too Many Requests")
    assert refused.headers["Retry-After"] == "60"
    clock.advance(44.5)
    assert create(http, timed_sandbox).headers["Retry-After"] == "16"  # 15.5 s left
    assert call(http, timed_sandbox, "GET", "/request").status == 200
    assert len(timed_sandbox.created) == 2


def test_constructor_rate_limit_frees_a_slot_once_the_window_has_passed(
    http: urllib3.PoolManager, clock: FakeTime
) -> None:
    """rate_limit_per_minute=1: a second creation is refused until 60 s after the first, then admitted."""
    with Sandbox(API_KEY, SECRET, rate_limit_per_minute=1, clock=clock) as sb:
        assert [create(http, sb).status for _ in range(2)] == [201, 429]
        clock.advance(59.5)
        assert create(http, sb).status == 429
        clock.advance(0.5)
        assert create(http, sb).status == 201


def test_rate_limit_window_slides_over_each_creation(
    http: urllib3.PoolManager, timed_sandbox: Sandbox, clock: FakeTime
) -> None:
    """2 creations per 10 s, made at t=0 and t=4: at t=10 one slot frees, the next at t=14. Setting a
    limit again restarts the count."""
    timed_sandbox.set_rate_limit(2, window_seconds=10)
    assert create(http, timed_sandbox).status == 201
    clock.advance(4)
    assert create(http, timed_sandbox).status == 201
    assert create(http, timed_sandbox).headers["Retry-After"] == "6"

    clock.advance(6)
    assert create(http, timed_sandbox).status == 201
    assert create(http, timed_sandbox).headers["Retry-After"] == "4"

    timed_sandbox.set_rate_limit(2, window_seconds=10)
    assert create(http, timed_sandbox).status == 201


# ------------------------------------------------------------------------------- faults


def test_status_fault_answers_nest_error_with_retry_after(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """A status fault answers at once in the NestJS shape, with Retry-After, and stores nothing."""
    sandbox.inject(Fault.status(503, retry_after="7"), times=1)
    response = create(http, sandbox)
    assert response.status == 503
    assert response.headers["Retry-After"] == "7"
    assert response.json() == error(503, "Service Unavailable", "Service Unavailable")
    assert sandbox.created == []
    assert create(http, sandbox).status == 201
    assert [(c.status, c.fault) for c in sandbox.calls] == [(503, "status"), (201, None)]


def test_faults_apply_in_injection_order_for_their_count(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """times=N hits the next N matching calls; earlier injections fire first."""
    sandbox.inject(Fault.status(500), times=2)
    sandbox.inject(Fault.status(429, retry_after="1"), times=1)
    statuses = [create(http, sandbox).status for _ in range(4)]
    assert statuses == [500, 500, 429, 201]


def test_fault_matches_only_its_method_and_path(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """The default rule targets POST /request: reads pass untouched; method=None targets all."""
    sandbox.inject(Fault.status(502))
    assert call(http, sandbox, "GET", "/request").status == 200
    assert create(http, sandbox).status == 502
    sandbox.clear_faults()
    sandbox.inject(Fault.status(500), method=None, path_prefix="/request/")
    assert call(http, sandbox, "GET", "/request/0123456789abcdef01234567").status == 500
    assert create(http, sandbox).status == 201


def test_drop_closes_the_connection_before_processing(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """The client gets a protocol error; nothing is stored; the call is recorded with status 0."""
    sandbox.inject(Fault.drop(), times=1)
    with pytest.raises(ProtocolError):
        create(http, sandbox)
    assert sandbox.created == []
    [recorded] = sandbox.calls
    assert (recorded.status, recorded.fault, recorded.response) == (0, "drop", None)
    assert create(http, sandbox).status == 201


def test_drop_after_processing_stores_but_never_answers(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """The ambiguous case: the client sees a connection error yet the request exists (find it by internalId)."""
    sandbox.inject(Fault.drop_after_processing(), times=1)
    with pytest.raises(ProtocolError):
        create(http, sandbox, headers={"Idempotency-Key": "evt-amb"})
    assert len(sandbox.created) == 1
    found = call(http, sandbox, "GET", "/request?internalId=order-1").json()
    assert [r["id"] for r in found["data"]] == [sandbox.created[0]["id"]]
    # The retry with the same key gets the original answer instead of a second request.
    retry = create(http, sandbox, headers={"Idempotency-Key": "evt-amb"})
    assert retry.status == 201
    assert retry.json()["id"] == sandbox.created[0]["id"]
    assert [(c.status, c.fault) for c in sandbox.calls] == [(0, "drop_after_processing"), (200, None), (201, None)]


def test_hang_trips_read_timeout_without_blocking_others(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """A hanging call times out on the client while another connection is served meanwhile."""
    sandbox.inject(Fault.hang(5), times=1)
    with pytest.raises(ReadTimeoutError):
        create(http, sandbox, timeout=0.3)
    # The hanging handler is still asleep; a fresh call is answered anyway.
    assert create(http, sandbox, valid_body(internalId="order-2")).status == 201
    assert [r["internalId"] for r in sandbox.created] == ["order-2"]


def test_latency_delays_then_answers_normally(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """Latency slows the answer but the call is handled and recorded with its fault."""
    sandbox.inject(Fault.latency(0.05), times=1)
    assert create(http, sandbox).status == 201
    assert [(c.status, c.fault) for c in sandbox.calls] == [(201, "latency")]


def _fault_pattern(http: urllib3.PoolManager, seed: int) -> list[int]:
    with Sandbox(API_KEY, SECRET, seed=seed) as sb:
        sb.inject(Fault.status(503), probability=0.5, method="GET")
        return [call(http, sb, "GET", "/request").status for _ in range(24)]


def test_probability_faults_repeat_with_the_same_seed(http: urllib3.PoolManager) -> None:
    """A seeded sandbox injects the same pattern every run, mixing faults and normal answers."""
    pattern = _fault_pattern(http, seed=42)
    assert _fault_pattern(http, seed=42) == pattern
    assert set(pattern) == {200, 503}


@pytest.mark.parametrize(("probability", "expected"), [(0.0, 200), (1.0, 503)])
def test_probability_bounds(http: urllib3.PoolManager, sandbox: Sandbox, probability: float, expected: int) -> None:
    """Probability 0 never fires, 1 always does."""
    sandbox.inject(Fault.status(503), probability=probability, method=None)
    assert {call(http, sandbox, "GET", "/request").status for _ in range(5)} == {expected}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Fault.status(200), "status fault code must be an HTTP error status (400-599), got 200"),
        (lambda: Fault.latency(-1), "fault delay must be zero or more seconds, got -1"),
    ],
)
def test_fault_constructors_refuse_nonsense(make: Any, message: str) -> None:
    """Faults are checked when built."""
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


def test_stop_returns_while_a_handler_hangs(http: urllib3.PoolManager) -> None:
    """stop() wakes hanging handlers and closes their connections, so clients see an error, not a hang."""
    sb = Sandbox(API_KEY, SECRET).start()
    sb.inject(Fault.hang(60))
    errors: list[BaseException] = []

    def send() -> None:
        try:
            create(http, sb, timeout=30)
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    worker = threading.Thread(target=send)
    worker.start()
    while sb.pending == 0:  # wait until the hang holds the call
        threading.Event().wait(0.01)
    sb.stop()
    worker.join(10)
    assert not worker.is_alive()
    assert [type(e) for e in errors] == [ProtocolError]
    assert [(c.status, c.fault) for c in sb.calls] == [(0, "hang")]


# ------------------------------------------------------------------------ rotation


def test_rotation_without_grace_refuses_the_old_secret(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """After rotation only the new secret works; the API key stays."""
    new = sandbox.rotate_secret()
    assert new != SECRET and sandbox.signature_secret == new and sandbox.api_key == API_KEY
    old = create(http, sandbox)
    assert old.status == 401
    assert old.json() == error(401, "Invalid signature", "Unauthorized")
    assert create(http, sandbox, secret=new).status == 201


def test_rotation_with_grace_accepts_both_until_it_ends(
    http: urllib3.PoolManager, timed_sandbox: Sandbox, clock: FakeTime
) -> None:
    """During a 30 s grace period old and new secrets verify; from its end only the new one."""
    new = timed_sandbox.rotate_secret("rotated-secret", grace_seconds=30)
    assert new == "rotated-secret"
    assert create(http, timed_sandbox, secret=SECRET).status == 201
    assert create(http, timed_sandbox, secret=new).status == 201
    clock.advance(29.5)
    assert create(http, timed_sandbox, secret=SECRET).status == 201

    clock.advance(0.5)
    old = create(http, timed_sandbox, secret=SECRET)
    assert old.status == 401
    assert old.json() == error(401, "Invalid signature", "Unauthorized")
    assert create(http, timed_sandbox, secret=new).status == 201


# -------------------------------------------------------------------- other endpoints


def ids_of(response: urllib3.BaseHTTPResponse) -> list[str]:
    return [item["id"] for item in response.json()["data"]]


def test_list_by_internal_id_pages_results(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """GET /request?internalId= finds only that reference, pageSize at a time, pageIndex from 0."""
    for n in range(12):
        create(http, sandbox, valid_body(internalId="order-8" if n % 4 == 1 else "order-7"))
    expected = [r["id"] for r in sandbox.created if r["internalId"] == "order-7"]
    pages = [call(http, sandbox, "GET", f"/request?internalId=order-7&pageIndex={i}&pageSize=5") for i in range(3)]
    assert [p.json()["totalPages"] for p in pages] == [2, 2, 2]
    assert [len(ids_of(p)) for p in pages] == [5, 4, 0]
    assert ids_of(pages[0]) + ids_of(pages[1]) == expected
    none = call(http, sandbox, "GET", "/request?internalId=unknown").json()
    assert none == {"data": [], "totalPages": 0}


def test_list_items_show_the_request_not_the_sandbox_record(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """Each item is Humanos's RequestEntity: no body, key or version of the sandbox's own record, and every
    subject with its identityStatus (kyc only where the request asks for an identity check)."""
    create(http, sandbox, valid_body(name="Onboarding", language="ENG"))
    create(http, sandbox, valid_body(securityLevel="HUMANOS_KYC", internalId="order-2"))
    first, second = call(http, sandbox, "GET", "/request").json()["data"]
    [stored, _] = sandbox.created
    assert first == {
        "id": stored["id"],
        "name": "Onboarding",
        "securityLevel": "CONTACT",
        "language": "ENG",
        "redirectUrl": None,
        "internalId": "order-1",
        "subjects": [
            {"id": stored["subjects"][0]["id"], "contact": "ana@example.com", "identityStatus": "NONE"},
            {"id": stored["subjects"][1]["id"], "contact": "+351912345678", "identityStatus": "NONE"},
        ],
        "credentials": [
            {
                "id": stored["credentials"][0]["id"],
                "name": "Group grp-onboarding",
                "description": None,
                "internalId": None,
                "resourceType": "DOCUMENT",
                "status": "DRAFT",
            }
        ],
        "createdAt": stored["createdAt"],
        "canceledAt": None,
    }
    assert stored["credentials"][0]["id"].startswith("urn:via:credential:")
    assert [s["kyc"] for s in second["subjects"]] == ["PENDING", "PENDING"]


def test_list_filters_combine(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """search (names, any case), subject (contact or id), securityLevel (repeated) and internalId each narrow
    the list; given together, a request must pass them all."""
    create(http, sandbox, valid_body(name="Welcome pack", internalId="a"))
    create(http, sandbox, valid_body(contacts=["bo@example.org"], securityLevel="HUMANOS_KYC", internalId="b"))
    create(http, sandbox, valid_body(groupIds=None, credentials=[{"type": "JSON", "name": "Terms 2026"}]))
    a, b, c = (r["id"] for r in sandbox.created)
    bo = sandbox.created[1]["subjects"][0]["id"]

    def listed(query: str) -> list[str]:
        return ids_of(call(http, sandbox, "GET", f"/request?{query}"))

    assert listed("search=WELCOME") == [a]
    assert listed("search=terms") == [c]  # a credential's name counts too
    assert listed("subject=%2B351912345678") == [a, c]
    assert listed(f"subject={bo}") == [b]
    assert listed("securityLevel=HUMANOS_KYC") == [b]
    assert listed("securityLevel=HUMANOS_KYC&securityLevel=CONTACT") == [a, b, c]
    assert listed("securityLevel=CONTACT&subject=ana%40example.com&search=pack") == [a]


def test_list_filters_by_creation_day(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """dateFrom and dateTo are whole UTC days, whatever the time or offset sent with them."""
    create(http, sandbox)
    day = sandbox.created[0]["createdAt"][:10]
    created = datetime.fromisoformat(day)
    before, after = ((created + timedelta(days=d)).date().isoformat() for d in (-1, 1))

    def count(query: str) -> int:
        return len(ids_of(call(http, sandbox, "GET", f"/request?{query}")))

    assert count(f"dateFrom={day}T23%3A59%3A59.000000%2B0000&dateTo={day}T00%3A00%3A00.000000%2B0000") == 1
    assert count(f"dateFrom={before}&dateTo={before}") == 0
    assert count(f"dateFrom={after}") == 0
    assert count(f"dateFrom={before}") == 1


@pytest.mark.parametrize(
    ("query", "messages"),
    [
        ("pageIndex=x&pageSize=500", ["pageIndex must be an integer number", "pageSize must not be greater than 100"]),
        ("pageIndex=-1&pageSize=4", ["pageIndex must be an integer number", "pageSize must not be less than 5"]),
        ("search=" + "x" * 101, ["search must be shorter than or equal to 100 characters"]),
        ("internalId=a&internalId=b", ["internalId must be a string"]),
        (
            "securityLevel=CONTACT&securityLevel=HIGH",
            [f"each value in {LEVEL_RULE}"],
        ),
        ("dateFrom=yesterday", ["dateFrom must be a valid ISO 8601 date string"]),
        ("dateTo=2026-05-01", ["dateFrom should not be empty when dateTo is given"]),
    ],
    ids=["paging", "page-bounds", "search-length", "repeated", "level", "date", "dateTo-alone"],
)
def test_list_refuses_a_query_the_dto_refuses(
    http: urllib3.PoolManager, sandbox: Sandbox, query: str, messages: list[str]
) -> None:
    """The list's query is validated like a NestJS DTO: pageSize 5 to 100, as the official SDK declares."""
    response = call(http, sandbox, "GET", f"/request?{query}")
    assert response.status == 400
    assert response.json() == error(400, messages, "Bad Request")


def test_get_by_id_answers_the_request_detail(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """GET /request/{id} answers RequestDetailEntity: each subject with its contacts and what the organisation
    submitted, each credential with its (draft, unsigned) W3C credential. An unknown id gets 404."""
    body = users_body(users=[{"contact": "ana@example.com", "secondaryContact": "+351912345678"}])
    request_id = create(http, sandbox, body, api_version=V3).json()["id"]
    detail = call(http, sandbox, "GET", f"/request/{request_id}", api_version=V3).json()
    [stored] = sandbox.created
    [subject] = detail["subjects"]
    assert subject == {
        "contacts": [{"id": stored["subjects"][0]["contactId"], "contact": "ana@example.com"}],
        "organization": {"contacts": ["ana@example.com", "+351912345678"]},
        "createdAt": stored["createdAt"],
        "id": stored["subjects"][0]["id"],
        "contact": "ana@example.com",
        "identityStatus": "NONE",
        "secondaryContact": "+351912345678",
    }
    [credential] = detail["credentials"]
    assert (credential["status"], credential["inactiveAt"], credential["executionsRemaining"]) == ("DRAFT", None, None)
    assert credential["w3cCredential"]["specVersion"] == "0.2"
    assert credential["w3cCredential"]["evidence"] == []
    assert (detail["id"], detail["canceledAt"], detail["internalId"]) == (request_id, None, "order-1")
    missing = call(http, sandbox, "GET", "/request/ffffffffffffffffffffffff")
    assert missing.status == 404
    assert missing.json() == error(404, "Request not found", "Not Found")


@pytest.mark.parametrize("method", ["GET", "DELETE", "PATCH"])
def test_a_request_id_that_is_no_object_id_is_refused(http: urllib3.PoolManager, sandbox: Sandbox, method: str) -> None:
    """Request ids are MongoDB ObjectIds; anything else is a 400, before any look-up."""
    path = "/request/resend/order-1?contact=a%40b.co" if method == "PATCH" else "/request/order-1"
    response = call(http, sandbox, method, path)
    assert response.status == 400
    assert response.json() == error(400, ["requestId must be a mongodb id"], "Bad Request")


def test_delete_cancels_the_request_and_keeps_it(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """DELETE /request/{id} answers 201 {success: true}; the request stays, with canceledAt, and cannot be
    canceled twice."""
    request_id = create(http, sandbox).json()["id"]
    canceled = call(http, sandbox, "DELETE", f"/request/{request_id}")
    assert (canceled.status, canceled.json()) == (201, {"success": True})
    again = call(http, sandbox, "DELETE", f"/request/{request_id}")
    assert again.json() == error(400, "Request is already canceled", "Bad Request")
    [stored] = sandbox.created
    assert stored["canceledAt"] is not None
    [listed] = call(http, sandbox, "GET", "/request").json()["data"]
    assert listed["canceledAt"] == stored["canceledAt"]
    unknown = call(http, sandbox, "DELETE", "/request/ffffffffffffffffffffffff")
    assert unknown.json() == error(404, "Request not found", "Not Found")


@pytest.mark.parametrize(
    ("api_version", "status", "extra"),
    [
        (V1, "CANCELED", {}),
        (V2, "CANCELED", {}),
        (V3, "INACTIVE", {"executionsRemaining": 3}),
    ],
)
def test_a_canceled_request_reads_in_each_versions_shapes(
    http: urllib3.PoolManager, sandbox: Sandbox, api_version: str, status: str, extra: dict[str, Any]
) -> None:
    """One stored request, read under each version: statuses, executionsRemaining and the W3C credential's
    evidence keys are the version's, not the creating call's."""
    credential = {"type": "POLICY", "name": "Spend up to 50", "maxExecutions": 3, "description": "Card"}
    request_id = create(http, sandbox, valid_body(groupIds=None, credentials=[credential])).json()["id"]
    call(http, sandbox, "DELETE", f"/request/{request_id}")
    canceled_at = sandbox.created[0]["canceledAt"]

    [shown] = call(http, sandbox, "GET", f"/request/{request_id}", api_version=api_version).json()["credentials"]
    [listed] = call(http, sandbox, "GET", "/request", api_version=api_version).json()["data"][0]["credentials"]

    assert (shown["status"], listed["status"]) == (status, status)
    assert (shown["resourceType"], shown["description"]) == ("POLICY", "Card")
    assert {k: shown[k] for k in extra} == extra
    if api_version == V3:
        assert shown["inactiveAt"] == canceled_at
        assert {"specVersion", "evidence"} <= set(shown["w3cCredential"])
    else:
        assert not {"inactiveAt", "executionsRemaining"} & set(shown)
        assert {"evidences", "proofs"} <= set(shown["w3cCredential"])
        assert "specVersion" not in shown["w3cCredential"]


def test_a_person_keeps_one_id_across_requests(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """Humanos knows a person by their contact: two requests naming ana@example.com show the same subject id."""
    create(http, sandbox)
    create(http, sandbox, valid_body(contacts=["ana@example.com"], internalId="order-2"))
    first, second = sandbox.created
    assert second["subjects"][0]["id"] == first["subjects"][0]["id"]
    assert second["subjects"][0]["registeredAt"] == first["createdAt"]


@pytest.mark.parametrize(("api_version", "shown"), [(V1, {"code", "link"}), (V3, {"link"})])
def test_an_organisation_delivering_its_codes_gets_them_in_the_answer(
    http: urllib3.PoolManager, api_version: str, shown: set[str]
) -> None:
    """Up to 2026-07-07 each subject comes back with its code and link; from 2026-09-01 with the link only."""
    body = valid_body() if api_version == V1 else users_body()
    with Sandbox(API_KEY, SECRET, delivers_codes=True) as sb:
        subjects = create(http, sb, body, api_version=api_version).json()["subjects"]
    assert all(set(subject) - {"contact", "id"} == shown for subject in subjects)


def test_resend_is_bodyless_and_signed_over_the_timestamp(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """PATCH /request/resend/{id}?contact= carries no body and answers 201 {success: true}; signing '{}' instead
    is refused."""
    request_id = create(http, sandbox).json()["id"]
    path = f"/request/resend/{request_id}?contact=%2B351912345678"
    response = call(http, sandbox, "PATCH", path)
    assert response.status == 201
    assert response.json() == {"success": True}
    assert sandbox.calls[-1].body == b""
    assert sandbox.created[0]["resends"][0]["contact"] == "+351912345678"
    # Signed as if the body were "{}", but sent without a body: the signed strings differ.
    stamp = signing.now_ms()
    headers = signing.signed_headers(API_KEY, SECRET, b"{}", timestamp=stamp) | {"API-Version": V1}
    headers.pop("Content-Type")
    refused = http.request("PATCH", sandbox.base_url + path, headers=headers)
    assert refused.status == 401
    assert refused.json() == error(401, "Invalid signature", "Unauthorized")


def test_resend_names_its_subject_by_id_and_a_key_sends_once(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """The subject may be named by its id; a retry with the same Idempotency-Key does not send the code again,
    and the key cannot be reused for another subject."""
    request_id = create(http, sandbox).json()["id"]
    ana, other = (s["id"] for s in sandbox.created[0]["subjects"])
    path = f"/request/resend/{request_id}"
    key = {"Idempotency-Key": "resend-1"}
    assert [call(http, sandbox, "PATCH", f"{path}?id={ana}", headers=key).status for _ in range(2)] == [201, 201]
    assert [r["contact"] for r in sandbox.created[0]["resends"]] == ["ana@example.com"]
    conflict = call(http, sandbox, "PATCH", f"{path}?id={other}", headers=key)
    assert conflict.json() == error(409, "Idempotency-Key already used to resend to another subject", "Conflict")


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("", 400, ["exactly one of contact, id, internalId must be given"]),
        ("?contact=ana%40example.com&id=x", 400, ["exactly one of contact, id, internalId must be given"]),
        ("?contact=other%40example.com", 404, "Subject not found in this request"),
        ("?internalId=emp-1", 404, "Subject not found in this request"),
    ],
)
def test_resend_refuses_missing_or_foreign_subject(
    http: urllib3.PoolManager, sandbox: Sandbox, query: str, status: int, message: str | list[str]
) -> None:
    """Resend needs exactly one way of naming a subject of that request."""
    request_id = create(http, sandbox).json()["id"]
    response = call(http, sandbox, "PATCH", f"/request/resend/{request_id}{query}")
    assert response.status == status
    assert response.json() == error(status, message, "Bad Request" if status == 400 else "Not Found")


def test_resend_of_a_canceled_request_is_refused(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """Once canceled, nobody is sent a code again."""
    request_id = create(http, sandbox).json()["id"]
    call(http, sandbox, "DELETE", f"/request/{request_id}")
    response = call(http, sandbox, "PATCH", f"/request/resend/{request_id}?contact=ana%40example.com")
    assert response.json() == error(400, "Request is canceled", "Bad Request")
    assert sandbox.created[0]["resends"] == []


def test_unknown_route_is_404_like_express(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """Routes Humanos does not have answer NestJS's 'Cannot METHOD path'."""
    response = call(http, sandbox, "GET", "/requests")
    assert response.status == 404
    assert response.json() == error(404, "Cannot GET /requests", "Not Found")


def test_reset_forgets_calls_requests_keys_and_faults(http: urllib3.PoolManager, sandbox: Sandbox) -> None:
    """reset() starts over but keeps the credentials."""
    create(http, sandbox, headers={"Idempotency-Key": "evt-r"})
    sandbox.inject(Fault.status(500))
    sandbox.reset()
    assert (sandbox.calls, sandbox.created) == ([], [])
    response = create(http, sandbox, valid_body(internalId="order-9"), headers={"Idempotency-Key": "evt-r"})
    assert response.status == 201
    assert [r["internalId"] for r in sandbox.created] == ["order-9"]
