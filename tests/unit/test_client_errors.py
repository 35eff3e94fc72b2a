"""Classification of Humanos answers and transport failures, as a table; Retry-After parsing; no leaks.

Pure functions: no sockets. The client raises exactly what these return (see tests/integration/test_client.py
for the same classes coming out of real HTTP calls).
"""

from __future__ import annotations

import http.client
import json
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
import urllib3.exceptions

from humanos_bridge.core import classify as classify_module
from humanos_bridge.core.classify import classify, humanos_message, parse_retry_after, parse_success
from humanos_bridge.core.errors import (
    AmbiguousError,
    AuthenticationError,
    HumanosError,
    PermanentError,
    RetryableError,
)

NOW = 1_800_000_000.0  # a fixed "now" for HTTP-date arithmetic
CONTACT_EMAIL = "joana.silva@example.com"
CONTACT_PHONE = "+351912345678"


def nest(status: int, message: str | list[str], error: str = "Error") -> bytes:
    """A NestJS error body, as Humanos sends it."""
    return json.dumps({"statusCode": status, "message": message, "error": error}).encode()


def http_date(offset_seconds: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + offset_seconds, tz=UTC), usegmt=True)


# ---------------------------------------------------------------------------------------------- statuses

STATUS_TABLE = [
    # status, body, retry_after header, class, retryable, retry_after seconds, message
    (
        400,
        nest(400, ["contacts must contain at least 1 elements", "groupIds must be an array"], "Bad Request"),
        None,
        PermanentError,
        False,
        None,
        "Humanos answered 400 Bad Request: contacts must contain at least 1 elements; groupIds must be an array; "
        "fix the mapping or the event that produced this body",
    ),
    (
        401,
        nest(401, "Invalid signature", "Unauthorized"),
        None,
        AuthenticationError,
        True,  # the operator's to fix: events wait (and alarm), never parked
        None,
        "Humanos answered 401 Unauthorized: Invalid signature; check apiKey and signatureSecret in the Humanos secret",
    ),
    (
        402,
        nest(402, "Payment Required"),
        None,
        PermanentError,
        False,
        None,
        "Humanos answered 402 Payment Required: Payment Required; check the Humanos organisation's plan and billing",
    ),
    (
        403,
        nest(403, "Forbidden resource"),
        None,
        AuthenticationError,
        True,
        None,
        "Humanos answered 403 Forbidden: Forbidden resource; check that the API key may call this endpoint",
    ),
    (
        404,
        nest(404, "Cannot POST /requests"),
        None,
        PermanentError,
        False,
        None,
        "Humanos answered 404 Not Found: Cannot POST /requests; check HUMANOS_BASE_URL and the path",
    ),
    (
        409,
        nest(409, "Idempotency-Key already used with a different body"),
        None,
        PermanentError,
        False,
        None,
        "Humanos answered 409 Conflict: Idempotency-Key already used with a different body; a conflicting request "
        "exists (possibly the same Idempotency-Key sent with a different body)",
    ),
    (
        418,
        b"",
        None,
        PermanentError,
        False,
        None,
        "Humanos answered 418 I'm a Teapot; a human must look; retrying will not help",
    ),
    (
        429,
        nest(429, "ThrottlerException: Too Many Requests"),
        "2",
        RetryableError,
        True,
        2.0,
        "Humanos answered 429 Too Many Requests: ThrottlerException: Too Many Requests; retry after 2 s",
    ),
    (
        429,
        b"",
        None,
        RetryableError,
        True,
        None,
        "Humanos answered 429 Too Many Requests; retry later",
    ),
    (
        500,
        nest(500, "Internal server error"),
        None,
        RetryableError,
        True,
        None,
        "Humanos answered 500 Internal Server Error: Internal server error; retry later",
    ),
    (
        503,
        b"<html>Service Unavailable</html>",
        "30",
        RetryableError,
        True,
        30.0,
        "Humanos answered 503 Service Unavailable; retry after 30 s",
    ),
    (
        302,
        b"",
        None,
        PermanentError,
        False,
        None,
        "Humanos answered 302 Found; Humanos does not redirect API calls; check HUMANOS_BASE_URL",
    ),
]


