"""The generic HMAC scheme, its presets and the static credentials: each provider's own signature accepted.

Every preset is checked against the provider's own library where one is on PyPI (``stripe``,
``hubspot-api-client``; ``standardwebhooks`` for the Standard Webhooks scheme), against the provider's
documented test vector (GitHub), or against an HMAC computed here by the provider's documented recipe.
The property tests sign through ``humanos_bridge_local.senders`` (what ``humanos-bridge send`` does) and
verify through the ingest function's verifier, for any configuration the auth block can describe.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
import standardwebhooks
import stripe
from hubspot.utils.signature import Signature as HubSpotSignature
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from humanos_bridge.core.errors import ConfigError, SignatureError
from humanos_bridge.core.http_request import InboundRequest
from humanos_bridge.core.sender_auth import (
    ALGORITHMS,
    PRESETS,
    UNTIMED_CLAIM_SECONDS,
    ApiKeyScheme,
    HmacScheme,
    HmacVerifier,
    RequestTarget,
    SenderVerifier,
    SignedDelivery,
    StandardWebhooksVerifier,
    TemplateError,
    parse_signed,
    protects_body,
    signs_timestamp,
    verifier_for,
)
from humanos_bridge.mapping import AuthConfig
from humanos_bridge_local.senders import new_secret, signed_headers
from tests.support.apigw import load_apigw

NOW = 1_757_160_000.0
BODY = b'{"id":"evt_1","type":"contact.created","data":{"contact":{"phone":"+351912345678"}}}'
URL = "https://hooks.example.com/events/crm"
POST = RequestTarget("POST", URL)
#: The sample API Gateway events' domain.
API_HOST = "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"


def b64_hmac(secret: str, content: bytes, digest: Any = hashlib.sha256) -> str:
    return base64.b64encode(hmac.new(secret.encode(), content, digest).digest()).decode()


def hex_hmac(secret: str, content: bytes, digest: Any = hashlib.sha256) -> str:
    return hmac.new(secret.encode(), content, digest).hexdigest()


def reason_of(
    verifier: SenderVerifier,
    headers: dict[str, str],
    body: bytes = BODY,
    *,
    now: float = NOW,
    target: RequestTarget | None = None,
) -> str:
    with pytest.raises(SignatureError) as caught:
        verifier.verify(headers, body, now=now, target=target)
    return caught.value.reason


# --- stripe -----------------------------------------------------------------------------------------

STRIPE_SECRET = "whsec_test_stripe_endpoint_secret"


def test_stripe_accepts_the_header_stripes_library_generates() -> None:
    """Signed by stripe-python's own generate_signature_header: t=<ts>,v1=<hex of HMAC over "<t>.<body>">."""
    header = stripe.WebhookSignature.generate_signature_header(BODY.decode(), STRIPE_SECRET, int(NOW))
    delivery = verifier_for("stripe", [STRIPE_SECRET]).verify({"stripe-signature": header}, BODY, now=NOW)
    assert delivery == SignedDelivery("stripe", f"{int(NOW)}.{header.split('v1=')[1]}", int(NOW) + 300)


def test_stripes_library_accepts_what_the_bridge_signs() -> None:
    """The other way round: stripe.Webhook.construct_event verifies the header `humanos-bridge send` makes."""
    headers = signed_headers("stripe", STRIPE_SECRET, BODY)
    event = stripe.Webhook.construct_event(BODY, headers["Stripe-Signature"], STRIPE_SECRET, tolerance=300)
    assert event["id"] == "evt_1"


def test_stripe_accepts_any_v1_entry_and_skips_v0_while_stripe_rolls_its_secret() -> None:
    """Stripe sends one v1 per active endpoint secret (and a test-mode v0): one match is enough."""
    good = stripe.WebhookSignature.generate_signature_header(BODY.decode(), STRIPE_SECRET, int(NOW))
    header = f"t={int(NOW)},v1={'0' * 64},{good.split(',')[1]},v0={'1' * 64}"
    verifier_for("stripe", [STRIPE_SECRET]).verify({"Stripe-Signature": header}, BODY, now=NOW)


