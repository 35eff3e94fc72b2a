"""The flow table's webhook rows: one per answer of the receiver, taken from its own log line.

A receiver line names the webhook by its detail-type (``credential.accepted``), the Humanos request, and the
business event it answers when the receiver recovered it (its correlation id, which the internalId then holds).
Published rows end with where the event went; replays say nothing was published; refusals carry status and cause.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from humanos_bridge_local.flow import WEBHOOK, FlowEvent, FlowRecorder, format_event


def receiver_line(**fields: Any) -> str:
    """A ``webhook ...`` entry as the receiver writes it (``receive.service``), published by default."""
    entry: dict[str, Any] = {
        "level": "INFO",
        "message": "webhook published",
        "correlation_id": "evt_crm_0001",
        "route": "webhooks",
        "outcome": "published",
        "latencyMs": 31.4,
        "eventType": "credential",
        "detailType": "Credential Accepted",
        "requestId": "6650f0c2a1b2c3d4e5f60718",
        "internalId": "crm:evt_crm_0001:marketing-consent-sms",
        "webhookKey": "ab" * 32,
    }
    entry.update(fields)
    return json.dumps({name: value for name, value in entry.items() if value is not None})


def rows(*lines: str) -> tuple[list[str], list[FlowEvent]]:
    printed: list[str] = []
    recorder = FlowRecorder(on_event=lambda event: printed.append(format_event(event)), on_other=printed.append)
    for line in lines:
        recorder.feed("ReceiverFunction", line)
    return printed, recorder.events


def test_a_published_webhook_is_a_row_that_ends_on_eventbridge() -> None:
    [row], [event] = rows(receiver_line())

    assert event.stage == WEBHOOK
    assert (event.source, event.event_type, event.event_id) == ("crm", "credential.accepted", "evt_crm_0001")
    assert row.split()[1:7] == [
        "webhook",
        "crm",
        "credential.accepted",
        "evt_crm_0001",
        "published",
        "6650f0c2a1b2c3d4e5f60718",
    ]
    assert row.endswith("31 ms  -> EventBridge")


def test_a_replay_says_nothing_was_published() -> None:
    [row], _ = rows(receiver_line(message="webhook replayed", outcome="replayed", detailType="Credential Rejected"))

    assert "credential.rejected" in row
    assert row.endswith("  nothing published: on the bus already")
    assert "EventBridge" not in row


def test_a_refused_webhook_shows_status_and_cause_and_no_event() -> None:
    """A bad signature is refused before decryption: no type, no request, API Gateway's id as correlation id."""
    line = receiver_line(
        level="WARNING",
        message="webhook rejected",
        outcome="rejected",
        correlation_id="c2x1Zm9vYmFyYmF6",
        eventType=None,
        detailType=None,
        requestId=None,
        internalId=None,
        webhookKey=None,
        status=401,
        cause="unauthorized",
        reason="signature_mismatch: signature does not match the body and timestamp",
    )

    [row], [event] = rows(line)

    assert (event.source, event.event_type, event.event_id, event.request_id) == (None, None, None, None)
    assert row.split()[1:8] == ["webhook", "-", "-", "-", "rejected", "401", "-"]
    assert row.endswith("unauthorized: signature_mismatch: signature does not match the body and timestamp")


def test_a_custom_internal_id_answers_no_business_event() -> None:
    """The receiver recovered nothing (a custom internalId): the correlation id is API Gateway's, not an event's."""
    [row], [event] = rows(receiver_line(internalId="order-1042", correlation_id="c2x1Zm9vYmFy"))

    assert (event.source, event.event_id) == (None, None)
    assert row.split()[2:5] == ["-", "credential.accepted", "-"]


@pytest.mark.parametrize(
    "fields",
    [
        {"detailType": "Credential Accepted\n00:00:00.000  webhook  crm  fake  row"},
        {"internalId": "crm:ana@example.com:rule", "correlation_id": "ana@example.com"},
        {"requestId": "\x1b[2Kreq"},
    ],
    ids=["newline in the detail-type", "contact as event id", "escape in the request id"],
)
def test_what_the_line_holds_is_shown_safe(fields: dict[str, Any]) -> None:
    [row], _ = rows(receiver_line(**fields))

    assert "\n" not in row and "\x1b" not in row and row.isprintable()
    assert "ana@example.com" not in row
