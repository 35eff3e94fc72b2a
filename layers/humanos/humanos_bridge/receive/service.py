"""The receiver: a Humanos webhook in, one event on the bus out, every step in order.

=====  ==================================================================  =========================
step   check                                                               refused with
=====  ==================================================================  =========================
1      the body fits (``MAX_WEBHOOK_BYTES``), before any HMAC runs          413
2      ``x-timestamp`` / ``x-signature`` against every active signature    401 (one body for every
       secret, within the tolerance both ways                              cause; the log says which)
3      the envelope ``{iv, data, tag}`` and its decryption                 400 (nothing published)
4      the event's shape for its ``api_version``                           422 (it is Humanos's, signed
                                                                           and decrypted: our model
                                                                           disagrees, the log says how)
5      a copy of an event already published                                200, nothing published
       (a copy whose first is still being published)                       503 + Retry-After
6      ``PutEvents`` (an exception, or a failed entry)                     503 + Retry-After: Humanos
                                                                           retries, and the claim is
                                                                           released so the retry publishes
-      the webhook secret unreadable or malformed (the operator's)         503 + Retry-After 60
-      configuration errors                                                500
-      a bug of ours (``outcomes.classify_failure``: retryable)             503 + Retry-After
=====  ==================================================================  =========================

A published event answers 200 ``{"status": "published"}``. Bodies are generic; the log line says what
failed and why, masked. Contacts, identity data, payloads and secrets are never logged. Every failure is
answered through ``webhook_outcome``, the one table (``outcomes.http_outcome`` for the shared kinds).

Once an ``otp.failed`` event is published (and only then: a replay or a failure resends nothing), the
``OtpResender``, when the mapping gives any source ``onOtpFailed`` resend, may call its ``otp.resendEndpoint``
(``otp_resend``). Whatever that comes to, the answer stays 200: the event is on the bus.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from humanos_bridge.core.errors import ReplayOfAnswered
from humanos_bridge.core.http_request import InboundRequest, PayloadTooLargeError
from humanos_bridge.core.masking import safe_id
from humanos_bridge.core.outcomes import HttpOutcome, Reply, classify_failure, http_outcome
from humanos_bridge.core.signing import DEFAULT_TOLERANCE_SECONDS
from humanos_bridge.receive.decryption import DecryptionError, EnvelopeError, decrypt, parse_envelope
from humanos_bridge.receive.dedup import Deduplicator, dedup_key
from humanos_bridge.receive.events import WebhookEvent, WebhookEventError, parse_event
from humanos_bridge.receive.origin import Origin, OriginIndex
from humanos_bridge.receive.publish import Publisher
from humanos_bridge.receive.webhook_auth import verify_webhook
from humanos_bridge.receive.webhook_secret import WebhookSecrets

if TYPE_CHECKING:
    # Imported by wiring only when a source resends: it loads the Humanos HTTP client.
    from humanos_bridge.receive.otp_resend import OtpResender

#: Larger bodies are refused before any HMAC. An envelope's plaintext is 3/4 of it, so the published detail
#: (the payload and a few identifiers) stays inside EventBridge's 256 KB entry.
MAX_WEBHOOK_BYTES = 256 * 1024
PUBLISHED, REPLAYED, REJECTED, FAILED = "published", "replayed", "rejected", "failed"

#: The receiver's own failures and their answers; everything else is ``outcomes.http_outcome``'s.
_OWN_OUTCOMES: tuple[tuple[type[Exception], int, str], ...] = (
    (EnvelopeError, 400, "the webhook body is not an envelope this receiver can read"),
    (DecryptionError, 400, "the webhook body could not be decrypted"),
    (WebhookEventError, 422, "the decrypted webhook is not an event this receiver accepts"),
)


def webhook_outcome(exc: BaseException) -> HttpOutcome:
    """The HTTP answer for any exception raised while handling a webhook (the table in the module docstring)."""
    for kind, status, message in _OWN_OUTCOMES:
        if isinstance(exc, kind):
            failure = classify_failure(exc)  # the reason masked and bounded, as every logged reason
            return HttpOutcome(status, failure.code, message, reason=failure.reason)
    return http_outcome(exc)


class SecretSource(Protocol):
    """Anything that hands out the current webhook secrets (``WebhookSecretStore``, ``StaticWebhookSecrets``)."""

    def get(self) -> WebhookSecrets: ...


@dataclass
class _Trail:
    """What one webhook did, gathered as it goes, for its log line and metrics."""

    started: float
    outcome: str = FAILED
    event: WebhookEvent | None = None
    key: str | None = None
    origin: Origin | None = None
    failure: HttpOutcome | None = None


class ReceiverService:
    """Verifies, decrypts, deduplicates and publishes Humanos webhooks. Build once per container.

    Parameters
    ----------
    secrets
        The webhook secrets (signature secrets, encryption secret and salt).
    publisher
        Puts events on the bus.
    dedup
        Remembers published events in the idempotency table.
    origins
        Reads the business event behind an internalId (an empty index recovers nothing).
    tolerance
        Accepted clock skew of ``x-timestamp``, seconds, both directions.
    resender
        Resends one-time codes after ``otp.failed`` events, for the sources whose mapping asks; None: never.
    """

    def __init__(
        self,
        secrets: SecretSource,
        publisher: Publisher,
        dedup: Deduplicator,
        *,
        origins: OriginIndex | None = None,
        tolerance: float = DEFAULT_TOLERANCE_SECONDS,
        resender: OtpResender | None = None,
        logger: Logger | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        max_body_bytes: int = MAX_WEBHOOK_BYTES,
    ) -> None:
        self.secrets = secrets
        self.publisher = publisher
        self.dedup = dedup
        self.origins = origins or OriginIndex({})
        self.tolerance = tolerance
        self.resender = resender
        self.logger = logger or Logger(child=True)
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self._clock = clock

    def handle_webhook(self, request: InboundRequest) -> Reply:
        """``POST /humanos/webhooks``: 200 once the event is on the bus (or was before), else the table's answer."""
        trail = _Trail(time.perf_counter())
        reply = self._answer(request, trail)
        if trail.outcome == PUBLISHED and trail.event is not None and self.resender is not None:
            # After the webhook's own log line and metrics: publishing was the first duty, and is done.
            self.resender.after_published(trail.event, trail.origin, trail.key)
        return reply

    def _answer(self, request: InboundRequest, trail: _Trail) -> Reply:
        try:
            self._publish_once(request, trail)
            trail.outcome = PUBLISHED
            return Reply(200, {"status": PUBLISHED})
        except ReplayOfAnswered:  # Humanos's retry of an event already on the bus: the same 200, nothing published
            trail.outcome = REPLAYED
            return Reply(200, {"status": REPLAYED})
        except Exception as exc:  # every failure is answered through the one table
            outcome = trail.failure = webhook_outcome(exc)
            trail.outcome = REJECTED if outcome.status < 500 else FAILED
            return Reply(outcome.status, outcome.body, outcome.headers)
        finally:
            self._report(trail)

    def _publish_once(self, request: InboundRequest, trail: _Trail) -> None:
        if request.problem is not None:
            raise request.problem
        if len(request.body) > self.max_body_bytes:
            raise PayloadTooLargeError(
                f"webhook body is {len(request.body)} bytes; the limit is {self.max_body_bytes}",
                details={"limit": self.max_body_bytes},
            )
        secrets = self.secrets.get()
        verify_webhook(
            request.headers, request.body, secrets.signature_secrets, tolerance=self.tolerance, now=self._clock()
        )
        plaintext = decrypt(parse_envelope(request.body), secrets.encryption_secret, secrets.encryption_salt)
        event = trail.event = parse_event(plaintext)
        key = trail.key = dedup_key(event)
        origin = trail.origin = self.origins.origin_of(event.internal_id)
        if origin is not None and origin.event_id:
            # The business event's id: this line joins the ingest and dispatcher lines of the event it answers.
            self.logger.set_correlation_id(safe_id(origin.event_id))
        claim = self.dedup.claim(key)
        try:
            event_id = self.publisher.publish_event(event, key, origin)
        except BaseException:
            self.dedup.release(claim)  # so that Humanos's retry publishes
            raise
        self.dedup.published(claim, event_id)

    # -- logs and metrics -------------------------------------------------------------------------

    def _report(self, trail: _Trail) -> None:
        elapsed_ms = (time.perf_counter() - trail.started) * 1000
        fields: dict[str, Any] = {"route": "webhooks", "outcome": trail.outcome, "latencyMs": round(elapsed_ms, 2)}
        event = trail.event
        if event is not None:
            # Identifiers only: never the contact, the identity data or the payload.
            fields.update(
                eventType=event.event_type,
                detailType=event.detail_type,
                apiVersion=safe_id(event.api_version, mask=False),  # a date, not a phone number
                requestId=safe_id(event.request_id, mask=False),  # Humanos's id, not a phone number
                internalId=safe_id(event.internal_id),
                webhookKey=trail.key,
            )
        failure = trail.failure
        if failure is not None:
            fields.update(status=failure.status, cause=failure.code, reason=failure.reason)
            level = "error" if failure.status >= 500 else "warning"
        else:
            level = "info"
        getattr(self.logger, level)(f"webhook {trail.outcome}", extra=fields)
        if self.metrics is not None:
            name = {
                PUBLISHED: "WebhooksPublished",
                REPLAYED: "WebhooksReplayed",
                REJECTED: "WebhooksRejected",
                FAILED: "WebhooksFailed",
            }[trail.outcome]
            self.metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
            self.metrics.add_metric(name="WebhookLatency", unit=MetricUnit.Milliseconds, value=elapsed_ms)