@pytest.mark.parametrize(
    ("header", "body", "now", "reason"),
    [
        pytest.param(None, BODY, NOW, "signature_missing", id="no-header"),
        pytest.param(f"t={int(NOW)}", BODY, NOW, "signature_malformed", id="no-v1-entry"),
        pytest.param(f"v1={'a' * 64}", BODY, NOW, "timestamp_missing", id="no-t-entry"),
        pytest.param(f"t=soon,v1={'a' * 64}", BODY, NOW, "timestamp_malformed", id="t-not-digits"),
        pytest.param("stripe", BODY + b" ", NOW, "signature_mismatch", id="tampered"),
        pytest.param("stripe", BODY, NOW + 301, "timestamp_stale", id="stale"),
        pytest.param("stripe", BODY, NOW - 301, "timestamp_future", id="future"),
        pytest.param("other", BODY, NOW, "signature_mismatch", id="wrong-secret"),
    ],
)
def test_stripe_refuses_each_failed_check_by_name(header: str | None, body: bytes, now: float, reason: str) -> None:
    """The reason names the check (for the log); "stripe"/"other" stand for a header signed with that secret."""
    if header in ("stripe", "other"):
        secret = STRIPE_SECRET if header == "stripe" else "whsec_someone_else"
        header = stripe.WebhookSignature.generate_signature_header(BODY.decode(), secret, int(NOW))
    headers = {} if header is None else {"Stripe-Signature": header}
    assert reason_of(verifier_for("stripe", [STRIPE_SECRET]), headers, body, now=now) == reason


# --- github -----------------------------------------------------------------------------------------


def test_github_accepts_its_documented_test_vector() -> None:
    """docs.github.com "Validating webhook deliveries": this secret and payload give exactly this header."""
    headers = {"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
    verifier = verifier_for("github", ["It's a Secret to Everybody"])
    delivery = verifier.verify(headers, b"Hello, World!", now=NOW)
    # No timestamp is signed: the copy is remembered as long as the ledger remembers the event.
    assert delivery.stale_after == int(NOW) + UNTIMED_CLAIM_SECONDS
    assert (
        signed_headers("github", "It's a Secret to Everybody", b"Hello, World!")["X-Hub-Signature-256"]
        == (headers["X-Hub-Signature-256"])
    )


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        pytest.param(None, "signature_missing", id="no-header"),
        pytest.param(hex_hmac("gh-secret", BODY), "signature_malformed", id="no-sha256-prefix"),
        pytest.param("sha1=" + hex_hmac("gh-secret", BODY, hashlib.sha1), "signature_malformed", id="sha1-header"),
        pytest.param("sha256=" + hex_hmac("gh-secret", BODY).upper(), "signature_mismatch", id="upper-case-hex"),
        pytest.param("sha256=" + hex_hmac("gh-secret", BODY + b" "), "signature_mismatch", id="tampered"),
        pytest.param("sha256=" + hex_hmac("not-it", BODY), "signature_mismatch", id="wrong-secret"),
        pytest.param("sha256=" + "a" * 5000, "header_too_long", id="huge"),
    ],
)
def test_github_refuses_each_failed_check_by_name(header: str | None, reason: str) -> None:
    """GitHub writes lowercase hex after "sha256="; anything else is refused, and the reason says why."""
    headers = {} if header is None else {"x-hub-signature-256": header}
    assert reason_of(verifier_for("github", ["gh-secret"]), headers) == reason


# --- shopify and typeform ---------------------------------------------------------------------------


