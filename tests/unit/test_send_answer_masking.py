"""What ``humanos-bridge send`` prints of an answer: contacts masked, identifiers as they are.

An answer of the synchronous route, shaped as Humanos's (a credential named after an invoice, subjects with
their contacts), is the example: ``INV-2026-0043`` must not come out as ``INV-20****43``.
"""

from __future__ import annotations

from typing import Any

import pytest

from humanos_bridge_local.answers import masked


def answer(**overrides: Any) -> dict[str, Any]:
    """A 201 answer of ``POST /requests/<source>``, as the ingest function gives it."""
    body: dict[str, Any] = {
        "requestId": "6b1076c8cbff9eb6fcf93467",
        "eventId": "evt_crm_0001",
        "subjects": [{"id": "6b1077d4e92ff3d971f71700", "contact": "+351912345678"}],
        "credentials": [{"id": "urn:via:credential:7ef93cb9", "name": "Invoice INV-2026-0043 for Ana"}],
    }
    body.update(overrides)
    return body


def test_an_invoice_number_in_a_credential_name_is_shown_as_it_is() -> None:
    shown = masked(answer())

    assert shown["credentials"][0]["name"] == "Invoice INV-2026-0043 for Ana"
    assert shown["requestId"] == "6b1076c8cbff9eb6fcf93467"
    assert shown["subjects"][0] == {"id": "6b1077d4e92ff3d971f71700", "contact": "+35********78"}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("call +351 912 345 678 today", "call +35********78 today"),
        ("write to ana@example.com", "write to a***@e***.com"),
        ("tel:+351912345678", "tel:+35********78"),
        ("ref tel:912345678", "ref tel:91*****78"),
        ("x:12345678", "x:12****78"),
        ("912 345 678 and INV-2026-0043", "91*****78 and INV-2026-0043"),
        ("order ord_e2e_42 paid 2026-05-17T10:00:00.000Z", "order ord_e2e_42 paid 2026-05-17T10:00:00.000Z"),
    ],
)
def test_contacts_in_free_text_are_masked_and_identifiers_kept(text: str, shown: str) -> None:
    assert masked({"message": text}) == {"message": shown}


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("internalId", "crm:evt_20260517123456:marketing-consent-sms", "crm:evt_20260517123456:marketing-consent-sms"),
        ("groupIds", ["grp_marketing_consent"], ["grp_marketing_consent"]),
        ("event_id", "+351 912 345 678", "+35********78"),
        ("internalId", "ana@example.com", "a***@e***.com"),
    ],
)
def test_an_id_is_kept_unless_it_is_a_contact(key: str, value: Any, shown: Any) -> None:
    """Under an id key a long digit run is part of the id; only an address or a bare phone number is masked."""
    assert masked({key: value}) == {key: shown}


def test_a_key_that_only_ends_in_id_letters_is_no_id_key() -> None:
    """``paid`` ends in "id" but names no identifier: its text is masked as text."""
    assert masked({"paid": "by +351 912 345 678"}) == {"paid": "by +35********78"}


def test_an_answer_that_is_not_json_is_masked_as_text() -> None:
    assert masked("upstream said: ana@example.com INV-2026-0043") == "upstream said: a***@e***.com INV-2026-0043"
