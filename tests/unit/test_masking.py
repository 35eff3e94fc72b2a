"""Masking: contacts and secrets are hidden wherever they could be shown."""

from __future__ import annotations

import pytest

from humanos_bridge.masking import mask_contact, mask_secret, mask_text


@pytest.mark.parametrize(
    ("contact", "masked"),
    [
        ("ana.silva@example.com", "a***@e***.com"),
        ("+351912345678", "+35********78"),
        ("+351 912-345-678", "+35********78"),
        ("12", "***"),
        ("nobody@localhost", "n***@l***"),
    ],
)
def test_contacts_keep_only_a_hint(contact: str, masked: str) -> None:
    assert mask_contact(contact) == masked


def test_free_text_loses_every_contact() -> None:
    """Humanos messages may quote a contact back; what we log or return must not."""
    text = "contacts.0 (ana@example.com) and +351 912 345 678 are invalid; so is 00351912345678"
    masked = mask_text(text)
    assert "ana@example.com" not in masked
    assert "912 345 678" not in masked and "912345678" not in masked
    assert masked.startswith("contacts.0 (a***@e***.com) and +35")


@pytest.mark.parametrize(("secret", "shown"), [(None, "<unset>"), ("", "<unset>"), ("abc123", "<6 chars>")])
def test_secrets_show_only_their_length(secret: str | None, shown: str) -> None:
    assert mask_secret(secret) == shown
