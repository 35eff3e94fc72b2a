"""Signing and verification: the known answer from Humanos's own code, and every failed check."""

from __future__ import annotations

import json
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from humanos_bridge.core import signing, wire
from humanos_bridge.core.errors import ConfigError, SignatureError

NOW = 1_757_160_000.0  # seconds; matches the test vector's timestamp
STAMP = "1757160000000"
BODY = b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}'

# The reference implementation from humanos-api.md, run by Node itself.
_NODE_SIGN = """
const crypto = require('crypto');
const cases = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const out = cases.map(([secret, timestamp, body]) => {
  const data = body === null ? undefined : JSON.stringify(body);
  const hmac = crypto.createHmac('sha256', secret);
  hmac.update(data ? `${timestamp}.${data}` : timestamp.toString());
  return hmac.digest('hex');
});
process.stdout.write(JSON.stringify(out));
"""


def node_signatures(cases: list[tuple[str, int, object]]) -> list[str]:
    done = subprocess.run(
        ["node", "-e", _NODE_SIGN], input=json.dumps(cases), capture_output=True, text=True, check=True, timeout=30
    )
    return json.loads(done.stdout)


def test_known_answer_from_humanos() -> None:
    """The test vector in humanos-api.md pins the signed string and the key encoding."""
    assert (
        signing.sign("golden-secret", 1757160000000, BODY)
        == "f7a8074de721ee70b3e10b608bebc1525104bbca35fbc9846cc6aeb408830cc4"
    )


@pytest.mark.parametrize("body", [None, b""])
def test_no_body_signs_the_timestamp_alone(body: bytes | None) -> None:
    """An empty body counts as none (JavaScript truthiness): no trailing dot."""
    assert signing.signed_payload(STAMP, body) == STAMP.encode()
    assert signing.sign("s", STAMP, body) == signing.sign("s", STAMP, None)


secrets_text = st.text(min_size=1, max_size=40).filter(lambda s: "\x00" not in s)
bodies = st.none() | st.dictionaries(
    st.text(max_size=10), st.text() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False)
)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.tuples(secrets_text, st.integers(0, 10**13), bodies), min_size=30, max_size=30))
def test_signatures_match_the_reference_javascript(cases: list[tuple[str, int, object]]) -> None:
    """For random secrets (non-ASCII too), timestamps and bodies, we sign what Node's reference code signs."""
    ours = [
        signing.sign(secret, stamp, None if body is None else wire.dump_bytes(body)) for secret, stamp, body in cases
    ]
    assert ours == node_signatures(cases)


def test_signed_headers_for_a_body() -> None:
    """The full header set Humanos expects on a call with a body."""
    headers = signing.signed_headers("key-1", "golden-secret", BODY, timestamp=1757160000000)
    assert headers == {
        "Authorization": "Bearer key-1",
        "X-Timestamp": STAMP,
        "X-Signature": "f7a8074de721ee70b3e10b608bebc1525104bbca35fbc9846cc6aeb408830cc4",
        "Content-Type": "application/json",
    }


def test_signed_headers_without_body_have_no_content_type() -> None:
    """Bodyless calls (GET, resend) carry no Content-Type and sign the timestamp alone."""
    headers = signing.signed_headers("key-1", "s", None, timestamp=1)
    assert set(headers) == {"Authorization", "X-Timestamp", "X-Signature"}


def test_empty_secret_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="signature secret is empty"):
        signing.sign("", STAMP, BODY)


def test_valid_signature_verifies() -> None:
    sig = signing.sign("golden-secret", STAMP, BODY)
    signing.verify(["golden-secret"], STAMP, sig, BODY, now=NOW)


def test_any_active_secret_verifies_during_rotation() -> None:
    """Several secrets may be active at once; the signature of either verifies."""
    sig = signing.sign("new-secret", STAMP, BODY)
    signing.verify(["old-secret", "new-secret"], STAMP, sig, BODY, now=NOW)


def test_uppercase_hex_signature_verifies() -> None:
    sig = signing.sign("golden-secret", STAMP, BODY).upper()
    signing.verify(["golden-secret"], STAMP, sig, BODY, now=NOW)


@pytest.mark.parametrize(
    ("timestamp", "signature", "body", "now", "reason", "message"),
    [
        (None, "ab", BODY, NOW, "timestamp_missing", "signature timestamp header is missing"),
        ("  ", "ab", BODY, NOW, "timestamp_missing", "signature timestamp header is missing"),
        ("17571600O0000", "ab", BODY, NOW, "timestamp_malformed", "Unix time in milliseconds"),
        ("1757160000.5", "ab", BODY, NOW, "timestamp_malformed", "Unix time in milliseconds"),
        ("١٧٥٧١٦٠٠٠٠٠٠٠", "ab", BODY, NOW, "timestamp_malformed", "Unix time in milliseconds"),
        (STAMP, "ab", BODY, NOW + 301, "timestamp_stale", "timestamp 301 s older than the 300 s tolerance"),
        (STAMP, "ab", BODY, NOW - 301, "timestamp_future", "timestamp 301 s in the future"),
        (STAMP, None, BODY, NOW, "signature_missing", "signature header is missing"),
        (STAMP, "00" * 32, BODY, NOW, "signature_mismatch", "signature does not match"),
        (STAMP, "not hex at all é", BODY, NOW, "signature_mismatch", "signature does not match"),
    ],
    ids=[
        "no-ts",
        "blank-ts",
        "letter-ts",
        "seconds-ts",
        "arabic-digits",
        "stale",
        "future",
        "no-sig",
        "wrong",
        "garbage",
    ],
)
def test_each_failed_check_says_which(
    timestamp: str | None, signature: str | None, body: bytes, now: float, reason: str, message: str
) -> None:
    """Each check fails with its own reason (for logs) and a message that says how to fix it."""
    with pytest.raises(SignatureError, match=message) as caught:
        signing.verify(["golden-secret"], timestamp, signature, body, now=now)
    assert caught.value.reason == reason


def test_tampered_body_fails() -> None:
    sig = signing.sign("golden-secret", STAMP, BODY)
    with pytest.raises(SignatureError) as caught:
        signing.verify(["golden-secret"], STAMP, sig, BODY.replace(b"list", b"call"), now=NOW)
    assert caught.value.reason == "signature_mismatch"


def test_verification_errors_never_hold_the_secret_or_signature() -> None:
    """Messages and details are safe to log and to return."""
    sig = signing.sign("golden-secret", STAMP, BODY)
    with pytest.raises(SignatureError) as caught:
        signing.verify(["other-secret"], STAMP, sig, BODY, now=NOW)
    text = f"{caught.value} {caught.value.details}"
    assert "golden-secret" not in text and "other-secret" not in text and sig not in text


def test_tolerance_is_a_parameter() -> None:
    """A stricter tolerance refuses what the default accepts."""
    sig = signing.sign("golden-secret", STAMP, BODY)
    signing.verify(["golden-secret"], STAMP, sig, BODY, now=NOW + 100)
    with pytest.raises(SignatureError, match="older than the 60 s tolerance"):
        signing.verify(["golden-secret"], STAMP, sig, BODY, now=NOW + 100, tolerance=60)


def test_no_configured_secret_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no signature secret configured"):
        signing.verify(["", ""], STAMP, "ab", BODY, now=NOW)
