"""End to end through the local stack over HTTP: webhook in, Humanos request out, dead letters redriven, and the
way back: a request decided in the sandbox comes back through the packaged receiver as an event on the bus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from humanos_bridge.core.queue_messages import string_attributes
from humanos_bridge_local.cli import main
from humanos_bridge_local.flow import format_event
from humanos_bridge_local.sandbox import Fault
from humanos_bridge_local.stack import ROOT, LocalStack
from tests.e2e.stack_helpers import (
    WAIT_SECONDS,
    business_event,
    creations_for,
    decide,
    dispatched,
    on_bus,
    post,
    webhook_rows,
)


def test_signed_event_becomes_one_sandbox_request(stack: LocalStack) -> None:
    """A signed CRM webhook is accepted (202) and the dispatcher creates exactly one Humanos request."""
    event = business_event("crm-contact-created", id="evt_e2e_signed")

    status, answer = post(stack, "crm", event)

    assert (status, answer) == (202, {"eventId": "evt_e2e_signed", "status": "accepted"})
    outcomes = dispatched(stack, "evt_e2e_signed")
    assert [o.outcome for o in outcomes] == ["created"]
    created = creations_for(stack, "evt_e2e_signed")
    assert len(created) == 1
    assert json.loads(created[0].body)["contacts"] == ["+351912345678"]
    assert outcomes[0].request_id == created[0].response["id"]


def test_duplicate_event_changes_nothing(stack: LocalStack) -> None:
    """The same event sent twice is accepted twice, but Humanos gets one request; the second is a duplicate."""
    event = business_event("crm-contact-created", id="evt_e2e_duplicate")

    first = post(stack, "crm", event)
    second = post(stack, "crm", event)

    assert first == second == (202, {"eventId": "evt_e2e_duplicate", "status": "accepted"})
    outcomes = dispatched(stack, "evt_e2e_duplicate", count=2)
    assert [o.outcome for o in outcomes] == ["created", "duplicate"]
    assert outcomes[0].request_id == outcomes[1].request_id
    assert len(creations_for(stack, "evt_e2e_duplicate")) == 1


def test_unmappable_event_is_refused_with_422(stack: LocalStack) -> None:
    """A contact without an international phone number cannot become a request: 422 with the precise path."""
    event = business_event("crm-contact-created-invalid", id="evt_e2e_unmappable")

    status, answer = post(stack, "crm", event)

    reason = "body.contacts[0]: not an e-mail address or a +international phone number (8 to 15 digits after the +)"
    assert status == 422
    assert answer == {
        "error": {
            "code": "invalid_body",
            "message": reason,
            "details": {
                "errors": [reason],
                "path": "body.contacts[0]",
                "source": "crm",
                "rule": "marketing-consent-sms",
            },
        }
    }
    assert stack.queue_depths()["visible"] == 0


def test_unsigned_event_is_refused_with_401(stack: LocalStack) -> None:
    """Without signature headers the ingest API answers 401 with its one generic message."""
    status, answer = post(stack, "crm", business_event("crm-contact-created", id="evt_e2e_unsigned"), signed=False)

    assert (status, answer) == (
        401,
        {"error": {"code": "unauthorized", "message": "request signature could not be verified"}},
    )


def test_permanent_failure_is_parked_then_redriven_once_sandbox_recovers(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Humanos refusing an event (400) parks it in the DLQ; after the fault clears, `dlq redrive` delivers it."""
    assert stack.sandbox is not None
    stack.sandbox.inject(Fault.status(400), body_contains=b"evt_e2e_parked")
    status, _ = post(stack, "crm", business_event("crm-contact-created", id="evt_e2e_parked"))
    assert status == 202
    assert [o.outcome for o in dispatched(stack, "evt_e2e_parked")] == ["parked"]
    assert stack.queue_depths()["dead_letters"] == 1

    assert main(["dlq", "list"]) == 0
    listing = capsys.readouterr().out
    assert "evt_e2e_parked" in listing
    assert "humanos_rejected" in listing
    assert "Humanos answered 400 Bad Request" in listing

    stack.sandbox.clear_faults()
    assert main(["dlq", "redrive", "--event-id", "evt_e2e_parked"]) == 0
    assert capsys.readouterr().out == "redriven 1/1: evt_e2e_parked (crm)\n"

    assert [o.outcome for o in dispatched(stack, "evt_e2e_parked", count=2)] == ["parked", "created"]
    assert len(creations_for(stack, "evt_e2e_parked")) == 1
    assert stack.queue_depths()["dead_letters"] == 0