def test_shopify_accepts_base64_hmac_of_the_raw_body_by_its_documented_recipe() -> None:
    """shopify.dev: X-Shopify-Hmac-Sha256 = base64(HMAC-SHA256(client secret, raw body)); rotation too."""
    verifier = verifier_for("shopify", ["shpss_new", "shpss_old"])
    for secret in ("shpss_new", "shpss_old"):
        verifier.verify({"X-Shopify-Hmac-Sha256": b64_hmac(secret, BODY)}, BODY, now=NOW)
    assert signed_headers("shopify", "shpss_new", BODY)["X-Shopify-Hmac-Sha256"] == b64_hmac("shpss_new", BODY)
    assert reason_of(verifier, {"X-Shopify-Hmac-Sha256": b64_hmac("shpss_new", BODY)}, BODY[:-1]) == (
        "signature_mismatch"
    )


def test_typeform_accepts_sha256_prefixed_base64_by_its_documented_recipe() -> None:
    """typeform.com/developers: Typeform-Signature = "sha256=" + base64(HMAC-SHA256(secret, raw body))."""
    header = "sha256=" + b64_hmac("tf-secret", BODY)
    verifier_for("typeform", ["tf-secret"]).verify({"typeform-signature": header}, BODY, now=NOW)
    assert signed_headers("typeform", "tf-secret", BODY)["Typeform-Signature"] == header
    assert reason_of(verifier_for("typeform", ["tf-secret"]), {"typeform-signature": header[7:]}) == (
        "signature_malformed"
    )


def test_untimed_delivery_is_the_signature_so_a_copy_is_the_same_delivery() -> None:
    """Without a signed timestamp, a copy carries the same signature; any change of body is another delivery."""
    verifier = verifier_for("shopify", ["shpss"])
    first = verifier.verify({"X-Shopify-Hmac-Sha256": b64_hmac("shpss", BODY)}, BODY, now=NOW)
    again = verifier.verify({"X-Shopify-Hmac-Sha256": b64_hmac("shpss", BODY)}, BODY, now=NOW + 60)
    other = verifier.verify({"X-Shopify-Hmac-Sha256": b64_hmac("shpss", BODY + b"\n")}, BODY + b"\n", now=NOW)
    assert first.delivery_id == again.delivery_id == b64_hmac("shpss", BODY)
    assert other.delivery_id != first.delivery_id


# --- hubspot-v3 -------------------------------------------------------------------------------------

HUBSPOT_SECRET = "hubspot-client-secret"


def hubspot_headers(url: str, *, stamp_ms: int, body: bytes = BODY, secret: str = HUBSPOT_SECRET) -> dict[str, str]:
    """Signed with HubSpot's own SDK (hubspot-api-client), as HubSpot signs: method + URI + body + timestamp."""
    signature = HubSpotSignature.get_signature(secret, body.decode(), "v3", url, "POST", str(stamp_ms))
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": str(stamp_ms)}


def test_hubspot_v3_accepts_the_signature_hubspots_sdk_computes() -> None:
    """The request line is signed: the URL the sender called, rebuilt from the API Gateway event."""
    headers = hubspot_headers(URL, stamp_ms=int(NOW * 1000))
    delivery = verifier_for("hubspot-v3", [HUBSPOT_SECRET]).verify(headers, BODY, now=NOW, target=POST)
    assert delivery.stale_after == int(NOW) + 300


def test_hubspot_v3_decodes_the_escapes_hubspot_lists_before_comparing() -> None:
    """HubSpot signs its URI with :/?@!$'()*,; decoded; the request arrives with them escaped (%3A ...).

    Other escapes (a space's %20) are signed as they are.
    """
    signed_for = "https://hooks.example.com/events/crm?since=2026-05-20T09:15:00Z&tag=(a,b)&q=a%20b"
    arrived = "https://hooks.example.com/events/crm?since=2026-05-20T09%3A15%3A00Z&tag=%28a%2cb%29&q=a%20b"
    headers = hubspot_headers(signed_for, stamp_ms=int(NOW * 1000))
    verifier_for("hubspot-v3", [HUBSPOT_SECRET]).verify(headers, BODY, now=NOW, target=RequestTarget("POST", arrived))


