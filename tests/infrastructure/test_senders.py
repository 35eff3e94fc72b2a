"""The optional ways in: an EventBridge rule and an SNS subscription to the request queue, least privilege."""

from __future__ import annotations

from typing import Any

import pytest
from cfn_template import Template

from humanos_bridge_local.cfn import Intrinsics


def conditions(template: Template, **parameters: str) -> Intrinsics:
    """The template's conditions for these parameter values (the others at their defaults)."""
    values = {name: str(spec.get("Default", "")) for name, spec in template.parameters.items()} | parameters
    return Intrinsics(values, template.conditions, lambda name: name, lambda name, attribute: f"{name}.{attribute}")


@pytest.mark.parametrize(
    ("parameters", "rule", "subscription"),
    [
        ({}, False, False),
        ({"EventBridgeSources": "com.example.hr,com.example.payroll"}, True, False),
        ({"SnsTopicArn": "arn:aws:sns:eu-west-1:123456789012:crm-events"}, False, True),
    ],
)
def test_the_senders_exist_only_when_asked_for(
    template: Template, parameters: dict[str, str], rule: bool, subscription: bool
) -> None:
    given = conditions(template, **parameters)
    for name, wanted in (
        ("EventBridgeRule", rule),
        ("EventBridgeDeadLetterQueue", rule),
        ("EventBridgeDeadLetterAlarm", rule),
        ("SnsSubscription", subscription),
        ("RequestQueueSendersPolicy", rule or subscription),
    ):
        assert given.condition(template.resources[name]["Condition"]) is wanted, name


def test_the_rule_takes_exactly_the_declared_sources_to_the_request_queue(template: Template) -> None:
    rule = template.properties("EventBridgeRule")
    assert rule["EventPattern"] == {"source": {"Ref": "EventBridgeSources"}}
    assert rule["EventBusName"] == {"Ref": "EventBusName"}
    (target,) = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["RequestQueue", "Arn"]}
    # Never dropped: 24 hours of retries, then its own dead-letter queue.
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["EventBridgeDeadLetterQueue", "Arn"]}}


def statements(template: Template, policy: str) -> list[dict[str, Any]]:
    found = []
    for statement in template.properties(policy)["PolicyDocument"]["Statement"]:
        if "Fn::If" in statement:
            statement = statement["Fn::If"][1]
        found.append(statement)
    return found


def test_only_the_rule_and_the_topic_may_send_to_the_request_queue(template: Template) -> None:
    allowed = {
        s["Principal"]["Service"]: (s["Action"], s["Condition"]["ArnEquals"]["aws:SourceArn"])
        for s in statements(template, "RequestQueueSendersPolicy")
    }
    assert allowed == {
        "events.amazonaws.com": ("sqs:SendMessage", {"Fn::GetAtt": ["EventBridgeRule", "Arn"]}),
        "sns.amazonaws.com": ("sqs:SendMessage", {"Ref": "SnsTopicArn"}),
    }
    (dead_letters,) = statements(template, "EventBridgeDeadLetterQueuePolicy")
    assert dead_letters["Condition"]["ArnEquals"]["aws:SourceArn"] == {"Fn::GetAtt": ["EventBridgeRule", "Arn"]}


def test_sns_notifications_arrive_wrapped_so_the_topic_names_their_source(template: Template) -> None:
    subscription = template.properties("SnsSubscription")
    assert subscription["RawMessageDelivery"] is False
    assert subscription["Endpoint"] == {"Fn::GetAtt": ["RequestQueue", "Arn"]}