@pytest.mark.parametrize(
    ("status", "body", "retry_after", "cls", "retryable", "wait", "message"),
    STATUS_TABLE,
    ids=[f"{row[0]}-{row[3].__name__}-{i}" for i, row in enumerate(STATUS_TABLE)],
)
def test_status_becomes_exactly_one_error_class(
    status: int,
    body: bytes,
    retry_after: str | None,
    cls: type[HumanosError],
    retryable: bool,
    wait: float | None,
    message: str,
) -> None:
    """Each status maps to one class, with the status, Humanos's message and Retry-After carried as fields."""
    error = classify(status, body=body, retry_after=retry_after, now=NOW)
    assert type(error) is cls
    assert error.retryable is retryable
    assert error.status == status
    assert error.details["status"] == status
    assert str(error) == message
    assert getattr(error, "retry_after", None) == wait


def test_permanent_error_keeps_humanos_message_list() -> None:
    """A 400's list message is kept as a list on humanos_message (for the dead-letter reason)."""
    error = classify(400, body=nest(400, ["a must be a string", "b must be an array"]))
    assert error.humanos_message == ["a must be a string", "b must be an array"]


def test_contacts_in_humanos_messages_are_masked_everywhere() -> None:
    """A contact echoed by Humanos is masked in the message, humanos_message and str(error)."""
    body = nest(400, [f"{CONTACT_EMAIL} is not allowed", f"{CONTACT_PHONE} is not a mobile number"])
    error = classify(400, body=body)
    assert error.humanos_message == ["j***@e***.com is not allowed", "+35********78 is not a mobile number"]
    for text in (str(error), repr(error.humanos_message), repr(error.details)):
        assert CONTACT_EMAIL not in text
        assert "912345678" not in text


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (nest(400, "plain"), "plain"),
        (nest(400, ["one", "two"]), ["one", "two"]),
        (b'{"statusCode": 400}', None),
        (b'{"message": 42}', None),
        (b"[1, 2]", None),
        (b"not json at all", None),
        (b"", None),
        (b"\xff\xfe", None),
        (json.dumps({"message": "x" * 600}).encode(), "x" * 499 + "…"),
    ],
)
def test_humanos_message_is_read_only_from_the_nest_shape(body: bytes, expected: str | list[str] | None) -> None:
    """Only a string or list ``message`` counts; anything else (HTML, garbage) is ignored; long text is cut."""
    assert humanos_message(body) == expected


# ------------------------------------------------------------------------------------------- exceptions

EXCEPTION_TABLE = [
    (
        urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused"),  # type: ignore[arg-type]
        RetryableError,
    ),
    (urllib3.exceptions.NameResolutionError("api.humanos.invalid", None, OSError("no such host")), RetryableError),  # type: ignore[arg-type]
    (urllib3.exceptions.ConnectTimeoutError("connect timed out"), RetryableError),
    (urllib3.exceptions.SSLError("certificate verify failed"), RetryableError),
    (urllib3.exceptions.ReadTimeoutError(None, "/request", "Read timed out."), AmbiguousError),  # type: ignore[arg-type]
    (
        urllib3.exceptions.ProtocolError(
            "Connection aborted.", http.client.RemoteDisconnected("Remote end closed connection without response")
        ),
        AmbiguousError,
    ),
    (urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset")), AmbiguousError),
    (urllib3.exceptions.IncompleteRead(10, 90), AmbiguousError),
    (ConnectionResetError(104, "Connection reset by peer"), AmbiguousError),
    (urllib3.exceptions.LocationParseError("http://[bad"), PermanentError),
]


@pytest.mark.parametrize(
    ("exc", "cls"), EXCEPTION_TABLE, ids=[f"{type(e).__name__}-{c.__name__}" for e, c in EXCEPTION_TABLE]
)
def test_transport_failure_becomes_exactly_one_error_class(exc: BaseException, cls: type[HumanosError]) -> None:
    """Nothing sent (connect, DNS, TLS) is plainly retryable; maybe sent (read timeout, dropped) is ambiguous."""
    error = classify(exc)
    assert type(error) is cls
    assert error.status is None
    assert error.details == {"transport": type(exc).__name__}


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (
            urllib3.exceptions.ConnectTimeoutError("x"),
            "could not connect to Humanos (connection refused, DNS failure or connect timeout); "
            "nothing was sent, retry later",
        ),
        (
            urllib3.exceptions.ReadTimeoutError(None, "/request", "Read timed out."),  # type: ignore[arg-type]
            "Humanos did not answer within the read timeout; the request may have been processed: "
            "retry with the same Idempotency-Key or look it up by internalId",
        ),
        (
            urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError()),
            "the connection to Humanos dropped before a complete answer; the request may have been processed: "
            "retry with the same Idempotency-Key or look it up by internalId",
        ),
    ],
)
def test_transport_messages_say_whether_the_request_may_have_arrived(exc: BaseException, message: str) -> None:
    """The message tells the operator whether a duplicate is possible and what to do."""
    assert str(classify(exc)) == message


