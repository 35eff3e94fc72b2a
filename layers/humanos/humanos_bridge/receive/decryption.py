"""The webhook body: an envelope ``{"iv", "data", "tag"}`` (base64 each), AES-256-GCM with a separate tag.

The key is PBKDF2-HMAC-SHA256 of the base64-decoded Webhook Encryption Secret, salted with the Webhook
Encryption Salt as UTF-8 text, 10,000 iterations, 32 bytes; no associated data. That is what Humanos and
its official SDK (``humanos_sdk.webhooks``) do. PBKDF2 is slow on purpose, so each (secret, salt) is derived
once per container (``cipher_for``), not per webhook; a rotated secret derives its own key once.

Lengths Humanos does not document are bounded by what AES-GCM accepts: an IV of 8 to 128 bytes (12 is
usual), and a 16-byte tag (Node's default and the SDK's assumption: shorter tags are weaker, so refused).
Base64 is checked strictly (standard alphabet, padding): a character the SDK would skip is refused here.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from humanos_bridge.core.errors import BridgeError

PBKDF2_ITERATIONS = 10_000
KEY_BYTES = 32
TAG_BYTES = 16
#: AES-GCM's bounds on the nonce in ``cryptography``; Humanos does not document its length (12 is usual).
MIN_IV_BYTES, MAX_IV_BYTES = 8, 128
#: The IV ``encrypt_envelope`` draws (NIST's recommended 96 bits).
DEFAULT_IV_BYTES = 12
#: Distinct (secret, salt) pairs whose keys are kept: one, plus one per rotation in a container's life.
_MAX_KEYS = 8


class EnvelopeError(BridgeError):
    """The body is not an envelope ``{"iv", "data", "tag"}`` of base64 values of acceptable lengths."""

    code = "invalid_envelope"


class DecryptionError(BridgeError):
    """The tag does not verify: the envelope was altered, or the encryption secret or salt is not Humanos's."""

    code = "decryption_failed"


@dataclass(frozen=True, repr=False)
class Envelope:
    """The decoded parts of an encrypted webhook body."""

    iv: bytes
    data: bytes
    tag: bytes

    def __repr__(self) -> str:
        return f"Envelope(iv={len(self.iv)} bytes, data={len(self.data)} bytes, tag={len(self.tag)} bytes)"


def parse_envelope(body: bytes) -> Envelope:
    """The envelope in ``body``; EnvelopeError says what is wrong (never quoting the body)."""
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise EnvelopeError('webhook body is not JSON; Humanos sends {"iv", "data", "tag"}') from None
    if not isinstance(document, dict):
        raise EnvelopeError('webhook body is JSON but not an object; Humanos sends {"iv", "data", "tag"}')
    parts = {name: _base64_field(document, name) for name in ("iv", "data", "tag")}
    iv, tag = parts["iv"], parts["tag"]
    if not MIN_IV_BYTES <= len(iv) <= MAX_IV_BYTES:
        raise EnvelopeError(f"envelope iv is {len(iv)} bytes; AES-GCM takes {MIN_IV_BYTES} to {MAX_IV_BYTES}")
    if len(tag) != TAG_BYTES:
        raise EnvelopeError(f"envelope tag is {len(tag)} bytes; a {TAG_BYTES}-byte AES-GCM tag is expected")
    return Envelope(iv, parts["data"], tag)


def _base64_field(document: dict[str, object], name: str) -> bytes:
    value = document.get(name)
    if not isinstance(value, str):
        shown = "missing" if value is None else f"not a string ({type(value).__name__})"
        raise EnvelopeError(f"envelope field {name!r} is {shown}; Humanos sends base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError(f"envelope field {name!r} is not base64") from None


def derive_key(encryption_secret: str, salt: str) -> bytes:
    """PBKDF2-HMAC-SHA256(base64-decoded secret, salt as UTF-8, 10,000 iterations, 32 bytes). Slow on purpose."""
    password = base64.b64decode(encryption_secret, validate=True)
    kdf = PBKDF2HMAC(
        algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt.encode("utf-8"), iterations=PBKDF2_ITERATIONS
    )
    return kdf.derive(password)


@functools.lru_cache(maxsize=_MAX_KEYS)
def cipher_for(encryption_secret: str, salt: str) -> AESGCM:
    """The AES-256-GCM cipher for this secret and salt, derived once per container (``cache_info()`` counts)."""
    return AESGCM(derive_key(encryption_secret, salt))


def decrypt(envelope: Envelope, encryption_secret: str, salt: str) -> bytes:
    """The plaintext bytes; DecryptionError when the tag does not verify."""
    try:
        return cipher_for(encryption_secret, salt).decrypt(envelope.iv, envelope.data + envelope.tag, None)
    except InvalidTag:
        raise DecryptionError(
            "the envelope's tag does not verify: the ciphertext, iv or tag was altered, or encryptionSecret or "
            "encryptionSalt in the webhook secret differs from the Humanos dashboard's"
        ) from None


def encrypt_envelope(plaintext: bytes, encryption_secret: str, salt: str, *, iv: bytes | None = None) -> bytes:
    """The body Humanos would send for ``plaintext`` (compact JSON envelope), for tests, benchmarks and the sandbox."""
    nonce = os.urandom(DEFAULT_IV_BYTES) if iv is None else iv
    sealed = cipher_for(encryption_secret, salt).encrypt(nonce, plaintext, None)
    data, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
    envelope = {
        name: base64.b64encode(part).decode("ascii") for name, part in (("iv", nonce), ("data", data), ("tag", tag))
    }
    return json.dumps(envelope, separators=(",", ":")).encode("ascii")