def test_hubspots_sdk_accepts_what_the_bridge_signs() -> None:
    """Signature.is_valid (which checks its own 5-minute window against the clock) takes `send`'s headers."""
    headers = signed_headers("hubspot-v3", HUBSPOT_SECRET, BODY, url=URL)
    assert HubSpotSignature.is_valid(
        signature=headers["X-HubSpot-Signature-v3"],
        client_secret=HUBSPOT_SECRET,
        request_body=BODY.decode(),
        http_uri=URL,
        http_method="POST",
        signature_version="v3",
        timestamp=headers["X-HubSpot-Request-Timestamp"],
    )


@pytest.mark.parametrize(
    ("overrides", "target", "now", "reason"),
    [
        pytest.param({}, POST, NOW + 301, "timestamp_stale", id="stale"),
        pytest.param({}, POST, NOW - 301, "timestamp_future", id="future"),
        pytest.param({}, RequestTarget("POST", URL.replace("crm", "shop")), NOW, "signature_mismatch", id="other-url"),
        pytest.param({}, RequestTarget("PUT", URL), NOW, "signature_mismatch", id="other-method"),
        pytest.param({}, RequestTarget("POST", ""), NOW, "url_unknown", id="no-domain-in-event"),
        pytest.param({"X-HubSpot-Request-Timestamp": str(int(NOW))}, POST, NOW, "timestamp_stale", id="seconds"),
        pytest.param({"X-HubSpot-Request-Timestamp": None}, POST, NOW, "timestamp_missing", id="no-timestamp"),
        pytest.param({"X-HubSpot-Signature-v3": None}, POST, NOW, "signature_missing", id="no-signature"),
    ],
)
def test_hubspot_v3_refuses_each_failed_check_by_name(
    overrides: dict[str, str | None], target: RequestTarget, now: float, reason: str
) -> None:
    """Stale or future timestamps (in ms), another URL or method, a missing header: each named."""
    headers: dict[str, str] = hubspot_headers(URL, stamp_ms=int(NOW * 1000))
    for name, value in overrides.items():
        if value is None:
            del headers[name]
        else:
            headers[name] = value
    assert reason_of(verifier_for("hubspot-v3", [HUBSPOT_SECRET]), headers, now=now, target=target) == reason


def test_a_url_signing_scheme_without_the_request_line_is_a_programming_error() -> None:
    """A caller that forgets target= gets a ConfigError (500), never a 401 that hides the bug."""
    headers = hubspot_headers(URL, stamp_ms=int(NOW * 1000))
    with pytest.raises(ConfigError, match=r"^hubspot-v3 signs the request's method and URL; pass them"):
        verifier_for("hubspot-v3", [HUBSPOT_SECRET]).verify(headers, BODY, now=NOW)
    with pytest.raises(ConfigError, match=r"^hubspot-v3 signs the request's URL; pass the URL"):
        signed_headers("hubspot-v3", HUBSPOT_SECRET, BODY)


# --- standard-webhooks, against its own library -----------------------------------------------------

SW_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def test_standard_webhooks_library_and_the_bridge_accept_each_others_signatures() -> None:
    """The standardwebhooks package signs what the bridge accepts, and verifies what `send` signs."""
    now = time.time()
    library = standardwebhooks.Webhook(SW_SECRET)
    signature = library.sign("msg_1", datetime.fromtimestamp(int(now), UTC), BODY.decode())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now)), "webhook-signature": signature}
    StandardWebhooksVerifier([SW_SECRET]).verify(headers, BODY, now=now)
    sent = signed_headers("standard-webhooks", SW_SECRET, BODY)
    assert library.verify(BODY, {k: v for k, v in sent.items() if k.startswith("webhook-")}) == json.loads(BODY)


# --- the generic scheme: known answers --------------------------------------------------------------


