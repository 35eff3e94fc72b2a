"""What reached the webhook bus, read back through the local stack's own rule and queue.

The receiver publishes to an EventBridge bus; EventBridge keeps nothing, so to see what arrived the local stack
adds (locally only, not in template.yaml) a rule on the bus that sends every event to an SQS queue. This module
reads that queue without consuming it: each message is hidden while it is read, then made visible again at once,
so ``events tail`` run twice shows the same events, and the demo can read them after the command has.

An event's ``detail.payload`` is the decrypted webhook: contacts, and for identity events names, birth dates and
document numbers. It is never shown. What is shown goes through ``masking.safe_id``: the business event id
and the internalId are sender-chosen and may quote a contact.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

from humanos_bridge.core.masking import safe_id

#: Seconds a message stays hidden while the queue is read (made visible again as soon as all are read).
READ_VISIBILITY_SECONDS = 10
#: Characters of the webhook key shown: enough to tell two events apart, or to see a duplicate.
KEY_CHARS = 12
#: Local only (not in template.yaml): the rule on the webhook bus and the queue it fills.
READER_RULE = "local-events-tail"
READER_QUEUE = "humanos-bridge-local-published-events"
#: What the rule matches: everything the receiver publishes.
READER_PATTERN = {"source": ["humanos.bridge"]}


@dataclass(frozen=True)
class BusEvent:
    """One event as the rule delivered it to the queue: EventBridge's envelope with the receiver's ``detail``."""

    message_id: str
    #: When the rule put it on the queue (SQS's ``SentTimestamp``, ms): orders events within one second.
    sent_ms: int
    envelope: dict[str, Any]

    @property
    def detail_type(self) -> str:
        return str(self.envelope.get("detail-type", ""))

    @property
    def detail(self) -> dict[str, Any]:
        detail = self.envelope.get("detail")
        return detail if isinstance(detail, dict) else {}

    @property
    def request_id(self) -> str:
        return str(self.detail.get("requestId", ""))


def create_reader(events: Any, sqs: Any, bus: str) -> str:
    """The rule on ``bus`` sending every event the receiver publishes to a new queue; the queue's URL."""
    queue_url = str(sqs.create_queue(QueueName=READER_QUEUE)["QueueUrl"])
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=READER_RULE, EventBusName=bus, EventPattern=json.dumps(READER_PATTERN))
    events.put_targets(Rule=READER_RULE, EventBusName=bus, Targets=[{"Id": "events-tail", "Arn": queue_arn}])
    return queue_url


def read_all(sqs: Any, queue_url: str) -> list[BusEvent]:
    """Every event on ``queue_url``, oldest first, left on the queue."""
    received: list[dict[str, Any]] = []
    seen: set[str] = set()
    try:
        while True:
            batch = sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=10,
                AttributeNames=["SentTimestamp"],
                VisibilityTimeout=READ_VISIBILITY_SECONDS,
            ).get("Messages", [])
            fresh = [message for message in batch if message["MessageId"] not in seen]
            if not fresh:
                break
            seen.update(message["MessageId"] for message in fresh)
            received.extend(fresh)
    finally:
        _show_again(sqs, queue_url, received)
    events = [_parsed(message) for message in received]
    return sorted(events, key=lambda event: event.sent_ms)


def _show_again(sqs: Any, queue_url: str, messages: list[dict[str, Any]]) -> None:
    for start in range(0, len(messages), 10):
        entries = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
            for index, message in enumerate(messages[start : start + 10])
        ]
        with contextlib.suppress(Exception):  # they reappear anyway once READ_VISIBILITY_SECONDS have passed
            sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=entries)


def _parsed(message: dict[str, Any]) -> BusEvent:
    try:
        envelope = json.loads(message.get("Body") or "{}")
    except ValueError:
        envelope = {}
    sent = (message.get("Attributes") or {}).get("SentTimestamp", "0")
    return BusEvent(
        message_id=str(message["MessageId"]),
        sent_ms=int(sent) if str(sent).isdigit() else 0,
        envelope=envelope if isinstance(envelope, dict) else {},
    )


def header() -> str:
    return "  ".join(
        [
            f"{'time (UTC)':<20}",
            f"{'detail-type':<19}",
            f"{'Humanos request':<26}",
            f"{'answers (source, event id)':<34}",
            f"{'decision':<16}",
            "webhook key",
        ]
    )


def format_event(event: BusEvent) -> str:
    """One line: when, what, which request, which business event it answers, the decision, the key; no payload."""
    detail = event.detail
    key = str(detail.get("webhookKey", ""))
    return "  ".join(
        [
            f"{_shown(event.envelope.get('time'), 20, mask=False):<20}",
            f"{_shown(event.detail_type, 19):<19}",
            f"{_shown(event.request_id, 26, mask=False):<26}",
            f"{_shown(answers(detail), 34):<34}",
            f"{_shown(decision(detail), 16):<16}",
            _shown(key[:KEY_CHARS] + ("…" if len(key) > KEY_CHARS else ""), KEY_CHARS + 1, mask=False),
        ]
    ).rstrip()


def answers(detail: dict[str, Any]) -> str:
    """The business event a webhook answers: ``crm evt_1`` when the receiver recovered it, else the internalId."""
    business = detail.get("business")
    if isinstance(business, dict) and business.get("source"):
        return " ".join(str(business[name]) for name in ("source", "eventId") if business.get(name))
    return str(detail.get("internalId") or "")


def decision(detail: dict[str, Any]) -> str:
    """The decision in a word or two: ``accept``, ``reject``, ``verified``, ``failed (fraud)``, an OTP error code."""
    made = detail.get("decision")
    if not isinstance(made, dict) or not made:
        return ""
    if "action" in made:
        return str(made["action"])
    if "success" in made:
        word = "verified" if made["success"] is True else "failed"
        return f"{word} (fraud)" if made.get("isFraud") is True else word
    return str(made.get("errorCode") or "")


def _shown(value: Any, width: int, *, mask: bool = True) -> str:
    """Safe (masked, escaped, bounded) and cut to the column's width; ``-`` when empty."""
    if value is None or value == "":
        return "-"
    text = safe_id(str(value), mask=mask)
    return text if len(text) <= width else text[: width - 1] + "…"


def wait_for(sqs: Any, queue_url: str, count: int, *, timeout: float, poll: float = 0.2) -> list[BusEvent]:
    """The queue's events once it holds at least ``count``, or as they stand after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        events = read_all(sqs, queue_url)
        if len(events) >= count or time.monotonic() >= deadline:
            return events
        time.sleep(poll)
