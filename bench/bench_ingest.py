"""Ingest figures: the handler's own cost per accepted event (verification, parsing, mapping or routing, log line).

``IngestService.accept_event`` runs on a real API Gateway request (``events/apigw/``), with the sender
secret already cached (as on every warm invocation). The queue call is replaced by a **stand-in SQS
client whose send_message only counts** (named ``..._standin_sqs`` below), so the figure is the
function's own work; the same path with the real enqueue to a moto server is measured in the same run
for comparison. Metrics are off (``metrics=None``); the per-request log line is written to /dev/null by the
functions' own logger (``bridge_logger``: Powertools with the bridge's ASCII serializer).

Each sender preset is timed the same way on a real-shaped event (``accept_event_preset_<name>_us_standin_sqs``):
its mapping preset from ``mappings/presets/`` and that preset's sample event, signed as the provider signs (with
the provider's headers: the Shopify topic and delivery id), posted to ``/events/<source>``. GitHub has no mapping
preset: crm's rules, its identity from the X-GitHub-Event and X-GitHub-Delivery headers. HubSpot's sample is a
batch that makes several requests (``forEach``), so its figure is also given per request. The presets, crm's
event and the baselines are timed in interleaved rounds (each case once per round, the best round kept), so that
a busy machine slows them alike. Beside each: ``_vs_humanos_hmac_ratio``, the preset over crm's humanos-hmac
event; ``_vs_json_loads_ratio``, the preset over ``json.loads`` of the same sample (the least any handler of
that payload pays). A provider's preset parks what its mapping refuses (``unmappable: "park"``), so ingest does
no dry run of its mapping: ``_route_share`` is the part that reads the event's type and id and picks the rule,
``_mapped_by_dispatcher_us`` what ``map_requests`` (JMESPath and body validation) costs the dispatcher, once, and
``_with_dry_run_us_standin_sqs`` the same preset set to ``"refuse"`` (mapped at ingest too).
``_log_line_share``, one accepted event's log line (``accept_event_log_line_us``);
``_envelope_share`` (sources that keep headers), putting the body and the kept headers into the queue envelope
(the body as it came: version 2 no longer escapes it into a string). All measured in the same run.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from moto.server import ThreadedMotoServer

from bench.timing import best_per_call
from humanos_bridge.core.http_request import InboundRequest, parse_json
from humanos_bridge.core.queue_messages import wrap_event
from humanos_bridge.core.sender_auth import HumanosHmacVerifier, StandardWebhooksVerifier
from humanos_bridge.ingest.sender_secrets import SenderSecrets
from humanos_bridge.ingest.service import IngestService, kept_headers
from humanos_bridge.logs import bridge_logger
from humanos_bridge.mapping import parse_mapping
from humanos_bridge_local.senders import signed_headers

ROOT = Path(__file__).resolve().parent.parent
CRM_SECRET = "crm-sender-secret-example"
SHOP_SECRET = "whsec_ZXhhbXBsZS1zaG9wLXdlYmhvb2stc2lnbmluZy1rZXk="
PRESET_SAMPLES = ROOT / "events" / "business" / "presets"
#: sender preset -> (its mapping preset in mappings/presets/, the sample event, the headers its provider adds).
PRESET_CASES: dict[str, tuple[str | None, Path, dict[str, str]]] = {
    "stripe": ("stripe-checkout.json", PRESET_SAMPLES / "stripe-checkout-session-completed.json", {}),
    "shopify": (
        "shopify-orders-paid.json",
        PRESET_SAMPLES / "shopify-orders-paid.json",
        {"X-Shopify-Topic": "orders/paid", "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"},
    ),
    "github": (
        None,
        ROOT / "events" / "business" / "crm-contact-created.json",
        {"X-GitHub-Event": "contact.created", "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
    ),
    "hubspot-v3": ("hubspot-contacts.json", PRESET_SAMPLES / "hubspot-contact-batch.json", {}),
    "typeform": ("typeform-consent.json", PRESET_SAMPLES / "typeform-form-response.json", {}),
}
#: What one accepted event may cost the ingest function itself, per preset (a goal to watch, not a test).
PRESET_GOAL_US = 150


class _CountingSqs:
    """Stand-in for the SQS client: send_message only counts (the figure excludes the queue call)."""

    def __init__(self) -> None:
        self.sent = 0

    def send_message(self, **kwargs: Any) -> dict[str, str]:
        self.sent += 1
        return {"MessageId": str(self.sent)}


def _request(name: str, scheme: str) -> InboundRequest:
    event = json.loads((ROOT / "events" / "apigw" / f"{name}.json").read_text(encoding="utf-8"))
    body = event["body"].encode()
    if scheme == "humanos-hmac":
        signed = HumanosHmacVerifier([CRM_SECRET]).sign(body)
    else:
        signed = StandardWebhooksVerifier([SHOP_SECRET]).sign_headers("msg_bench", body)
    event["headers"].update({k.lower(): v for k, v in signed.items()})
    return InboundRequest.from_apigw_v2(event)


def _preset_mapping(crm: dict[str, Any], **source_keys: Any) -> dict[str, Any]:
    """One source per sender preset, named for it: its mapping preset's source, or (github) crm's rules; each with
    ``source_keys`` added (``unmappable="refuse"``: the dry run at ingest that a provider's preset goes without)."""
    sources = {}
    for scheme, (file, _, _) in PRESET_CASES.items():
        if file is None:
            sources[scheme] = {"auth": {"scheme": scheme}, "rules": crm["rules"], **source_keys}
            continue
        preset = json.loads((ROOT / "mappings" / "presets" / file).read_text(encoding="utf-8"))
        (source,) = preset["sources"].values()
        sources[scheme] = {**source, "auth": {**source["auth"], "secretKey": scheme}, **source_keys}
    return {"version": 1, "apiVersion": "2026-05-17", "sources": sources}


def _preset_request(scheme: str, auth: Any, secret: str) -> InboundRequest:
    """The preset's sample as its provider posts it to /events/<scheme>: body, provider headers and signature."""
    _, sample, provider = PRESET_CASES[scheme]
    event = json.loads((ROOT / "events" / "apigw" / "post-event-crm-humanos-hmac.json").read_text(encoding="utf-8"))
    body = sample.read_bytes()
    path = f"/events/{scheme}"
    event.update(rawPath=path, pathParameters={"source": scheme}, body=body.decode())
    event["requestContext"]["http"]["path"] = path
    url = f"https://{event['requestContext']['domainName']}{path}"  # what a URL-signing provider signs
    headers = signed_headers(auth, secret, body, url=url, headers=provider)
    kept = {k: v for k, v in event["headers"].items() if k not in ("x-signature", "x-timestamp", "content-length")}
    event["headers"] = {**kept, **{k.lower(): v for k, v in headers.items()}, "content-length": str(len(body))}
    return InboundRequest.from_apigw_v2(event)


def _interleaved_best(cases: dict[str, Callable[[], Any]], calls: int, rounds: int = 7) -> dict[str, float]:
    """Seconds per call of each case: every case runs ``calls`` times once per round, the best round kept."""
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(rounds):
        for key, func in cases.items():
            best[key] = min(best[key], best_per_call(func, calls, rounds=1))
    return best


def _presets(
    secretsmanager: Any,
    queue_url: str,
    dlq_url: str,
    logger: Logger,
    crm: dict[str, Any],
    baseline: Callable[[], Any],
) -> dict[str, Any]:
    """``accept_event`` per sender preset, on its sample: the function's own cost per accepted event."""
    mapping = parse_mapping(_preset_mapping(crm), file="presets (bench)")
    secret = {scheme: [f"bench-{scheme}-secret"] for scheme in PRESET_CASES}
    arn = secretsmanager.create_secret(Name="preset-senders", SecretString=json.dumps(secret))["ARN"]
    secrets = SenderSecrets(arn, ttl_seconds=3600, boto3_client=secretsmanager)
    service = IngestService(
        mapping,
        _CountingSqs(),
        queue_url=queue_url,
        dead_letter_queue_url=dlq_url,
        sender_secrets=secrets,
        logger=logger,
    )
    refusing = parse_mapping(_preset_mapping(crm, unmappable="refuse"), file="presets, refusing (bench)")
    dry_run = IngestService(refusing, _CountingSqs(), queue_url=queue_url, sender_secrets=secrets, logger=logger)
    cases: dict[str, Callable[[], Any]] = {"humanos_hmac": baseline}
    requests: dict[str, int] = {}
    for scheme in PRESET_CASES:
        auth = mapping.source(scheme).auth
        request = _preset_request(scheme, auth, secret[scheme][0])
        # Fails here, not inside the timing, if the preset, its sample or its signature disagree.
        reply = service.accept_event(scheme, request)
        assert (reply.status, reply.body["status"]) == (202, "accepted"), (scheme, reply)
        assert dry_run.accept_event(scheme, request).status == 202, scheme
        event, headers = parse_json(request.body), kept_headers(mapping.source(scheme), request)
        requests[scheme] = len(mapping.map_requests(scheme, event, headers))
        cases[scheme] = functools.partial(service.accept_event, scheme, request)
        cases[f"{scheme} with dry run"] = functools.partial(dry_run.accept_event, scheme, request)
        cases[f"{scheme} json.loads"] = functools.partial(json.loads, request.body)
        cases[f"{scheme} map_requests"] = functools.partial(mapping.map_requests, scheme, event, headers)
        cases[f"{scheme} route"] = functools.partial(mapping.route, scheme, event, headers)
        if mapping.source(scheme).headers:  # the queue message is the envelope around the body
            cases[f"{scheme} envelope"] = functools.partial(wrap_event, request.body, headers)
    # One accepted event's log line, as _report writes it (Powertools' Logger, bridge_logger's serializer).
    fields = {"route": "events", "outcome": "accepted", "source": "stripe", "eventType": "checkout.session.completed"}
    fields |= {"eventId": "evt_1NG8Du2eZvKYlo2CUI79vXWy", "latencyMs": 0.16}
    cases["log line"] = functools.partial(logger.info, "event %s", "accepted", extra=fields)
    best = _interleaved_best(cases, 300)
    figures: dict[str, Any] = {}
    for scheme in PRESET_CASES:
        seconds = best[scheme]
        name = f"accept_event_preset_{scheme.replace('-', '_')}"
        figures[f"{name}_us_standin_sqs"] = round(seconds * 1e6, 1)
        figures[f"{name}_vs_humanos_hmac_ratio"] = round(seconds / best["humanos_hmac"], 2)
        figures[f"{name}_vs_json_loads_ratio"] = round(seconds / best[f"{scheme} json.loads"], 1)
        # A provider's source parks what its mapping refuses, so ingest only routes the event (route_share) and
        # the dispatcher maps it, once (mapped_by_dispatcher_us); with_dry_run: the same source set to "refuse".
        figures[f"{name}_route_share"] = round(best[f"{scheme} route"] / seconds, 2)
        figures[f"{name}_mapped_by_dispatcher_us"] = round(best[f"{scheme} map_requests"] * 1e6, 1)
        figures[f"{name}_with_dry_run_us_standin_sqs"] = round(best[f"{scheme} with dry run"] * 1e6, 1)
        figures[f"{name}_log_line_share"] = round(best["log line"] / seconds, 2)
        if f"{scheme} envelope" in best:
            figures[f"{name}_envelope_share"] = round(best[f"{scheme} envelope"] / seconds, 2)
        if requests[scheme] > 1:  # forEach: the whole event makes several requests, each sent by the dispatcher
            figures[f"{name}_requests_per_event"] = requests[scheme]
            figures[f"{name}_us_per_request_standin_sqs"] = round(seconds * 1e6 / requests[scheme], 1)
    figures["accept_event_preset_humanos_hmac_us_same_rounds"] = round(best["humanos_hmac"] * 1e6, 1)
    figures["accept_event_log_line_us"] = round(best["log line"] * 1e6, 1)
    figures["accept_event_preset_goal_us_at_most"] = PRESET_GOAL_US
    return figures


def run() -> dict[str, Any]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        os.environ.setdefault(key, value)
    document = json.loads((ROOT / "mappings" / "bridge.json").read_text(encoding="utf-8"))
    document["sources"]["hr"]["auth"] = {"scheme": "humanos-hmac"}
    mapping = parse_mapping(document, file="bridge.json (hr signed)")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed in finally
    try:
        host, port = server.get_host_and_port()
        session = boto3.session.Session(region_name="eu-west-1")
        secretsmanager = session.client("secretsmanager", endpoint_url=f"http://{host}:{port}")
        sqs = session.client("sqs", endpoint_url=f"http://{host}:{port}")
        secret = {"crm": [CRM_SECRET], "shop-webhooks": [SHOP_SECRET]}
        arn = secretsmanager.create_secret(Name="senders", SecretString=json.dumps(secret))["ARN"]
        queue_url = sqs.create_queue(QueueName="requests")["QueueUrl"]
        dlq_url = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]  # the provider sources park there
        secrets = SenderSecrets(arn, ttl_seconds=3600, boto3_client=secretsmanager)
        logger = bridge_logger(service="bench-ingest", stream=devnull)
        standin = _CountingSqs()

        def service(client: Any) -> IngestService:
            return IngestService(
                mapping,
                client,
                queue_url=queue_url,
                dead_letter_queue_url=dlq_url,
                sender_secrets=secrets,
                logger=logger,
            )

        fast, real = service(standin), service(sqs)
        crm = _request("post-event-crm-humanos-hmac", "humanos-hmac")
        shop = _request("post-event-shop-standard-webhooks", "standard-webhooks")
        for svc in (fast, real):  # warm: secret fetched and cached, verifiers built
            assert svc.accept_event("crm", crm).status == 202
            assert svc.accept_event("shop", shop).status == 202
        hmac_s = best_per_call(lambda: fast.accept_event("crm", crm), 2000)
        webhooks_s = best_per_call(lambda: fast.accept_event("shop", shop), 2000)
        moto_s = best_per_call(lambda: real.accept_event("crm", crm), 100, rounds=3)
        fetches = secrets.fetch_count
        presets = _presets(
            secretsmanager,
            queue_url,
            dlq_url,
            logger,
            document["sources"]["crm"],
            lambda: fast.accept_event("crm", crm),
        )
    finally:
        devnull.close()
        server.stop()
    return {
        "accept_event_humanos_hmac_us_standin_sqs": round(hmac_s * 1e6, 1),
        "accept_event_standard_webhooks_us_standin_sqs": round(webhooks_s * 1e6, 1),
        "accept_event_humanos_hmac_us_with_moto_enqueue": round(moto_s * 1e6, 1),
        "own_cost_share_of_moto_enqueue_path": round(hmac_s / moto_s, 3),
        "sender_secret_fetches": fetches,
        **presets,
    }
