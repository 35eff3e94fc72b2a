"""What a failure means for the message that caused it: the one table for retry or dead-letter.

Every exception that can end the handling of a business event goes through ``classify_failure``.
The dispatcher retries (with back-off) what is retryable and parks the rest in the dead-letter
queue; the ingest function turns the same classification into an HTTP status.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from humanos_bridge.core.errors import (
    AuthenticationError,
    BridgeError,
    CredentialsError,
    HumanosError,
    MappingError,
    PermanentError,
    ReplayedDelivery,
    RetryableError,
    SignatureError,
    UnknownSourceError,
)
from humanos_bridge.core.http_request import InvalidJsonError, PayloadTooLargeError, UnsupportedMediaTypeError
from humanos_bridge.core.masking import safe_id, safe_text

#: AWS error codes that mean "slow down" or "try later", never "this input is wrong".
AWS_RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "TransactionConflictException",
    }
)


class Failure(NamedTuple):
    """A classified failure: safe to log, to count and to attach to a dead-lettered message."""

    retryable: bool
    #: Stable code (``humanos_rejected``, ``mapping_error``, ``aws_throttled``, ...).
    code: str
    #: What went wrong, in its safe form (``masking.safe_text``): never a secret, a signature or a contact,
    #: never a control character or a lone surrogate quoted from the event, never unbounded.
    reason: str
    #: Humanos's HTTP status when Humanos answered.
    status: int | None = None
    #: Seconds Humanos (or our own rate limiter) asked us to wait.
    retry_after: float | None = None


def classify_failure(exc: BaseException) -> Failure:
    """Classify any exception raised while handling one business event."""
    if isinstance(exc, BridgeError):
        return Failure(
            retryable=exc.retryable,
            code=exc.code,
            # Messages quote identifiers the sender chose (an event type, an object key): shown safely, once, here.
            reason=safe_text(exc.message),
            status=exc.status if isinstance(exc, HumanosError) else None,
            retry_after=exc.retry_after if isinstance(exc, RetryableError) else None,
        )
    # Imported here: Powertools' idempotency module is not needed by every caller of this table.
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyPersistenceLayerError,
        IdempotencyValidationError,
    )

    if isinstance(exc, IdempotencyAlreadyInProgressError):
        return Failure(True, "in_progress", "another invocation is handling this event right now")
    if isinstance(exc, IdempotencyValidationError):
        return Failure(
            False,
            "idempotency_conflict",
            "an event with the same idempotency key but a different body was already handled",
        )
    if isinstance(exc, IdempotencyPersistenceLayerError):
        cause = exc.__cause__ or (exc.args[1] if len(exc.args) > 1 else None)
        if isinstance(cause, BaseException) and not isinstance(cause, IdempotencyPersistenceLayerError):
            inner = classify_failure(cause)
            return Failure(True, "idempotency_store_unavailable", f"idempotency table: {inner.reason}")
        return Failure(True, "idempotency_store_unavailable", "idempotency table could not be read or written")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        operation = exc.operation_name
        if code in AWS_RETRYABLE_CODES:
            return Failure(True, "aws_throttled", f"AWS {operation} answered {code}; will retry")
        # Access or configuration problems: retrying keeps the message until an operator fixes the
        # deployment; after maxReceiveCount SQS parks it in the dead-letter queue.
        return Failure(True, "aws_error", f"AWS {operation} answered {code}; check the function's permissions")
    if isinstance(exc, BotoCoreError):
        return Failure(True, "aws_unreachable", f"AWS call failed: {type(exc).__name__}")
    # A bug of ours. Retrying keeps the message (SQS parks it after maxReceiveCount); the type
    # name is logged, never the exception text, which could quote event data.
    return Failure(True, "internal_error", f"unexpected {type(exc).__name__}")


# --- HTTP: the ingest function's answers ---------------------------------------------------------

#: The one answer to every authentication failure, so a caller learns nothing about which check failed.
UNAUTHORIZED_MESSAGE = "request signature could not be verified"
#: The one answer to configuration errors and bugs: the details are in the log, not for the caller.
INTERNAL_MESSAGE = "the service could not handle the request; its operator must check the logs"
#: Retry-After for retryable failures that named no wait of their own (seconds).
DEFAULT_RETRY_AFTER_SECONDS = 5
#: Retry-After while the operator must fix our own credentials (a secret, a rotation gap): minutes, not seconds.
OPERATOR_RETRY_AFTER_SECONDS = 60
#: Detail keys that may reach an error body: paths, field names and limits, never event values.
SAFE_DETAIL_KEYS = frozenset({"path", "source", "rule", "errors", "limit", "maxDepth", "expected", "humanosStatus"})
#: Humanos's permanent statuses and what the synchronous route answers for each (anything else: 502).
HUMANOS_STATUS_MAP: dict[int, int] = {
    400: 422,  # Humanos refused the body the event became: the sender (or the mapping) must fix it
    422: 422,
    409: 409,  # a conflicting request exists, e.g. the same event id re-sent with different content
    402: 402,  # the Humanos organisation's plan or billing: retrying will not help
}


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, success or failure: status, JSON body and extra headers (each route's handler shapes it)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class HttpOutcome(NamedTuple):
    """How a failed request is answered: status, body ``{"error": {...}}``, headers, and what to log."""

    status: int
    #: Stable code in the body and the metric's ``cause`` dimension (a small, fixed set).
    code: str
    #: What the caller reads: masked, generic for 401 and 5xx.
    message: str
    details: dict[str, Any] | None = None
    #: Whole seconds for the ``Retry-After`` header (503 only).
    retry_after: int | None = None
    #: What the log says: the precise, masked reason (e.g. which signature check failed).
    reason: str = ""

    @property
    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


def http_outcome(exc: BaseException) -> HttpOutcome:
    """The HTTP answer for any exception raised while handling an inbound request.

    ==========================================  =====  =====================================
    failure                                     status body message
    ==========================================  =====  =====================================
    SignatureError (any reason)                 401    one generic message; reason only logged
    UnknownSourceError                          404    names the source
    ReplayedDelivery (``replays``)              409    precise: sign the event again
    payload_too_large / unsupported_media_type  413 /  precise
    / invalid_json (``http_request``)           415 /
                                                400
    MappingError, InvalidBodyError              422    precise, ``details.path``
    Humanos 400/422, 409, 402                   422,   Humanos's masked message
                                                409,
                                                402
    idempotency conflict (same key, new body)   409    precise
    other permanent Humanos answers             502    generic
    anything retryable (Humanos 429/5xx,        503    generic, ``Retry-After``
    timeouts, SQS/DynamoDB, in progress,
    a delivery's first copy in progress,
    our credentials refused (401/403) or a
    secret unreadable: the operator's to fix)
    config errors, bugs                         500    generic
    ==========================================  =====  =====================================
    """
    failure = classify_failure(exc)
    if isinstance(exc, SignatureError):
        return HttpOutcome(401, "unauthorized", UNAUTHORIZED_MESSAGE, reason=f"{exc.reason}: {failure.reason}")
    simple = {
        PayloadTooLargeError: 413,
        UnsupportedMediaTypeError: 415,
        InvalidJsonError: 400,
        UnknownSourceError: 404,
        ReplayedDelivery: 409,
    }
    for kind, status in simple.items():
        if isinstance(exc, kind):
            return HttpOutcome(status, failure.code, failure.reason, _safe_details(exc), reason=failure.reason)
    if isinstance(exc, MappingError):
        return HttpOutcome(422, failure.code, failure.reason, _safe_details(exc), reason=failure.reason)
    if failure.retryable:
        operator = isinstance(exc, AuthenticationError | CredentialsError)
        default_wait = OPERATOR_RETRY_AFTER_SECONDS if operator else DEFAULT_RETRY_AFTER_SECONDS
        wait = failure.retry_after if failure.retry_after is not None else default_wait
        seconds = max(1, math.ceil(wait))
        unavailable = isinstance(exc, HumanosError) and not operator
        what = "Humanos is unavailable" if unavailable else "the service cannot take the request now"
        return HttpOutcome(503, failure.code, f"{what}; retry after {seconds} s", None, seconds, failure.reason)
    if failure.code == "idempotency_conflict":
        return HttpOutcome(409, failure.code, failure.reason, reason=failure.reason)
    if isinstance(exc, PermanentError) and failure.status in HUMANOS_STATUS_MAP:
        details = {"humanosStatus": failure.status}
        return HttpOutcome(
            HUMANOS_STATUS_MAP[failure.status], failure.code, failure.reason, details, None, failure.reason
        )
    if isinstance(exc, HumanosError):
        # Our credentials refused, a wrong base URL, a redirect: the operator's problem, not the sender's.
        message = "Humanos refused the request for a reason the sender cannot fix; the operator must check the logs"
        return HttpOutcome(502, failure.code, message, reason=failure.reason)
    return HttpOutcome(500, "internal_error", INTERNAL_MESSAGE, reason=f"{failure.code}: {failure.reason}")


def _safe_details(exc: BaseException) -> dict[str, Any] | None:
    if not isinstance(exc, BridgeError):
        return None
    kept: dict[str, Any] = {}
    for key, value in exc.details.items():
        if key not in SAFE_DETAIL_KEYS:
            continue
        if isinstance(value, str):
            kept[key] = safe_id(value)  # a path, a source, a rule: identifiers
        elif isinstance(value, list):
            kept[key] = [safe_text(str(item)) for item in value]
        elif isinstance(value, int | float):
            kept[key] = value
    return kept or None
