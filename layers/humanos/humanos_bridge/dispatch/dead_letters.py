"""Parking events that can never become a request in the dead-letter queue, with their reason.

A parked message keeps its original body and carried attributes (so it can be redriven as it
was) and gains the reason it was parked. The event id and the reason are in their safe form
(``masking``): the queue is read by operators, and SQS refuses what a sender's id may hold.

One message that cannot be parked never holds back the others: a refused batch is parked one
message at a time, and a message the queue refuses as it is goes again with every attribute in
its safe form. Only a message refused even then is left unacknowledged, to be retried.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from humanos_bridge.core.masking import safe_id, safe_text
from humanos_bridge.core.outcomes import Failure
from humanos_bridge.core.queue_messages import (
    ATTR_ERROR_CODE,
    ATTR_ERROR_REASON,
    ATTR_ERROR_STATUS,
    ATTR_EVENT_ID,
    ATTR_FIRST_SEEN_AT,
    ATTR_ORIGINAL_MESSAGE_ID,
    ATTR_RECEIVED_AT,
    ATTR_SOURCE,
    CARRIED_ATTRIBUTES,
    QueuedEvent,
    is_fifo,
    string_attributes,
)

#: SQS attribute values are small; reasons are cut to stay readable in consoles.
MAX_REASON_CHARS = 500
#: ``SendMessageBatch`` takes at most 10 entries.
SQS_BATCH_LIMIT = 10


class Parcel(NamedTuple):
    """One event to park: the message, why, and what we know of it."""

    message: QueuedEvent
    failure: Failure
    source: str | None
    event_id: str | None


def parked_attributes(parcel: Parcel, *, sanitised: bool = False) -> dict[str, dict[str, str]]:
    """The parked message's attributes; ``sanitised``: the carried ones escaped and bounded too.

    Carried attributes stay as they came unless sanitised: the dispatcher routes a redriven event
    by its source, and a timestamp or trace id is no contact to mask (only the event id is masked).
    """
    carried = {name: parcel.message.attributes.get(name) for name in CARRIED_ATTRIBUTES}
    carried[ATTR_SOURCE] = parcel.source or carried.get(ATTR_SOURCE)
    if sanitised:
        carried = {name: None if value is None else safe_text(value, mask=False) for name, value in carried.items()}
    carried[ATTR_EVENT_ID] = safe_id(parcel.event_id or carried.get(ATTR_EVENT_ID))
    return string_attributes(
        {
            **carried,
            ATTR_ERROR_CODE: parcel.failure.code,
            ATTR_ERROR_STATUS: parcel.failure.status,
            ATTR_ERROR_REASON: safe_text(parcel.failure.reason, limit=MAX_REASON_CHARS),
            ATTR_ORIGINAL_MESSAGE_ID: parcel.message.message_id,
            ATTR_FIRST_SEEN_AT: first_seen_at(parcel.message),
        }
    )


def first_seen_at(message: QueuedEvent) -> str:
    """When the bridge first saw the event, as ``2026-05-17T10:00:00Z``.

    The carried ``receivedAt`` when it holds a time: the ingest function stamps it when the business event
    arrives, and a redrive carries it, so it stays put however often the event is redriven and parked again.
    Otherwise (an event sent to the queue directly) the message's ``SentTimestamp``, which a redrive renews.
    """
    received = parse_instant(message.attributes.get(ATTR_RECEIVED_AT))
    if received is not None:
        return f"{received:%Y-%m-%dT%H:%M:%SZ}"
    sent_ms = message.sent_at_ms or int(time.time() * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(sent_ms / 1000))


def parse_instant(value: str | None) -> datetime | None:
    """An ISO 8601 time in UTC; None for anything else (whoever writes to the queue may set any attribute)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError):  # not a time, or one with no UTC form (year 1 at +14:00)
        return None


def park(sqs: Any, dead_letter_queue_url: str, parcels: Sequence[Parcel]) -> set[str]:
    """Send ``parcels`` to the dead-letter queue. Returns the message ids that could NOT be parked.

    The caller must not acknowledge those: they go back to the request queue to be tried again.
    """
    failed: set[str] = set()
    fifo = is_fifo(dead_letter_queue_url)
    for start in range(0, len(parcels), SQS_BATCH_LIMIT):
        chunk = parcels[start : start + SQS_BATCH_LIMIT]
        entries = [_entry(parcel, str(index), fifo) for index, parcel in enumerate(chunk)]
        try:
            answer = sqs.send_message_batch(QueueUrl=dead_letter_queue_url, Entries=entries)
            refused = [chunk[int(f["Id"])] for f in answer.get("Failed", [])]
        except Exception:  # the whole batch refused, perhaps for one entry: each message then goes alone
            refused = list(chunk)
        for parcel in refused:
            if not _park_alone(sqs, dead_letter_queue_url, parcel, fifo):
                failed.add(parcel.message.message_id)
    return failed


def _park_alone(sqs: Any, dead_letter_queue_url: str, parcel: Parcel, fifo: bool) -> bool:
    """Park one message, as it is and then with every attribute in its safe form; False when both fail."""
    for sanitised in (False, True):
        entry = _entry(parcel, "0", fifo, sanitised=sanitised)
        del entry["Id"]
        try:
            sqs.send_message(QueueUrl=dead_letter_queue_url, **entry)
        except Exception:  # any failure to park means "do not acknowledge", whatever its kind
            continue
        return True
    return False


def _entry(parcel: Parcel, entry_id: str, fifo: bool, *, sanitised: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "Id": entry_id,
        "MessageBody": parcel.message.body or "(empty body)",
        "MessageAttributes": parked_attributes(parcel, sanitised=sanitised),
    }
    if fifo:
        entry["MessageGroupId"] = parcel.message.group_id or "dead-letters"
        entry["MessageDeduplicationId"] = parcel.message.message_id
    return entry
