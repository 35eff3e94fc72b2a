"""Sealing a webhook exactly as Humanos does: encrypt the event, then sign the envelope.

- The key is PBKDF2-HMAC-SHA256 with the base64-decoded Webhook Encryption Secret as the password, the Webhook
  Encryption Salt as UTF-8 text as the salt, 10,000 iterations, 32 bytes. PBKDF2 is slow on purpose, so each
  (secret, salt) pair is derived once per process.
- The event (UTF-8 JSON) is encrypted with AES-256-GCM under a random 12-byte iv and no associated data; the
  16-byte tag travels apart from the ciphertext: the body is ``{"iv", "data", "tag"}``, each base64.
- ``x-timestamp`` is Unix time in milliseconds and ``x-signature`` the hex HMAC-SHA256 over
  ``"<x-timestamp>.<raw body>"`` with the Webhook Signature Secret: the layer's own signer, as Humanos uses
  the same ``generateSignature`` for requests and webhooks.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import secrets
from dataclasses import dataclass
from typing import Any, NamedTuple

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from humanos_bridge.core import signing, wire
from humanos_bridge.core.errors import ConfigError

#: PBKDF2 iterations and key length, as Humanos derives the webhook key.
PBKDF2_ITERATIONS = 10_000
KEY_BYTES = 32
#: AES-GCM nonce and tag sizes Humanos uses (the tag is sent apart from the ciphertext).
IV_BYTES = 12
TAG_BYTES = 16
#: Random bytes behind a generated encryption secret (sent base64, as the dashboard shows it).
GENERATED_ENCRYPTION_SECRET_BYTES = 32


@dataclass(frozen=True)
class WebhookSecrets:
    """The three secrets the Humanos dashboard shows beside the webhook URL.

    ``repr`` shows none of them, so a secrets object may reach a log or a traceback safely.
    """

    signature_secret: str
    #: Base64 text; its decoded bytes are the PBKDF2 password.
    encryption_secret: str
    encryption_salt: str

    def __post_init__(self) -> None:
        if not self.signature_secret:
            raise ConfigError("the webhook signature secret is empty; give one or let the sandbox generate it")
        if not self.encryption_salt:
            raise ConfigError("the webhook encryption salt is empty; give one or let the sandbox generate it")
        if not encryption_password(self.encryption_secret):
            raise ConfigError("the webhook encryption secret decodes to no bytes; give base64 of random bytes")

    def __repr__(self) -> str:
        return "WebhookSecrets(<3 secrets hidden>)"

    @classmethod
    def generate(
        cls,
        signature_secret: str | None = None,
        encryption_secret: str | None = None,
        encryption_salt: str | None = None,
    ) -> WebhookSecrets:
        """The secrets given, and fresh random ones for those that are None (or empty)."""
        return cls(
            signature_secret=signature_secret or secrets.token_urlsafe(32),
            encryption_secret=encryption_secret
            or base64.b64encode(os.urandom(GENERATED_ENCRYPTION_SECRET_BYTES)).decode("ascii"),
            encryption_salt=encryption_salt or secrets.token_hex(16),
        )


class SealedWebhook(NamedTuple):
    """One webhook as it goes on the wire: the envelope's bytes and the headers signed over them."""

    body: bytes
    headers: dict[str, str]


def encryption_password(encryption_secret: str) -> bytes:
    """The PBKDF2 password: the encryption secret's base64 decoded strictly (ConfigError when it is not base64)."""
    try:
        return base64.b64decode(encryption_secret.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        # The message never quotes the secret.
        raise ConfigError("the webhook encryption secret is not valid base64; give base64 of random bytes") from exc


@functools.lru_cache(maxsize=16)
def derive_key(encryption_secret: str, encryption_salt: str) -> bytes:
    """The 32-byte AES key for a (secret, salt) pair, derived once per process (PBKDF2 is slow on purpose)."""
    kdf = PBKDF2HMAC(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=encryption_salt.encode("utf-8"),
        iterations=PBKDF2_ITERATIONS,
    )
    return kdf.derive(encryption_password(encryption_secret))


def encrypt(plaintext: bytes, key: bytes, *, iv: bytes | None = None) -> dict[str, str]:
    """The envelope ``{"iv", "data", "tag"}`` (base64) of ``plaintext`` under ``key`` (a random iv when None)."""
    nonce = os.urandom(IV_BYTES) if iv is None else iv
    # cryptography appends the tag to the ciphertext; Humanos sends it apart.
    sealed = AESGCM(key).encrypt(nonce, plaintext, None)
    ciphertext, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
    return {"iv": _b64(nonce), "data": _b64(ciphertext), "tag": _b64(tag)}


def seal_event(event: Any, webhook_secrets: WebhookSecrets, *, iv: bytes | None = None) -> bytes:
    """The raw body Humanos posts for ``event``: the envelope of its compact UTF-8 JSON, itself compact JSON."""
    key = derive_key(webhook_secrets.encryption_secret, webhook_secrets.encryption_salt)
    return wire.dump_bytes(encrypt(wire.dump_bytes(event), key, iv=iv))


def signed_headers(body: bytes, signature_secret: str, *, timestamp: int | None = None) -> dict[str, str]:
    """``Content-Type``, ``x-timestamp`` (ms, now when None) and ``x-signature`` over ``"<ts>.<body>"``."""
    stamp = signing.now_ms() if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        "x-timestamp": str(stamp),
        "x-signature": signing.sign(signature_secret, stamp, body),
    }


def seal(event: Any, webhook_secrets: WebhookSecrets, *, timestamp: int | None = None) -> SealedWebhook:
    """Encrypt ``event`` and sign the envelope: what one delivery attempt sends."""
    body = seal_event(event, webhook_secrets)
    return SealedWebhook(body, signed_headers(body, webhook_secrets.signature_secret, timestamp=timestamp))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