def test_transport_message_does_not_repeat_the_urllib3_text() -> None:
    """urllib3's text (which may name hosts and URLs with query strings) stays on __cause__, not in our message."""
    exc = urllib3.exceptions.ReadTimeoutError(None, f"/request?contact={CONTACT_PHONE}", "Read timed out.")  # type: ignore[arg-type]
    assert CONTACT_PHONE not in str(classify(exc))


# ------------------------------------------------------------------------------------------ Retry-After


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("2", 2.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("301", classify_module.MAX_RETRY_AFTER_SECONDS),
        ("99999999", classify_module.MAX_RETRY_AFTER_SECONDS),
        (http_date(30), 30.0),
        (http_date(-30), 0.0),
        (http_date(86_400), classify_module.MAX_RETRY_AFTER_SECONDS),
        ("Fri, 15 Jan 2027 08:00:00 -0000", 0.0),  # NOW itself; "-0000" (no zone) is read as UTC
        ("Fri, 15 Jan 2027 08:01:00 -0000", 60.0),
        (None, None),
        ("", None),
        ("   ", None),
        ("-5", None),
        ("soon", None),
        ("1e3", None),
        ("nan", None),
        ("inf", None),
        ("Wed, 99 Foo 2027 99:99:99 GMT", None),
        ("12345678901234567890", None),
    ],
)
def test_retry_after_accepts_seconds_and_http_dates_and_ignores_garbage(
    header: str | None, expected: float | None
) -> None:
    """Delta-seconds or an HTTP-date; past dates mean 0; huge values are clamped; garbage is None."""
    got = parse_retry_after(header, now=NOW)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-6)


def test_http_date_retry_after_is_relative_to_now() -> None:
    """The same date means less waiting later: it is an absolute time."""
    header = http_date(60)
    assert parse_retry_after(header, now=NOW) == pytest.approx(60.0)
    assert parse_retry_after(header, now=NOW + 45) == pytest.approx(15.0)


def test_retry_after_http_date_flows_into_the_error() -> None:
    """A 503 with an HTTP-date Retry-After carries the seconds to wait."""
    error = classify(503, retry_after=http_date(12), now=NOW)
    assert isinstance(error, RetryableError)
    assert error.retry_after == pytest.approx(12.0)


# ------------------------------------------------------------------------------------ success answers


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b'{"id":"r1"}', {"id": "r1"}), (b"[]", []), (b"", None), (b"  \n", None)],
)
def test_success_body_is_parsed_json_or_none(body: bytes, expected: object) -> None:
    """A 2xx body is JSON; an empty body is None (e.g. a bodyless 200)."""
    assert parse_success(200, body, may_have_taken_effect=True) == expected


def test_non_json_success_for_a_create_is_ambiguous() -> None:
    """A garbled 201 to a POST may hide a created request: ambiguous, so only a keyed call is repeated."""
    with pytest.raises(AmbiguousError) as caught:
        parse_success(201, b"<html>OK</html>", may_have_taken_effect=True)
    assert str(caught.value) == (
        "Humanos answered 201 with a body that is not JSON (body is not valid JSON: Expecting value at line 1 "
        "column 1); the request may have been processed: retry with the same Idempotency-Key or look it up by "
        "internalId"
    )
    assert caught.value.status == 201


def test_non_json_success_for_a_read_is_plainly_retryable() -> None:
    """A garbled 200 to a GET changed nothing: plainly retryable."""
    with pytest.raises(RetryableError) as caught:
        parse_success(200, b"{truncated", may_have_taken_effect=False)
    assert type(caught.value) is RetryableError
    assert str(caught.value).startswith("Humanos answered 200 with a body that is not JSON (")
    assert str(caught.value).endswith("); retry later")
