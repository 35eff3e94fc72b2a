"""QueueType fifo: webhooks queued by the ingest route reach Humanos in order within their message group.

Real parts: the ingest and dispatcher functions as Lambda imports them, a FIFO request queue in moto, the Humanos
sandbox over HTTP. The CRM source's message group is the contact (``messageGroupId``): one contact's events
keep their order, other contacts' events do not wait for them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from humanos_bridge_local.sandbox import Fault
from tests.support.apigw import apigw_event
from tests.support.bridge import business_event
from tests.support.ingest_env import IngestEnv, create_ingest, dispatching, ingest_mapping


@pytest.fixture
def ingest(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[IngestEnv]:
    monkeypatch.setenv("HUMANOS_MAX_ATTEMPTS", "1")  # each injected fault reaches the dispatcher
    env = create_ingest(moto, sandbox, monkeypatch, tmp_path, fifo=True)
    mapping = ingest_mapping()
    mapping["sources"]["crm"]["messageGroupId"] = "data.contact.id"
    env.bridge.with_mapping(monkeypatch, mapping, tmp_path)
    yield env


def event(n: int, contact: str) -> dict[str, Any]:
    crm = business_event("crm-contact-created", id=f"evt_fifo_{n}")
    crm["data"]["contact"]["id"] = contact
    return crm


def key(n: int) -> str:
    return f"crm:evt_fifo_{n}:marketing-consent-sms"


def test_one_contacts_events_keep_their_order_and_a_failure_holds_back_only_that_contact(ingest: IngestEnv) -> None:
    for n, contact in ((1, "c_A"), (2, "c_A"), (3, "c_A"), (4, "c_B")):
        assert ingest.invoke(apigw_event(body=event(n, contact))).status == 202
    ingest.bridge.sandbox.inject(Fault.status(503), times=1, body_contains=key(2).encode())
    with dispatching(ingest) as dispatcher:
        while (result := ingest.bridge.deliver(dispatcher.lambda_handler)).received:
            ingest.bridge.make_visible(result)
    created = [json.loads(c.body)["internalId"] for c in ingest.bridge.creations()]
    assert sorted(created) == [key(1), key(2), key(3), key(4)]
    assert [k for k in created if k != key(4)] == [key(1), key(2), key(3)]  # c_A in order, 2 retried before 3


def test_a_sender_retry_is_one_queue_message_in_its_contacts_group(ingest: IngestEnv) -> None:
    """The same event posted twice (freshly signed): SQS's deduplication id is the idempotency key."""
    for _ in range(2):
        assert ingest.invoke(apigw_event(body=event(7, "c_C"))).status == 202
    queued = ingest.bridge.sqs.receive_message(
        QueueUrl=ingest.bridge.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
    )["Messages"]
    assert [(m["Attributes"]["MessageGroupId"], m["Attributes"]["MessageDeduplicationId"]) for m in queued] == [
        ("c_C", key(7))
    ]


def test_an_event_without_a_group_value_keeps_its_sources_order(ingest: IngestEnv) -> None:
    crm = event(8, "c_D")
    del crm["data"]["contact"]["id"]
    assert ingest.invoke(apigw_event(body=crm)).status == 202
    [queued] = ingest.bridge.sqs.receive_message(QueueUrl=ingest.bridge.queue_url, AttributeNames=["All"])["Messages"]
    assert queued["Attributes"]["MessageGroupId"] == "crm"
