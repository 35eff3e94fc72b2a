"""Sender verifiers: known answers, rotation, the clock in both directions and every malformed header."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from humanos_bridge.core.errors import ConfigError, SignatureError
from humanos_bridge.core.sender_auth import (
    HumanosHmacVerifier,
    SignedDelivery,
    StandardWebhooksVerifier,
    header,
    verifier_for,
)

# The Standard Webhooks reference vector (published with the spec's libraries' tests).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

SECRET_A = "whsec_" + base64.b64encode(b"a" * 32).decode()
SECRET_B = "whsec_" + base64.b64encode(b"b" * 32).decode()
NOW = 1_757_160_000.0
BODY = b'{"type":"order.paid","data":{"orderId":"ord_1"}}'


def sw_headers(secret: str = SECRET_A, *, body: bytes = BODY, **overrides: Any) -> dict[str, str]:
    """Valid Standard Webhooks headers for ``body`` at NOW; ``overrides`` replace (None removes) one header."""
    headers = StandardWebhooksVerifier([secret]).sign_headers("msg_1", body, timestamp=int(NOW))
    for name, value in overrides.items():
        name = name.replace("_", "-")
        if value is None:
            headers.pop(name)
        else:
            headers[name] = value
    return headers


def hmac_headers(secret: str = "crm-secret", *, body: bytes = BODY, stamp_ms: int = int(NOW * 1000)) -> dict[str, str]:
    return HumanosHmacVerifier([secret]).sign(body, timestamp_ms=stamp_ms)


def reason_of(verifier: Any, headers: dict[str, str], body: bytes = BODY, now: float = NOW) -> str:
    with pytest.raises(SignatureError) as caught:
        verifier.verify(headers, body, now=now)
    return caught.value.reason


# --- Standard Webhooks ----------------------------------------------------------------------------


def test_standard_webhooks_signs_the_published_vector() -> None:
    """The spec's reference vector pins the signed string, the key decoding and the encoding."""
    verifier = StandardWebhooksVerifier([SPEC_SECRET])
    assert verifier.sign(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_standard_webhooks_signature_matches_an_independent_hmac() -> None:
    """Computed with hmac directly from the spec's definition, not through the verifier."""
    key = base64.b64decode(SECRET_A.removeprefix("whsec_"))
    expected = base64.b64encode(hmac.new(key, b"msg_1.1757160000." + BODY, hashlib.sha256).digest()).decode()
    assert StandardWebhooksVerifier([SECRET_A]).sign("msg_1", 1757160000, BODY) == f"v1,{expected}"


def test_standard_webhooks_accepts_the_published_vector() -> None:
    """A verifier built from the spec's secret accepts the spec's headers at their own time."""
    headers = {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TIMESTAMP), "webhook-signature": SPEC_SIGNATURE}
    StandardWebhooksVerifier([SPEC_SECRET]).verify(headers, SPEC_BODY, now=SPEC_TIMESTAMP)


def test_standard_webhooks_accepts_any_active_secret() -> None:
    """Rotation: with two active secrets, a body signed with either verifies."""
    verifier = StandardWebhooksVerifier([SECRET_B, SECRET_A])
    verifier.verify(sw_headers(SECRET_A), BODY, now=NOW)
    verifier.verify(sw_headers(SECRET_B), BODY, now=NOW)


def test_standard_webhooks_accepts_any_matching_entry_and_skips_other_versions() -> None:
    """Several entries (sender rotating) and unknown versions (v1a) in one header: one match is enough."""
    good = sw_headers()["webhook-signature"]
    headers = sw_headers(webhook_signature=f"v1a,AAAA v1,bm9wZQ== {good}")
    StandardWebhooksVerifier([SECRET_A]).verify(headers, BODY, now=NOW)


def test_standard_webhooks_header_names_are_case_insensitive() -> None:
    """HTTP header names carry no case; API Gateway lowers them, other proxies may not."""
    headers = {name.title(): value for name, value in sw_headers().items()}
    StandardWebhooksVerifier([SECRET_A]).verify(headers, BODY, now=NOW)