@pytest.mark.parametrize("algorithm", sorted(ALGORITHMS))
@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_generic_scheme_signs_each_algorithm_and_encoding_as_hmac_does(algorithm: str, encoding: str) -> None:
    """The digest and its text are the standard library's HMAC of the template, written as configured."""
    scheme = HmacScheme("X-Signature", algorithm=algorithm, encoding=encoding, signed="{timestamp}.{body}",
                        timestamp_header="X-Timestamp")  # fmt: skip
    digest = hmac.new(b"s3cret", f"{int(NOW)}.".encode() + BODY, getattr(hashlib, algorithm)).digest()
    expected = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    verifier = HmacVerifier(["s3cret"], scheme)
    assert verifier.sign_headers(BODY, now=NOW) == {"X-Timestamp": str(int(NOW)), "X-Signature": expected}
    verifier.verify({"x-timestamp": str(int(NOW)), "x-signature": expected}, BODY, now=NOW)


def test_generic_scheme_signs_header_values_the_method_and_the_url() -> None:
    """A template may name any request header; the sender's values are signed as sent."""
    scheme = HmacScheme(
        "X-Acme-Signature",
        signed="{method} {url}\n{header:X-Acme-Delivery}\n{timestamp}\n{body}",
        timestamp_header="X-Acme-Time",
        timestamp_unit="milliseconds",
        signature_separator=" ",
        signature_prefix="v1=",
    )
    content = f"POST {URL}\nd-42\n{int(NOW * 1000)}\n".encode() + BODY
    headers = {
        "X-Acme-Delivery": "d-42",
        "X-Acme-Time": str(int(NOW * 1000)),
        "X-Acme-Signature": f"v0=abc v1={hex_hmac('acme', content)}",
    }
    verifier = HmacVerifier(["acme"], scheme)
    verifier.verify(headers, BODY, now=NOW, target=POST)
    assert reason_of(verifier, {**headers, "X-Acme-Delivery": "d-43"}, target=POST) == "signature_mismatch"
    assert reason_of(verifier, {k: v for k, v in headers.items() if k != "X-Acme-Delivery"}, target=POST) == (
        "signed_header_missing"
    )


def test_literal_braces_are_written_doubled() -> None:
    """{{ and }} are literal braces; everything else in braces is a part."""
    assert parse_signed("{{v1}}:{body}") == (("text", "{v1}:"), ("body", ""))


@pytest.mark.parametrize(
    ("template", "message"),
    [
        pytest.param(
            "{tiemstamp}.{body}",
            "unknown part {tiemstamp}; did you mean {timestamp}? the parts are {body}, {timestamp}, {method}, "
            "{url} and {header:<name>}",
            id="typo",
        ),
        pytest.param("{headers:X}{body}", "unknown part {headers:X}; did you mean {header:<name>}? ", id="header"),
        pytest.param("{header:}{body}", "{header:} does not name a header; write {header:X-Request-Id}", id="no-name"),
        pytest.param("{body", "the '{' at character 1 is never closed", id="unclosed"),
        pytest.param("body}", "a lone '}' at character 5; write }} for a literal brace", id="lone-close"),
    ],
)
def test_unreadable_templates_say_where_and_how_to_fix(template: str, message: str) -> None:
    """A template error names the piece and the way out."""
    with pytest.raises(TemplateError) as caught:
        parse_signed(template)
    assert str(caught.value).startswith(message)


def test_a_verifier_refuses_settings_with_problems_listing_them_all() -> None:
    """Built in code (not from a mapping file), bad settings still never verify anything."""
    scheme = HmacScheme("X-Sig", algorithm="md5", signed="{timestamp}", timestamp_key="t")
    with pytest.raises(ConfigError) as caught:
        HmacVerifier(["s"], scheme)
    assert str(caught.value) == (
        "hmac settings: algorithm: unknown algorithm 'md5'; use one of sha1, sha256, sha512; "
        "timestampKey: needs signatureKey: it names an entry of the signature header's list; "
        "signed: must include {body}: a signature that leaves the body out does not protect it"
    )


def test_every_preset_is_valid_settings_and_says_whether_it_signs_a_timestamp() -> None:
    """The presets are plain HmacScheme values: no problems, and a timestamp exactly where documented."""
    assert {name: preset.problems() for name, preset in PRESETS.items()} == {name: [] for name in PRESETS}
    assert {name for name in PRESETS if signs_timestamp(name)} == {"stripe", "hubspot-v3"}


