"""A provider's event that the mapping refuses is parked, never refused (``unmappable: "park"``).

A provider cannot act on a 422: Shopify retries the same order 8 times over 4 hours and then deletes a
subscription made through its Admin API, so one unmappable order would lose itself and every later one. A
provider preset's source therefore answers 202 to every signed delivery. One it can route (a type, an id, a rule
for that type) is queued without a dry run of its mapping; the dispatcher maps it once and parks what it refuses,
with the reason. One it cannot route is parked at the door (202 ``parked``). Once the mapping is fixed,
``dlq redrive`` makes the request.

Real parts: the ingest and dispatcher functions as Lambda imports them, moto (SQS, DynamoDB, Secrets Manager),
the Humanos sandbox over HTTP, and the operator CLI. Each delivery is signed as Shopify signs (base64 HMAC-SHA256
of the body with the app's secret), computed here, not by the bridge.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from humanos_bridge.core.masking import safe_id
from humanos_bridge_local.cli import main
from tests.support.apigw import CRM_SECRET, HR_SECRET, SHOP_SECRET, apigw_event
from tests.support.bridge import ROOT
from tests.support.ingest_env import IngestEnv, app, create_ingest, dispatching, ingest_mapping
from tests.support.logs import check_lines, written_lines

SECRET = "shpss_parking_example_secret"
PRESET = json.loads((ROOT / "mappings" / "presets" / "shopify-orders-paid.json").read_text(encoding="utf-8"))
SAMPLE = json.loads((ROOT / "events" / "business" / "presets" / "shopify-orders-paid.json").read_text(encoding="utf-8"))
DELIVERY_ID = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
#: A paid order with no e-mail and no phone where the preset looks (the buyer's phone only on the billing address).
NO_CONTACT = {**copy.deepcopy(SAMPLE), "email": None, "contact_email": None, "phone": None}
NO_CONTACT["customer"] = {**NO_CONTACT["customer"], "email": None, "phone": None}


def shopify_source(**changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(PRESET["sources"]["shopify"]), **changes}


@pytest.fixture
def ingest(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[IngestEnv]:
    """The ingest function with the Shopify preset's source ("shopify": parks) and a copy that refuses."""
    env = create_ingest(moto, sandbox, monkeypatch, tmp_path)
    use_mapping(env, tmp_path, shopify_source())
    env.set_sender_secrets(
        {"crm": [CRM_SECRET], "shop-webhooks": [SHOP_SECRET], "hr": [HR_SECRET], "shopify": [SECRET]}
    )
    yield env
    app.service.cache_clear()


def use_mapping(env: IngestEnv, tmp_path: Path, shopify: dict[str, Any]) -> None:
    mapping = ingest_mapping()
    mapping["sources"]["shopify"] = shopify
    mapping["sources"]["shopify-strict"] = {
        **shopify,
        "unmappable": "refuse",
        "auth": {"scheme": "shopify", "secretKey": "shopify"},
    }
    env.bridge.with_mapping(env.monkeypatch, mapping, tmp_path)
    app.service.cache_clear()


def order(
    event: Any,
    *,
    source: str = "shopify",
    route: str = "events",
    topic: str = "orders/paid",
    delivery_id: str = DELIVERY_ID,
) -> dict[str, Any]:
    """The API Gateway event of Shopify posting ``event`` as ``topic``, signed as Shopify signs."""
    body = json.dumps(event).encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": delivery_id, "X-Shopify-Hmac-Sha256": signature}
    return apigw_event(source=source, route=route, body=body, signed=False, headers=headers)


def dead_letters(env: IngestEnv) -> list[dict[str, Any]]:
    """Every parked message, read with a visibility of 0 so that a later redrive finds them."""
    return env.bridge.sqs.receive_message(
        QueueUrl=env.bridge.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
    ).get("Messages", [])


