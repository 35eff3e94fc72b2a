"""Events from EventBridge and SNS, delivered to the request queue the way AWS delivers them, with no source attribute.

Real parts: moto in server mode routes the events (an EventBridge rule with the queue as its target, SNS
subscriptions with and without raw delivery), the dispatcher function as Lambda imports it, the Humanos sandbox
over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from humanos_bridge_local.lambda_runtime import LocalContext
from tests.support.bridge import ROOT, BridgeEnv, business_event, dispatcher_bridge, load_function

app = load_function("dispatcher")


@pytest.fixture
def bridge(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[BridgeEnv]:
    with dispatcher_bridge(moto, sandbox, monkeypatch) as env:
        topic = moto.client("sns").create_topic(Name="crm-events")["TopicArn"]
        mapping = json.loads((ROOT / "mappings" / "bridge.json").read_text(encoding="utf-8"))
        mapping["sources"]["hr"]["match"] = {"eventBridgeSource": "com.example.hr"}
        mapping["sources"]["crm"]["match"] = {"snsTopicArn": topic}
        mapping["sources"]["shop"]["match"] = {"when": "type == 'order.paid' && data.orderId != null"}
        env.with_mapping(monkeypatch, mapping, tmp_path)
        yield env


def queue_arn(bridge: BridgeEnv) -> str:
    attributes = bridge.sqs.get_queue_attributes(QueueUrl=bridge.queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def created(bridge: BridgeEnv) -> list[dict[str, Any]]:
    return [json.loads(call.body) for call in bridge.creations()]


def test_an_eventbridge_event_is_unwrapped_and_its_source_found_by_the_rule_source(bridge: BridgeEnv) -> None:
    events = bridge.moto.client("events")
    events.put_rule(Name="hr-to-bridge", EventPattern=json.dumps({"source": ["com.example.hr"]}))
    events.put_targets(Rule="hr-to-bridge", Targets=[{"Id": "queue", "Arn": queue_arn(bridge)}])
    hired = business_event("hr-employee-hired")
    answer = events.put_events(
        Entries=[{"Source": "com.example.hr", "DetailType": "employee.hired", "Detail": json.dumps(hired)}]
    )
    assert answer["FailedEntryCount"] == 0
    assert bridge.deliver(app.lambda_handler).failed_ids == []
    [body] = created(bridge)
    assert body["internalId"] == "employee-E-2041"  # the hr rule for employees: the event inside, mapped
    assert bridge.dead_letters() == []


@pytest.mark.parametrize("raw", [False, True], ids=["notification", "raw-delivery"])
def test_an_sns_notification_finds_its_source_by_topic_or_by_attribute(bridge: BridgeEnv, raw: bool) -> None:
    sns = bridge.moto.client("sns")
    [topic] = [t["TopicArn"] for t in sns.list_topics()["Topics"]]
    attributes = {"RawMessageDelivery": "true"} if raw else {}
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(bridge), Attributes=attributes)
    event = business_event("crm-contact-created", id="evt_sns_1")
    # Raw delivery turns SNS message attributes into SQS ones: the source attribute, as today.
    message_attributes = {"source": {"DataType": "String", "StringValue": "crm"}} if raw else {}
    sns.publish(TopicArn=topic, Message=json.dumps(event), MessageAttributes=message_attributes)
    assert bridge.deliver(app.lambda_handler).failed_ids == []
    [body] = created(bridge)
    assert body["internalId"] == "crm:evt_sns_1:marketing-consent-sms"


def test_a_body_match_takes_a_plain_event_without_attribute(bridge: BridgeEnv) -> None:
    bridge.enqueue(business_event("shop-order-paid"), source=None)
    assert bridge.deliver(app.lambda_handler).failed_ids == []
    [body] = created(bridge)
    assert body["internalId"] == "order-ord_5001"


def test_a_body_that_only_looks_like_an_envelope_stays_a_business_event(bridge: BridgeEnv) -> None:
    """A CRM event with a `detail` and a `source` of its own is not an EventBridge event: mapped as it is."""
    event = business_event("crm-contact-created", id="evt_lookalike", source="com.example.hr", detail={"x": 1})
    bridge.enqueue(event, source="crm")
    assert bridge.deliver(app.lambda_handler).failed_ids == []
    [body] = created(bridge)
    assert body["internalId"] == "crm:evt_lookalike:marketing-consent-sms"


def test_an_event_nothing_claims_is_parked_saying_every_way_to_name_its_source(bridge: BridgeEnv) -> None:
    bridge.enqueue({"type": "contact.deleted", "id": "evt_orphan"}, source=None)
    assert bridge.deliver(app.lambda_handler).failed_ids == []
    [parked] = bridge.dead_letters()
    reason = parked["MessageAttributes"]["errorReason"]["StringValue"]
    assert reason.startswith("nothing names the message's source: no 'source' attribute, no mapping source whose")
    assert created(bridge) == []


@pytest.mark.parametrize(
    ("sample", "internal_id"),
    [
        ("eventbridge-hr-employee-hired.json", "employee-E-2041"),
        ("sns-crm-contact-created.json", "crm:evt_crm_0001:marketing-consent-sms"),
    ],
)
def test_sample_envelopes_dispatch_with_the_shipped_mapping(
    moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch, sample: str, internal_id: str
) -> None:
    """events/sqs/'s envelopes (for `sam local invoke -e`) against mappings/bridge.json as shipped."""
    with dispatcher_bridge(moto, sandbox, monkeypatch) as shipped:
        event = json.loads((ROOT / "events" / "sqs" / sample).read_text(encoding="utf-8"))
        assert app.lambda_handler(event, LocalContext()) == {"batchItemFailures": []}
        assert [body["internalId"] for body in created(shipped)] == [internal_id]
