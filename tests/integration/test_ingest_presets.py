"""Provider presets, the generic hmac scheme and static credentials, through the ingest function's route.

Real parts, as in test_ingest.py: moto in server mode (SQS, Secrets Manager, DynamoDB for replay claims) and
the Humanos sandbox. Each request is signed as the provider signs it: by the provider's own library where
one is on PyPI (stripe, hubspot-api-client), else by the provider's documented recipe, computed here.
Refusals answer the one 401; the log line names the check that failed, and never a secret or signature.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe
from hubspot.utils.signature import Signature as HubSpotSignature

from humanos_bridge.mapping import load_mapping
from humanos_bridge_local.senders import sender_auth, signed_headers
from tests.support.apigw import CRM_SECRET, HR_SECRET, SHOP_SECRET, apigw_event
from tests.support.bridge import business_event
from tests.support.ingest_env import IngestEnv, app, create_ingest, ingest_mapping
from tests.support.logs import check_lines, written_lines

UNAUTHORIZED = {"error": {"code": "unauthorized", "message": "request signature could not be verified"}}
#: Each source's auth block; "<name>-eu" is a second source of the same scheme with its own secret.
AUTH: dict[str, dict[str, Any]] = {
    "stripe": {"scheme": "stripe"},
    "shopify": {"scheme": "shopify"},
    "github": {"scheme": "github"},
    "hubspot-v3": {"scheme": "hubspot-v3"},
    "typeform": {"scheme": "typeform"},
    "basic-auth": {"scheme": "basic-auth"},
    "api-key": {"scheme": "api-key", "keyHeader": "X-Api-Key"},
    "acme": {
        "scheme": "hmac",
        "algorithm": "sha512",
        "encoding": "base64",
        "signatureHeader": "X-Acme-Signature",
        "signaturePrefix": "v1=",
        "signatureSeparator": " ",
        "signed": "{timestamp}.{method}.{url}.{header:X-Acme-Delivery}.{body}",
        "timestampHeader": "X-Acme-Timestamp",
    },
}
SECRETS = {
    "stripe": "whsec_stripe_example_secret",
    "shopify": "shpss_shop_example_secret",
    "github": "github-example-secret",
    "hubspot-v3": "hubspot-client-secret-example",
    "typeform": "typeform-example-secret",
    "basic-auth": "crm-sender:basic-example-password",
    "api-key": "api-key-example-value",
    "acme": "acme-example-secret",
}
PRESETS = ("stripe", "shopify", "github", "hubspot-v3", "typeform")
STATIC = ("basic-auth", "api-key")
TIMED = ("stripe", "hubspot-v3")


def eu(name: str) -> str:
    return f"{name}-eu"


def eu_secret(name: str) -> str:
    return SECRETS[name].replace("example", "other-region")


@pytest.fixture
def ingest(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[IngestEnv]:
    """The ingest function with one source per scheme (crm's rules), plus "stripe-60": stripe with a 60 s window."""
    env = create_ingest(moto, sandbox, monkeypatch, tmp_path)
    mapping = ingest_mapping()
    # crm's rules, without its `match` (an SNS topic belongs to one source only).
    crm = {key: value for key, value in mapping["sources"]["crm"].items() if key != "match"}
    for name, auth in AUTH.items():
        mapping["sources"][name] = {**copy.deepcopy(crm), "auth": auth}
        mapping["sources"][eu(name)] = {**copy.deepcopy(crm), "auth": auth}
    mapping["sources"]["stripe-60"] = {**copy.deepcopy(crm), "auth": {"scheme": "stripe", "tolerance": 60}}
    env.bridge.with_mapping(monkeypatch, mapping, tmp_path)
    secrets = {"crm": [CRM_SECRET], "shop-webhooks": [SHOP_SECRET], "hr": [HR_SECRET], "stripe-60": [SECRETS["stripe"]]}
    secrets |= {name: [secret] for name, secret in SECRETS.items()}
    secrets |= {eu(name): [eu_secret(name)] for name in SECRETS}
    env.set_sender_secrets(secrets)
    yield env
    app.service.cache_clear()


def fresh_body() -> bytes:
    """A crm contact.created event with its own id, so no two tests' requests are one delivery."""
    event = business_event("crm-contact-created", id=f"evt_{uuid.uuid4().hex[:12]}")
    return json.dumps(event, separators=(",", ":")).encode()


def url_of(source: str) -> str:
    """The URL a sender posts to, as the sample events' API Gateway domain serves it."""
    return f"https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com/events/{source}"


def provider_headers(scheme: str, secret: str, body: bytes, *, now: float, url: str) -> dict[str, str]:
    """The headers the provider sends, computed by its library or its documented recipe (never by the bridge)."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256)
    if scheme == "stripe":
        return {"stripe-signature": stripe.WebhookSignature.generate_signature_header(body.decode(), secret, int(now))}
    if scheme == "shopify":
        return {"x-shopify-hmac-sha256": base64.b64encode(digest.digest()).decode()}
    if scheme == "github":
        return {"x-hub-signature-256": "sha256=" + digest.hexdigest()}
    if scheme == "hubspot-v3":
        stamp = str(int(now * 1000))
        signature = HubSpotSignature.get_signature(secret, body.decode(), "v3", url, "POST", stamp)
        return {"x-hubspot-signature-v3": signature, "x-hubspot-request-timestamp": stamp}
    if scheme == "typeform":
        return {"typeform-signature": "sha256=" + base64.b64encode(digest.digest()).decode()}
    if scheme == "basic-auth":
        return {"authorization": "Basic " + base64.b64encode(secret.encode()).decode()}
    assert scheme == "api-key"
    return {"x-api-key": secret}


def delivery(
    source: str,
    *,
    body: bytes | None = None,
    skew_seconds: float = 0,
    secret: str | None = None,
    signed_for: str | None = None,
    sent_body: bytes | None = None,
) -> dict[str, Any]:
    """An API Gateway event for POST /events/<source>, signed as the provider signs; one change per keyword.

    ``signed_for`` signs for another source (its URL); ``sent_body`` replaces the body after signing.
    """
    body = fresh_body() if body is None else body
    scheme = str(AUTH[source.removesuffix("-eu")]["scheme"])
    headers = provider_headers(
        scheme,
        secret or SECRETS[source],
        body,
        now=time.time() + skew_seconds,
        url=url_of(signed_for or source),
    )
    return apigw_event(source=source, body=sent_body or body, signed=False, headers=dict(headers))


def refusal(ingest: IngestEnv, event: dict[str, Any]) -> str:
    """Send ``event``, expect the one 401 and nothing queued; the reason the log line gives."""
    with written_lines(app.logger) as lines:
        answer = ingest.invoke(event)
    assert (answer.status, answer.body) == (401, UNAUTHORIZED)
    assert ingest.queued() == []
    entries = check_lines(lines)
    [line] = [entry for entry in entries if entry.get("outcome") == "rejected"]
    written = "\n".join(lines)
    for name, value in event["headers"].items():
        if name in ("stripe-signature", "x-hubspot-signature-v3", "authorization", "x-api-key", "typeform-signature"):
            assert value not in written
    assert all(secret not in written for secret in SECRETS.values())
    return str(line["reason"])


# --- accepted ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", [*PRESETS, *STATIC])
def test_a_request_signed_as_the_provider_signs_is_queued_as_sent(ingest: IngestEnv, source: str) -> None:
    """202 and the raw body on the queue, for each preset and each static credential."""
    event = delivery(source)
    answer = ingest.invoke(event)
    assert (answer.status, answer.body["status"]) == (202, "accepted")
    [message] = ingest.queued()
    assert message["Body"] == event["body"]


@pytest.mark.parametrize("source", list(AUTH))
def test_the_send_command_signs_every_scheme_the_ingest_function_accepts(ingest: IngestEnv, source: str) -> None:
    """What `humanos-bridge send` signs (senders.signed_headers with the source's auth block) gets in."""
    body = fresh_body()
    auth = sender_auth(load_mapping(os.environ["MAPPING_FILE"]), source)
    assert auth.config is not None
    headers = signed_headers(auth.config, SECRETS[source], body, url=url_of(source))
    answer = ingest.invoke(apigw_event(source=source, body=body, signed=False, headers=dict(headers)))
    assert (answer.status, answer.body["status"]) == (202, "accepted")


def test_hubspot_signs_the_url_with_the_escapes_it_lists_decoded(ingest: IngestEnv) -> None:
    """The query arrives escaped (%3A); HubSpot signed it decoded: the rebuilt URL is decoded the same way."""
    body = fresh_body()
    headers = provider_headers(
        "hubspot-v3", SECRETS["hubspot-v3"], body, now=time.time(), url=url_of("hubspot-v3") + "?at=09:15"
    )
    event = apigw_event(source="hubspot-v3", body=body, signed=False, headers=headers)
    event["rawQueryString"] = "at=09%3A15"
    assert ingest.invoke(event).status == 202


# --- refused ----------------------------------------------------------------------------------------


#: Ways to forge a request, each as the keywords of `delivery` for a source.
FORGERIES: dict[str, Callable[[str], dict[str, Any]]] = {
    "tampered": lambda source: {"sent_body": fresh_body()},
    "wrong-secret": lambda source: {"secret": "someone-elses-secret"},
    "signed-for-another-source": lambda source: {"secret": eu_secret(source), "signed_for": eu(source)},
}


@pytest.mark.parametrize("source", PRESETS)
@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_forged_request_is_refused_and_the_log_names_the_check(ingest: IngestEnv, source: str, forgery: str) -> None:
    """A changed body, another secret, or a request signed for another source: 401, the reason in the log only."""
    reason = refusal(ingest, delivery(source, **FORGERIES[forgery](source)))
    assert reason.startswith("signature_mismatch: no signature in ")


@pytest.mark.parametrize("source", TIMED)
@pytest.mark.parametrize(
    ("skew", "reason"), [(-320, "timestamp_stale"), (320, "timestamp_future")], ids=["stale", "future"]
)
def test_a_stale_or_future_timestamp_is_refused(ingest: IngestEnv, source: str, skew: int, reason: str) -> None:
    """Stripe and HubSpot sign a timestamp: beyond 300 s either way, refused; the log says how far out.

    (Stripe's timestamp is whole seconds, so a request signed 300.5 s ahead is still inside: 320 is clearly out.)
    """
    logged = refusal(ingest, delivery(source, skew_seconds=skew))
    assert re.match(rf"{reason}: timestamp 3[12]\d s .* the 300 s tolerance", logged), logged


def test_a_source_may_narrow_its_window(ingest: IngestEnv) -> None:
    """stripe-60 says "tolerance": 60: a request signed 2 minutes ago is stale there, not on plain stripe."""
    body = fresh_body()
    headers = provider_headers("stripe", SECRETS["stripe"], body, now=time.time() - 120, url="")
    assert refusal(ingest, apigw_event(source="stripe-60", body=body, signed=False, headers=headers)).startswith(
        "timestamp_stale: timestamp 12"
    )
    assert ingest.invoke(apigw_event(source="stripe", body=body, signed=False, headers=headers)).status == 202


@pytest.mark.parametrize("source", STATIC)
def test_a_static_credential_from_another_source_or_a_guess_is_refused(ingest: IngestEnv, source: str) -> None:
    """The credential is compared with each active secret of this source only."""
    assert refusal(ingest, delivery(source, secret=SECRETS[source] + "x")).startswith("credentials_mismatch: ")
    assert refusal(ingest, delivery(source, secret=eu_secret(source))).startswith("credentials_mismatch: ")


@pytest.mark.parametrize("source", STATIC)
def test_a_static_credential_does_not_protect_the_body(ingest: IngestEnv, source: str) -> None:
    """Why `mappings check` warns about these schemes: another body sent with a seen credential gets in."""
    forged = fresh_body()
    assert ingest.invoke(delivery(source, sent_body=forged)).status == 202
    assert [message["Body"] for message in ingest.queued()] == [forged.decode()]


# --- replays ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", [*PRESETS, *STATIC])
def test_a_copy_of_a_delivery_gets_the_first_answer_and_is_queued_once(ingest: IngestEnv, source: str) -> None:
    """Every scheme yields a delivery to claim: a captured copy is answered again, never handled twice.

    The presets without a timestamp (shopify, github, typeform) and the static credentials sign the same
    request the same way each time, so their copy is recognised by its signature (or its body).
    """
    event = delivery(source)
    first = ingest.invoke(event)
    copy_of_it = ingest.invoke(copy.deepcopy(event))
    assert (first.status, copy_of_it.status, copy_of_it.body) == (202, 202, first.body)
    assert len(ingest.queued()) == 1