# --- static credentials -----------------------------------------------------------------------------


def test_basic_auth_accepts_any_active_user_password_and_refuses_the_rest() -> None:
    """Authorization: Basic base64(user:password); the auth scheme's name is case-insensitive."""
    verifier = verifier_for("basic-auth", ["crm:new-password", "crm:old-password"])
    for secret in ("crm:new-password", "crm:old-password"):
        verifier.verify({"authorization": "basic " + base64.b64encode(secret.encode()).decode()}, BODY, now=NOW)
    assert reason_of(verifier, {}) == "credentials_missing"
    assert reason_of(verifier, {"Authorization": "Bearer abc"}) == "credentials_malformed"
    assert reason_of(verifier, {"Authorization": "Basic not*base64"}) == "credentials_malformed"
    assert reason_of(verifier, {"Authorization": "Basic " + base64.b64encode(b"crm:guess").decode()}) == (
        "credentials_mismatch"
    )


def test_basic_auth_secrets_must_be_user_colon_password() -> None:
    """Checked at construction, named by position, never quoted."""
    with pytest.raises(ConfigError, match=r"^basic-auth sender secret #2 must be <user>:<password>$"):
        verifier_for("basic-auth", ["crm:pw", "just-a-password"])


def test_api_key_in_a_named_header_after_an_optional_prefix() -> None:
    """The key itself in a header; a prefix such as "Bearer " is compared ignoring case, as HTTP does."""
    verifier = verifier_for("api-key", ["key-1"], settings=ApiKeyScheme("Authorization", "Bearer "))
    verifier.verify({"authorization": "bearer key-1"}, BODY, now=NOW)
    assert reason_of(verifier, {"Authorization": "Basic key-1"}) == "credentials_malformed"
    assert reason_of(verifier, {"Authorization": "Bearer key-2"}) == "credentials_mismatch"
    assert signed_headers(AuthConfig("api-key", "k", ApiKeyScheme("X-Api-Key")), "key-1", BODY)["X-Api-Key"] == "key-1"


def test_static_credentials_protect_no_body_so_their_delivery_is_the_bodys_hash() -> None:
    """The credential is the same on every request: only the body tells a copy from a new delivery."""
    verifier = verifier_for("api-key", ["key-1"], settings=ApiKeyScheme("X-Api-Key"))
    first = verifier.verify({"X-Api-Key": "key-1"}, BODY, now=NOW)
    assert first == SignedDelivery(
        "api-key", "body:" + hashlib.sha256(BODY).hexdigest(), int(NOW) + UNTIMED_CLAIM_SECONDS
    )
    assert verifier.verify({"X-Api-Key": "key-1"}, BODY + b" ", now=NOW).delivery_id != first.delivery_id
    assert [protects_body(s) for s in ("basic-auth", "api-key", "github", "humanos-hmac")] == [
        False,
        False,
        True,
        True,
    ]


def test_schemes_that_need_settings_say_so_without_them() -> None:
    """hmac and api-key are nothing without their auth block."""
    with pytest.raises(ConfigError, match=r"^the hmac scheme needs its settings"):
        verifier_for("hmac", ["s"])
    with pytest.raises(ConfigError, match=r"^the api-key scheme needs its settings"):
        signed_headers("api-key", "s", BODY)


def test_repr_never_shows_a_secret() -> None:
    """Verifiers end up in logs and tracebacks."""
    text = " ".join(
        repr(verifier_for(name, ["user:sup3r-secret"], settings=ApiKeyScheme("X-Key")))
        for name in ("stripe", "basic-auth", "api-key")
    )
    assert "sup3r" not in text
    assert "<1 secret(s)>" in text


@pytest.mark.parametrize(
    "scheme", ["humanos-hmac", "standard-webhooks", "stripe", "shopify", "github", "typeform", "basic-auth"]
)
def test_a_fresh_secret_is_one_the_schemes_verifier_takes(scheme: str) -> None:
    """`humanos-bridge local` generates one per source: each must build its verifier."""
    verifier_for(scheme, [new_secret(scheme)])


