"""What a failure means for the message that caused it: the one table for retry or dead-letter.

Every exception that can end the handling of a business event goes through ``classify_failure``.
The dispatcher retries (with back-off) what is retryable and parks the rest in the dead-letter
queue; the ingest function turns the same classification into an HTTP status.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from humanos_bridge.errors import BridgeError, HumanosError, RetryableError
from humanos_bridge.masking import mask_text

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


@dataclass(frozen=True)
class Failure:
    """A classified failure: safe to log, to count and to attach to a dead-lettered message."""

    retryable: bool
    #: Stable code (``humanos_rejected``, ``mapping_error``, ``aws_throttled``, ...).
    code: str
    #: What went wrong, masked: never a secret, a signature or a contact.
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
            reason=mask_text(exc.message),
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
