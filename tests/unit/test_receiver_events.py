"""The receiver's pure parts: the event shapes per API version, the dedup key, and the business origin."""

from __future__ import annotations

import json
from typing import Any

import pytest

from humanos_bridge.mapping import load_mapping
from humanos_bridge.receive.dedup import dedup_key
from humanos_bridge.receive.events import (
    SHAPE_2026_04_14,
    SHAPE_2026_05_17,
    SHAPE_2026_09_01,
    WebhookEventError,
    parse_event,
    shape_for,
)
from humanos_bridge.receive.origin import Origin, OriginIndex
from tests.support.bridge import ROOT
from tests.support.receiver import CONTACT, humanos_event


def parsed(payload: dict[str, Any]) -> Any:
    return parse_event(json.dumps(payload).encode())


@pytest.mark.parametrize(
    ("version", "shape"),
    [
        (None, SHAPE_2026_04_14),
        ("2026-01-01", SHAPE_2026_04_14),
        ("2026-04-14", SHAPE_2026_04_14),
        ("2026-05-16", SHAPE_2026_04_14),
        ("2026-05-17", SHAPE_2026_05_17),
        ("2026-07-07", SHAPE_2026_05_17),
        ("2026-09-01", SHAPE_2026_09_01),
        ("2027-03-01", SHAPE_2026_09_01),
    ],
)
def test_each_api_version_reads_as_the_latest_documented_shape_not_after_it(version: str | None, shape: str) -> None:
    assert shape_for(version) == shape


@pytest.mark.parametrize("version", ["2026-13-01", "2026-5-17", "", "latest"])
def test_a_malformed_api_version_is_refused(version: str) -> None:
    with pytest.raises(WebhookEventError, match="api_version"):
        shape_for(version)


def test_the_user_id_is_the_did_up_to_2026_04_14_and_id_after() -> None:
    assert parsed(humanos_event(version="2026-04-14")).user_id == "did:via:user:3f9c2a"
    assert parsed(humanos_event(version="2026-05-17")).user_id == "did:via:user:3f9c2a"
    with pytest.raises(WebhookEventError, match=r"^user\.did is missing"):
        parsed(humanos_event(version="2026-04-14", user={"contact": CONTACT, "id": "did:via:user:1"}))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"eventType": 7}, "eventType must be a non-empty string"),
        ({"requestId": None}, "requestId is missing"),
        ({"issuerDid": ""}, "issuerDid must be a non-empty string"),
        ({"user": "ana"}, "user must be an object"),
        ({"internalId": 12}, "internalId must be a non-empty string"),
        ({"decision": {"action": "maybe", "date": "2026-05-20T09:14:58Z"}}, "decision.action must be one of"),
        ({"decision": {"action": "accept", "date": "yesterday"}}, "decision.date must be an ISO 8601"),
        ({"credential": {"status": "ACTIVE"}}, "credential.id is missing"),
    ],
)
def test_each_bad_field_is_named_and_its_value_never_quoted(payload: dict[str, Any], message: str) -> None:
    event = humanos_event()
    event.update(payload)
    with pytest.raises(WebhookEventError) as caught:
        parsed(event)
    assert str(caught.value).startswith(message)
    assert CONTACT not in str(caught.value)


def test_identity_data_is_optional_from_2026_05_17_and_is_fraud_from_2026_09_01() -> None:
    assert parsed(humanos_event("identity", "2026-05-17", identity=None)).decision["success"] is True
    latest = parsed(humanos_event("identity", "2026-09-01", identity=None))
    assert latest.decision == {"success": True, "isFraud": None, "date": "2026-05-20T09:14:58.000Z"}
    with pytest.raises(WebhookEventError, match="identity is missing"):
        parsed(humanos_event("identity", "2026-04-14", identity=None))
    with pytest.raises(WebhookEventError, match=r"decision\.isFraud is missing"):
        parsed(humanos_event("identity", "2026-05-17", decision={"success": True, "date": "2026-05-20T09:14:58Z"}))


def test_a_test_event_needs_only_its_type() -> None:
    """The dashboard's test button: what it fills in besides eventType and message is undocumented."""
    event = parsed({"eventType": "test", "api_version": "2026-05-17", "message": "hello"})
    assert (event.detail_type, event.request_id, event.decision) == ("Test", None, {})


def test_the_dedup_key_ignores_how_the_event_was_encrypted_and_separates_what_differs() -> None:
    """The same event (Humanos's retry) has one key; another credential, contact or date has another. Events
    without a decision date are told apart by their whole payload."""
    base = parsed(humanos_event())
    assert dedup_key(base) == dedup_key(parsed(humanos_event()))
    others = [
        humanos_event(credential={"id": "urn:via:credential:2"}),
        humanos_event(user={"contact": "+351918888888", "id": "did:via:user:3f9c2a"}),
        humanos_event(decision={"action": "accept", "date": "2026-05-21T00:00:00Z"}),
        humanos_event(requestId="another-request"),
    ]
    keys = {dedup_key(base)} | {dedup_key(parsed(payload)) for payload in others}
    assert len(keys) == 5
    otp = humanos_event("otp.failed")
    later = humanos_event("otp.failed", otp={**otp["otp"], "error": {"code": "CARRIER_REJECTED"}})
    assert dedup_key(parsed(otp)) != dedup_key(parsed(later))
    assert CONTACT not in dedup_key(base)


# --- origin --------------------------------------------------------------------------------------

INDEX = OriginIndex({"crm": {"marketing-consent-sms": False, "contact.created#0": False}, "hubspot": {"fan": True}})


@pytest.mark.parametrize(
    ("internal_id", "origin"),
    [
        ("crm:evt_1:marketing-consent-sms", Origin("crm", "evt_1", "marketing-consent-sms")),
        ("crm:a:b:c:marketing-consent-sms", Origin("crm", "a:b:c", "marketing-consent-sms")),
        ("crm:evt_1:contact.created#0", Origin("crm", "evt_1", "contact.created#0")),
        ("hubspot:batch-7:fan:0123456789abcdef", Origin("hubspot", "batch-7", "fan")),
        ("crm:" + "x" * 59 + "~" + "a" * 64, Origin("crm")),
        ("crm:evt_1:renamed-rule", None),
        ("hubspot:batch-7:fan", None),  # a forEach rule's key always ends with the item's hash
        ("shop:evt_1:marketing-consent-sms", None),
        ("employee-4711", None),
        ("crm::marketing-consent-sms", None),
        (None, None),
    ],
)
def test_the_origin_is_read_back_only_from_a_key_the_mapping_sends(internal_id: str | None, origin: Any) -> None:
    assert INDEX.origin_of(internal_id) == origin


def test_the_index_of_the_shipped_mapping_reads_back_what_the_mapping_makes() -> None:
    """mappings/bridge.json's crm rule sends the default internalId; the origin read from it is the event's."""
    mapping = load_mapping(ROOT / "mappings" / "bridge.json")
    event = json.loads((ROOT / "events" / "business" / "crm-contact-created.json").read_text(encoding="utf-8"))
    [request] = mapping.map_requests("crm", event, {})

    origin = OriginIndex.from_mapping(mapping).origin_of(request.internal_id)

    assert origin == Origin("crm", request.event_id, request.rule)
    assert OriginIndex.from_mapping(None).origin_of(request.internal_id) is None