# --- the request line, from the API Gateway event ---------------------------------------------------


def test_the_url_is_rebuilt_from_the_events_domain_raw_path_and_raw_query() -> None:
    """https://<domainName><rawPath>?<rawQueryString>, escapes kept as the sender wrote them."""
    event = load_apigw("post-event-crm-humanos-hmac")
    event["rawQueryString"] = "portal=1&at=09%3A15"
    request = InboundRequest.from_apigw_v2(event)
    assert (request.method, request.url) == ("POST", f"https://{API_HOST}/events/crm?portal=1&at=09%3A15")


@pytest.mark.parametrize(
    ("change", "url"),
    [
        pytest.param({"x-forwarded-proto": "http"}, f"http://{API_HOST}/events/crm", id="plain-http-local-gateway"),
        pytest.param({"x-forwarded-proto": "gopher"}, f"https://{API_HOST}/events/crm", id="odd-proto-is-https"),
        pytest.param({"domainName": None}, "", id="no-domain"),
    ],
)
def test_the_url_scheme_follows_x_forwarded_proto_and_needs_a_domain(change: dict[str, str | None], url: str) -> None:
    """Only "http" changes the scheme (a local gateway); without a domain the URL is unknown ("")."""
    event = load_apigw("post-event-crm-humanos-hmac")
    if "domainName" in change:
        del event["requestContext"]["domainName"]
    else:
        event["headers"].update(change)
    assert InboundRequest.from_apigw_v2(event).url == url


# --- properties: any configuration --------------------------------------------------------------------


@st.composite
def hmac_schemes(draw: st.DrawFn) -> HmacScheme:
    """Any valid settings: every algorithm, encoding, header shape, timestamp place and template."""
    reading = draw(st.sampled_from(["plain", "separated", "list"]))
    separator = None if reading == "plain" else draw(st.sampled_from([" ", ","]))
    signature_key = "v1" if reading == "list" else None
    stamp_place = draw(st.sampled_from(["none", "header", "key"] if reading == "list" else ["none", "header"]))
    pieces = ["{body}"]
    if stamp_place != "none":
        pieces.append("{timestamp}")
    pieces += draw(st.lists(st.sampled_from(["{method}", "{url}", "{header:X-Request-Id}"]), unique=True))
    order = draw(st.permutations(pieces))
    glue = draw(st.sampled_from(["", ".", "\n", ":", "{{}}"]))
    return HmacScheme(
        draw(st.sampled_from(["X-Signature", "X-Acme-Hmac"])),
        algorithm=draw(st.sampled_from(sorted(ALGORITHMS))),
        encoding=draw(st.sampled_from(["hex", "base64"])),
        signed=glue.join(order),
        signature_prefix=draw(st.sampled_from(["", "sha256=", "v1:"])),
        signature_separator=separator,
        signature_key=signature_key,
        timestamp_header="X-Timestamp" if stamp_place == "header" else None,
        timestamp_key="t" if stamp_place == "key" else None,
        timestamp_unit=draw(st.sampled_from(["seconds", "milliseconds"])) if stamp_place != "none" else "seconds",
        url_decode=draw(st.sampled_from(["", ":/?"])) if "{url}" in pieces else "",
    )


secret_texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=40).filter(
    str.strip
)
bodies = st.binary(min_size=1, max_size=300)
instants = st.integers(min_value=1_000_000_000, max_value=4_000_000_000)
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def signed_request(scheme: HmacScheme, secret: str, body: bytes, now: int) -> dict[str, str]:
    """What `humanos-bridge send` sends for a source with this auth block."""
    auth = AuthConfig("hmac", "acme", settings=scheme)
    return signed_headers(auth, secret, body, now=now, url=URL + "?at=09%3A15")


