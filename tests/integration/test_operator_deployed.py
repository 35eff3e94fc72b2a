"""Operator commands against a deployed stack, found through its CloudFormation outputs (moto)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from humanos_bridge.core.queue_messages import string_attributes
from humanos_bridge_local.cli import main

STACK = {
    "Resources": {
        "DeadLetterQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "bridge-dlq"}},
        "RequestQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "bridge-requests"}},
    },
    "Outputs": {
        "RequestQueueUrl": {"Value": {"Ref": "RequestQueue"}},
        "DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetterQueue"}},
    },
}


@pytest.fixture
def deployed(moto: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A stack named 'bridge' with one event parked in its DLQ, the way the dispatcher parks it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint_url)
    monkeypatch.setenv("HUMANOS_BRIDGE_HOME", "/nonexistent")  # no local stack to fall back on
    moto.client("cloudformation").create_stack(StackName="bridge", TemplateBody=json.dumps(STACK))
    sqs = moto.client("sqs")
    urls = {name: sqs.get_queue_url(QueueName=name)["QueueUrl"] for name in ("bridge-dlq", "bridge-requests")}
    attributes = string_attributes(
        {
            "source": "crm",
            "eventId": "evt_parked_1",
            "errorCode": "humanos_rejected",
            "errorStatus": 400,
            "errorReason": "Humanos answered 400: contact ana@example.com is invalid",
            "originalMessageId": "m-1",
            "firstSeenAt": "2026-11-28T00:00:00Z",
        }
    )
    sqs.send_message(QueueUrl=urls["bridge-dlq"], MessageBody='{"id": "evt_parked_1"}', MessageAttributes=attributes)
    return urls


def test_dlq_list_reads_the_stack_outputs_and_masks_contacts(
    deployed: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "list", "--stack", "bridge", "--region", "eu-west-1"]) == 0
    out = capsys.readouterr().out
    assert "evt_parked_1" in out and "humanos_rejected" in out
    assert "ana@example.com" not in out and "a***@e***.com" in out


def test_dlq_redrive_moves_the_event_back_with_its_attributes(
    deployed: dict[str, str], moto: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dlq", "redrive", "--all", "--stack", "bridge", "--region", "eu-west-1"]) == 0
    sqs = moto.client("sqs")
    [back] = sqs.receive_message(QueueUrl=deployed["bridge-requests"], MessageAttributeNames=["All"])["Messages"]
    assert back["Body"] == '{"id": "evt_parked_1"}'
    assert back["MessageAttributes"]["source"]["StringValue"] == "crm"
    assert back["MessageAttributes"]["redriveCount"]["StringValue"] == "1"
    assert "errorCode" not in back["MessageAttributes"]
    assert sqs.receive_message(QueueUrl=deployed["bridge-dlq"]).get("Messages") is None


def test_status_of_a_deployed_stack(deployed: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--stack", "bridge", "--region", "eu-west-1"]) == 0
    out = capsys.readouterr().out
    assert "stack bridge" in out and "dead letters    1" in out


def test_an_unknown_stack_is_a_clear_error(deployed: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dlq", "list", "--stack", "nope", "--region", "eu-west-1"]) == 2
    assert "cannot describe stack 'nope'" in capsys.readouterr().err
