"""The receiver's claim, publish, mark order (``receive.dedup``) when an invocation dies half-way.

Real parts: moto in server mode (DynamoDB, EventBridge with a rule to SQS). The crashed invocation is played
by taking the claim (and, for the window, publishing) the way ``ReceiverService`` does, then stopping there;
the clock is injected, so the claim's in-progress time passes without sleeping.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from humanos_bridge.core.http_request import InboundRequest
from humanos_bridge.core.replays import IN_PROGRESS_SECONDS, ReplayGuard
from humanos_bridge.receive.dedup import Deduplicator, dedup_key
from humanos_bridge.receive.events import parse_event
from humanos_bridge.receive.publish import Publisher
from humanos_bridge.receive.service import ReceiverService
from humanos_bridge.receive.webhook_secret import StaticWebhookSecrets, parse_webhook_secret
from tests.support.fake_time import FakeTime
from tests.support.receiver import BUS, create_bus_with_queue, humanos_event, webhook_event, webhook_secret


class Stack:
    def __init__(self, moto: Any, clock: FakeTime) -> None:
        dynamodb = moto.client("dynamodb")
        dynamodb.create_table(
            TableName="idempotency",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.moto, self.clock = moto, clock
        self.queue_url = create_bus_with_queue(moto)
        self.dedup = Deduplicator(ReplayGuard(dynamodb, "idempotency", clock=clock), clock=clock)
        self.publisher = Publisher(moto.client("events"), BUS)
        secrets = StaticWebhookSecrets(parse_webhook_secret("test", json.dumps(webhook_secret())))
        self.service = ReceiverService(secrets, self.publisher, self.dedup, clock=clock)

    def deliver(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Humanos's delivery (or retry) now, by the injected clock."""
        event = webhook_event(payload, timestamp_ms=int(self.clock() * 1000))
        reply = self.service.handle_webhook(InboundRequest.from_apigw_v2(event))
        return reply.status, reply.body, reply.headers

    def published(self) -> list[dict[str, Any]]:
        sqs = self.moto.client("sqs")
        found = []
        while messages := sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", []):
            found += [json.loads(message["Body"]) for message in messages]
            for message in messages:
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return found


@pytest.fixture
def stack(moto: Any) -> Stack:
    return Stack(moto, FakeTime(time.time()))


def test_a_crash_between_the_claim_and_the_publish_loses_nothing(stack: Stack) -> None:
    """Given an invocation that claimed the event and died before publishing, Humanos's retry meanwhile gets 503
    (retry later); once the claim's in-progress time is over, the next retry publishes the event, once."""
    payload = humanos_event("otp.failed")
    stack.dedup.claim(dedup_key(parse_event(json.dumps(payload).encode())))  # ...and the crash

    status, body, headers = stack.deliver(payload)
    assert status == 503 and body["error"]["code"] == "delivery_in_progress" and "Retry-After" in headers
    assert stack.published() == []

    stack.clock.advance(IN_PROGRESS_SECONDS + 1)
    assert stack.deliver(payload)[:2] == (200, {"status": "published"})
    stack.clock.advance(IN_PROGRESS_SECONDS + 1)
    assert stack.deliver(payload)[:2] == (200, {"status": "replayed"})
    assert [event["detail-type"] for event in stack.published()] == ["OTP Failed"]


def test_a_failed_publish_releases_the_claim_at_once(moto: Any) -> None:
    """No waiting for the in-progress time after a failure we saw: the claim is released, so Humanos's very next
    retry publishes (here: the bus did not exist, then it does)."""
    clock = FakeTime(time.time())
    stack = Stack(moto, clock)
    stack.service.publisher = Publisher(moto.client("events"), "not-yet-a-bus")
    payload = humanos_event()
    assert stack.deliver(payload)[0] == 503

    moto.client("events").create_event_bus(Name="not-yet-a-bus")
    stack.service.publisher = stack.publisher  # the bus with the rule
    assert stack.deliver(payload)[:2] == (200, {"status": "published"})
    assert len(stack.published()) == 1


def test_the_remaining_window_a_crash_after_the_publish_duplicates_with_the_same_key(stack: Stack) -> None:
    """The documented window: the event reached the bus, and the invocation died before marking it. After the
    in-progress time, a retry publishes it again: a duplicate (never a loss) carrying the same webhookKey, by
    which a consumer recognises it."""
    payload = humanos_event()
    event = parse_event(json.dumps(payload).encode())
    key = dedup_key(event)
    stack.dedup.claim(key)
    stack.publisher.publish_event(event, key, None)  # ...and the crash, before the mark

    stack.clock.advance(IN_PROGRESS_SECONDS + 1)
    assert stack.deliver(payload)[:2] == (200, {"status": "published"})

    first, second = stack.published()
    assert first["detail"]["webhookKey"] == second["detail"]["webhookKey"] == key
