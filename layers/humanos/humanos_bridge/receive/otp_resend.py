"""``otp.failed``: resend the code when the source's mapping says so (``onOtpFailed``), at most N times.

Humanos sends ``otp.failed`` once every SMS provider has failed to deliver a one-time code; it has stopped
trying. The event is published like any other. Then, when the mapping's source behind the request (read back
from its internalId, ``receive.origin``) has ``"onOtpFailed": {"action": "resend", "maxResends": N}``, the
receiver calls the webhook's ``otp.resendEndpoint`` (a ``PATCH`` that sends a fresh code and invalidates the
old one). The checks run in this order: the contact, the endpoint's origin, the endpoint's contact, the Humanos
secret, the count; then the call. Each outcome is one log line and one metric:

=======================  ===================================================================  ===================
outcome                  when                                                                 metric
=======================  ===================================================================  ===================
(nothing, no line)       not ``otp.failed``, no source read back, or its action is ``none``   none
``not_a_phone``          the webhook's contact is not a ``+`` phone number (or, once the      OtpResendsSkipped
                         origin is checked, the endpoint's ``contact`` is an e-mail address):
                         codes by e-mail are never resent
``refused``              the endpoint is not on ``HUMANOS_BASE_URL``'s scheme, host and port  OtpResendsRefused
                         (``client.same_origin_path``), or not a URL: the signed call would
                         hand the API key to another host. Nothing is sent, nothing counted
``limit_reached``        N resends of this request's code to this contact were made already   OtpResendsSkipped
``failed``               the Humanos secret could not be read or the count written (nothing    OtpResendsFailed
                         is sent then, nothing counted), or the call failed (refused, 429,
                         5xx, timeout): sent once, never repeated
``sent``                 Humanos answered 2xx                                                 OtpResendsSent
=======================  ===================================================================  ===================

Counting: one item per Humanos request and contact in the idempotency table (``resend#<SHA-256 of the request
id and contact>``, the contact never stored), one conditional ``UpdateItem`` that adds one while fewer than N
are counted. It is taken *before* the call, so however webhooks interleave (two containers, Humanos's retries, a
replay published twice by the dedup window) at most N calls are ever made; a call that fails keeps its count,
because a 5xx or a timeout may have texted the person already.

A failed resend does not change the webhook's answer (200: the event is on the bus). Answering 503 would make
Humanos retry a delivery whose event is published: the retry is a replay (``dedup``), which publishes nothing
and would resend nothing either, since the count was taken. The ``OTP Failed`` event on the bus carries the
error code for whoever must reach the person another way; ``OtpResendsFailed`` tells the operator.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from urllib3.util import parse_url

from humanos_bridge.core.body_validation import normalise_contact
from humanos_bridge.core.client import ForeignEndpointError, same_origin_path
from humanos_bridge.core.ledger import digest
from humanos_bridge.core.masking import mask_contact, safe_id
from humanos_bridge.core.outcomes import classify_failure
from humanos_bridge.receive.events import OTP_FAILED, WebhookEvent
from humanos_bridge.receive.origin import Origin

if TYPE_CHECKING:
    from humanos_bridge.core.client import HumanosClient
    from humanos_bridge.mapping.model import OtpFailedPolicy

SENT, FAILED, REFUSED, LIMIT_REACHED, NOT_A_PHONE = "sent", "failed", "refused", "limit_reached", "not_a_phone"
#: The metric each outcome counts (``service`` dimension, as the receiver's other metrics).
METRICS = {
    SENT: "OtpResendsSent",
    FAILED: "OtpResendsFailed",
    REFUSED: "OtpResendsRefused",
    LIMIT_REACHED: "OtpResendsSkipped",
    NOT_A_PHONE: "OtpResendsSkipped",
}
_LEVELS = {SENT: "info", LIMIT_REACHED: "warning", NOT_A_PHONE: "warning", REFUSED: "error", FAILED: "error"}
#: Prefix of the counters' ids in the idempotency table, beside ``delivery#``, ``attempt#``, ``claim#``, ``uses#``.
RESEND = "resend#"
_COUNT = "resends"


class ResendBudget:
    """Resend calls per Humanos request and contact, counted in the idempotency table.

    Parameters
    ----------
    dynamodb
        A DynamoDB client (the receiver's, which may ``UpdateItem`` on the table).
    table
        The idempotency table (``id`` key, ``expiration`` TTL, as Powertools' records).
    ttl_seconds
        How long a count is kept after its latest resend.
    """

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        ttl_seconds: int,
        key_attr: str = "id",
        expiry_attr: str = "expiration",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.ttl_seconds = ttl_seconds
        self.key_attr = key_attr
        self.expiry_attr = expiry_attr
        self._clock = clock

    def take(self, request_id: str, contact: str, limit: int) -> int | None:
        """Count one more resend for ``contact`` in ``request_id``: its number (1 to ``limit``), or None when
        ``limit`` were counted already. Atomic: of racing callers, exactly ``limit`` ever get a number."""
        expires = int(self._clock()) + self.ttl_seconds
        try:
            answer = self.dynamodb.update_item(
                TableName=self.table,
                Key={self.key_attr: {"S": RESEND + digest(f"{request_id}\0{contact}")}},
                UpdateExpression="SET #count = if_not_exists(#count, :zero) + :one, #expiry = :expiry",
                ConditionExpression="attribute_not_exists(#count) OR #count < :limit",
                ExpressionAttributeNames={"#count": _COUNT, "#expiry": self.expiry_attr},
                ExpressionAttributeValues={
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":expiry": {"N": str(expires)},
                },
                ReturnValues="UPDATED_NEW",
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return None
        return int(answer["Attributes"][_COUNT]["N"])


@dataclass(frozen=True)
class Resend:
    """What one ``otp.failed`` webhook's resend came to (None from ``after_published``: nothing to do)."""

    outcome: str
    source: str
    #: This resend's number (1 to ``limit``), once counted.
    number: int | None = None
    limit: int = 0
    #: Humanos's HTTP status, when it answered.
    status: int | None = None
    cause: str | None = None
    reason: str | None = None


class OtpResender:
    """Resends one-time codes for the sources whose mapping asks for it. Build once per container.

    Parameters
    ----------
    policies
        Source name -> its ``onOtpFailed`` policy; sources not listed never resend.
    budget
        Counts resends per request and contact.
    client
        Signs and sends the ``PATCH``; its ``base_url`` is the one origin an endpoint may be on. Reading its
        credentials happens on the first resend, so a container that never resends never reads the secret.
    """

    def __init__(
        self,
        policies: Mapping[str, OtpFailedPolicy],
        budget: ResendBudget,
        client: HumanosClient,
        *,
        logger: Logger | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.policies = dict(policies)
        self.budget = budget
        self.client = client
        self.logger = logger or Logger(child=True)
        self.metrics = metrics

    def after_published(self, event: WebhookEvent, origin: Origin | None, webhook_key: str | None) -> Resend | None:
        """Resend ``event``'s code when its source's policy says so. Never raises: the event is published, and
        nothing here may change the webhook's answer."""
        policy = self.policies.get(origin.source) if origin is not None and event.event_type == OTP_FAILED else None
        if origin is None or policy is None:
            return None
        try:
            resend = self._resend(event, origin.source, policy.max_resends)
        except Exception as exc:  # a bug of ours: logged and counted as a failure, the webhook stays answered
            failure = classify_failure(exc)
            resend = Resend(FAILED, origin.source, limit=policy.max_resends, cause=failure.code, reason=failure.reason)
        self._report(resend, event, webhook_key)
        return resend

    def _resend(self, event: WebhookEvent, source: str, limit: int) -> Resend:
        endpoint = event.payload["otp"]["resendEndpoint"]  # required by events._otp_failed
        contact, request_id = event.contact or "", event.request_id or ""
        phone = normalise_contact(contact)
        if phone is None or not phone.startswith("+"):
            # Humanos sends otp.failed for SMS only; a code sent by e-mail is never resent, whatever the policy.
            return Resend(NOT_A_PHONE, source, limit=limit)
        try:
            same_origin_path(self.client.base_url, endpoint)  # checked before counting: a refusal uses no resend
        except ForeignEndpointError as exc:
            return Resend(REFUSED, source, limit=limit, cause=exc.code, reason=classify_failure(exc).reason)
        # Parsed as the client's pool parses it (it is a URL: the origin check just said so).
        named = [value for name, value in parse_qsl(parse_url(endpoint).query or "") if name == "contact"]
        if any("@" in value for value in named):
            return Resend(NOT_A_PHONE, source, limit=limit)
        try:
            # Read before counting (cached for the secret's TTL; the call reads it again): an unreadable secret
            # makes no call, so it must use no resend either.
            self.client.credentials.get()
        except Exception as exc:
            failure = classify_failure(exc)
            return Resend(FAILED, source, limit=limit, cause=failure.code, reason=f"nothing sent: {failure.reason}")
        try:
            number = self.budget.take(request_id, phone, limit)
        except Exception as exc:  # the table unreachable: without a count, no call (it could pass N)
            failure = classify_failure(exc)
            reason = f"resend not counted, so not sent: {failure.reason}"
            return Resend(FAILED, source, limit=limit, cause=failure.code, reason=reason)
        if number is None:
            return Resend(LIMIT_REACHED, source, limit=limit)
        try:
            response = self.client.resend_code(endpoint)
        except Exception as exc:
            failure = classify_failure(exc)
            return Resend(
                FAILED, source, number, limit, status=failure.status, cause=failure.code, reason=failure.reason
            )
        return Resend(SENT, source, number, limit, status=response.status)

    def _report(self, resend: Resend, event: WebhookEvent, webhook_key: str | None) -> None:
        # Identifiers only; the contact masked. Never the endpoint: its query names the contact.
        fields: dict[str, Any] = {
            "route": "webhooks",
            "resend": resend.outcome,
            "source": safe_id(resend.source),
            "requestId": safe_id(event.request_id, mask=False),
            "contact": mask_contact(event.contact) if event.contact else None,
            "webhookKey": webhook_key,
            "maxResends": resend.limit,
        }
        optional = {"resendNumber": resend.number, "status": resend.status, "cause": resend.cause}
        fields.update({name: value for name, value in optional.items() if value is not None})
        if resend.reason is not None:
            fields["reason"] = resend.reason
        getattr(self.logger, _LEVELS[resend.outcome])(f"otp resend {resend.outcome}", extra=fields)
        if self.metrics is not None:
            self.metrics.add_metric(name=METRICS[resend.outcome], unit=MetricUnit.Count, value=1)
