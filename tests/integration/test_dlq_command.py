"""``humanos-bridge dlq list`` and ``redrive`` on moto's queues: when an event was first seen, how often redriven.

A message is parked as the dispatcher parks it (``dead_letters.park``), redriven by the command, received
again and parked again: "first seen" must still be the first time, and "redrives" must count. The parked
message's own ``firstSeenAt`` is when the bridge first received the event: the ingest function stamps
``receivedAt`` on every event it queues and a redrive carries it, so whoever reads the dead-letter queue with
the AWS CLI sees the same "first seen" as ``dlq list``; only an event sent to the queue directly (no
``receivedAt``) is dated from its message.
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
        sqs, sqs.create_queue(QueueName="requests")["QueueUrl"], sqs.create_queue(QueueName="dlq")["QueueUrl"]
    )


def park_next(queues: Queues) -> int:
    """Receive the request queue's message and park it, as the dispatcher does with a permanent failure.

    Returns the message's ``SentTimestamp`` (ms), the time a message without ``receivedAt`` is dated from.
    """
    [message] = queues.sqs.receive_message(
        QueueUrl=queues.requests, AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    event = QueuedEvent(
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        body=message["Body"],
        attributes={k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()},
        receive_count=1,
        sent_at_ms=int(message["Attributes"]["SentTimestamp"]),
        group_id=None,
        queue_arn="arn:aws:sqs:eu-west-1:123456789012:requests",
    )
    assert park(queues.sqs, queues.dead_letters, [Parcel(event, REFUSED, "crm", event.attributes["eventId"])]) == set()
    queues.sqs.delete_message(QueueUrl=queues.requests, ReceiptHandle=message["ReceiptHandle"])
    return event.sent_at_ms


def queue_event(queues: Queues, **attributes: str) -> None:
    queues.sqs.send_message(QueueUrl=queues.requests, MessageBody="{}", MessageAttributes=string_attributes(attributes))


def parked_first_seen(queues: Queues) -> str:
    """The ``firstSeenAt`` attribute of the one parked message, read as the AWS CLI would (then visible again)."""
    [message] = queues.sqs.receive_message(
        QueueUrl=queues.dead_letters, MessageAttributeNames=["All"], VisibilityTimeout=0
    )["Messages"]
    return str(message["MessageAttributes"]["firstSeenAt"]["StringValue"])


def parked_row(queues: Queues, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["dlq", "list", *queues.argv]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["event", "id", "source", "error", "first", "seen", "redrives", "reason"]
    [row] = lines[2:]
    return row.split()


def test_first_seen_survives_redrives_and_the_redrives_are_counted(
    queues: Queues, capsys: pytest.CaptureFixture[str]
) -> None:
    """An event put on the queue directly (no receivedAt), parked a while ago, redriven and parked again, twice."""
    parked = {
        "source": "crm",
        "eventId": "evt_dlq_1",
        "firstSeenAt": "2026-05-17T10:00:00Z",
        "errorCode": "humanos_rejected",
        "errorReason": "Humanos answered 400 Bad Request",
    }
    queues.sqs.send_message(QueueUrl=queues.dead_letters, MessageBody="{}", MessageAttributes=string_attributes(parked))
    assert parked_row(queues, capsys)[:5] == ["evt_dlq_1", "crm", "humanos_rejected", "2026-05-17T10:00:00Z", "0"]

    for redrives in (1, 2):
        assert main(["dlq", "redrive", "--all", *queues.argv]) == 0
        assert capsys.readouterr().out == "redriven 1/1: evt_dlq_1 (crm)\n"
        park_next(queues)  # parked again now: the dispatcher dates it from the redriven message
        assert parked_row(queues, capsys)[3:5] == ["2026-05-17T10:00:00Z", str(redrives)]


def test_first_seen_is_when_the_ingest_function_received_the_event(
    queues: Queues, capsys: pytest.CaptureFixture[str]
) -> None:
    """receivedAt (set by the ingest function, carried by every redrive) is earlier than any parking."""
    attributes = {"source": "crm", "eventId": "evt_dlq_2", "receivedAt": "2026-05-16T08:00:00.250Z"}
    queues.sqs.send_message(QueueUrl=queues.requests, MessageBody="{}", MessageAttributes=string_attributes(attributes))
    park_next(queues)

    assert parked_row(queues, capsys)[3] == "2026-05-16T08:00:00Z"


def test_a_received_at_that_is_no_time_is_not_shown(queues: Queues, capsys: pytest.CaptureFixture[str]) -> None:
    """A sender writing to the queue may set any receivedAt: only a time is shown, never what it holds."""
    attributes = {
        "source": "crm",
        "eventId": "evt_dlq_3",
        "receivedAt": "+351 912 345 678",
        "firstSeenAt": "2026-05-17T10:00:00Z",
        "errorCode": "humanos_rejected",
        "errorReason": "Humanos answered 400 Bad Request",
        "redriveCount": "many",
    }
    queues.sqs.send_message(
        QueueUrl=queues.dead_letters, MessageBody="{}", MessageAttributes=string_attributes(attributes)
    )

    row = parked_row(queues, capsys)

    assert row[3:5] == ["2026-05-17T10:00:00Z", "0"]
    assert "912" not in " ".join(row)


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
