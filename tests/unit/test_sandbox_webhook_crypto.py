"""The sandbox seals webhooks exactly as Humanos does: PBKDF2 key, AES-256-GCM with a separate tag, signed envelope.

Pinned with known answers (a fixed secret, salt, iv and timestamp map to exact bytes), checked against an
independent derivation (``hashlib.pbkdf2_hmac``) and opened by the official Humanos SDK's own functions.
No sockets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from humanos_sdk.webhooks import EncryptedPayload, decrypt_webhook_payload, verify_webhook_signature

from humanos_bridge.core.errors import ConfigError
from humanos_bridge_local.sandbox import WebhookSecrets
from humanos_bridge_local.sandbox.webhook_crypto import (
    IV_BYTES,
    TAG_BYTES,
    derive_key,
    seal,
    seal_event,
    signed_headers,
)

SECRETS = WebhookSecrets(
    signature_secret="golden-secret",
    encryption_secret=base64.b64encode(bytes(range(32))).decode("ascii"),
    encryption_salt="golden-salt",
)
EVENT = {"eventType": "test", "message": "olá"}
#: seal_event(EVENT, SECRETS, iv=12 zero bytes): pinned so that any drift in JSON, key or layout fails loudly.
GOLDEN_BODY = (
    b'{"iv":"AAAAAAAAAAAAAAAA","data":"yPofOpCCKWVvBbS9MvPt1w498U4AFyTC8g8Nq8Q+MUL3eNiMPw==",'
    b'"tag":"wZ6r15KJ25PJ2gQhQiY/nA=="}'
)
GOLDEN_TIMESTAMP = 1757160000000
GOLDEN_SIGNATURE = "742b8a0365ca7a350138cdde4c9fc32427eef188a70c77fb7bfc61229fa746d4"


def test_the_key_is_pbkdf2_sha256_of_the_decoded_secret_with_the_salt_10000_times() -> None:
    """The same 32 bytes an independent derivation gives."""
    expected = hashlib.pbkdf2_hmac("sha256", bytes(range(32)), b"golden-salt", 10_000, 32)
    assert derive_key(SECRETS.encryption_secret, SECRETS.encryption_salt) == expected


def test_the_key_is_derived_once_per_secret_and_salt() -> None:
    """PBKDF2 is slow on purpose: a second webhook under the same secrets reuses the key."""
    derive_key.cache_clear()
    for _ in range(3):
        derive_key(SECRETS.encryption_secret, SECRETS.encryption_salt)
    derive_key(SECRETS.encryption_secret, "another-salt")
    info = derive_key.cache_info()
    assert (info.misses, info.hits) == (2, 2)


def test_a_known_event_seals_to_known_bytes() -> None:
    """Fixed secrets and iv: the exact envelope, compact JSON with base64 iv, data and tag."""
    assert seal_event(EVENT, SECRETS, iv=bytes(IV_BYTES)) == GOLDEN_BODY


def test_a_known_body_and_timestamp_sign_to_a_known_header() -> None:
    """``x-signature`` is the hex HMAC-SHA256 over ``"<x-timestamp>.<raw body>"``."""
    headers = signed_headers(GOLDEN_BODY, SECRETS.signature_secret, timestamp=GOLDEN_TIMESTAMP)

    assert headers == {
        "Content-Type": "application/json",
        "x-timestamp": str(GOLDEN_TIMESTAMP),
        "x-signature": GOLDEN_SIGNATURE,
    }
    payload = f"{GOLDEN_TIMESTAMP}.".encode() + GOLDEN_BODY
    assert hmac.new(b"golden-secret", payload, hashlib.sha256).hexdigest() == GOLDEN_SIGNATURE


def test_the_sdk_verifies_and_decrypts_a_sealed_webhook() -> None:
    """The official SDK's own verifier and decryptor accept what ``seal`` produces, non-ASCII included."""
    sealed = seal(EVENT, SECRETS)
    envelope = json.loads(sealed.body)

    assert verify_webhook_signature(
        sealed.body.decode(), sealed.headers["x-signature"], int(sealed.headers["x-timestamp"]), "golden-secret"
    )
    opened = decrypt_webhook_payload(EncryptedPayload(**envelope), SECRETS.encryption_secret, SECRETS.encryption_salt)
    assert opened == EVENT
    assert set(envelope) == {"iv", "data", "tag"}
    assert (len(base64.b64decode(envelope["iv"])), len(base64.b64decode(envelope["tag"]))) == (IV_BYTES, TAG_BYTES)


def test_each_webhook_gets_a_fresh_iv() -> None:
    """Never the same nonce twice under one key: the same event seals to different envelopes."""
    first, second = (json.loads(seal_event(EVENT, SECRETS)) for _ in range(2))
    assert first["iv"] != second["iv"] and first["data"] != second["data"]


def test_generated_secrets_are_fresh_and_the_encryption_secret_is_base64_of_32_bytes() -> None:
    one, two = WebhookSecrets.generate(), WebhookSecrets.generate()

    assert len(base64.b64decode(one.encryption_secret, validate=True)) == 32
    assert one.signature_secret and one.encryption_salt
    assert {one.signature_secret, one.encryption_secret, one.encryption_salt}.isdisjoint(
        {two.signature_secret, two.encryption_secret, two.encryption_salt}
    )


def test_generate_keeps_the_secrets_given() -> None:
    made = WebhookSecrets.generate(signature_secret="given", encryption_salt="salt")
    assert (made.signature_secret, made.encryption_salt) == ("given", "salt")
    assert made.encryption_secret


def test_the_secrets_never_show_in_their_repr() -> None:
    shown = repr(SECRETS) + str(SECRETS)
    assert "golden" not in shown and SECRETS.encryption_secret not in shown


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"encryption_secret": "not base64!"}, "the webhook encryption secret is not valid base64"),
        ({"encryption_secret": "ünïcode"}, "the webhook encryption secret is not valid base64"),
        ({"encryption_secret": ""}, "the webhook encryption secret decodes to no bytes"),
        ({"signature_secret": ""}, "the webhook signature secret is empty"),
        ({"encryption_salt": ""}, "the webhook encryption salt is empty"),
    ],
)
def test_malformed_secrets_are_refused_without_quoting_them(changes: dict[str, str], message: str) -> None:
    fields = {
        "signature_secret": "s",
        "encryption_secret": SECRETS.encryption_secret,
        "encryption_salt": "salt",
        **changes,
    }
    with pytest.raises(ConfigError, match=message) as refused:
        WebhookSecrets(**fields)
    assert "not base64!" not in str(refused.value) and "ünïcode" not in str(refused.value)
