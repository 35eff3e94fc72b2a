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

from humanos_bridge.core.masking import safe_id
from humanos_bridge.mapping import load_mapping
from humanos_bridge_local.cli import main
from humanos_bridge_local.http_gateway import HttpGateway, Route
from humanos_bridge_local.lambda_runtime import LocalContext
from humanos_bridge_local.senders import sender_auth, signed_headers
from tests.support.apigw import CRM_SECRET, HR_SECRET, SHOP_SECRET, apigw_event
from tests.support.bridge import ROOT, business_event
from tests.support.ingest_env import IngestEnv, app, create_ingest, dispatching, ingest_mapping
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
#: Presets whose event carries one id per delivery: in the body (stripe, typeform) or in a header.
BY_PROVIDER_ID = ("stripe", "shopify", "github", "typeform")
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
    # Sources that say nothing of eventType and eventId: their provider preset's identity applies.
    for scheme in BY_PROVIDER_ID:
        mapping["sources"][f"{scheme}-ids"] = {"auth": {"scheme": scheme, "secretKey": scheme}, "rules": crm["rules"]}
    preset = json.loads((ROOT / "mappings" / "presets" / "shopify-orders-paid.json").read_text(encoding="utf-8"))
    mapping["sources"]["shopify-orders"] = {**preset["sources"]["shopify"], "auth": {"scheme": "shopify"}}
    env.bridge.with_mapping(monkeypatch, mapping, tmp_path)
    secrets = {"crm": [CRM_SECRET], "shop-webhooks": [SHOP_SECRET], "hr": [HR_SECRET], "stripe-60": [SECRETS["stripe"]]}
    secrets |= {name: [secret] for name, secret in SECRETS.items()}
    secrets |= {eu(name): [eu_secret(name)] for name in SECRETS}
    secrets["shopify-orders"] = [SECRETS["shopify"]]
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


# --- event identity ---------------------------------------------------------------------------------


def provider_event(scheme: str, delivery_id: str, *, indent: int | None = None) -> tuple[bytes, dict[str, str]]:
    """A crm contact.created event as ``scheme``'s provider sends it: its body, and the identity headers.

    The delivery id goes where the provider puts it: the body's ``id`` (Stripe) or ``event_id`` (Typeform), or a
    header (Shopify, GitHub). ``indent`` re-serialises the body, as a provider's retry may: other bytes, so another
    signature, and so not a copy the replay guard answers: only the delivery id can tell it is the same event.
    """
    event = business_event("crm-contact-created", id="evt_crm_body_id")
    headers: dict[str, str] = {}
    if scheme == "stripe":
        event["id"] = delivery_id
    elif scheme == "typeform":
        event.update(event_id=delivery_id, event_type=event["type"])
    elif scheme == "shopify":
        headers = {"x-shopify-topic": event["type"], "x-shopify-webhook-id": delivery_id}
    else:
        assert scheme == "github"
        headers = {"x-github-event": event["type"], "x-github-delivery": delivery_id}
    return json.dumps(event, indent=indent).encode(), headers


def sync_delivery(source: str, scheme: str, body: bytes, identity: dict[str, str]) -> dict[str, Any]:
    """``POST /requests/<source>`` of ``body``, signed as ``scheme``'s provider signs it, with its identity headers."""
    headers = provider_headers(scheme, SECRETS[scheme], body, now=time.time(), url=url_of(source))
    return apigw_event(source=source, route="requests", body=body, signed=False, headers={**headers, **identity})


@pytest.mark.parametrize("scheme", BY_PROVIDER_ID)
def test_two_deliveries_with_the_providers_delivery_id_make_one_request(ingest: IngestEnv, scheme: str) -> None:
    """The source leaves eventType and eventId to its preset: the provider's delivery id is the event id.

    Given a delivery, its retry (the same delivery id, the body re-serialised, signed afresh) and another delivery
    of the same content; when each is sent to the synchronous route; then the first two are one Humanos request,
    the third is another, and the sandbox stored exactly two.
    """
    source, delivery_id = f"{scheme}-ids", f"dlv-{uuid.uuid4().hex[:12]}"
    first = ingest.invoke(sync_delivery(source, scheme, *provider_event(scheme, delivery_id)))
    retry = ingest.invoke(sync_delivery(source, scheme, *provider_event(scheme, delivery_id, indent=2)))
    other = ingest.invoke(sync_delivery(source, scheme, *provider_event(scheme, delivery_id + "-2", indent=4)))

    assert (first.status, retry.status, other.status) == (201, 200, 201)
    assert first.body["eventId"] == retry.body["eventId"] == safe_id(delivery_id)  # as answers show ids
    assert retry.body["requestId"] == first.body["requestId"] != other.body["requestId"]
    keys = [call.headers["idempotency-key"] for call in ingest.bridge.creations()]
    assert keys == [f"{source}:{delivery_id}:marketing-consent-sms", f"{source}:{delivery_id}-2:marketing-consent-sms"]
    assert len(ingest.bridge.sandbox.created) == 2


def shopify_order(topic: str, webhook_id: str, **changes: Any) -> dict[str, Any]:
    """The preset's sample order, signed as Shopify signs it, POSTed to /events/shopify-orders with its headers."""
    order = json.loads((ROOT / "events" / "business" / "presets" / "shopify-orders-paid.json").read_text("utf-8"))
    body = json.dumps({**order, **changes}).encode()
    headers = provider_headers("shopify", SECRETS["shopify"], body, now=time.time(), url=url_of("shopify-orders"))
    identity = {"x-shopify-topic": topic, "x-shopify-webhook-id": webhook_id, "x-shopify-shop-domain": "a.example"}
    return apigw_event(source="shopify-orders", body=body, signed=False, headers={**headers, **identity})


