"""What `send --via` and the demo put on the queue: what EventBridge and SNS deliver, which the dispatcher unwraps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from humanos_bridge.core.envelopes import EVENTBRIDGE, SNS, open_envelope
from humanos_bridge.core.errors import ConfigError
from humanos_bridge.mapping import load_mapping
from humanos_bridge_local.aws_envelopes import queue_message

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "bridge.json")
HIRED = (ROOT / "events" / "business" / "hr-employee-hired.json").read_bytes()
CREATED = (ROOT / "events" / "business" / "crm-contact-created.json").read_bytes()


def test_an_eventbridge_delivery_is_found_by_the_mappings_eventbridge_source() -> None:
    message = queue_message(MAPPING, "hr", HIRED, "eventbridge")
    assert "MessageAttributes" not in message  # EventBridge cannot set one
    envelope = open_envelope(json.loads(message["MessageBody"]))
    assert envelope is not None and envelope.kind == EVENTBRIDGE
    assert envelope.fields["detail-type"] == "employee.hired"
    assert MAPPING.resolve_source(None, envelope, envelope.event) == "hr"
    assert envelope.event == json.loads(HIRED)


def test_an_sns_delivery_is_found_by_the_topic_or_by_its_source_attribute() -> None:
    for source, body in (("crm", CREATED), ("hr", HIRED)):  # crm matches its topic; hr has no topic
        envelope = open_envelope(json.loads(queue_message(MAPPING, source, body, "sns")["MessageBody"]))
        assert envelope is not None and envelope.kind == SNS
        assert MAPPING.resolve_source(None, envelope, envelope.event) == source


def test_eventbridge_for_a_source_no_rule_would_route_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match=r"source crm has no match\.eventBridgeSource in the mapping"):
        queue_message(MAPPING, "crm", CREATED, "eventbridge")