def test_an_order_the_mapping_refuses_is_parked_by_the_dispatcher_then_redriven_once_the_mapping_is_fixed(
    ingest: IngestEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = ingest.invoke(order(NO_CONTACT))
    again = ingest.invoke(order(NO_CONTACT))  # Shopify's retry: the same delivery, byte for byte

    assert (answer.status, answer.body) == (202, {"eventId": safe_id(DELIVERY_ID), "status": "accepted"})
    assert (again.status, again.body) == (202, answer.body)
    with dispatching(ingest) as dispatcher:
        assert ingest.bridge.deliver(dispatcher.lambda_handler).failed_ids == []  # parked: settled, not retried
    [parked] = dead_letters(ingest)  # one message for the two deliveries
    assert json.loads(parked["Body"]) == {
        "humanosBridgeEnvelope": 2,
        "headers": {"x-shopify-topic": "orders/paid", "x-shopify-webhook-id": DELIVERY_ID},
        "event": NO_CONTACT,
    }
    attributes = {name: value["StringValue"] for name, value in parked["MessageAttributes"].items()}
    assert attributes["source"] == "shopify"
    assert attributes["eventId"] == safe_id(DELIVERY_ID)
    assert attributes["errorCode"] == "invalid_body"
    assert attributes["errorReason"].startswith("body.contacts: is empty")
    assert ingest.bridge.creations() == []

    # The fix: the preset's contacts also look at the billing address. Then the operator redrives.
    fixed = shopify_source()
    fixed["rules"]["orders/paid"][0]["request"]["contacts"] = (
        "=as_list(compact([email, customer.email, phone, billing_address.phone]) | [0])"
    )
    use_mapping(ingest, tmp_path, fixed)
    argv = ["--queue-url", ingest.bridge.queue_url, "--dlq-url", ingest.bridge.dlq_url, "--region", "eu-west-1"]
    assert main(["dlq", "redrive", "--all", *argv]) == 0
    assert "redriven 1/1: " in capsys.readouterr().out
    with dispatching(ingest) as dispatcher:
        assert ingest.bridge.deliver(dispatcher.lambda_handler).failed_ids == []
    [created] = ingest.bridge.creations()
    assert json.loads(created.body)["contacts"] == [SAMPLE["billing_address"]["phone"]]
    assert dead_letters(ingest) == []


def test_a_topic_without_a_rule_is_parked_at_the_door_with_its_reason(ingest: IngestEnv, tmp_path: Path) -> None:
    """The shop subscribed to orders/create too, and the mapping (unmatched: "reject") has no rule for it: the
    event has nowhere to go, so ingest parks it itself and answers 202 parked with the reason."""
    use_mapping(ingest, tmp_path, shopify_source(unmatched="reject"))
    with written_lines(app.logger) as lines:
        answer = ingest.invoke(order(NO_CONTACT, topic="orders/create"))
        again = ingest.invoke(order(NO_CONTACT, topic="orders/create"))  # the same delivery again

    assert (answer.status, answer.body["status"], answer.body["eventId"]) == (202, "parked", safe_id(DELIVERY_ID))
    assert answer.body["error"]["code"] == "mapping_error"
    assert answer.body["error"]["message"].startswith("source shopify: event type 'orders/create' has no rules")
    assert (again.status, again.body) == (202, {"eventId": safe_id(DELIVERY_ID), "status": "parked"})
    assert ingest.queued() == []
    [parked] = dead_letters(ingest)
    attributes = {name: value["StringValue"] for name, value in parked["MessageAttributes"].items()}
    assert (attributes["source"], attributes["errorCode"]) == ("shopify", "mapping_error")
    assert json.loads(parked["Body"])["headers"]["x-shopify-topic"] == "orders/create"
    [line] = [entry for entry in check_lines(lines) if entry.get("outcome") == "parked"]
    assert (line["level"], line["cause"]) == ("WARNING", "mapping_error")
    assert "status" not in line  # the sender was answered 202; the mapping's 422 is in cause and reason
    written = "\n".join(lines)
    assert "+351" not in written and "912345678" not in written and SECRET not in written


def test_a_source_that_refuses_answers_422_and_parks_nothing(ingest: IngestEnv) -> None:
    answer = ingest.invoke(order(NO_CONTACT, source="shopify-strict"))
    assert answer.status == 422
    assert answer.body["error"]["message"].startswith("body.contacts: is empty")
    assert ingest.queued() == [] and dead_letters(ingest) == []


def test_the_synchronous_route_answers_its_caller_422_and_parks_nothing(ingest: IngestEnv) -> None:
    """The caller of /requests waits for a request id: it is told why there is none."""
    answer = ingest.invoke(order(NO_CONTACT, route="requests"))
    assert answer.status == 422
    assert dead_letters(ingest) == []


def test_an_order_the_mapping_takes_is_queued_not_parked(ingest: IngestEnv) -> None:
    answer = ingest.invoke(order(SAMPLE))
    assert (answer.status, answer.body["status"]) == (202, "accepted")
    assert len(ingest.queued()) == 1 and dead_letters(ingest) == []


def test_when_the_dead_letter_queue_cannot_take_it_the_sender_gets_503_and_its_retry_is_parked(
    ingest: IngestEnv, tmp_path: Path
) -> None:
    """Nothing is half-done: no 202 without the parked message, and the failed attempt does not answer the retry."""
    use_mapping(ingest, tmp_path, shopify_source(unmatched="reject"))
    bridge = ingest.bridge
    attributes = bridge.sqs.get_queue_attributes(QueueUrl=bridge.dlq_url, AttributeNames=["All"])["Attributes"]
    bridge.sqs.delete_queue(QueueUrl=bridge.dlq_url)

    refused = ingest.invoke(order(SAMPLE, topic="orders/create"))

    assert refused.status == 503
    assert refused.body["error"]["code"] == "dead_letter_unavailable"
    bridge.sqs.create_queue(QueueName=attributes["QueueArn"].rsplit(":", 1)[1])
    retried = ingest.invoke(order(SAMPLE, topic="orders/create"))
    assert (retried.status, retried.body["status"]) == (202, "parked")
    assert len(dead_letters(ingest)) == 1


#: What the preset reads, and what may be missing, wrong or odd in an order a shop really sends.
READ_FIELDS = ["id", "name", "email", "contact_email", "phone", "customer", "line_items", "total_price", "currency"]
ODD_VALUES = st.none() | st.just("") | st.just([]) | st.just({}) | st.integers() | st.text(max_size=12)


def drain(env: IngestEnv, queue_url: str) -> list[dict[str, Any]]:
    """Every message of ``queue_url``, deleted as it is read, so that the next example starts from empty queues."""
    taken: list[dict[str, Any]] = []
    while messages := env.bridge.sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages"):
        for message in messages:
            env.bridge.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        taken.extend(messages)
    return taken


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    changes=st.dictionaries(st.sampled_from(READ_FIELDS), ODD_VALUES, max_size=4),
    dropped=st.lists(st.sampled_from(READ_FIELDS), max_size=3),
    topic=st.sampled_from(["orders/paid", "orders/paid", "orders/create", ""]),
    delivery=st.uuids(),  # X-Shopify-Webhook-Id: the event id
)
def test_a_signed_delivery_of_any_order_is_never_refused_and_ends_as_a_request_or_a_dead_letter(
    ingest: IngestEnv, changes: dict[str, Any], dropped: list[str], topic: str, delivery: Any
) -> None:
    """Whatever the order holds, Shopify gets 2xx, and after the dispatcher's turn the event is in exactly one
    place: a Humanos request, the dead-letter queue with its reason (parked by ingest or by the dispatcher), or
    nowhere because the source ignores its topic. Never two of these, never none."""
    # An order id and a token of its own, drawn here: the request is keyed by the order, and Shopify signs the body
    # alone, so a body sent before (hypothesis replays its examples) would be a copy of that delivery (replays).
    sent = {**copy.deepcopy(SAMPLE), **changes, "token": uuid.uuid4().hex}
    if "id" not in changes and "id" not in dropped:
        sent["id"] = uuid.uuid4().int % 10**15
    for name in dropped:
        sent.pop(name, None)
    created_before = len(ingest.bridge.creations())

    answer = ingest.invoke(order(sent, topic=topic, delivery_id=str(delivery)))
    assert answer.status == 202, answer.body
    if answer.body["status"] == "accepted":
        with dispatching(ingest) as dispatcher:
            assert ingest.bridge.deliver(dispatcher.lambda_handler).failed_ids == []

    created = len(ingest.bridge.creations()) - created_before
    queued, parked = drain(ingest, ingest.bridge.queue_url), drain(ingest, ingest.bridge.dlq_url)
    ends = {"a request": created, "a dead letter": len(parked), "still queued": len(queued)}
    event(f"{answer.body['status']} -> {', '.join(name for name, n in ends.items() if n) or 'ignored'}")
    if answer.body["status"] == "ignored":
        assert sum(ends.values()) == 0, ends
    elif ("id" in changes or "id" in dropped) and created == 0 and not parked and not queued:
        pass  # an order id chosen (or left out) twice: the second order is the first's duplicate (exactly once)
    else:
        assert sorted(ends.values()) == [0, 0, 1] and not queued, ends
    for message in parked:
        assert json.loads(message["Body"])["event"] == sent
        assert message["MessageAttributes"]["errorReason"]["StringValue"]