def test_a_shopify_order_is_matched_on_its_topic_header_and_made_once(ingest: IngestEnv) -> None:
    """The shopify preset mapping, as shipped: the rule is chosen by X-Shopify-Topic, other topics are ignored.

    Given orders/create (the order not paid yet) and orders/paid, each signed by Shopify's recipe; when both are
    POSTed and the queue is dispatched; then only orders/paid is queued, and the sandbox stored its agreement once.
    """
    created = ingest.invoke(shopify_order("orders/create", "wh-create-1", financial_status="pending"))
    assert (created.status, created.body) == (202, {"eventId": "wh-create-1", "status": "ignored"})
    assert ingest.queued() == []

    paid = ingest.invoke(shopify_order("orders/paid", "wh-paid-1"))
    assert (paid.status, paid.body) == (202, {"eventId": "wh-paid-1", "status": "accepted"})
    with dispatching(ingest) as dispatcher:
        assert ingest.bridge.deliver(dispatcher.lambda_handler).failed_ids == []
    [stored] = ingest.bridge.sandbox.created
    assert stored["name"] == "Purchase agreement for order #1042"
    [call] = ingest.bridge.creations()
    assert call.headers["idempotency-key"] == "shopify:order:5871203254375:purchase-agreement"


# --- `humanos-bridge send`, the command itself, over HTTP ------------------------------------------------


@pytest.fixture
def gateway(ingest: IngestEnv) -> Iterator[HttpGateway]:
    """The ingest function behind a local HTTP API (as `humanos-bridge local` serves it), on a free port."""
    routes = [Route("POST", "/events/{source}"), Route("POST", "/requests/{source}")]
    server = HttpGateway(routes, lambda event: app.lambda_handler(event, LocalContext(20, "ingest"))).start()
    try:
        yield server
    finally:
        server.stop()


def send(
    gateway: HttpGateway, capsys: pytest.CaptureFixture[str], source: str, event: Path, secret: str, *headers: str
) -> tuple[str, dict[str, Any]]:
    """``humanos-bridge send SOURCE EVENT --url --secret --mapping [--header ...]``, which must exit 0: the line it
    prints and the answer. (The ingest function runs in this process: its log and metric lines, one JSON object
    each, are left out.)"""
    given = [part for header in headers for part in ("--header", header)]
    mapping = os.environ["MAPPING_FILE"]
    command = ["send", source, str(event), "--url", gateway.base_url, "--secret", secret, "--mapping", mapping]
    assert main([*command, *given]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if not line.startswith('{"')]
    return printed[0], json.loads("\n".join(printed[1:]))


@pytest.mark.parametrize("source", list(AUTH))
def test_the_send_command_posts_each_scheme_signed_and_it_is_queued(
    ingest: IngestEnv, gateway: HttpGateway, source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """For every preset, static credential and the generic scheme: the CLI signs, posts, and the event is queued.

    hubspot-v3 and acme sign the URL: the one the command posts to, which the ingest function rebuilds.
    """
    event = tmp_path / "event.json"
    event.write_bytes(fresh_body())
    line, answer = send(gateway, capsys, source, event, SECRETS[source])
    assert line == f"POST {gateway.base_url}/events/{source} ({AUTH[source]['scheme']}) -> 202"
    assert answer["status"] == "accepted"
    [message] = ingest.queued()
    assert message["Body"] == event.read_text()


def test_the_send_command_adds_the_topic_given_and_a_fresh_delivery_id(
    ingest: IngestEnv, gateway: HttpGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A GitHub source reads its type and id from headers: --header gives the event, send makes the delivery id.

    (Two events: GitHub signs only the body, so the same file sent twice is a copy, answered by the replay guard.)
    """
    answers = []
    for name in ("first.json", "second.json"):
        event = tmp_path / name
        event.write_bytes(fresh_body())
        answers.append(
            send(gateway, capsys, "github-ids", event, SECRETS["github"], "X-GitHub-Event: contact.created")[1]
        )
    assert [answer["status"] for answer in answers] == ["accepted", "accepted"]
    sent = [json.loads(message["Body"])["headers"]["x-github-delivery"] for message in ingest.queued()]
    assert all(re.fullmatch(r"[0-9a-f-]{36}", delivery) for delivery in sent) and sent[0] != sent[1]
    assert sorted(answer["eventId"] for answer in answers) == sorted(safe_id(delivery) for delivery in sent)


def test_the_send_command_refuses_to_guess_a_topic(
    ingest: IngestEnv, gateway: HttpGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without X-Shopify-Topic the event could only be refused: the command says which header to give, posts nothing."""
    event = tmp_path / "event.json"
    event.write_bytes(fresh_body())
    command = ["send", "shopify-ids", str(event), "--url", gateway.base_url, "--secret", SECRETS["shopify"]]
    assert main([*command, "--mapping", os.environ["MAPPING_FILE"]]) == 2
    assert capsys.readouterr().err == (
        "humanos-bridge: error: source 'shopify-ids' reads its event type from the X-Shopify-Topic header; send it "
        "with --header 'X-Shopify-Topic: <type>' (e.g. 'X-Shopify-Topic: contact.created')\n"
    )
    assert ingest.queued() == []
