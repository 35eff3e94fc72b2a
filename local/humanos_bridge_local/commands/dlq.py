"""``humanos-bridge dlq list | redrive``: read the dead-letter queue, and send parked events back.

``list`` reads every parked message (each is hidden for a few seconds while it is read, then made
visible again) and shows its event id, source, error code, when it was first seen, how often it was
redriven and the reason, each in its safe form (``masking.safe_id``: masked, bounded, escaped).
``redrive`` sends the chosen messages back to the request queue with their carried attributes and
``redriveCount`` raised by one (so the dispatcher looks the request up by internalId before creating it
again), and deletes each from the dead-letter queue only once it is back. ``--event-id`` takes an id as
sent or as ``list`` shows it.

"First seen" is when the bridge first received the event: the carried ``receivedAt`` (the ingest function
sets it; a redrive carries it), else the parked message's ``firstSeenAt``. The dispatcher sets the latter
from the carried ``receivedAt`` too, and only for an event without one (sent to the queue directly) from the
message it failed, which a redrive renews; a redrive therefore carries the first ``firstSeenAt`` on as
``receivedAt`` for such an event.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from humanos_bridge.core.errors import ConfigError
from humanos_bridge.core.masking import safe_id, safe_text
from humanos_bridge.core.queue_messages import (
    ATTR_ERROR_CODE,
    ATTR_ERROR_REASON,
    ATTR_EVENT_ID,
    ATTR_FIRST_SEEN_AT,
    ATTR_RECEIVED_AT,
    ATTR_REDRIVE_COUNT,
    ATTR_SOURCE,
    CARRIED_ATTRIBUTES,
    is_fifo,
    string_attributes,
)
from humanos_bridge.dispatch.dead_letters import parse_instant
from humanos_bridge_local.endpoints import Target, add_target_arguments, resolve_target

#: Seconds a message stays hidden while it is being read or redriven.
READ_VISIBILITY_SECONDS = 30


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("dlq", help="list or redrive events parked in the dead-letter queue")
    actions = parser.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="each parked event with its reason (contacts masked)")
    add_target_arguments(listing)
    listing.set_defaults(func=run_list)
    redrive = actions.add_parser("redrive", help="send parked events back to the request queue")
    chosen = redrive.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--all", action="store_true", help="every parked event")
    chosen.add_argument("--event-id", action="append", metavar="ID", help="the event with this id (repeatable)")
    add_target_arguments(redrive)
    redrive.set_defaults(func=run_redrive)


@dataclass(frozen=True)
class Parked:
    """One message of the dead-letter queue."""

    message: dict[str, Any]

    def attribute(self, name: str) -> str | None:
        value = (self.message.get("MessageAttributes") or {}).get(name)
        return value.get("StringValue") if value else None

    @property
    def event_id(self) -> str:
        return self.attribute(ATTR_EVENT_ID) or "-"

    @property
    def code(self) -> str:
        # No code: SQS itself moved it after maxReceiveCount failed deliveries (retryable failures).
        return self.attribute(ATTR_ERROR_CODE) or "max_receives_exceeded"

    @property
    def reason(self) -> str:
        if self.attribute(ATTR_ERROR_REASON):
            return str(self.attribute(ATTR_ERROR_REASON))
        receives = (self.message.get("Attributes") or {}).get("ApproximateReceiveCount", "?")
        return f"moved by SQS after repeated failed deliveries (received {receives} times here)"

    @property
    def first_seen(self) -> datetime | None:
        """When the bridge first received the event (see the module docstring); None when unknown."""
        return parse_instant(self.attribute(ATTR_RECEIVED_AT)) or parse_instant(self.attribute(ATTR_FIRST_SEEN_AT))

    @property
    def redrives(self) -> int:
        return _redrive_count(self.attribute(ATTR_REDRIVE_COUNT))


@contextlib.contextmanager
def parked_messages(target: Target) -> Iterator[list[Parked]]:
    """Every message of the DLQ, hidden while the caller works; those not deleted become visible again."""
    sqs = target.client("sqs")
    queue = target.require_dlq()
    received: list[Parked] = []
    seen: set[str] = set()
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue,
            MaxNumberOfMessages=10,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=READ_VISIBILITY_SECONDS,
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            break
        seen.update(m["MessageId"] for m in fresh)
        received.extend(Parked(m) for m in fresh)
    try:
        yield received
    finally:
        for parked in received:
            if not parked.message.get("_deleted"):
                with contextlib.suppress(Exception):  # it reappears anyway when its visibility ends
                    sqs.change_message_visibility(
                        QueueUrl=queue, ReceiptHandle=parked.message["ReceiptHandle"], VisibilityTimeout=0
                    )


def run_list(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    with parked_messages(target) as parked:
        if not parked:
            print(f"the dead-letter queue of {target.description} is empty")
            return 0
        print(f"{len(parked)} parked event(s) in {target.description}:")
        print(f"  {'event id':<24} {'source':<8} {'error':<24} {'first seen':<20}  {'redrives':>8}  reason")
        for item in parked:
            # Every field in its safe form: whoever sent a message SQS moved itself chose its attributes.
            # Ids and reasons may quote a contact; codes are ours, their digits no phone; times and counts are
            # parsed, so nothing a sender set is shown through them.
            event_id, source = safe_id(item.event_id), safe_id(item.attribute(ATTR_SOURCE) or "-")
            code = safe_id(item.code, mask=False)
            first_seen = f"{item.first_seen:%Y-%m-%dT%H:%M:%SZ}" if item.first_seen else "-"
            print(
                f"  {event_id:<24} {source:<8} {code:<24} {first_seen:<20}  {item.redrives:>8}  "
                f"{safe_text(item.reason)}"
            )
    return 0


def run_redrive(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    sqs = target.client("sqs")
    # An id as the sender sent it, or as `dlq list` shows it (the attribute holds the safe form).
    wanted = {given: {given, safe_id(given)} for given in args.event_id or []}
    matching = {form for forms in wanted.values() for form in forms}
    with parked_messages(target) as parked:
        present = {p.event_id for p in parked}
        chosen = [p for p in parked if args.all or p.event_id in matching]
        missing = sorted(given for given, forms in wanted.items() if not forms & present)
        if missing:
            shown = ", ".join(safe_id(given) for given in missing)
            print(f"not in the dead-letter queue: {shown}", file=sys.stderr)
        if not chosen:
            if missing:
                raise ConfigError(
                    "nothing to redrive: no parked event has the given id(s); see `humanos-bridge dlq list`"
                )
            print("nothing to redrive: the dead-letter queue is empty")
            return 0
        for done, item in enumerate(chosen, start=1):
            redrive_one(sqs, target, item)
            source = safe_id(item.attribute(ATTR_SOURCE) or "-")
            print(f"redriven {done}/{len(chosen)}: {safe_id(item.event_id)} ({source})")
    return 1 if missing else 0


def redrive_one(sqs: Any, target: Target, item: Parked) -> None:
    """Back to the request queue first, then off the DLQ: a crash between the two duplicates, never loses."""
    carried: dict[str, str | int | None] = {name: item.attribute(name) for name in CARRIED_ATTRIBUTES}
    # Parked before the event id had a safe form, or moved by SQS itself with the sender's own attribute.
    carried[ATTR_EVENT_ID] = safe_id(item.attribute(ATTR_EVENT_ID))
    carried[ATTR_REDRIVE_COUNT] = item.redrives + 1
    if parse_instant(item.attribute(ATTR_RECEIVED_AT)) is None and item.first_seen is not None:
        # Sent to the queue directly: the first failure's time is the earliest the bridge knows, and the
        # dispatcher would date the next parking from this new message.
        carried[ATTR_RECEIVED_AT] = item.first_seen.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    extra: dict[str, str] = {}
    if is_fifo(target.request_queue_url):
        group = (item.message.get("Attributes") or {}).get("MessageGroupId") or "redriven"
        extra = {
            "MessageGroupId": group,
            "MessageDeduplicationId": f"{item.message['MessageId']}-{carried[ATTR_REDRIVE_COUNT]}",
        }
    sqs.send_message(
        QueueUrl=target.request_queue_url,
        MessageBody=item.message["Body"],
        MessageAttributes=string_attributes(carried),
        **extra,
    )
    sqs.delete_message(QueueUrl=target.require_dlq(), ReceiptHandle=item.message["ReceiptHandle"])
    item.message["_deleted"] = True


def _redrive_count(value: str | None) -> int:
    # Ours is a whole number; one a sender set on a message SQS moved itself may be anything.
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0