def test_on_fifo_queues_the_parked_event_reaches_the_fifo_dead_letter_queue(
    moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A FIFO dead-letter queue needs a group and a deduplication id: the ingest request's own."""
    env = create_ingest(moto, sandbox, monkeypatch, tmp_path, fifo=True)
    use_mapping(env, tmp_path, shopify_source(unmatched="reject"))
    env.set_sender_secrets(
        {"crm": [CRM_SECRET], "shop-webhooks": [SHOP_SECRET], "hr": [HR_SECRET], "shopify": [SECRET]}
    )
    try:
        first = env.invoke(order(SAMPLE, topic="orders/create"))
        second = env.invoke(order({**SAMPLE, "token": "another"}, topic="orders/create", delivery_id="a-second-one"))
        assert [first.body["status"], second.body["status"]] == ["parked", "parked"]
        assert env.bridge.dlq_url.endswith(".fifo")
        assert len(dead_letters(env)) == 2  # two deliveries, two messages: neither deduplicated away
        accepted = env.invoke(order(NO_CONTACT, topic="orders/paid", delivery_id="a-third-one"))
        assert (accepted.status, accepted.body["status"]) == (202, "accepted")  # routed: queued with its group
        assert len(env.queued()) == 1
    finally:
        app.service.cache_clear()
