"""The bridge's error taxonomy: one root, a leaf per failure kind, with fields.

Every error says what failed and how to fix it, and never carries a secret, a signature,
an API key or a contact. Whether a failure is worth retrying is decided here, once:
handlers only route by ``retryable``.
"""

from __future__ import annotations

from typing import Any


class BridgeError(Exception):
    """Root of every error the bridge raises on purpose."""

    #: Stable machine-readable code, used in error bodies, metrics and DLQ attributes.
    code: str = "bridge_error"
    #: True when the same input may succeed later (network, throttling, Humanos 5xx).
    retryable: bool = False

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: Extra, non-sensitive context (paths, field names, statuses). Never contacts or secrets.
        self.details: dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return self.message


class ConfigError(BridgeError):
    """A setting, a config file or a secret's shape is wrong: fix the configuration."""

    code = "config_error"


class SerialisationError(BridgeError):
    """A value cannot be written as JSON the way Humanos re-serialises it."""

    code = "serialisation_error"


class SignatureError(BridgeError):
    """A signature or its timestamp did not verify. ``reason`` says which check failed (for logs)."""

    code = "signature_invalid"

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message, details={"reason": reason})
        self.reason = reason


class ReplayedDelivery(BridgeError):
    """The very delivery came before, within the tolerance window: it is not handled again.

    The same ``X-Timestamp`` and ``X-Signature``, or the same Standard Webhooks ``webhook-id``
    (see :mod:`humanos_bridge.core.replays`).
    """

    code = "replayed_delivery"


class ReplayOfAnswered(ReplayedDelivery):
    """A copy of a delivery the queue route answered: it gets that answer again, nothing is queued. Not a failure."""

    code = "replayed"

    def __init__(self, message: str, *, event_id: str | None, status: str) -> None:
        super().__init__(message)
        #: The first answer's ``eventId`` and ``status``.
        self.event_id = event_id
        self.status = status


class DeliveryInProgress(BridgeError):
    """The first copy of this delivery is still being handled: retry once it has been answered."""

    code = "delivery_in_progress"
    retryable = True


class CredentialsError(BridgeError):
    """The Humanos secret could not be read or is malformed.

    Retryable by default, like AuthenticationError: an operator's mistake makes events wait (and alarm)
    until it is fixed, never parks them.
    """

    code = "credentials_error"

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class MappingError(BridgeError):
    """A business event cannot become a Humanos request: fix the event or the mapping."""

    code = "mapping_error"

    def __init__(self, message: str, *, path: str | None = None, details: dict[str, Any] | None = None) -> None:
        merged = dict(details or {})
        if path:
            merged["path"] = path
        super().__init__(message, details=merged)
        self.path = path


class EventIgnored(BridgeError):
    """The source's mapping ignores this event type on purpose. Not a failure."""

    code = "ignored"


class HumanosError(BridgeError):
    """Humanos (or the way to it) answered with an error."""

    code = "humanos_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        humanos_message: str | list[str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        merged = dict(details or {})
        if status is not None:
            merged["status"] = status
        super().__init__(message, details=merged)
        self.status = status
        #: Humanos's own ``message`` (string or list), already masked of contacts.
        self.humanos_message = humanos_message


class RetryableError(HumanosError):
    """429, 5xx, timeouts, connection errors: the same call may succeed later."""

    code = "humanos_retryable"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        #: Seconds Humanos asked us to wait (``Retry-After``), when it said so.
        self.retry_after = retry_after


class AmbiguousError(RetryableError):
    """The request may or may not have reached Humanos (read timeout, dropped connection after sending)."""

    code = "humanos_ambiguous"


class AuthenticationError(HumanosError):
    """401/403: bad API key or signature, even after fetching the secret again.

    Retryable: it is the operator's to fix (a placeholder secret, a rotation gap), and until then
    events wait and the RetryableFailures alarm fires; parking them would need a redrive afterwards.
    """

    code = "humanos_auth"
    retryable = True


class PermanentError(HumanosError):
    """Other 4xx (400, 402, 404, 409...): a human must look; retrying will not help."""

    code = "humanos_rejected"


class UnknownSourceError(MappingError):
    """The event names a source the mapping file does not define: fix the sender or add the source."""

    code = "unknown_source"


class InvalidBodyError(MappingError):
    """The mapped body breaks Humanos's rules for the configured API version: fix the event or the mapping."""

    code = "invalid_body"
