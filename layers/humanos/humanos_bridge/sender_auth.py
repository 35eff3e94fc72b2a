"""Verification of inbound sender signatures: one small verifier per scheme.

Both verifiers follow one pattern (the Standard Webhooks ``Webhook`` class): the constructor
validates the secrets (several may be active at once, for rotation), ``sign`` is the single
definition of what a sender signs and ``verify`` recomputes it over the raw body bytes,
comparing in constant time against every signature and every secret. The timestamp is checked
in both directions against ``tolerance`` seconds; ``now`` is a parameter so tests need no clock.

Every failure raises SignatureError whose ``reason`` names the failed check, for the log only:
callers answer one generic message whatever the reason. No message carries a secret, a
signature or body bytes.

A request that verifies is a ``SignedDelivery``: what makes it the same delivery when it comes again,
and until when its signature verifies. :mod:`humanos_bridge.replays` handles each delivery once.

Schemes
-------
``humanos-hmac``
    ``X-Timestamp`` (Unix ms) and ``X-Signature`` (hex HMAC-SHA256 over ``"<ts>.<body>"``, key =
    the secret's UTF-8 text): the scheme Humanos uses, see :mod:`humanos_bridge.signing`.
``standard-webhooks``
    ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (space-separated
    ``v1,<base64>`` entries), HMAC-SHA256 over ``"<id>.<ts>.<body>"`` keyed with the base64-decoded
    part of a ``whsec_<base64>`` secret (https://www.standardwebhooks.com).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from humanos_bridge import signing
from humanos_bridge.errors import ConfigError, SignatureError

#: Default tolerated clock skew, both directions, in seconds.
DEFAULT_TOLERANCE_SECONDS = signing.DEFAULT_TOLERANCE_SECONDS
HUMANOS_HMAC = "humanos-hmac"
STANDARD_WEBHOOKS = "standard-webhooks"
#: Prefix of a Standard Webhooks secret; the rest is the base64 of the HMAC key.
WHSEC_PREFIX = "whsec_"
#: The spec bounds the key length: shorter keys are guessable, longer ones are a mistake.
MIN_KEY_BYTES = 24
MAX_KEY_BYTES = 64
#: Headers longer than this are refused before any work (a signature header lists a few entries).
MAX_HEADER_CHARS = 4096
_V1 = "v1,"


@dataclass(frozen=True)
class SignedDelivery:
    """A request whose signature verified: what identifies it, and until when it verifies."""

    scheme: str
    #: The same for every copy of this delivery, never shown (it holds a signature): Standard Webhooks'
    #: ``webhook-id`` (the spec's "deduplicate on it"; a sender's retry keeps it), or for ``humanos-hmac``
    #: ``"<X-Timestamp>.<X-Signature>"`` (a sender's retry is signed afresh, so only a copy repeats it).
    delivery_id: str
    #: Unix seconds after which its timestamp is stale (its timestamp plus the tolerance): the end of the
    #: window in which a copy of it could still be accepted.
    stale_after: int


class SenderVerifier(Protocol):
    """Verifies one request from a sender; raises SignatureError with a ``reason`` when it fails."""

    scheme: str
    tolerance: float

    def verify(self, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> SignedDelivery: ...


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name``, whatever the case of the names in ``headers``."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, found in headers.items():
        if key.lower() == wanted:
            return found
    return None


class HumanosHmacVerifier:
    """``X-Timestamp`` / ``X-Signature``, exactly as Humanos signs its own requests.

    Parameters
    ----------
    secrets
        The active secrets (plain text, used as UTF-8), newest first. At least one.
    tolerance
        Accepted clock skew in seconds, both directions.
    """

    scheme = HUMANOS_HMAC

    def __init__(self, secrets: Sequence[str], *, tolerance: float = DEFAULT_TOLERANCE_SECONDS) -> None:
        self._secrets = _check_secrets(secrets, self.scheme)
        self.tolerance = _check_tolerance(tolerance)

    def sign(self, body: bytes, *, timestamp_ms: int | None = None) -> dict[str, str]:
        """The headers a sender adds (with the first secret): ``X-Timestamp`` and ``X-Signature``."""
        stamp = signing.now_ms() if timestamp_ms is None else timestamp_ms
        return {"X-Timestamp": str(stamp), "X-Signature": signing.sign(self._secrets[0], stamp, body)}

    def verify(self, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> SignedDelivery:
        stamp = _bounded(header(headers, "X-Timestamp"), "timestamp")
        given = _bounded(header(headers, "X-Signature"), "signature")
        signing.verify(self._secrets, stamp, given, body, tolerance=self.tolerance, now=now)
        assert stamp is not None and given is not None  # signing.verify refused a missing one
        # As compared: an upper-case copy of the signature verifies too, and is the same delivery.
        delivery_id = f"{stamp.strip()}.{given.strip().lower()}"
        return SignedDelivery(self.scheme, delivery_id, _stale_after(int(stamp.strip()) / 1000, self.tolerance))

    def __repr__(self) -> str:
        return f"HumanosHmacVerifier(<{len(self._secrets)} secret(s)>, tolerance={self.tolerance:g})"


class StandardWebhooksVerifier:
    """``webhook-id`` / ``webhook-timestamp`` / ``webhook-signature`` (Standard Webhooks, ``v1``).

    Parameters
    ----------
    secrets
        The active secrets, each ``whsec_<base64 of 24 to 64 bytes>``, newest first. At least one.
    tolerance
        Accepted clock skew in seconds, both directions.
    """

    scheme = STANDARD_WEBHOOKS

    def __init__(self, secrets: Sequence[str], *, tolerance: float = DEFAULT_TOLERANCE_SECONDS) -> None:
        checked = _check_secrets(secrets, self.scheme)
        self._keys = tuple(_decode_whsec(secret, index) for index, secret in enumerate(checked))
        self.tolerance = _check_tolerance(tolerance)

    @staticmethod
    def signed_content(msg_id: str, timestamp: str, body: bytes) -> bytes:
        """The exact bytes that are signed: ``"<id>.<timestamp>.<body>"``."""
        return f"{msg_id}.{timestamp}.".encode() + body

    def sign(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """The ``webhook-signature`` value a sender sends (one ``v1`` entry, with the first secret)."""
        return _V1 + self._digest(self._keys[0], self.signed_content(msg_id, str(timestamp), body))

    def sign_headers(self, msg_id: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        """All three headers for ``body`` (``timestamp`` in Unix seconds; default now)."""
        stamp = int(time.time()) if timestamp is None else timestamp
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": self.sign(msg_id, stamp, body),
        }

    def verify(self, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> SignedDelivery:
        msg_id = _bounded(header(headers, "webhook-id"), "id")
        stamp = _bounded(header(headers, "webhook-timestamp"), "timestamp")
        given = _bounded(header(headers, "webhook-signature"), "signature")
        if msg_id is None or not msg_id.strip():
            raise SignatureError("webhook-id header is missing", reason="id_missing")
        seconds = _parse_seconds(stamp)
        signing.check_freshness(seconds * 1000, tolerance=self.tolerance, now=now)
        if given is None or not given.strip():
            raise SignatureError("webhook-signature header is missing", reason="signature_missing")
        offered = [entry[len(_V1) :].encode("ascii", "replace") for entry in given.split() if entry.startswith(_V1)]
        if not offered:
            raise SignatureError("webhook-signature has no v1 entry", reason="signature_no_v1")
        assert stamp is not None  # _parse_seconds refused None
        content = self.signed_content(msg_id, stamp.strip(), body)
        matched = False
        for key in self._keys:
            expected = self._digest(key, content).encode("ascii")
            for candidate in offered:
                # Every pair is compared, so timing tells nothing about which (if any) matched.
                matched |= hmac.compare_digest(expected, candidate)
        if not matched:
            raise SignatureError("no webhook-signature entry matches the body", reason="signature_mismatch")
        return SignedDelivery(self.scheme, msg_id, _stale_after(seconds, self.tolerance))

    @staticmethod
    def _digest(key: bytes, content: bytes) -> str:
        return base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode("ascii")

    def __repr__(self) -> str:
        return f"StandardWebhooksVerifier(<{len(self._keys)} secret(s)>, tolerance={self.tolerance:g})"


#: The verifier class for each scheme a mapping file may name.
VERIFIERS: dict[str, type[HumanosHmacVerifier] | type[StandardWebhooksVerifier]] = {
    HUMANOS_HMAC: HumanosHmacVerifier,
    STANDARD_WEBHOOKS: StandardWebhooksVerifier,
}


def verifier_for(
    scheme: str, secrets: Sequence[str], *, tolerance: float = DEFAULT_TOLERANCE_SECONDS
) -> SenderVerifier:
    """The verifier for ``scheme`` over ``secrets``; ConfigError for an unknown scheme or bad secrets."""
    kind = VERIFIERS.get(scheme)
    if kind is None:
        raise ConfigError(f"unknown sender authentication scheme {scheme!r}; use one of {', '.join(VERIFIERS)}")
    return kind(secrets, tolerance=tolerance)


def _check_secrets(secrets: Sequence[str], scheme: str) -> tuple[str, ...]:
    if isinstance(secrets, str) or not isinstance(secrets, Sequence):
        raise ConfigError(f"{scheme} sender secrets must be a list of strings")
    if not secrets:
        raise ConfigError(f"{scheme} needs at least one sender secret")
    for index, secret in enumerate(secrets):
        if not isinstance(secret, str) or not secret.strip():
            raise ConfigError(f"{scheme} sender secret #{index + 1} must be a non-empty string")
    return tuple(secrets)


def _check_tolerance(tolerance: float) -> float:
    if not tolerance > 0:
        raise ConfigError(f"signature tolerance must be greater than 0 seconds (got {tolerance})")
    return float(tolerance)


def _decode_whsec(secret: str, index: int) -> bytes:
    where = f"standard-webhooks sender secret #{index + 1}"
    if not secret.startswith(WHSEC_PREFIX):
        raise ConfigError(f"{where} must start with {WHSEC_PREFIX!r} followed by base64 (whsec_<base64>)")
    try:
        key = base64.b64decode(secret[len(WHSEC_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{where} is not valid base64 after {WHSEC_PREFIX!r}") from None  # never quote it
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ConfigError(
            f"{where} decodes to {len(key)} bytes; Standard Webhooks keys are {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes"
        )
    return key


def _stale_after(timestamp: float, tolerance: float) -> int:
    return math.ceil(timestamp + tolerance)


def _bounded(value: str | None, what: str) -> str | None:
    if value is not None and len(value) > MAX_HEADER_CHARS:
        raise SignatureError(
            f"signature {what} header is longer than {MAX_HEADER_CHARS} characters", reason="header_too_long"
        )
    return value


def _parse_seconds(value: str | None) -> int:
    if value is None or not value.strip():
        raise SignatureError("webhook-timestamp header is missing", reason="timestamp_missing")
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise SignatureError("webhook-timestamp must be Unix time in seconds (10 digits)", reason="timestamp_malformed")
    return int(text)
