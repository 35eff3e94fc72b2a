"""Exactly one Humanos request per business event, across redeliveries, crashes and both routes.

Three layers, each closing a window the one before leaves open:

1. **Our idempotency record** (Powertools Idempotency on DynamoDB), keyed on the mapping's
   idempotency key. A completed record answers every later delivery without calling Humanos.
   The dispatcher and the ingest function's synchronous route share it (one key prefix), so an
   event sent both ways still becomes one request.
2. **Humanos's ``Idempotency-Key``**, the same on every attempt. If we crash after Humanos
   created the request but before our record says so, the record stays "in progress" only until
   the invocation's deadline (the Lambda context is registered); the next delivery calls Humanos
   again with the same key and gets the first answer back.
3. **A look-up by ``internalId``** before creating again when an earlier attempt may have reached
   Humanos (a redelivered message), for the case where Humanos no longer remembers the key.

What remains: a request created at Humanos whose key Humanos forgot *and* whose mapping sets no
``internalId`` could be created twice after a crash in the few milliseconds between Humanos's
answer and our record's update. Mappings default ``internalId`` to the event id to close it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from humanos_bridge import wire
from humanos_bridge.client import HumanosClient
from humanos_bridge.mapping import MappedRequest
from humanos_bridge.masking import mask_contact

#: Shared by every function, so the dispatcher and the synchronous route see the same records.
KEY_PREFIX = "humanos-request"
#: Tolerated difference between our clock and Humanos's when comparing creation times.
CLOCK_SKEW_MS = 5 * 60 * 1000
#: Records outlive the dead-letter queue's 14-day retention: a redrive never creates twice.
DEFAULT_TTL_SECONDS = 15 * 24 * 3600


@dataclass(frozen=True)
class Delivery:
    """How an event's request came to exist."""

    request_id: str | None
    #: Humanos's status for a fresh creation (201); 200 when found or replayed.
    status: int
    #: Answered from our record: Humanos was not called again.
    duplicate: bool
    #: Found at Humanos by internalId after an earlier, ambiguous attempt.
    recovered: bool
    #: Humanos's answer, with contacts masked (it is stored in the idempotency table).
    response: dict[str, Any]

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Delivery:
        return cls(
            request_id=record.get("requestId"),
            status=int(record.get("status", 200)),
            duplicate=bool(record.get("duplicate", False)),
            recovered=bool(record.get("recovered", False)),
            response=dict(record.get("response") or {}),
        )


class ExactlyOnce:
    """Sends a mapped request to Humanos at most once per idempotency key."""

    def __init__(
        self,
        client: HumanosClient,
        persistence: BasePersistenceLayer,
        *,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
    ) -> None:
        self.client = client
        self.config = IdempotencyConfig(
            event_key_jmespath="key",
            # The same key with another body means the event changed under the same id: refuse.
            payload_validation_jmespath="bodyHash",
            expires_after_seconds=ttl_seconds,
            response_hook=_mark_duplicate,
        )
        # Configure now, in one thread: Powertools configures lazily on first call, which races
        # when the first calls come from several worker threads at once.
        persistence.configure(self.config, key_prefix=KEY_PREFIX)
        self._send_once = idempotent_function(
            self._create,
            data_keyword_argument="task",
            persistence_store=persistence,
            config=self.config,
            key_prefix=KEY_PREFIX,
        )

    def register_context(self, context: LambdaContext | None) -> None:
        """In-progress records then expire with the invocation, so a crashed one never blocks an event."""
        if context is not None:
            self.config.register_lambda_context(context)

    def send(
        self,
        mapped: MappedRequest,
        *,
        may_have_been_sent: bool,
        first_seen_ms: int | None = None,
    ) -> Delivery:
        """Create the request unless this event already has one.

        ``may_have_been_sent`` is true for redeliveries: look the request up by internalId first.
        ``first_seen_ms`` (when the event was first queued) tells an earlier attempt's request from an
        older request that shares a custom internalId.
        """
        task = {"key": mapped.idempotency_key, "bodyHash": body_hash(mapped.body)}
        record = self._send_once(
            task=task,
            mapped=mapped,
            may_have_been_sent=may_have_been_sent,
            first_seen_ms=first_seen_ms,
        )
        return Delivery.from_record(record)

    def _create(
        self,
        *,
        task: dict[str, str],
        mapped: MappedRequest,
        may_have_been_sent: bool,
        first_seen_ms: int | None,
    ) -> dict[str, Any]:
        if may_have_been_sent and mapped.internal_id:
            found = [r for r in self.client.find_requests(mapped.internal_id) if _same_event(r, mapped, first_seen_ms)]
            if found:
                return {
                    "requestId": found[0].get("id"),
                    "status": 200,
                    "recovered": True,
                    "response": safe_response(found[0]),
                }
        response = self.client.create_request(mapped.body, mapped.idempotency_key)
        return {"requestId": response.request_id, "status": response.status, "response": safe_response(response.data)}


def _same_event(request: Any, mapped: MappedRequest, first_seen_ms: int | None) -> bool:
    """Is this request (found by internalId) the one an earlier attempt for this event created?

    The default internalId is the event id: unique per event, so any match is ours. A custom one
    (an employee id, say) may also name requests of older events: only a request created after
    this event was first queued (less clock skew) can be ours.
    """
    if not isinstance(request, dict):
        return False
    if mapped.internal_id == mapped.event_id:
        return True
    created = parse_time_ms(request.get("createdAt"))
    return first_seen_ms is not None and created is not None and created >= first_seen_ms - CLOCK_SKEW_MS


def parse_time_ms(value: Any) -> int | None:
    """An ISO-8601 time or epoch milliseconds, as Unix ms; None when absent or unreadable."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        try:
            return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            return None
    return None


def body_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(wire.dump_bytes(body)).hexdigest()


def safe_response(data: Any) -> dict[str, Any]:
    """Humanos's answer as we keep it: ids, credentials and subjects, contacts masked."""
    if not isinstance(data, dict):
        return {}
    kept: dict[str, Any] = {"id": data.get("id")}
    if isinstance(data.get("credentials"), list):
        kept["credentials"] = [
            {k: c.get(k) for k in ("id", "name", "internalId") if k in c}
            for c in data["credentials"]
            if isinstance(c, dict)
        ]
    if isinstance(data.get("subjects"), list):
        kept["subjects"] = [_safe_subject(s) for s in data["subjects"] if isinstance(s, dict)]
    return kept


def _safe_subject(subject: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {k: subject[k] for k in ("id", "code", "link") if k in subject}
    if isinstance(subject.get("contact"), str):
        kept["contact"] = mask_contact(subject["contact"])
    return kept


def _mark_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    # Called by Powertools only when it answers from a completed record.
    return {**response, "duplicate": True} if isinstance(response, dict) else response
