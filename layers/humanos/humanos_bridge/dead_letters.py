"""Parking events that can never become a request in the dead-letter queue, with their reason.

A parked message keeps its original body and carried attributes (so it can be redriven as it
was) and gains the reason it was parked. Reasons are masked: the queue is read by operators.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from humanos_bridge.outcomes import Failure
from humanos_bridge.queue_messages import (
    ATTR_ERROR_CODE,
    ATTR_ERROR_REASON,
    ATTR_ERROR_STATUS,
    ATTR_EVENT_ID,
    ATTR_FIRST_SEEN_AT,
    ATTR_ORIGINAL_MESSAGE_ID,
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


@dataclass(frozen=True)
class Parcel:
    """One event to park: the message, why, and what we know of it."""

    message: QueuedEvent
    failure: Failure
    source: str | None
    event_id: str | None


def parked_attributes(parcel: Parcel) -> dict[str, dict[str, str]]:
    carried = {name: parcel.message.attributes.get(name) for name in CARRIED_ATTRIBUTES}
    carried[ATTR_SOURCE] = parcel.source or carried.get(ATTR_SOURCE)
    carried[ATTR_EVENT_ID] = parcel.event_id or carried.get(ATTR_EVENT_ID)
    first_seen = parcel.message.sent_at_ms or int(time.time() * 1000)
    return string_attributes(
        {
            **carried,
            ATTR_ERROR_CODE: parcel.failure.code,
            ATTR_ERROR_STATUS: parcel.failure.status,
            ATTR_ERROR_REASON: parcel.failure.reason[:MAX_REASON_CHARS],
            ATTR_ORIGINAL_MESSAGE_ID: parcel.message.message_id,
            ATTR_FIRST_SEEN_AT: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first_seen / 1000)),
        }
    )


def park(sqs: Any, dead_letter_queue_url: str, parcels: Sequence[Parcel]) -> set[str]:
    """Send ``parcels`` to the dead-letter queue. Returns the message ids that could NOT be parked.

    The caller must not acknowledge those: they go back to the request queue to be tried again.
    """
    failed: set[str] = set()
    fifo = is_fifo(dead_letter_queue_url)
    for start in range(0, len(parcels), SQS_BATCH_LIMIT):
        chunk = parcels[start : start + SQS_BATCH_LIMIT]
        entries = []
        for index, parcel in enumerate(chunk):
            entry: dict[str, Any] = {
                "Id": str(index),
                "MessageBody": parcel.message.body or "(empty body)",
                "MessageAttributes": parked_attributes(parcel),
            }
            if fifo:
                entry["MessageGroupId"] = parcel.message.group_id or "dead-letters"
                entry["MessageDeduplicationId"] = parcel.message.message_id
            entries.append(entry)
        try:
            answer = sqs.send_message_batch(QueueUrl=dead_letter_queue_url, Entries=entries)
        except Exception:  # any failure to park means "do not acknowledge", whatever its kind
            failed.update(p.message.message_id for p in chunk)
            continue
        failed.update(chunk[int(f["Id"])].message.message_id for f in answer.get("Failed", []))
    return failed
