"""SNS and EventBridge envelopes: recognised by their exact shape, unwrapped, and how a source is found for them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from humanos_bridge.core.envelopes import EVENTBRIDGE, SNS, open_envelope
from humanos_bridge.core.errors import ConfigError, SerialisationError
from humanos_bridge.mapping import MappingConfig, parse_mapping

ROOT = Path(__file__).resolve().parents[2]
HIRED = json.loads((ROOT / "events" / "business" / "hr-employee-hired.json").read_text(encoding="utf-8"))


def envelope_of(sample: str) -> Any:
    record = json.loads((ROOT / "events" / "sqs" / sample).read_text(encoding="utf-8"))["Records"][0]
    return json.loads(record["body"])


def test_an_eventbridge_event_is_unwrapped_with_its_own_fields_beside_the_event() -> None:
    envelope = open_envelope(envelope_of("eventbridge-hr-employee-hired.json"))
    assert envelope is not None
    assert (envelope.kind, envelope.source, envelope.event) == (EVENTBRIDGE, "com.example.hr", HIRED)
    assert envelope.fields["detail-type"] == "employee.hired"
    assert "detail" not in envelope.fields


def test_an_sns_notification_is_unwrapped_without_its_signature() -> None:
    body = envelope_of("sns-crm-contact-created.json")
    body["MessageAttributes"] = {"source": {"Type": "String", "Value": "crm"}, "n": {"Type": "Number", "Value": "1"}}
    envelope = open_envelope(body)
    assert envelope is not None
    assert (envelope.kind, envelope.source, envelope.topic_arn) == (SNS, "crm", body["TopicArn"])
    assert envelope.event["id"] == "evt_crm_0001"
    assert envelope.fields["MessageAttributes"] == {"source": "crm", "n": "1"}
    assert not {"Signature", "SigningCertURL", "UnsubscribeURL", "Message"} & envelope.fields.keys()


@pytest.mark.parametrize(
    "body",
    [
        {"id": "evt_1", "type": "x", "source": "com.example.hr", "detail": {"a": 1}},  # a business event's own fields
        {**envelope_of("eventbridge-hr-employee-hired.json"), "version": "1"},
        {**envelope_of("eventbridge-hr-employee-hired.json"), "detail": "not an object"},
        {"Type": "Notification", "Message": {"id": 1}, "MessageId": "m", "TopicArn": "arn:x", "Timestamp": "t"},
        {**envelope_of("sns-crm-contact-created.json"), "Type": "SubscriptionConfirmation"},
        [envelope_of("sns-crm-contact-created.json")],
    ],
    ids=["business-event", "eventbridge-version", "detail-string", "message-object", "not-a-notification", "list"],
)
def test_what_only_looks_like_an_envelope_stays_a_business_event(body: Any) -> None:
    assert open_envelope(body) is None


def test_an_sns_message_that_is_not_json_is_a_precise_error() -> None:
    body = {**envelope_of("sns-crm-contact-created.json"), "Message": "hello +351912345678"}
    with pytest.raises(SerialisationError) as raised:
        open_envelope(body)
    assert raised.value.message.startswith("the SNS notification's Message is not a JSON business event")
    assert "351912345678" not in raised.value.message


# -- finding the source ---------------------------------------------------------------------------


def mapping(**matches: dict[str, Any]) -> MappingConfig:
    rule = [{"name": "r", "request": {"contacts": "=as_list(phone)", "groupIds": ["g"]}}]
    sources = {
        name: {"eventType": "type", "eventId": "id", "match": match, "rules": {"x": rule}}
        for name, match in matches.items()
    }
    return parse_mapping({"version": 1, "apiVersion": "2026-05-17", "sources": sources}, file="m.json")


TOPIC = "arn:aws:sns:eu-west-1:123456789012:crm-events"
CONFIG = {
    "hr": {"eventBridgeSource": ["com.example.hr", "com.example.payroll"]},
    "crm": {"snsTopicArn": TOPIC},
    "shop": {"when": "type == 'order.paid'"},
}


def test_the_source_is_found_in_the_documented_order() -> None:
    config = mapping(**CONFIG)
    eventbridge = open_envelope(envelope_of("eventbridge-hr-employee-hired.json"))
    sns = open_envelope(envelope_of("sns-crm-contact-created.json"))
    paid = {"type": "order.paid"}
    assert config.resolve_source("crm", eventbridge, paid) == "crm"  # the message attribute first
    assert config.resolve_source(None, eventbridge, paid) == "hr"  # then the envelope
    assert config.resolve_source(None, sns, paid) == "crm"
    assert config.resolve_source(None, None, paid) == "shop"  # then the body
    assert config.resolve_source(None, None, {"type": "other"}) is None  # then DEFAULT_SOURCE, in the dispatcher


def test_envelope_fields_can_give_the_event_its_type_and_id() -> None:
    source = {"eventType": 'envelope()."detail-type"', "eventId": "envelope().id"}
    rule = [{"name": "r", "request": {"contacts": "=as_list(employee.mobile)", "groupIds": ["g"]}}]
    document = {
        "version": 1,
        "apiVersion": "2026-05-17",
        "sources": {"hr": {**source, "rules": {"employee.hired": rule}}},
    }
    envelope = open_envelope(envelope_of("eventbridge-hr-employee-hired.json"))
    assert envelope is not None
    request = parse_mapping(document, file="m.json").map_event("hr", envelope.event, None, envelope.fields)
    assert (request.event_type, request.event_id) == ("employee.hired", "6a7e8feb-b491-4cf7-a9f1-bf3703467718")


@pytest.mark.parametrize(
    ("matches", "says"),
    [
        (
            {"hr": {"eventBridgeSource": "com.example.hr"}, "payroll": {"eventBridgeSource": ["com.example.hr"]}},
            "sources.payroll.match.eventBridgeSource: com.example.hr is also matched by source hr",
        ),
        (
            {"crm": {"snsTopicArn": TOPIC}, "leads": {"snsTopicArn": TOPIC}},
            f"sources.leads.match.snsTopicArn: {TOPIC} is also matched by source crm",
        ),
        (
            {"shop": {"when": "type == 'order.paid'"}, "refunds": {"when": "type == 'refund'"}},
            "sources.refunds.match.when: sources shop and refunds both match by body",
        ),
        ({"crm": {"snsTopicArn": "crm-events"}}, "sources.crm.match.snsTopicArn: must be a non-empty ARN"),
        ({"crm": {"topic": TOPIC}}, "sources.crm.match.topic: unknown key"),
    ],
)
def test_sources_that_could_both_take_an_event_are_refused(matches: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        mapping(**matches)
    assert any(says in problem for problem in raised.value.details["errors"]), raised.value.details["errors"]