def verify(scheme: HmacScheme, secrets: list[str], headers: dict[str, str], body: bytes, now: int) -> SignedDelivery:
    target = RequestTarget("POST", URL + "?at=09%3A15")
    return verifier_for("hmac", secrets, settings=scheme).verify(headers, body, now=now, target=target)


@PROPERTY
@given(scheme=hmac_schemes(), secrets=st.lists(secret_texts, min_size=1, max_size=3), body=bodies, now=instants)
def test_any_configuration_round_trips_from_send_to_the_verifier(
    scheme: HmacScheme, secrets: list[str], body: bytes, now: int
) -> None:
    """Whatever the auth block says, what the sender signs (with any active secret) verifies."""
    assert scheme.problems() == []
    headers = signed_request(scheme, secrets[-1], body, now)
    delivery = verify(scheme, secrets, headers, body, now)
    assert delivery.scheme == "hmac"
    assert delivery.stale_after == (now + 300 if scheme.timed else now + UNTIMED_CLAIM_SECONDS)


def _replace_one(text: str, index: int, replacement: str) -> str:
    assert replacement != text[index]
    return text[:index] + replacement + text[index + 1 :]


@PROPERTY
@given(scheme=hmac_schemes(), secret=secret_texts, body=bodies, now=instants, data=st.data())
def test_any_single_byte_change_of_the_body_is_refused(
    scheme: HmacScheme, secret: str, body: bytes, now: int, data: st.DataObject
) -> None:
    """Every template signs the body: no byte of it can change unnoticed."""
    headers = signed_request(scheme, secret, body, now)
    index = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    changed = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    with pytest.raises(SignatureError):
        verify(scheme, [secret], headers, changed, now)


printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


@PROPERTY
@given(scheme=hmac_schemes(), secret=secret_texts, body=bodies, now=instants, data=st.data())
def test_any_single_byte_change_of_the_signature_header_is_refused(
    scheme: HmacScheme, secret: str, body: bytes, now: int, data: st.DataObject
) -> None:
    """A character changed anywhere in the signature header (prefix, key, separator, digest) is refused."""
    headers = signed_request(scheme, secret, body, now)
    value = headers[scheme.signature_header]
    index = data.draw(st.integers(0, len(value) - 1))
    replacement = data.draw(printable.filter(lambda char: char != value[index]))
    headers[scheme.signature_header] = _replace_one(value, index, replacement)
    with pytest.raises(SignatureError):
        verify(scheme, [secret], headers, body, now)


@PROPERTY
@given(scheme=hmac_schemes().filter(lambda s: s.timed), secret=secret_texts, body=bodies, now=instants, data=st.data())
def test_any_single_byte_change_of_the_timestamp_is_refused(
    scheme: HmacScheme, secret: str, body: bytes, now: int, data: st.DataObject
) -> None:
    """The timestamp is always signed: a changed digit, even one still inside the tolerance, is refused."""
    headers = signed_request(scheme, secret, body, now)
    stamp = str(now * 1000 if scheme.timestamp_unit == "milliseconds" else now)
    index = data.draw(st.integers(0, len(stamp) - 1))
    changed = _replace_one(stamp, index, data.draw(printable.filter(lambda char: char != stamp[index])))
    if scheme.timestamp_header is not None:
        headers[scheme.timestamp_header] = changed
    else:
        value = headers[scheme.signature_header]
        headers[scheme.signature_header] = value.replace(f"t={stamp}", f"t={changed}", 1)
    with pytest.raises(SignatureError):
        verify(scheme, [secret], headers, body, now)


@PROPERTY
@given(scheme=hmac_schemes(), secret=secret_texts, other=secret_texts, body=bodies, now=instants)
def test_a_signature_made_with_another_secret_is_refused(
    scheme: HmacScheme, secret: str, other: str, body: bytes, now: int
) -> None:
    """Another sender's secret (or a retired one) never verifies."""
    assume(other != secret)
    headers = signed_request(scheme, other, body, now)
    with pytest.raises(SignatureError) as caught:
        verify(scheme, [secret], headers, body, now)
    assert caught.value.reason == "signature_mismatch"
