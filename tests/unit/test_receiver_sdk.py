"""The official Humanos SDK (``humanos_sdk.webhooks``, PyPI ``humanos``) against our webhooks, both ways.

The tests' own webhook builder (``tests/support/receiver.py``) must make what the SDK verifies and decrypts,
or every receiver test would prove our code against our own misreading. And the receiver must read what the
SDK reads: the same envelope decrypts to the same event in both, and the layer's ``encrypt_envelope`` makes
envelopes the SDK opens. Plus the properties: any single-byte change of body, timestamp or signature is refused,
and any plaintext survives encrypt -> decrypt.
"""

from __future__ import annotations

import json
import time

import pytest
from humanos_sdk.webhooks import EncryptedPayload, WebhookConfig, decrypt_webhook_payload, process_webhook
from hypothesis import given, settings
from hypothesis import strategies as st

from humanos_bridge.core.errors import SignatureError
from humanos_bridge.receive import decryption
from humanos_bridge.receive.webhook_auth import sign_webhook, verify_webhook
from tests.support.receiver import (
    ENCRYPTION_SALT,
    ENCRYPTION_SECRET,
    SIGNATURE_SECRET,
    VERSIONS,
    envelope_body,
    humanos_event,
    signature,
)

CONFIG = WebhookConfig(
    signature_secret=SIGNATURE_SECRET, encryption_secret=ENCRYPTION_SECRET, encryption_salt=ENCRYPTION_SALT
)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("event_type", ["credential", "identity", "otp.failed", "test"])
def test_the_sdk_accepts_the_tests_webhooks(event_type: str, version: str) -> None:
    """Given a webhook built by the tests' helper, the SDK's process_webhook verifies and decrypts it to the event."""
    payload = humanos_event(event_type, version)
    body = envelope_body(payload)
    stamp = int(time.time() * 1000)
    headers = {"X-Timestamp": str(stamp), "X-Signature": signature(body, stamp)}

    assert process_webhook(body.decode(), headers, CONFIG) == payload


def test_the_sdk_refuses_a_webhook_signed_with_another_secret() -> None:
    """The check above can fail: the SDK does verify what the helper signs."""
    body = envelope_body(humanos_event())
    stamp = int(time.time() * 1000)
    with pytest.raises(ValueError, match="Invalid webhook signature"):
        process_webhook(body.decode(), {"x-timestamp": str(stamp), "x-signature": signature(body, stamp, "x")}, CONFIG)


def test_our_decryptor_and_the_sdks_read_the_same_event_from_one_envelope() -> None:
    envelope = json.loads(envelope_body(humanos_event("identity")))

    theirs = decrypt_webhook_payload(EncryptedPayload(**envelope), ENCRYPTION_SECRET, ENCRYPTION_SALT)
    ours = decryption.decrypt(
        decryption.parse_envelope(json.dumps(envelope).encode()), ENCRYPTION_SECRET, ENCRYPTION_SALT
    )

    assert json.loads(ours) == theirs == humanos_event("identity")


def test_the_sdk_opens_what_the_layer_encrypts_and_checks_what_it_signs() -> None:
    """``encrypt_envelope`` and ``sign_webhook`` (for the sandbox and the benchmarks) make what Humanos makes."""
    plaintext = json.dumps(humanos_event("otp.failed")).encode()
    body = decryption.encrypt_envelope(plaintext, ENCRYPTION_SECRET, ENCRYPTION_SALT)
    headers = sign_webhook(SIGNATURE_SECRET, body)

    assert process_webhook(body.decode(), headers, CONFIG) == json.loads(plaintext)


def test_our_key_derivation_is_the_sdks() -> None:
    """PBKDF2-HMAC-SHA256 over the decoded secret, the salt as UTF-8, 10,000 iterations, 32 bytes."""
    from tests.support.receiver import key_for

    assert decryption.derive_key(ENCRYPTION_SECRET, ENCRYPTION_SALT) == key_for()


@settings(max_examples=60, deadline=None)
@given(plaintext=st.binary(max_size=2048), iv=st.binary(min_size=8, max_size=128))
def test_any_plaintext_survives_encrypt_then_decrypt(plaintext: bytes, iv: bytes) -> None:
    """Any bytes, any IV length AES-GCM takes: the layer's round trip gives them back, and so does the SDK's
    decryptor for JSON ones."""
    body = decryption.encrypt_envelope(plaintext, ENCRYPTION_SECRET, ENCRYPTION_SALT, iv=iv)
    envelope = decryption.parse_envelope(body)
    assert envelope.iv == iv
    assert decryption.decrypt(envelope, ENCRYPTION_SECRET, ENCRYPTION_SALT) == plaintext


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_single_byte_change_of_body_timestamp_or_signature_is_refused(data: st.DataObject) -> None:
    """Change one byte of the body, the x-timestamp or the x-signature (to any other value): SignatureError.

    Except the one change that keeps the value: a hex digit of the signature in the other case (hex is
    compared case-insensitively; found by this test).
    """
    now = 1_800_000_000.0
    body = envelope_body(humanos_event())
    headers = sign_webhook(SIGNATURE_SECRET, body, timestamp_ms=int(now * 1000))
    verify_webhook(headers, body, [SIGNATURE_SECRET], now=now)  # the unchanged webhook verifies

    part = data.draw(st.sampled_from(["body", "x-timestamp", "x-signature"]))
    original = body if part == "body" else headers[part].encode()
    index = data.draw(st.integers(0, len(original) - 1))
    same = {original[index], ord(chr(original[index]).swapcase())} if part == "x-signature" else {original[index]}
    byte = data.draw(st.integers(0, 255).filter(lambda value: value not in same))
    changed = original[:index] + bytes([byte]) + original[index + 1 :]
    if part == "body":
        body = changed
    else:
        headers = {**headers, part: changed.decode("latin-1")}

    with pytest.raises(SignatureError):
        verify_webhook(headers, body, [SIGNATURE_SECRET], now=now)
