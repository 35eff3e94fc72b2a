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
3. **A look-up by ``internalId``** before creating again, for the case where Humanos no longer
   remembers the key. It runs whenever an earlier attempt for this event may have reached Humanos:
   the ledger's attempt item says so, whichever message, redrive or route made that attempt.

A request found by the look-up is taken as this event's only when it provably is (``_recover``):

- it was created no earlier than this event's first attempt (less the clock skew);
- no other event has claimed it: every request the bridge creates with a shared (custom) internalId,
  and every request it recovers, is claimed with a DynamoDB condition by the one event it belongs
  to, so two events never share a request (one with the default internalId can only be found by
  its own event's look-up);
- its internalId is unique to the event (the default internalId is the idempotency key), or, for a
  custom internalId that several events may share (an employee id), its content (contacts, name) is
  what this event's body asks for AND no rival could have made it (``_provably_ours``). A rival is
  another event with that internalId whose body differs but whose request would show the same
  contacts and name (another rule, other groups or documents), and which attempted a request around
  the same time: the ledger's ``uses#`` item, written before every ``POST`` and read after the listing,
  knows every such event. Events with the very same body (twins) are no obstacle: their requests are
  interchangeable, and when one twin took the other's, ``_reissue`` gives the other one.

Anything else is not provably ours, and a new request is created with the same Idempotency-Key: while
Humanos remembers the key it answers with this event's own request, whichever it is. A request of ours that
someone canceled at Humanos since is still taken (``Delivery.canceled_at`` says so): another would be a second
request for the event, undoing that cancel.

What remains:

- With ``internalId: null`` there is nothing to look up; a request whose key Humanos forgot could
  then be created twice after a crash in the few milliseconds between Humanos's answer and our
  record. Mappings default ``internalId`` to the idempotency key to close it.
- A rival about, a lost answer, and Humanos having forgotten the key: the event's first request
  cannot be told from the rival's, so a second one is created. A double, never a loss and never
  another event's request.
- ``ClaimConflict``: Humanos answers our own key with a request an event other than a twin claimed.
  The bridge never does this to itself; it takes a request created outside the bridge with our
  internalId, or clocks more than ``CLOCK_SKEW_MS`` apart. The event is parked, never acknowledged.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from humanos_bridge.core import wire
from humanos_bridge.core.body_validation import normalise_contact
from humanos_bridge.core.client import HumanosClient
from humanos_bridge.core.errors import BridgeError
from humanos_bridge.core.ledger import Ledger, Use, digest
from humanos_bridge.core.masking import mask_contact
from humanos_bridge.mapping import MappedRequest

#: Shared by every function, so the dispatcher and the synchronous route see the same records.
KEY_PREFIX = "humanos-request"
#: Tolerated difference between our clock and Humanos's when comparing creation times.
CLOCK_SKEW_MS = 5 * 60 * 1000
#: Humanos's Idempotency-Key for the second request of an event whose first one a twin took (``_reissue``).
REISSUE_SUFFIX = "#reissue"
#: Records outlive the dead-letter queue's 14-day retention: a redrive never creates twice.
DEFAULT_TTL_SECONDS = 15 * 24 * 3600


class Delivery(NamedTuple):
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
    #: A recovered request that someone had canceled at Humanos by then (``canceledAt``): nobody is asked for
    #: a code. It is still this event's only request: another would be a second one, undoing that cancel.
    canceled_at: str | None = None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Delivery:
        canceled_at = record.get("canceledAt")
        return cls(
            request_id=record.get("requestId"),
            status=int(record.get("status", 200)),
            duplicate=bool(record.get("duplicate", False)),
            recovered=bool(record.get("recovered", False)),
            response=dict(record.get("response") or {}),
            canceled_at=canceled_at if isinstance(canceled_at, str) else None,
        )


class InvocationEnding(BridgeError):
    """Too little of the invocation is left for the calls this event may still make: try it again later."""

    code = "invocation_ending"
    retryable = True


class ClaimConflict(BridgeError):
    """Humanos answered with a request another event owns: never acknowledged, parked for a human."""

    code = "request_owned_by_another_event"


class ExactlyOnce:
    """Sends a mapped request to Humanos at most once per idempotency key."""

    def __init__(
        self,
        client: HumanosClient,
        persistence: BasePersistenceLayer,
        *,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        ledger: Ledger | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.ledger = ledger or Ledger.beside(persistence, ttl_seconds=ttl_seconds)
        self._clock = clock
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

    def send(self, mapped: MappedRequest, *, calls_end_by: float | None = None) -> Delivery:
        """Create the request unless this event already has one.

        ``calls_end_by`` (Unix seconds) is when every call to Humanos must be over: a call that could
        still run then is not started (InvocationEnding), counting every call the event may still make.
        """
        task = {"key": mapped.idempotency_key, "bodyHash": body_hash(mapped.body)}
        record = self._send_once(task=task, mapped=mapped, calls_end_by=calls_end_by)
        return Delivery.from_record(record)

    def _create(self, *, task: dict[str, str], mapped: MappedRequest, calls_end_by: float | None) -> dict[str, Any]:
        key = mapped.idempotency_key
        # Only a shared (custom) internalId lets another event's look-up find this event's request. With the
        # default one (the key itself) no other event can, and two DynamoDB writes are saved per event.
        shared = mapped.internal_id is not None and mapped.internal_id != key
        self._guard(calls_end_by, calls=1)
        first_ms = int(self._clock() * 1000)
        earlier_ms = self.ledger.record_attempt(key)
        if shared:
            assert mapped.internal_id is not None
            shows, body = content_hashes(mapped.body)
            self.ledger.record_use(mapped.internal_id, key, shows=shows, body=body)  # before the POST: _recover
        if earlier_ms is not None and mapped.internal_id:
            first_ms = earlier_ms
            self._guard(calls_end_by, calls=2)  # the look-up, then perhaps the POST
            found = self._recover(mapped, earlier_ms, shared=shared)
            if found is not None:
                return _recovered(found)
            self._guard(calls_end_by, calls=1)
        response = self.client.create_request(mapped.body, key)
        if shared and response.request_id and not self.ledger.claim(response.request_id, key):
            return self._reissue(mapped, response.request_id, first_ms, calls_end_by)
        return {"requestId": response.request_id, "status": response.status, "response": safe_response(response.data)}

    def _recover(self, mapped: MappedRequest, earlier_ms: int, *, shared: bool) -> dict[str, Any] | None:
        """This event's request among those with its internalId, or None when none provably is."""
        assert mapped.internal_id is not None
        key = mapped.idempotency_key
        found = self.client.find_requests(mapped.internal_id)
        # Read after the listing: every event that could have made a listed request noted its use before
        # its POST, so it is among these.
        others = self._others(mapped.internal_id, key, earlier_ms) if shared else []
        unclaimed = []
        for request in found:
            created = parse_time_ms(request.get("createdAt"))
            if not isinstance(request.get("id"), str) or (created is not None and created < earlier_ms - CLOCK_SKEW_MS):
                continue  # older than this event's first attempt: another event's
            owned = self.ledger.owned_by(request["id"], key)
            if owned:
                return request  # claimed by this event before its record was saved
            if owned is None and (not shared or _provably_ours(request, mapped, others)):
                unclaimed.append(request)
        for request in unclaimed:
            if self.ledger.claim(request["id"], key):
                return request
        return None

    def _others(self, internal_id: str, key: str, earlier_ms: int) -> list[Use]:
        """The other events that attempted a request with this shared internalId recently enough to have made
        one that passes the creation-time test. An attempt starts before its request is created, by at most
        the call deadline, with up to CLOCK_SKEW_MS between any two clocks (ours, another container's,
        Humanos's) on each side."""
        since_ms = earlier_ms - 3 * CLOCK_SKEW_MS - int(self.client.policy.deadline * 1000)
        mine = digest(key)
        return [use for event, use in self.ledger.uses(internal_id).items() if event != mine and use.at_ms >= since_ms]

    def _reissue(
        self, mapped: MappedRequest, taken_id: str, first_ms: int, calls_end_by: float | None
    ) -> dict[str, Any]:
        """Humanos answered this event's own Idempotency-Key with a request another event has claimed.

        When that event has this very body (a twin), it took this request by content, as it may: the
        requests of twins are interchangeable. The twin's own request, left unclaimed, or else a new one
        (under a second, stable Idempotency-Key) is then this event's. Anything else needs a human.
        """
        assert mapped.internal_id is not None
        owner = self.ledger.claimant(taken_id)
        twin = self.ledger.uses(mapped.internal_id).get(owner or "")
        if twin is None or twin.body != content_hashes(mapped.body)[1]:
            raise ClaimConflict(
                f"Humanos answered with request {taken_id}, which another event of this bridge owns; "
                "check both events' idempotency keys in the mapping"
            )
        self._guard(calls_end_by, calls=2)
        found = self._recover(mapped, first_ms, shared=True)
        if found is not None:
            return _recovered(found)
        self._guard(calls_end_by, calls=1)
        response = self.client.create_request(mapped.body, mapped.idempotency_key + REISSUE_SUFFIX)
        if response.request_id and not self.ledger.claim(response.request_id, mapped.idempotency_key):
            raise ClaimConflict(
                f"Humanos answered with request {response.request_id}, which another event of this bridge owns; "
                "check both events' idempotency keys in the mapping"
            )
        return {"requestId": response.request_id, "status": response.status, "response": safe_response(response.data)}

    def _guard(self, calls_end_by: float | None, *, calls: int) -> None:
        if calls_end_by is None:
            return
        needed = calls * self.client.policy.deadline
        if calls_end_by - self._clock() < needed:
            raise InvocationEnding(
                f"too little time left in this invocation for {calls} Humanos call(s) of up to "
                f"{self.client.policy.deadline:g} s each; the event is retried"
            )


def _recovered(request: dict[str, Any]) -> dict[str, Any]:
    recovered = {"requestId": request.get("id"), "status": 200, "recovered": True, "response": safe_response(request)}
    if isinstance(request.get("canceledAt"), str):
        recovered["canceledAt"] = request["canceledAt"]  # kept in the record: a duplicate delivery reports it too
    return recovered


def _provably_ours(request: dict[str, Any], mapped: MappedRequest, others: list[Use]) -> bool:
    """May an unclaimed request found by a shared internalId be taken as this event's?

    Only when it shows this event's content and no other event with ANOTHER body could have made a request
    that shows the same: such a rival (another rule with the same contacts and name, other groups) makes
    content prove nothing. Events with this very body (twins) are no obstacle: their requests are
    interchangeable, and ``_reissue`` gives the twin another one.
    """
    if not _built_from(request, mapped):
        return False
    shows, body = content_hashes(mapped.body)
    shows_all = isinstance(request.get("subjects"), list) and "name" in request
    return not any(use.body != body and (use.shows == shows or not shows_all) for use in others)


def _built_from(request: dict[str, Any], mapped: MappedRequest) -> bool:
    """Does a request found by a shared (custom) internalId carry this event's content?

    Compared on what Humanos's answer repeats from the body: the contacts (normalised) and the name.
    A field Humanos's answer does not show cannot tell two events apart and is not compared.
    """
    ours = {normalise_contact(c) or c for c in _body_contacts(mapped.body)}
    subjects = request.get("subjects")
    if isinstance(subjects, list):
        theirs = {
            normalise_contact(s["contact"]) or s["contact"]
            for s in subjects
            if isinstance(s, dict) and isinstance(s.get("contact"), str)
        }
        if theirs != ours:
            return False
    name = mapped.body.get("name")
    return not ("name" in request and name is not None and request.get("name") != name)


def _body_contacts(body: dict[str, Any]) -> list[str]:
    """The contacts of a body in any API version (``contacts`` up to 2026-05-17, ``users[].contact`` after)."""
    if isinstance(body.get("contacts"), list):
        return [c for c in body["contacts"] if isinstance(c, str)]
    users = body.get("users")
    if isinstance(users, list):
        return [u["contact"] for u in users if isinstance(u, dict) and isinstance(u.get("contact"), str)]
    return []


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


def content_hashes(body: dict[str, Any]) -> tuple[str, str]:
    """Short hashes of what Humanos's answers show of a body (contacts, name) and of the whole body.

    64 bits each: they only tell bodies apart within one internalId's few events.
    """
    contacts = sorted(normalise_contact(c) or c for c in _body_contacts(body))
    shows = hashlib.sha256(wire.dump_bytes([contacts, body.get("name")])).hexdigest()
    return shows[:16], body_hash(body)[:16]


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