@pytest.mark.parametrize(
    ("overrides", "body", "reason"),
    [
        pytest.param({"webhook_id": None}, BODY, "id_missing", id="id-missing"),
        pytest.param({"webhook_id": "  "}, BODY, "id_missing", id="id-blank"),
        pytest.param({"webhook_timestamp": None}, BODY, "timestamp_missing", id="timestamp-missing"),
        pytest.param({"webhook_timestamp": "1757160000000"}, BODY, "timestamp_malformed", id="timestamp-in-ms"),
        pytest.param({"webhook_timestamp": "-1"}, BODY, "timestamp_malformed", id="timestamp-negative"),
        pytest.param({"webhook_timestamp": "17571600.0"}, BODY, "timestamp_malformed", id="timestamp-float"),
        pytest.param({"webhook_timestamp": "١٧٥٧١٦٠٠٠٠"}, BODY, "timestamp_malformed", id="timestamp-arabic-digits"),
        pytest.param({"webhook_signature": None}, BODY, "signature_missing", id="signature-missing"),
        pytest.param({"webhook_signature": "v2,abc v1a,def"}, BODY, "signature_no_v1", id="signature-no-v1"),
        pytest.param({"webhook_signature": "v1,ünïcode"}, BODY, "signature_mismatch", id="signature-non-ascii"),
        pytest.param({"webhook_signature": "v1," + "A" * 5000}, BODY, "header_too_long", id="signature-huge"),
        pytest.param({}, BODY + b" ", "signature_mismatch", id="body-tampered"),
        pytest.param({"webhook_id": "msg_2"}, BODY, "signature_mismatch", id="id-swapped"),
    ],
)
def test_standard_webhooks_refuses_malformed_or_forged_headers(
    overrides: dict[str, str | None], body: bytes, reason: str
) -> None:
    """Each failed check raises SignatureError naming it; nothing else escapes."""
    assert reason_of(StandardWebhooksVerifier([SECRET_A]), sw_headers(**overrides), body) == reason


def test_standard_webhooks_refuses_a_signature_from_a_retired_secret() -> None:
    """After rotation completes, the old secret no longer verifies."""
    assert reason_of(StandardWebhooksVerifier([SECRET_B]), sw_headers(SECRET_A)) == "signature_mismatch"


@pytest.mark.parametrize(
    ("skew", "reason"), [(301, "timestamp_stale"), (-301, "timestamp_future")], ids=["stale", "future"]
)
def test_standard_webhooks_refuses_timestamps_beyond_the_tolerance(skew: int, reason: str) -> None:
    """Replays (old) and clock tricks (future) are both refused, 300 s by default."""
    assert reason_of(StandardWebhooksVerifier([SECRET_A]), sw_headers(), now=NOW + skew) == reason


@pytest.mark.parametrize("skew", [300, -300])
def test_standard_webhooks_accepts_timestamps_at_the_tolerance(skew: int) -> None:
    """The boundary itself is inside the window."""
    StandardWebhooksVerifier([SECRET_A]).verify(sw_headers(), BODY, now=NOW + skew)


def test_stale_timestamp_message_says_how_old() -> None:
    """The log-only message names the skew and the tolerance, never a signature."""
    with pytest.raises(SignatureError, match=r"^timestamp 400 s older than the 300 s tolerance; sign again"):
        StandardWebhooksVerifier([SECRET_A]).verify(sw_headers(), BODY, now=NOW + 400)


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        pytest.param([], "standard-webhooks needs at least one sender secret", id="none"),
        pytest.param("whsec_abc", "standard-webhooks sender secrets must be a list of strings", id="bare-string"),
        pytest.param([SECRET_A, ""], "standard-webhooks sender secret #2 must be a non-empty string", id="empty"),
        pytest.param(
            ["plain-text"],
            "standard-webhooks sender secret #1 must start with 'whsec_' followed by base64 (whsec_<base64>)",
            id="no-prefix",
        ),
        pytest.param(
            ["whsec_not*base64"],
            "standard-webhooks sender secret #1 is not valid base64 after 'whsec_'",
            id="not-base64",
        ),
        pytest.param(
            ["whsec_" + base64.b64encode(b"short").decode()],
            "standard-webhooks sender secret #1 decodes to 5 bytes; Standard Webhooks keys are 24 to 64 bytes",
            id="too-short",
        ),
    ],
)
def test_standard_webhooks_constructor_refuses_bad_secrets(secrets: Any, message: str) -> None:
    """A bad secret is a configuration error at construction, named by position, never quoted."""
    with pytest.raises(ConfigError) as caught:
        StandardWebhooksVerifier(secrets)
    assert str(caught.value) == message


# --- humanos-hmac ---------------------------------------------------------------------------------


def test_humanos_hmac_signs_the_humanos_test_vector() -> None:
    """Same scheme as Humanos's own requests: the vector from humanos-api.md."""
    body = b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
    headers = HumanosHmacVerifier(["golden-secret"]).sign(body, timestamp_ms=1757160000000)
    assert headers == {
        "X-Timestamp": "1757160000000",
        "X-Signature": "f7a8074de721ee70b3e10b608bebc1525104bbca35fbc9846cc6aeb408830cc4",
    }


def test_humanos_hmac_accepts_any_active_secret_and_any_header_case() -> None:
    """Rotation with two secrets; lower-case names as API Gateway delivers them."""
    verifier = HumanosHmacVerifier(["new-secret", "old-secret"])
    for secret in ("new-secret", "old-secret"):
        lowered = {k.lower(): v for k, v in hmac_headers(secret).items()}
        verifier.verify(lowered, BODY, now=NOW)


