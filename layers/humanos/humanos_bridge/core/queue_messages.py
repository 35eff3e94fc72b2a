"""Business events on SQS: the message attributes we set and read, and the records Lambda delivers.

One place names every attribute, so the ingest function (which enqueues), the dispatcher (which
reads and dead-letters) and the operator CLI (which lists and redrives) cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from humanos_bridge.core import wire
from humanos_bridge.core.errors import BridgeError

# Attributes of an enqueued business event.
ATTR_SOURCE = "source"
ATTR_EVENT_ID = "eventId"
ATTR_RECEIVED_AT = "receivedAt"
ATTR_TRACE_ID = "traceId"
#: Set by ``dlq redrive``: the message is back from the dead-letter queue (count of redrives).
ATTR_REDRIVE_COUNT = "redriveCount"
# Added when a message is parked in the dead-letter queue.
ATTR_ERROR_CODE = "errorCode"
ATTR_ERROR_STATUS = "errorStatus"
ATTR_ERROR_REASON = "errorReason"
ATTR_ORIGINAL_MESSAGE_ID = "originalMessageId"
ATTR_FIRST_SEEN_AT = "firstSeenAt"

#: Attributes that travel with an event through the dead-letter queue and back.
CARRIED_ATTRIBUTES = (ATTR_SOURCE, ATTR_EVENT_ID, ATTR_RECEIVED_AT, ATTR_TRACE_ID, ATTR_REDRIVE_COUNT)


class NotAnSqsBatch(BridgeError):
    """The dispatcher was invoked with something other than an SQS batch."""

    code = "not_an_sqs_batch"


def string_attributes(values: Mapping[str, str | int | None]) -> dict[str, dict[str, str]]:
    """SQS ``MessageAttributes`` for ``send_message`` from plain values (None values are left out)."""
    result: dict[str, dict[str, str]] = {}
    for name, value in values.items():
        if value is None or value == "":
            continue
        kind = "Number" if isinstance(value, int) else "String"
        result[name] = {"DataType": kind, "StringValue": str(value)}
    return result


class QueuedEvent(NamedTuple):
    """One SQS record as Lambda delivers it, reduced to what the bridge needs."""

    message_id: str
    receipt_handle: str
    body: str
    #: String message attributes (``source``, ``eventId``, ...), by name.
    attributes: dict[str, str]
    receive_count: int
    #: When the message was first sent to the queue, Unix ms (``SentTimestamp``).
    sent_at_ms: int
    #: FIFO queues only.
    group_id: str | None
    queue_arn: str


def parse_batch(event: Any) -> list[QueuedEvent]:
    """Validate a Lambda SQS event and return its records, or raise NotAnSqsBatch.

    An empty or foreign event must fail loudly: answered as an empty success, a real batch
    of the wrong shape would have its messages deleted.
    """
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not records:
        raise NotAnSqsBatch("event is not an SQS batch: expected a non-empty 'Records' list")
    parsed = []
    for index, record in enumerate(records):
        if not isinstance(record, dict) or record.get("eventSource") != "aws:sqs":
            raise NotAnSqsBatch(f"Records[{index}] is not an SQS record (eventSource must be 'aws:sqs')")
        parsed.append(_parse_record(index, record))
    return parsed


def _parse_record(index: int, record: dict[str, Any]) -> QueuedEvent:
    try:
        system = record.get("attributes") or {}
        return QueuedEvent(
            message_id=str(record["messageId"]),
            receipt_handle=str(record["receiptHandle"]),
            body=str(record.get("body") or ""),
            attributes={
                name: str(value.get("stringValue"))
                for name, value in (record.get("messageAttributes") or {}).items()
                if isinstance(value, dict) and value.get("stringValue") is not None
            },
            receive_count=int(system.get("ApproximateReceiveCount", 1)),
            sent_at_ms=int(system.get("SentTimestamp", 0)),
            group_id=system.get("MessageGroupId"),
            queue_arn=str(record.get("eventSourceARN", "")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise NotAnSqsBatch(
            f"Records[{index}] is malformed ({type(exc).__name__}): expected the shape Lambda delivers SQS records in"
        ) from exc


#: Marks a queued event that carries request headers: ``{"humanosBridgeEnvelope": 2, "headers": {...},
#: "event": <the webhook's body, as it came>}``. Message attributes cannot carry them: a parked message already
#: uses all ten SQS allows. Only sources that keep headers (``headers`` in the mapping) are queued this way.
ENVELOPE = "humanosBridgeEnvelope"
#: What ``wrap_event`` writes. Version 1 (``"body"``: the webhook's body as a JSON string) is still read, so
#: that messages queued or parked before an upgrade are dispatched and redriven as they were.
ENVELOPE_VERSION = 2


class MalformedEnvelope(BridgeError):
    """A queued event of a header-keeping source has a broken envelope."""

    code = "malformed_envelope"


def wrap_event(body: bytes, headers: Mapping[str, str]) -> str:
    """The queue message body for an event of a source that keeps ``headers`` (lower-case names).

    ``body`` must be a JSON document (ingest has parsed it): its text goes into the envelope as it came, not
    escaped into a string, which costs nothing however long the body (a Shopify order: 26 -> 1 µs) and
    nests it one level deeper, still well inside what the dispatcher parses (``MAX_JSON_DEPTH`` + 1 <=
    ``wire.MAX_DEPTH``).
    """
    return f'{{"{ENVELOPE}":{ENVELOPE_VERSION},"headers":{wire.dumps(dict(headers))},"event":{body.decode()}}}'


def unwrap_event(message: Any) -> tuple[Any, dict[str, str]] | None:
    """``(the event, its headers)`` when ``message`` (a parsed queue message body) is an envelope.

    None for a plain event: one sent to the queue directly, not through the ingest route, has no headers.
    Reads both versions; a version 1 body that is not JSON raises SerialisationError, as a plain one does.
    """
    if not isinstance(message, dict) or ENVELOPE not in message:
        return None
    version, headers = message[ENVELOPE], message.get("headers")
    if version == ENVELOPE_VERSION and "event" in message:
        event = message["event"]
    elif version == 1 and isinstance(message.get("body"), str):
        event = wire.loads(message["body"])
    else:
        raise MalformedEnvelope(
            f"the message's {ENVELOPE} must be version 2 with an event and a headers object (or version 1 with a "
            "body string and a headers object)"
        )
    if not isinstance(headers, dict):
        raise MalformedEnvelope(f"the message's {ENVELOPE} has no headers object")
    if not all(isinstance(name, str) and isinstance(value, str) for name, value in headers.items()):
        raise MalformedEnvelope(f"the message's {ENVELOPE} headers must be strings")
    return event, {name.lower(): value for name, value in headers.items()}


def is_fifo(queue: str) -> bool:
    """True for a FIFO queue's URL or ARN."""
    return queue.endswith(".fifo")
