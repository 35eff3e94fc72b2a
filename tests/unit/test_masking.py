"""Masking: contacts and secrets are hidden wherever they could be shown; identifiers leave in a safe form."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from humanos_bridge.core.masking import (
    MAX_ID_CHARS,
    MAX_TEXT_CHARS,
    mask_contact,
    mask_secret,
    mask_text,
    safe_id,
    safe_text,
)


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


# --- the safe form of identifiers ----------------------------------------------------------------

# Every code point, lone surrogates included (hypothesis leaves those out unless told).
ANY_CHARACTER = st.characters(exclude_categories=())
ANY_TEXT = st.text(ANY_CHARACTER, max_size=300) | st.builds(
    lambda piece, times: piece * times, st.text(ANY_CHARACTER, min_size=1, max_size=3), st.integers(1, 70_000)
)


@pytest.mark.parametrize(
    "ordinary",
    ["evt_crm_0001", "hr-7f3a9c", "contact.created", "order-10", "pedido-ação", "注文-17", "crm"],
)
def test_ordinary_identifiers_are_their_own_safe_form(ordinary: str) -> None:
    """What senders normally send leaves the process as it came, non-ASCII letters included."""
    assert safe_id(ordinary) == ordinary


@pytest.mark.parametrize(
    ("hostile", "shown"),
    [
        ("evt_\ud800_x", "evt_\\ud800_x"),  # a lone surrogate: no encoding can write it
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),  # a terminal would obey it
        (
            "contact.created\n12:00:00.000  dispatch  crm  fake.row",
            "contact.created\\n12:00:00.000  dispatch  crm  fake.row",
        ),
        ("a\rb\tc\x00d\x7fe\x85f", "a\\rb\\tc\\x00d\\x7fe\\x85f"),  # C0, DEL and C1 controls
        ("invoice\u202egpj.exe", "invoice\\u202egpj.exe"),  # a bidi override reorders the line
        ("a\u2028b\u00a0c\ufeffd\uffff", "a\\u2028b\\xa0c\\ufeffd\\uffff"),  # separators, BOM, a non-character
        ("\udbff\udfff", "\\udbff\\udfff"),  # two lone halves stay two (a Python str never pairs them)
    ],
)
def test_what_a_terminal_or_an_encoder_would_act_on_is_escaped_as_repr_escapes_it(hostile: str, shown: str) -> None:
    assert safe_id(hostile) == shown


@pytest.mark.parametrize(
    ("contact_id", "shown"),
    [
        ("ana.silva@example.com", "a***@e***.com"),
        ("+351 912 345 678", "+35********78"),
        ("lead:ana@example.com:1", "lead:a***@e***.com:1"),
    ],
)
def test_contacts_in_identifiers_are_masked(contact_id: str, shown: str) -> None:
    assert safe_id(contact_id) == shown


def test_a_huge_identifier_is_cut_and_says_how_much_was_left_out() -> None:
    """A 200,000-character id is 128 characters in a log line, a queue attribute or a table."""
    shown = safe_id("a" * 200_000)
    assert shown == "a" * 111 + "…(+199,889 chars)"
    assert len(shown) == MAX_ID_CHARS


def test_a_cut_never_splits_an_escape_or_a_masked_contact() -> None:
    assert safe_id("\ud800" * 1000) == "\\ud800" * 18 + "…(+982 chars)"
    assert safe_id("x" * 100 + " ana.silva@example.com" * 3) == "x" * 100 + " a***@e***.com …(+43 chars)"


def test_mask_false_keeps_the_digits_of_values_we_minted() -> None:
    """A Humanos request id or a first-seen time is not a phone number; it is still escaped and bounded."""
    assert safe_id("2026-05-17T10:00:00Z") == "20****17T10:00:00Z"
    assert safe_id("2026-05-17T10:00:00Z", mask=False) == "2026-05-17T10:00:00Z"
    assert safe_id("req_1234567\x1b", mask=False) == "req_1234567\\x1b"


def test_free_text_is_bounded_by_its_own_limit() -> None:
    reason = "body.data: " + "x" * 5000
    assert len(safe_text(reason)) == MAX_TEXT_CHARS
    assert safe_text(reason, limit=500) == reason[:485] + "…(+4,526 chars)"
    assert safe_id(None) is None


@settings(max_examples=300, deadline=None)
@given(text=ANY_TEXT)
def test_any_text_has_a_safe_form_that_can_be_written_anywhere(text: str) -> None:
    """Whatever the sender sent: UTF-8 (and JSON) can carry the safe form, a terminal only prints it, it is
    bounded, and it is its own safe form, so showing it again (``status`` from ``outcomes.json``) changes nothing."""
    shown = safe_id(text)
    shown.encode("utf-8")
    assert shown.isprintable()
    assert len(shown) <= MAX_ID_CHARS
    assert safe_id(shown) == shown
    if len(text) <= MAX_ID_CHARS and text.isprintable() and mask_text(text) == text:
        assert shown == text


def test_masking_takes_linear_time_on_a_long_run_without_an_at_sign() -> None:
    """A 200,000-character id of address characters: the e-mail pattern once took quadratic time on it
    (3.5 s for 40,000 characters, minutes for 200,000)."""
    started = time.perf_counter()
    assert mask_text("a" * 200_000 + " ana@example.com") == "a" * 200_000 + " a***@e***.com"
    assert time.perf_counter() - started < 2.0
