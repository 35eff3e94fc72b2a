"""Fault injection at volume: 2,000 events, 5 % delivered twice, while 30 % of Humanos calls fail.

The sandbox answers 500, 503 and 429, hangs past the client's read timeout, drops connections
before and after creating the request. Whatever happens, each event that can be mapped ends as
exactly one Humanos request, and every other event is in the dead-letter queue with its reason.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from typing import Any

import pytest

from humanos_bridge import wiring
from humanos_bridge.dispatch.service import Backoff, Dispatcher
from humanos_bridge.settings import Settings
from humanos_bridge_local.lambda_runtime import LocalContext, SqsEventSource
from humanos_bridge_local.sandbox import Fault
from tests.support.bridge import BridgeEnv, business_event, create_bridge

EVENTS = int(__import__("os").environ.get("FAULT_TEST_EVENTS", "2000"))
DUPLICATE_SHARE = 0.05
UNMAPPABLE_SHARE = 0.02
FAULT_SHARE = 0.30
WAVE = 200
FAULTS = [
    Fault.status(500),
    Fault.status(503),
    Fault.status(429, retry_after="1"),
    Fault.hang(0.6),  # past the 0.3 s read timeout: ambiguous, the request may exist
    Fault.drop(),
    Fault.drop_after_processing(),  # created, but the answer is lost
]


@pytest.fixture
def dispatcher(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[BridgeEnv, Dispatcher]]:
    # Faults are frequent; maxReceiveCount is set so that only a 1-in-a-million streak reaches it.
    bridge = create_bridge(moto, sandbox, monkeypatch, max_receive=12)
    monkeypatch.setenv("HUMANOS_READ_TIMEOUT", "0.3")
    monkeypatch.setenv("HUMANOS_CALL_DEADLINE_SECONDS", "3")
    # No back-off wait beyond Retry-After, so that the test spends its time on the faults themselves.
    built = wiring.dispatcher(Settings.from_env(), backoff=Backoff(0.0, 0.0))
    yield bridge, built
    built.close()


def make_bodies(rng: random.Random) -> tuple[list[str], set[str], set[str]]:
    """The message bodies (duplicates included, shuffled), the mappable ids and the unmappable ids."""
    mappable, unmappable, bodies = set(), set(), []
    for n in range(EVENTS):
        event_id = f"evt_load_{n:05d}"
        if rng.random() < UNMAPPABLE_SHARE:
            event = business_event("crm-contact-created", id=event_id, data={"contact": {"phone": "not a phone"}})
            unmappable.add(event_id)
        else:
            event = business_event("crm-contact-created", id=event_id)
            mappable.add(event_id)
        copies = 2 if rng.random() < DUPLICATE_SHARE else 1
        bodies.extend([json.dumps(event)] * copies)
    rng.shuffle(bodies)
    return bodies, mappable, unmappable


def enqueue(bridge: BridgeEnv, bodies: list[str]) -> None:
    source = {"source": {"DataType": "String", "StringValue": "crm"}}
    for start in range(0, len(bodies), 10):
        bridge.sqs.send_message_batch(
            QueueUrl=bridge.queue_url,
            Entries=[
                {"Id": str(i), "MessageBody": body, "MessageAttributes": source}
                for i, body in enumerate(bodies[start : start + 10])
            ],
        )


def queue_is_empty(bridge: BridgeEnv) -> bool:
    attributes = bridge.sqs.get_queue_attributes(
        QueueUrl=bridge.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return all(int(value) == 0 for value in attributes.values())


@pytest.mark.timeout(900)
def test_thirty_percent_faults_still_give_exactly_one_request_per_event(
    dispatcher: tuple[BridgeEnv, Dispatcher],
) -> None:
    bridge, built = dispatcher
    rng = random.Random(20261128)
    bodies, mappable, unmappable = make_bodies(rng)
    per_fault = 1 - (1 - FAULT_SHARE) ** (1 / len(FAULTS))  # six independent rules, 30 % in all
    for fault in FAULTS:
        bridge.sandbox.inject(fault, probability=per_fault, method=None)

    # Batches of 100, every record in flight at once: the faults' waits (back-off, Retry-After, hangs) overlap.
    source = SqsEventSource(
        bridge.sqs, bridge.queue_url, lambda e, c: built.dispatch_batch(e, LocalContext(60)), batch_size=100
    )
    # The events arrive in waves of 200, as from a busy sender: moto's ReceiveMessage costs grow with
    # the square of the queue's depth, and a shallow queue keeps the test to a few minutes.
    rounds, give_up = 0, time.monotonic() + 840
    for start in range(0, len(bodies), WAVE):
        enqueue(bridge, bodies[start : start + WAVE])
        while time.monotonic() < give_up:
            if source.poll_once().received:
                rounds += 1
            elif queue_is_empty(bridge):
                break
            else:
                time.sleep(0.2)  # only backed-off messages are left: wait for them to come back
    assert queue_is_empty(bridge), f"queue not drained after {rounds} batches"

    # The default internalId is the idempotency key, crm:<event id>:<rule>.
    created = [r["internalId"].split(":")[1] for r in bridge.sandbox.created]
    assert len(created) == len(set(created)), "an event became two Humanos requests"
    assert set(created) == mappable
    parked = bridge.dead_letters()
    assert {m["MessageAttributes"]["eventId"]["StringValue"] for m in parked} == unmappable
    assert len(parked) >= len(unmappable)  # an unmappable event sent twice is parked twice, with its reason
    assert {m["MessageAttributes"]["errorCode"]["StringValue"] for m in parked} == {"invalid_body"}
    faults_seen = sum(1 for c in bridge.sandbox.calls if c.fault)
    print(f"\n{len(mappable)} created, {len(parked)} parked, {rounds} batches, {faults_seen} injected faults")
    assert faults_seen > 0.2 * len(mappable)  # the faults really happened