@pytest.mark.parametrize(
    ("headers", "body", "now", "reason"),
    [
        pytest.param({"X-Signature": "00"}, BODY, NOW, "timestamp_missing", id="timestamp-missing"),
        pytest.param({"X-Timestamp": str(int(NOW * 1000))}, BODY, NOW, "signature_missing", id="signature-missing"),
        pytest.param({"X-Timestamp": "soon", "X-Signature": "00"}, BODY, NOW, "timestamp_malformed", id="malformed"),
        pytest.param(hmac_headers(), BODY + b"x", NOW, "signature_mismatch", id="tampered"),
        pytest.param(hmac_headers("other"), BODY, NOW, "signature_mismatch", id="wrong-secret"),
        pytest.param(hmac_headers(), BODY, NOW + 301, "timestamp_stale", id="stale"),
        pytest.param(hmac_headers(), BODY, NOW - 301, "timestamp_future", id="future"),
        pytest.param({"X-Timestamp": "1" * 5000, "X-Signature": "00"}, BODY, NOW, "header_too_long", id="huge"),
    ],
)
def test_humanos_hmac_refuses_malformed_or_forged_headers(
    headers: dict[str, str], body: bytes, now: float, reason: str
) -> None:
    """Each failed check raises SignatureError naming it."""
    assert reason_of(HumanosHmacVerifier(["crm-secret"]), headers, body, now) == reason


def test_humanos_hmac_constructor_refuses_an_empty_secret_list() -> None:
    """No secret means no way to verify: configuration error, not an open door."""
    with pytest.raises(ConfigError, match=r"^humanos-hmac needs at least one sender secret$"):
        HumanosHmacVerifier([])


# --- what identifies a delivery (replay protection) ------------------------------------------------


def test_standard_webhooks_delivery_is_its_webhook_id_whatever_the_signature() -> None:
    """A sender's retry keeps the webhook-id and signs again: the same delivery, stale 300 s after its own time."""
    verifier = StandardWebhooksVerifier([SECRET_A])
    first = verifier.verify(sw_headers(), BODY, now=NOW)
    retry = StandardWebhooksVerifier([SECRET_A]).sign_headers("msg_1", BODY, timestamp=int(NOW) + 60)
    assert first == SignedDelivery("standard-webhooks", "msg_1", int(NOW) + 300)
    assert verifier.verify(retry, BODY, now=NOW + 60) == SignedDelivery("standard-webhooks", "msg_1", int(NOW) + 360)


def test_humanos_hmac_delivery_is_its_timestamp_and_signature_as_compared() -> None:
    """An upper-case copy of the signature verifies, so it is the same delivery; a fresh timestamp is another."""
    verifier = HumanosHmacVerifier(["crm-secret"])
    headers = hmac_headers()
    shouted = {**headers, "X-Signature": f"  {headers['X-Signature'].upper()} "}
    first = verifier.verify(headers, BODY, now=NOW)
    assert first == SignedDelivery("humanos-hmac", f"{int(NOW * 1000)}.{headers['X-Signature']}", int(NOW) + 300)
    assert verifier.verify(shouted, BODY, now=NOW) == first
    assert verifier.verify(hmac_headers(stamp_ms=int(NOW * 1000) + 1), BODY, now=NOW).delivery_id != first.delivery_id


# --- shared ---------------------------------------------------------------------------------------


def test_verifier_for_builds_each_scheme_and_refuses_others() -> None:
    """The mapping's scheme names select the verifier; anything else is a config error."""
    assert isinstance(verifier_for("humanos-hmac", ["s"]), HumanosHmacVerifier)
    assert isinstance(verifier_for("standard-webhooks", [SECRET_A], tolerance=10), StandardWebhooksVerifier)
    with pytest.raises(ConfigError, match=r"^unknown sender authentication scheme 'basic'; use one of humanos-hmac, "):
        verifier_for("basic", ["s"])


@pytest.mark.parametrize("tolerance", [0, -1])
def test_tolerance_must_be_positive(tolerance: float) -> None:
    """A zero tolerance would refuse everything; a negative one is a typo."""
    with pytest.raises(ConfigError, match=r"^signature tolerance must be greater than 0 seconds"):
        HumanosHmacVerifier(["s"], tolerance=tolerance)


def test_repr_never_shows_a_secret() -> None:
    """Verifiers end up in logs and tracebacks: only the count of secrets shows."""
    text = repr(StandardWebhooksVerifier([SECRET_A, SECRET_B])) + repr(HumanosHmacVerifier(["crm-secret"]))
    assert "crm-secret" not in text
    assert SECRET_A[6:20] not in text
    assert "<2 secret(s)>" in text


def test_header_lookup_ignores_case() -> None:
    """Exact name first, then any case; None when absent."""
    assert header({"Webhook-Id": "x"}, "webhook-id") == "x"
    assert header({"webhook-id": "y"}, "webhook-id") == "y"
    assert header({}, "webhook-id") is None
