"""Humanos request signing: the single definition of the signed string, and its verification.

``X-Signature`` is the lowercase hex HMAC-SHA256, keyed with the signature secret as UTF-8 text,
over ``"<ms timestamp>.<body>"`` or, when there is no body, over the timestamp alone (the
reference implementation's JavaScript truthiness: an empty body counts as none).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable

from humanos_bridge.core.errors import ConfigError, SignatureError

#: Default tolerated clock skew, both directions, for verification (the Humanos SDK uses ±5 minutes).
DEFAULT_TOLERANCE_SECONDS = 300


def now_ms() -> int:
    """Current Unix time in milliseconds, as ``X-Timestamp`` wants it."""
    return time.time_ns() // 1_000_000


def signed_payload(timestamp: int | str, body: bytes | None) -> bytes:
    """The exact bytes that are signed."""
    stamp = str(timestamp).encode("ascii")
    return stamp + b"." + body if body else stamp


def sign(secret: str, timestamp: int | str, body: bytes | None) -> str:
    """Return the hex signature Humanos expects for ``body`` at ``timestamp`` (ms)."""
    if not secret:
        raise ConfigError("signature secret is empty; set signatureSecret in the Humanos secret")
    return hmac.new(secret.encode("utf-8"), signed_payload(timestamp, body), hashlib.sha256).hexdigest()


def signed_headers(api_key: str, secret: str, body: bytes | None, *, timestamp: int | None = None) -> dict[str, str]:
    """Authorization, X-Timestamp, X-Signature (and Content-Type when there is a body) for one call."""
    stamp = now_ms() if timestamp is None else timestamp
    headers = {
        "Authorization": f"Bearer {api_key}",
        "X-Timestamp": str(stamp),
        "X-Signature": sign(secret, stamp, body),
    }
    if body:
        headers["Content-Type"] = "application/json"
    return headers


def parse_timestamp_ms(value: str | None) -> int:
    """Parse an ``X-Timestamp`` header (decimal milliseconds) or raise SignatureError."""
    if value is None or not value.strip():
        raise SignatureError("signature timestamp header is missing", reason="timestamp_missing")
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 16:
        raise SignatureError(
            "signature timestamp must be Unix time in milliseconds (13 digits)", reason="timestamp_malformed"
        )
    return int(text)


def check_freshness(timestamp_ms: int, *, tolerance: float, now: float | None = None) -> None:
    """Refuse timestamps more than ``tolerance`` seconds in the past or the future."""
    current = time.time() if now is None else now
    skew = current - timestamp_ms / 1000
    if skew > tolerance:
        raise SignatureError(
            f"timestamp {skew:.0f} s older than the {tolerance:.0f} s tolerance; sign again with the current time",
            reason="timestamp_stale",
        )
    if -skew > tolerance:
        raise SignatureError(
            f"timestamp {-skew:.0f} s in the future, beyond the {tolerance:.0f} s tolerance; check the sender's clock",
            reason="timestamp_future",
        )


def verify(
    secrets: Iterable[str],
    timestamp: str | None,
    signature: str | None,
    body: bytes | None,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Verify an ``X-Timestamp``/``X-Signature`` pair against any of ``secrets`` (rotation).

    Raises SignatureError naming the failed check; returns None when one secret matches.
    """
    stamp = parse_timestamp_ms(timestamp)
    check_freshness(stamp, tolerance=tolerance, now=now)
    if signature is None or not signature.strip():
        raise SignatureError("signature header is missing", reason="signature_missing")
    given = signature.strip().lower().encode("ascii", "replace")
    candidates = [s for s in secrets if s]
    if not candidates:
        raise ConfigError("no signature secret configured to verify against")
    assert timestamp is not None  # parse_timestamp_ms refused None
    # Sign the header text as sent (leading zeros and all), not our re-formatting of it.
    payload = signed_payload(timestamp.strip(), body)
    matched = False
    for secret in candidates:
        expected = hmac.new(secret.encode("utf-8"), payload, hashlib.sha256).hexdigest().encode("ascii")
        # Check every secret, so timing does not tell which one (or whether any) matched.
        matched |= hmac.compare_digest(expected, given)
    if not matched:
        raise SignatureError("signature does not match the body and timestamp", reason="signature_mismatch")
