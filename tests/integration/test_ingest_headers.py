"""Headers a source keeps travel with its event from the webhook to the mapping, and nothing else does.

Real parts: the ingest and dispatcher functions as Lambda imports them, moto (SQS, DynamoDB, Secrets Manager)
and the Humanos sandbox over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from humanos_bridge.core.http_request import MAX_JSON_DEPTH
from humanos_bridge_local.cli import main
from humanos_bridge_local.sandbox import Fault
from tests.support.apigw import CRM_SECRET, apigw_event
from tests.support.ingest_env import IngestEnv, create_ingest, dispatching, ingest_mapping

ORDER = {"id": 5871203254375, "name": "#1042", "email": "ana.silva@example.com"}
HEADERS = {"X-Shopify-Topic": "orders/paid", "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}


@pytest.fixture
def ingest(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[IngestEnv]:
    env = create_ingest(moto, sandbox, monkeypatch, tmp_path)
    mapping = ingest_mapping()
    mapping["sources"]["shopify"] = {
        "headers": ["X-Shopify-Topic", "X-Shopify-Webhook-Id"],
        "eventType": "header('X-Shopify-Topic')",
        "eventId": "to_string(id)",
        "unmatched": "ignore",
        "auth": {"scheme": "humanos-hmac", "secretKey": "crm"},
        "rules": {
            "orders/paid": [
                {
                    "name": "agreement",
                    "request": {
                        "contacts": "=as_list(email)",
                        "groupIds": ["grp_orders"],
                        "name": "=concat('Order ', name, ' (delivery ', header('X-Shopify-Webhook-Id'), ')')",
                    },
                }
            ]
        },
    }
    env.bridge.with_mapping(monkeypatch, mapping, tmp_path)
    yield env


def post(body: Any, headers: dict[str, str | None]) -> dict[str, Any]:
    return apigw_event(source="shopify", route="events", body=body, secret=CRM_SECRET, headers=headers)


def test_the_kept_headers_reach_the_mapping_and_the_signature_never_reaches_the_queue(ingest: IngestEnv) -> None:
    answer = ingest.invoke(post(ORDER, {**HEADERS, "X-Forwarded-For": "203.0.113.9"}))
    assert (answer.status, answer.body["status"]) == (202, "accepted")
    [queued] = ingest.bridge.sqs.receive_message(QueueUrl=ingest.bridge.queue_url, VisibilityTimeout=0)["Messages"]
    envelope = json.loads(queued["Body"])
    assert envelope["headers"] == {
        "x-shopify-topic": "orders/paid",
        "x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    }
    assert envelope["event"] == ORDER  # the webhook's body, as it came
    with dispatching(ingest) as dispatcher:
        assert ingest.bridge.deliver(dispatcher.lambda_handler).failed_ids == []
    [created] = ingest.bridge.creations()
    assert json.loads(created.body)["name"] == "Order #1042 (delivery b54557e4-bdd9-4b37-8a5f-bf7d70bcd043)"


def test_another_topic_is_ignored_at_the_door(ingest: IngestEnv) -> None:
    answer = ingest.invoke(post(ORDER, {**HEADERS, "X-Shopify-Topic": "refunds/create"}))
    assert (answer.status, answer.body["status"]) == (202, "ignored")
    assert ingest.queued() == []


def test_a_sender_cannot_smuggle_headers_in_its_body(ingest: IngestEnv) -> None:
    """A body shaped like an envelope is the sender's event, wrapped like any other: its 'headers' mean nothing."""
    forged = {"humanosBridgeEnvelope": 1, "headers": {"x-shopify-topic": "orders/paid"}, "body": json.dumps(ORDER)}
    answer = ingest.invoke(post(forged, {"X-Shopify-Topic": None, "X-Shopify-Webhook-Id": None}))
    assert answer.status == 422
    assert answer.body["error"]["message"].startswith("event type: `header('X-Shopify-Topic')` found nothing")
    assert ingest.queued() == []


def test_a_version_1_envelope_queued_before_an_upgrade_is_dispatched(ingest: IngestEnv) -> None:
    """Until version 2, ingest escaped the body into a string; such messages, still queued or parked, keep working."""
    v1 = {"humanosBridgeEnvelope": 1, "headers": {"x-shopify-topic": "orders/paid", "x-shopify-webhook-id": "d-1"}}
    v1["body"] = json.dumps(ORDER)
    attributes = {"source": {"DataType": "String", "StringValue": "shopify"}}
    ingest.bridge.sqs.send_message(
        QueueUrl=ingest.bridge.queue_url, MessageBody=json.dumps(v1), MessageAttributes=attributes
    )
    with dispatching(ingest) as dispatcher:
        assert ingest.bridge.deliver(dispatcher.lambda_handler).failed_ids == []
    [created] = ingest.bridge.creations()
    assert json.loads(created.body)["name"] == "Order #1042 (delivery d-1)"


def test_an_event_as_deep_as_ingest_allows_is_still_dispatched_inside_its_envelope(ingest: IngestEnv) -> None:
    """The envelope nests the event one level deeper; the dispatcher's limit leaves room for it."""
    deep: Any = "bottom"
    for _ in range(MAX_JSON_DEPTH - 1):  # the order itself is the last level
        deep = [deep]
    answer = ingest.invoke(post({**ORDER, "note": deep}, HEADERS))
    assert (answer.status, answer.body["status"]) == (202, "accepted")
    with dispatching(ingest) as dispatcher:
        assert ingest.bridge.deliver(dispatcher.lambda_handler).failed_ids == []
    assert len(ingest.bridge.creations()) == 1
    too_deep = ingest.invoke(post({**ORDER, "id": 2, "note": [deep]}, HEADERS))
    assert too_deep.status == 400  # one more level is refused at the door, not parked later


def test_an_enveloped_event_parked_by_a_refusal_keeps_its_headers_through_a_redrive(
    ingest: IngestEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    """Humanos refuses (400): the dispatcher parks the envelope as it was queued; `dlq redrive` puts it back, and
    once Humanos accepts, the request is made with the headers the webhook brought."""
    bridge = ingest.bridge
    assert ingest.invoke(post(ORDER, HEADERS)).status == 202
    bridge.sandbox.inject(Fault.status(400), times=1)
    with dispatching(ingest) as dispatcher:
        bridge.deliver(dispatcher.lambda_handler)
        [parked] = bridge.dead_letters()
        assert json.loads(parked["Body"])["humanosBridgeEnvelope"] == 2
        assert parked["MessageAttributes"]["errorCode"]["StringValue"] == "humanos_rejected"
        bridge.sqs.change_message_visibility(
            QueueUrl=bridge.dlq_url, ReceiptHandle=parked["ReceiptHandle"], VisibilityTimeout=0
        )
        argv = ["--queue-url", bridge.queue_url, "--dlq-url", bridge.dlq_url, "--region", "eu-west-1"]
        assert main(["dlq", "redrive", "--all", *argv]) == 0
        assert "redriven 1/1: " in capsys.readouterr().out
        assert bridge.deliver(dispatcher.lambda_handler).failed_ids == []
    [created] = bridge.creations()
    assert json.loads(created.body)["name"] == "Order #1042 (delivery b54557e4-bdd9-4b37-8a5f-bf7d70bcd043)"
