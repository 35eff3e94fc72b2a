"""A parked message's ``firstSeenAt`` is when the bridge first received the event (issue 19, point 12).

The ingest function stamps ``receivedAt`` on every event it queues, and a redrive carries it. The dispatcher
dates ``firstSeenAt`` from it when there is one, so whoever reads the dead-letter queue with the AWS CLI sees
the same "first seen" as ``dlq list``, however often the event was redriven; only an event sent to the queue
directly (no ``receivedAt``) is dated from its message. On moto's queues, parked as ``dead_letters.park`` does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

import pytest

from humanos_bridge.core.outcomes import Failure
from humanos_bridge.core.queue_messages import QueuedEvent, string_attributes
from humanos_bridge.dispatch.dead_letters import Parcel, park
from humanos_bridge_local.cli import main

REFUSED = Failure(retryable=False, code="humanos_rejected", reason="Humanos answered 400 Bad Request", status=400)


class Queues(NamedTuple):
    sqs: Any
    requests: str
    dead_letters: str

    @property
    def argv(self) -> list[str]:
        return ["--queue-url", self.requests, "--dlq-url", self.dead_letters, "--region", "eu-west-1"]


@pytest.fixture
def queues(moto: Any, monkeypatch: pytest.MonkeyPatch) -> Queues:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint_url)
    monkeypatch.setenv("HUMANOS_BRIDGE_HOME", "/nonexistent")  # no local stack to fall back on
    sqs = moto.client("sqs")
    return Queues(
        sqs, sqs.create_queue(QueueName="fh-requests")["QueueUrl"], sqs.create_queue(QueueName="fh-dlq")["QueueUrl"]
    )


def queue_event(queues: Queues, **attributes: str) -> None:
    queues.sqs.send_message(QueueUrl=queues.requests, MessageBody="{}", MessageAttributes=string_attributes(attributes))


def park_next(queues: Queues) -> int:
    """Receive the request queue's message and park it as the dispatcher parks a permanent failure.

    Returns the message's ``SentTimestamp`` (ms), the time a message without ``receivedAt`` is dated from.
    """
    [message] = queues.sqs.receive_message(
        QueueUrl=queues.requests, AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    sent_at_ms = int(message["Attributes"]["SentTimestamp"])
    event = QueuedEvent(
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        body=message["Body"],
        attributes={k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()},
        receive_count=1,
        sent_at_ms=sent_at_ms,
        group_id=None,
        queue_arn="arn:aws:sqs:eu-west-1:123456789012:fh-requests",
    )
    assert park(queues.sqs, queues.dead_letters, [Parcel(event, REFUSED, "crm", event.attributes["eventId"])]) == set()
    queues.sqs.delete_message(QueueUrl=queues.requests, ReceiptHandle=message["ReceiptHandle"])
    return sent_at_ms


def parked_first_seen(queues: Queues) -> str:
    """The ``firstSeenAt`` attribute of the one parked message, read as the AWS CLI would (then visible again)."""
    [message] = queues.sqs.receive_message(
        QueueUrl=queues.dead_letters, MessageAttributeNames=["All"], VisibilityTimeout=0
    )["Messages"]
    return str(message["MessageAttributes"]["firstSeenAt"]["StringValue"])


def as_first_seen(ms: int) -> str:
    return f"{datetime.fromtimestamp(ms / 1000, UTC):%Y-%m-%dT%H:%M:%SZ}"


def test_first_seen_at_is_the_carried_received_at_through_every_redrive(
    queues: Queues, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given an event the ingest function received days ago, parked, redriven and parked again twice,
    then the parked message's firstSeenAt stays the receivedAt, and `dlq list` shows the same."""
    queue_event(queues, source="crm", eventId="evt_fh_1", receivedAt="2026-05-16T08:00:00.250Z")
    park_next(queues)
    assert parked_first_seen(queues) == "2026-05-16T08:00:00Z"

    for _ in range(2):
        assert main(["dlq", "redrive", "--all", *queues.argv]) == 0
        park_next(queues)
        assert parked_first_seen(queues) == "2026-05-16T08:00:00Z"

    capsys.readouterr()
    assert main(["dlq", "list", *queues.argv]) == 0
    [row] = capsys.readouterr().out.splitlines()[2:]
    assert row.split()[3:5] == ["2026-05-16T08:00:00Z", "2"]


def test_received_at_with_an_offset_is_given_in_utc(queues: Queues) -> None:
    """A receivedAt written with an offset (by another producer) is dated in UTC, as every firstSeenAt is."""
    queue_event(queues, source="crm", eventId="evt_fh_2", receivedAt="2026-05-16T09:30:00+01:00")
    park_next(queues)

    assert parked_first_seen(queues) == "2026-05-16T08:30:00Z"


@pytest.mark.parametrize("received_at", [None, "+351 912 345 678", "yesterday"])
def test_without_a_received_at_that_is_a_time_first_seen_at_is_when_the_message_was_sent(
    queues: Queues, received_at: str | None
) -> None:
    """An event sent to the queue directly has no receivedAt, and a sender may set one that is no time:
    then firstSeenAt is the message's SentTimestamp, and nothing the sender set is copied into it."""
    attributes = {"source": "crm", "eventId": "evt_fh_3"}
    if received_at is not None:
        attributes["receivedAt"] = received_at
    queue_event(queues, **attributes)

    sent_at_ms = park_next(queues)

    assert parked_first_seen(queues) == as_first_seen(sent_at_ms)
