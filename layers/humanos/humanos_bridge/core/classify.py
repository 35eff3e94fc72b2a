"""Turn what came back from a Humanos call into the bridge's error taxonomy, in one place.

Pure functions, no I/O: a status code (with its body and ``Retry-After``) or a transport
exception becomes exactly one ``HumanosError`` subclass. The client raises what ``classify``
returns; handlers only route by class and ``retryable``.
"""

from __future__ import annotations

import email.utils
import http
import math
import re
import time
from datetime import UTC
from typing import Any

import urllib3.exceptions

from humanos_bridge.core import wire
from humanos_bridge.core.errors import (
    AmbiguousError,
    AuthenticationError,
    HumanosError,
    PermanentError,
    RetryableError,
    SerialisationError,
)
from humanos_bridge.core.masking import mask_text

#: Longest ``Retry-After`` we honour, in seconds. Larger values are clamped: a misconfigured proxy
#: must not park a message for hours. Callers still stop at their own deadline.
MAX_RETRY_AFTER_SECONDS = 300.0
#: Humanos messages longer than this are cut: an HTML error page is not a message.
MAX_MESSAGE_CHARS = 500

_DELTA_SECONDS = re.compile(r"\d{1,10}(?:\.\d{1,6})?")

# What a human should do about each permanent status.
_PERMANENT_HINTS: dict[int, str] = {
    400: "fix the mapping or the event that produced this body",
    402: "check the Humanos organisation's plan and billing",
    404: "check HUMANOS_BASE_URL and the path",
    409: "a conflicting request exists (possibly the same Idempotency-Key sent with a different body)",
    422: "fix the mapping or the event that produced this body",
}


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date.

    Returns None for a missing or unparseable header (garbage is ignored, not trusted), 0 for a
    date in the past, and at most ``MAX_RETRY_AFTER_SECONDS``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # "-0000" means UTC with no claim about local time (RFC 5322)
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def humanos_message(body: bytes) -> str | list[str] | None:
    """Humanos's own ``message`` from a NestJS error body, contacts masked; None when absent."""
    try:
        data = wire.loads(body) if body else None
    except SerialisationError:
        return None
    if not isinstance(data, dict):
        return None
    message = data.get("message")
    if isinstance(message, str):
        return _clip(mask_text(message))
    if isinstance(message, list):
        return [_clip(mask_text(str(item))) for item in message[:20]]
    return None


def classify(
    failure: int | BaseException,
    *,
    body: bytes = b"",
    retry_after: str | None = None,
    now: float | None = None,
) -> HumanosError:
    """The error for a failed call: an HTTP status (not 2xx) or the exception the transport raised.

    ================================================  ====================  =========
    failure                                           error                 retryable
    ================================================  ====================  =========
    401, 403                                          AuthenticationError   no (the client refreshes once on 401)
    429, 5xx                                          RetryableError        yes, ``retry_after`` from the header
    other 4xx, 1xx, 3xx                               PermanentError        no
    connection refused, DNS failure, connect timeout  RetryableError        yes (nothing was sent)
    read timeout, connection dropped, other transport AmbiguousError        yes (the request may have arrived)
    ================================================  ====================  =========
    """
    if isinstance(failure, BaseException):
        return _classify_exception(failure)
    return _classify_status(failure, body, retry_after, now)


def _classify_status(status: int, body: bytes, retry_after: str | None, now: float | None) -> HumanosError:
    message = humanos_message(body)
    said = _said(status, message)
    if status in (401, 403):
        hint = (
            "check apiKey and signatureSecret in the Humanos secret"
            if status == 401
            else "check that the API key may call this endpoint"
        )
        return AuthenticationError(f"{said}; {hint}", status=status, humanos_message=message)
    if status == 429 or 500 <= status <= 599:
        # 5xx stays plainly retryable: Humanos answered, so the request did arrive, but a 5xx means it
        # failed; a POST is only repeated with an Idempotency-Key anyway.
        wait = parse_retry_after(retry_after, now=now)
        when = f"retry after {wait:g} s" if wait is not None else "retry later"
        return RetryableError(f"{said}; {when}", status=status, humanos_message=message, retry_after=wait)
    if 300 <= status <= 399:
        hint = "Humanos does not redirect API calls; check HUMANOS_BASE_URL"
        return PermanentError(f"{said}; {hint}", status=status, humanos_message=message)
    hint = _PERMANENT_HINTS.get(status, "a human must look; retrying will not help")
    return PermanentError(f"{said}; {hint}", status=status, humanos_message=message)


def _classify_exception(exc: BaseException) -> HumanosError:
    # Order matters: NameResolutionError < NewConnectionError < ConnectTimeoutError in urllib3 2.x.
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return RetryableError(
            "could not connect to Humanos (connection refused, DNS failure or connect timeout); "
            "nothing was sent, retry later",
            details={"transport": type(exc).__name__},
        )
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return AmbiguousError(
            "Humanos did not answer within the read timeout; the request may have been processed: "
            "retry with the same Idempotency-Key or look it up by internalId",
            details={"transport": type(exc).__name__},
        )
    if isinstance(exc, urllib3.exceptions.LocationValueError):
        return PermanentError(
            "the Humanos URL is not valid; check HUMANOS_BASE_URL", details={"transport": type(exc).__name__}
        )
    if isinstance(exc, (urllib3.exceptions.SSLError, urllib3.exceptions.ProxyError)):
        # TLS and proxy failures happen while connecting, before the request is written.
        return RetryableError(
            "could not reach Humanos (TLS or proxy failure); nothing was sent, retry later",
            details={"transport": type(exc).__name__},
        )
    # ProtocolError (connection reset or closed without an answer), IncompleteRead and anything else:
    # we cannot prove the request was not received, so say so.
    return AmbiguousError(
        "the connection to Humanos dropped before a complete answer; the request may have been processed: "
        "retry with the same Idempotency-Key or look it up by internalId",
        details={"transport": type(exc).__name__},
    )


def _said(status: int, message: str | list[str] | None) -> str:
    try:
        phrase = f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        phrase = str(status)
    if message is None or message == []:
        return f"Humanos answered {phrase}"
    text = message if isinstance(message, str) else "; ".join(message)
    return f"Humanos answered {phrase}: {text}"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def parse_success(status: int, body: bytes, *, may_have_taken_effect: bool) -> Any:
    """The JSON of a 2xx answer; None for an empty body.

    A 2xx whose body is not JSON raises AmbiguousError when the call may have taken effect (POST,
    DELETE, ...), RetryableError when it cannot have (GET). Not permanent: a garbled success is
    almost always a proxy or a truncated answer, which a repeat fixes; and the client only repeats
    a call that is safe or carries an Idempotency-Key, so a repeat cannot create a second request.
    """
    if not body.strip():
        return None
    try:
        return wire.loads(body)
    except SerialisationError as exc:
        raise malformed_success(status, f"a body that is not JSON ({exc.message})", may_have_taken_effect) from exc


def malformed_success(status: int, what: str, may_have_taken_effect: bool) -> RetryableError:
    """The error for a 2xx answer that does not have the expected shape (see ``parse_success``)."""
    if may_have_taken_effect:
        return AmbiguousError(
            f"Humanos answered {status} with {what}; the request may have been processed: "
            "retry with the same Idempotency-Key or look it up by internalId",
            status=status,
        )
    return RetryableError(f"Humanos answered {status} with {what}; retry later", status=status)
