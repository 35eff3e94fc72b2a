"""``humanos-bridge dlq list`` and ``redrive`` on moto's queues: when an event was first seen, how often redriven.

A message is parked as the dispatcher parks it (``dead_letters.park``), redriven by the command, received
again and parked again: "first seen" must still be the first time, and "redrives" must count.
"""

from __future__ import annotations

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


def park_next(queues: Queues) -> None:
    """Receive the request queue's message and park it, as the dispatcher does with a permanent failure."""
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
