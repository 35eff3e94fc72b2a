"""forEach: one event, one request per item; items never meet in one body, and each request has its own key."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from humanos_bridge.core.errors import ConfigError, EventIgnored, InvalidBodyError, MappingError
from humanos_bridge.mapping import MappingConfig, parse_mapping
from tests.support.mappings import one_source


def mapping(rule: dict[str, Any], **source: Any) -> MappingConfig:
    """A HubSpot-like source: the webhook body is a JSON array of events of one kind."""
    fields = {"eventType": "'batch'", "eventId": None, "eventIdDefault": "content-hash", **source}
    if fields["eventId"] is None:
        del fields["eventId"]
    return parse_mapping(one_source([rule], event_type="batch", source="hubspot", **fields), file="m.json")


CONSENT = {
    "name": "consent",
    "forEach": "[?subscriptionType=='contact.creation']",
    "idempotencyKey": "=concat('hubspot:', to_string(eventId))",
    "request": {
        "contacts": "=as_list(phone)",
        "groupIds": ["grp_marketing_consent"],
        "name": "=concat('Consent for contact ', to_string(objectId), ' of portal ', to_string(root()[0].portalId))",
    },
}


def hubspot_event(event_id: int, object_id: int, phone: str, kind: str = "contact.creation") -> dict[str, Any]:
    return {"eventId": event_id, "subscriptionType": kind, "portalId": 62515, "objectId": object_id, "phone": phone}


def test_a_batch_becomes_one_request_per_item_each_with_its_own_key() -> None:
    batch = [
        hubspot_event(100, 1, "+351912000001"),
        hubspot_event(101, 2, "+351912000002", kind="contact.propertyChange"),
        hubspot_event(102, 3, "+351912000003"),
    ]
    requests = mapping(CONSENT).map_requests("hubspot", batch)
    assert [(r.idempotency_key, r.internal_id, r.body) for r in requests] == [
        (
            "hubspot:100",
            "hubspot:100",
            {
                "contacts": ["+351912000001"],
                "groupIds": ["grp_marketing_consent"],
                "name": "Consent for contact 1 of portal 62515",
                "internalId": "hubspot:100",
            },
        ),
        (
            "hubspot:102",
            "hubspot:102",
            {
                "contacts": ["+351912000003"],
                "groupIds": ["grp_marketing_consent"],
                "name": "Consent for contact 3 of portal 62515",
                "internalId": "hubspot:102",
            },
        ),
    ]
    assert {r.event_id for r in requests} == {requests[0].event_id}  # one event, the batch


def test_default_keys_come_from_the_item_so_order_does_not_matter() -> None:
    rule = {key: value for key, value in CONSENT.items() if key != "idempotencyKey"}
    batch = [hubspot_event(100, 1, "+351912000001"), hubspot_event(102, 3, "+351912000003")]
    config = mapping(rule, eventIdDefault=None, eventId="'fixed-id'")
    forwards = config.map_requests("hubspot", batch)
    backwards = config.map_requests("hubspot", list(reversed(batch)))
    assert {r.idempotency_key for r in forwards} == {r.idempotency_key for r in backwards}
    assert all(re.fullmatch(r"hubspot:fixed-id:consent:[0-9a-f]{16}", r.idempotency_key) for r in forwards)


def test_equal_items_are_one_request_and_colliding_keys_are_an_error() -> None:
    same = hubspot_event(100, 1, "+351912000001")
    assert len(mapping(CONSENT).map_requests("hubspot", [same, dict(same)])) == 1
    other_body_same_key = {**same, "phone": "+351912000009"}
    with pytest.raises(MappingError, match=r"forEach item 1 gives the same idempotency key as an earlier item"):
        mapping(CONSENT).map_requests("hubspot", [same, other_body_same_key])


def test_an_empty_batch_is_ignored_and_a_non_array_is_an_error_naming_the_path() -> None:
    with pytest.raises(EventIgnored, match="found no items; nothing to ask"):
        mapping(CONSENT).map_requests("hubspot", [hubspot_event(1, 1, "+351912000001", kind="other")])
    with pytest.raises(MappingError, match=r"^sources.hubspot.rules.batch\[0\].forEach: `items` found nothing"):
        mapping({**CONSENT, "forEach": "items"}).map_requests("hubspot", {"items": None})


def test_one_bad_item_stops_the_whole_event_before_anything_is_sent() -> None:
    batch = [hubspot_event(100, 1, "+351912000001"), hubspot_event(101, 2, "not a phone")]
    with pytest.raises(InvalidBodyError) as raised:
        mapping(CONSENT).map_requests("hubspot", batch)
    assert raised.value.message.startswith("forEach item 1: body.contacts[0]: not an e-mail address")
    assert raised.value.details["item"] == 1


def test_map_event_refuses_an_event_that_makes_several_requests() -> None:
    batch = [hubspot_event(100, 1, "+351912000001"), hubspot_event(102, 3, "+351912000003")]
    with pytest.raises(MappingError, match="fans out to 2 requests; map the event with map_requests"):
        mapping(CONSENT).map_event("hubspot", batch)


# -- contacts from an array without forEach are refused at load ----------------------------------


@pytest.mark.parametrize(
    "contacts",
    ["=[*].phone", "=[?subscriptionType=='contact.creation'].phone", "=map(&phone, @)", "=[*].phones[]"],
)
def test_contacts_from_every_item_without_for_each_are_refused(contacts: str) -> None:
    rule = {"name": "r", "request": {"contacts": contacts, "groupIds": ["g"]}}
    with pytest.raises(ConfigError) as raised:
        mapping(rule)
    (problem,) = raised.value.details["errors"]
    assert problem.startswith("m.json: sources.hubspot.rules.batch[0].request.contacts: these contacts come from")
    assert '"forEach"' in problem and '"allContactsInOneRequest": true' in problem


@pytest.mark.parametrize(
    "contacts", ["=[*].phone | [0]", "=as_list([0].phone)", "=compact([[0].phone, [0].email])", "=[[0].phone][]"]
)
def test_contacts_of_one_item_are_fine(contacts: str) -> None:
    mapping({"name": "r", "request": {"contacts": contacts, "groupIds": ["g"]}})


def test_co_signers_of_one_document_say_so() -> None:
    rule = {"name": "r", "allContactsInOneRequest": True, "request": {"contacts": "=[*].phone", "groupIds": ["g"]}}
    (request,) = mapping(rule).map_requests("hubspot", [{"phone": "+351912000001"}, {"phone": "+351912000002"}])
    assert request.body["contacts"] == ["+351912000001", "+351912000002"]


def test_users_contacts_are_checked_too() -> None:
    rule = {"request": {"users": "=signers[*].{contact: phone}", "groupIds": ["g"]}}
    document = one_source([rule], api_version="2026-09-01")
    with pytest.raises(ConfigError, match="these contacts come from every item of an array"):
        parse_mapping(document, file="m.json")


# -- properties ------------------------------------------------------------------------------------

phones = st.integers(min_value=10**8, max_value=10**9 - 1).map(lambda n: f"+351{n}")


@given(st.lists(st.tuples(st.integers(min_value=0, max_value=10**6), phones), min_size=1, max_size=30))
def test_items_never_meet_in_one_body(items: list[tuple[int, str]]) -> None:
    """Whatever the batch, each body holds exactly the contact of the item its key names."""
    batch = [hubspot_event(event_id, event_id, phone) for event_id, phone in items]
    by_id = {event_id: phone for event_id, phone in items}
    try:
        requests = mapping(CONSENT).map_requests("hubspot", batch)
    except MappingError as exc:
        # Only two items with one eventId but different phones may refuse the batch, and never quote them.
        assert "same idempotency key" in exc.message
        assert not any(phone in exc.message for _, phone in items)
        return
    assert len(requests) == len(by_id)
    for request in requests:
        event_id = int(request.idempotency_key.removeprefix("hubspot:"))
        assert request.body["contacts"] == [by_id[event_id]]


@given(st.lists(phones, min_size=1, max_size=10), st.integers(min_value=0, max_value=9))
def test_an_error_names_the_item_and_path_and_never_a_contact(good: list[str], bad_at: int) -> None:
    batch: list[dict[str, Any]] = [hubspot_event(i, i, phone) for i, phone in enumerate(good)]
    bad_at = min(bad_at, len(batch) - 1)
    batch[bad_at]["phone"] = "ana@example"  # neither an e-mail nor a phone
    with pytest.raises(MappingError) as raised:
        mapping(CONSENT).map_requests("hubspot", batch)
    assert raised.value.message.startswith(f"forEach item {bad_at}: body.contacts[0]")
    assert "ana@example" not in raised.value.message
    assert not any(phone in raised.value.message for phone in good)
