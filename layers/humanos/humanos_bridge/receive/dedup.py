"""Each Humanos event is published once, though Humanos retries and sends no event id.

The key
-------
SHA-256 of the event type, the request id, the credential id, the decision date and a SHA-256 of the
user's contact (the contact itself is never stored). An event with no decision date (``otp.failed`` and
``test`` from 2026-05-17) has nothing else that tells two of its kind apart, so a SHA-256 of its whole
decrypted payload stands in for the date: Humanos's retry re-encrypts the same event (a new IV, the same
plaintext), so it is still the same key. The key also goes out with the event (``detail.webhookKey``), so a
consumer can recognise the rare duplicate the window below lets through.

The order: claim, publish, mark
-------------------------------
The claim is the replay guard's (``replays.ReplayGuard``, one item in the idempotency table, written with a
condition, on the ``events`` route's rules), so exactly one of two concurrent copies goes on:

1. **claim** the key, "in progress" for ``replays.IN_PROGRESS_SECONDS`` (longer than the receiver's
   Timeout). A copy that finds the key published answers 200 and publishes nothing; one that finds it
   in progress answers 503 (Humanos retries later);
2. **publish** to EventBridge;
3. **mark** the claim published; or, when publishing failed, **release** it (delete), so the retry that
   Humanos makes after our 5xx publishes.

A crash between 1 and 2, or a release that fails, leaves a claim "in progress": after IN_PROGRESS_SECONDS
the next retry takes it over and publishes, so no event is lost. The one window left is after 2 and
before 3: the event is on the bus, but an invocation that dies then (timeout, crash), or whose mark is not
written and whose 200 does not reach Humanos, lets a retry after IN_PROGRESS_SECONDS publish it again. (A
``PutEvents`` whose answer is lost in transit is the same: EventBridge has no idempotency key.) A
duplicate, never a loss, and it carries the same ``webhookKey``.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from humanos_bridge.core.replays import EVENTS, Claim, ReplayGuard
from humanos_bridge.core.sender_auth import SignedDelivery
from humanos_bridge.receive.events import WebhookEvent

#: The replay guard's scheme and sender for Humanos webhooks: their claims never meet an ingest delivery's.
SCHEME, SENDER = "humanos-webhook", "humanos"
#: The claim's status once the event is on the bus.
PUBLISHED = "published"
#: How long a published key is remembered: Humanos's retry schedule is undocumented, so as long as the
#: bridge's own idempotency records.
DEFAULT_TTL_SECONDS = 15 * 24 * 3600


def dedup_key(event: WebhookEvent) -> str:
    """The stable key of one Humanos event (hex SHA-256)."""
    contact = _sha256(event.contact.encode("utf-8", "surrogatepass")) if event.contact else ""
    parts = [event.event_type, event.request_id or "", event.credential_id or "", event.decision_date or "", contact]
    if event.decision_date is None:
        canonical = json.dumps(event.payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        parts.append(_sha256(canonical.encode("ascii")))
    return _sha256("\0".join(parts).encode("utf-8", "surrogatepass"))


class Deduplicator:
    """Claims, marks and releases webhook keys in the idempotency table.

    Parameters
    ----------
    guard
        The replay guard on the idempotency table (``ReplayGuard.beside`` a ledger, or built on a client).
    ttl_seconds
        How long a key is remembered.
    """

    def __init__(
        self, guard: ReplayGuard, *, ttl_seconds: int = DEFAULT_TTL_SECONDS, clock: Callable[[], float] = time.time
    ) -> None:
        self.guard = guard
        self.ttl_seconds = ttl_seconds
        self._clock = clock

    @classmethod
    def in_table(
        cls, dynamodb: Any, table: str, *, ttl_seconds: int = DEFAULT_TTL_SECONDS, logger: Logger | None = None
    ) -> Deduplicator:
        """A deduplicator on the idempotency table ``table`` (Powertools' ``id`` key and ``expiration`` TTL)."""
        return cls(ReplayGuard(dynamodb, table, logger=logger), ttl_seconds=ttl_seconds)

    def claim(self, key: str) -> Claim:
        """Hold ``key`` for this invocation.

        Raises ``ReplayOfAnswered`` when it is published already (its ``event_id`` is the EventBridge event id),
        ``DeliveryInProgress`` while another invocation holds it.
        """
        delivery = SignedDelivery(SCHEME, key, int(self._clock()) + self.ttl_seconds)
        return self.guard.admit(delivery, sender=SENDER, route=EVENTS)

    def published(self, claim: Claim, event_id: str) -> None:
        """The event is on the bus as ``event_id``: later copies are replays. Never raises (see the module's window)."""
        self.guard.settle(claim, succeeded=True, event_id=event_id, status=PUBLISHED)

    def release(self, claim: Claim) -> None:
        """Publishing failed: the next copy publishes. Never raises (a claim left behind expires, see above)."""
        self.guard.settle(claim, succeeded=False)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
