"""Is this webhook from Humanos? ``x-timestamp`` and ``x-signature`` over the raw body bytes.

Humanos signs its webhooks exactly as we sign our requests (``signing``, the one definition of the
signed string): lowercase hex HMAC-SHA256, keyed with the Webhook Signature Secret as UTF-8 text, over
``"<x-timestamp>.<raw body>"``. The bytes API Gateway received are verified, never a re-serialisation.
Every active secret is tried, in constant time and all of them (rotation); timestamps more than the
tolerance in the past or in the future are refused (the official SDK allows 5 minutes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from humanos_bridge.core import signing

TIMESTAMP_HEADER = "x-timestamp"
SIGNATURE_HEADER = "x-signature"


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    tolerance: float = signing.DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Return when one of ``secrets`` signed ``body`` at a fresh timestamp; SignatureError naming the check otherwise.

    ``headers`` have lower-case names (``InboundRequest``).
    """
    signing.verify(
        secrets,
        headers.get(TIMESTAMP_HEADER),
        headers.get(SIGNATURE_HEADER),
        body,
        tolerance=tolerance,
        now=now,
    )


def sign_webhook(secret: str, body: bytes, *, timestamp_ms: int | None = None) -> dict[str, str]:
    """The headers Humanos sends with ``body`` (lower-case names, as API Gateway delivers them)."""
    stamp = signing.now_ms() if timestamp_ms is None else timestamp_ms
    return {TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: signing.sign(secret, stamp, body)}