def test_dlq_list_masks_contacts(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    """A parked message whose attributes quote a phone number and an e-mail is listed with both masked."""
    attributes = string_attributes(
        {
            "source": "crm",
            "eventId": "evt_e2e_masked",
            "errorCode": "humanos_rejected",
            "errorReason": "contact ana@example.com / +351 912 345 678 refused",
            "firstSeenAt": "2026-05-20T09:15:00Z",
        }
    )
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=stack.dead_letter_queue_url, MessageBody="{}", MessageAttributes=attributes)
    try:
        assert main(["dlq", "list"]) == 0
        listing = capsys.readouterr().out
        assert "contact a***@e***.com / +35********78 refused" in listing
        assert "ana@example.com" not in listing
        assert "912 345 678" not in listing
    finally:
        sqs.purge_queue(QueueUrl=stack.dead_letter_queue_url)


def test_send_command_signs_with_the_source_scheme(
    stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`send shop EVENT.json` signs with Standard Webhooks, using the secret stored in the local stack."""
    event = business_event("shop-order-paid")
    event["data"]["orderId"] = "ord_e2e_send"
    path = tmp_path / "order.json"
    path.write_text(json.dumps(event), encoding="utf-8")

    assert main(["send", "shop", str(path)]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"POST {stack.api_url}/events/shop (standard-webhooks) -> 202\n")
    event_id = json.loads(out.split("\n", 1)[1])["eventId"]
    assert [o.outcome for o in dispatched(stack, event_id)] == ["created"]
    assert len(creations_for(stack, "ord_e2e_send")) == 1


def test_send_to_an_unknown_source_names_the_mapping_file_the_user_knows(
    stack: LocalStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not the layer's copy under a temporary folder: the file to open and edit."""
    path = tmp_path / "event.json"
    path.write_text("{}", encoding="utf-8")

    assert main(["send", "nosuch", str(path)]) == 2

    error = capsys.readouterr().err
    assert f"source 'nosuch' is not in {ROOT / 'mappings' / 'bridge.json'}; use one of: crm, " in error


def test_status_shows_depths_and_recent_outcomes(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    """`status` reads the local stack's queues and its latest events."""
    post(stack, "crm", business_event("crm-contact-created", id="evt_e2e_status"))
    dispatched(stack, "evt_e2e_status")
    assert stack.wait_until_drained(WAIT_SECONDS)

    assert main(["status"]) == 0

    out = capsys.readouterr().out
    assert f"bridge: the local stack at {stack.api_url}\n" in out
    assert "  request queue   0 waiting, 0 in flight (being handled or backing off), 0 delayed\n" in out
    assert "  dead letters    0\n" in out
    assert "evt_e2e_status" in out


def test_a_request_decided_in_the_sandbox_arrives_on_the_bus(stack: LocalStack) -> None:
    """Given a request the bridge created, when its person rejects it in the sandbox, then the sandbox's sealed
    webhook passes the packaged receiver (200), one Credential Rejected event about that request and its business
    event is on the bus, and the flow table shows the webhook going to EventBridge."""
    post(stack, "crm", business_event("crm-contact-created", id="evt_e2e_decided"))
    [created] = dispatched(stack, "evt_e2e_decided")
    assert created.request_id is not None

    [delivery] = decide(stack, created.request_id, "reject")

    assert (delivery.state, delivery.statuses) == ("delivered", (200,))
    [event] = on_bus(stack, created.request_id)
    assert event.envelope["source"] == "humanos.bridge"
    assert event.detail_type == "Credential Rejected"
    assert event.detail["business"] == {"source": "crm", "eventId": "evt_e2e_decided", "rule": "marketing-consent-sms"}
    assert event.detail["decision"]["accepted"] is False
    [row] = webhook_rows(stack, created.request_id)
    assert (row.source, row.event_type, row.event_id, row.outcome) == (
        "crm",
        "credential.rejected",
        "evt_e2e_decided",
        "published",
    )
    shown = format_event(row)
    assert shown.split()[1:3] == ["webhook", "crm"]
    assert shown.endswith("-> EventBridge")


def test_events_tail_shows_the_event_masked(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    """An event whose id is an e-mail address, accepted: `events tail` names its request and masks the id; the
    contact in the payload is not shown at all."""
    post(stack, "crm", business_event("crm-contact-created", id="evt_e2e_ana@example.com"))
    [created] = dispatched(stack, "e***@e***.com")  # as the dispatcher logs it
    assert created.request_id is not None
    decide(stack, created.request_id, "accept")
    assert len(on_bus(stack, created.request_id)) == 1
    capsys.readouterr()

    assert main(["events", "tail"]) == 0

    out = capsys.readouterr().out
    [line] = [line for line in out.splitlines() if created.request_id in line]
    assert line.split()[1:6] == ["Credential", "Accepted", created.request_id, "crm", "e***@e***.com"]
    assert "ana@example.com" not in out
    assert "912345678" not in out  # the contact, which only the payload holds
