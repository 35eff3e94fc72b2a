"""The ingest route's per-request log line and queue message, field by field, as the function writes them.

The line goes through the functions' own Logger (``bridge_logger``); these tests pin what it holds (the
fields, the message, the masking) and the exact bytes queued, so that making the route cheaper cannot change
either.
"""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import Any

import pytest

from humanos_bridge.core.http_request import InboundRequest
from humanos_bridge.ingest.sender_secrets import SenderSecrets
from humanos_bridge.ingest.service import IngestService
from humanos_bridge.logs import bridge_logger
from humanos_bridge.mapping import MappingConfig, parse_mapping
from humanos_bridge_local.senders import signed_headers
from tests.support.logs import check_lines

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ROOT / "mappings" / "presets"
SAMPLES = ROOT / "events" / "business" / "presets"
QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/requests"
SECRETS = {"stripe": ["unit-stripe-secret"], "shopify": ["unit-shopify-secret"]}
NOW = 1_780_000_000.0  # the clock the service and the signatures share
SHOPIFY_HEADERS = {"X-Shopify-Topic": "orders/paid", "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"}


class _SecretsManager:
    """What SenderSecrets reads: one secret, as Secrets Manager returns it."""

    def get_secret_value(self, **options: Any) -> dict[str, str]:
        return {"SecretString": json.dumps(SECRETS)}


class _RecordingSqs:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send_message(self, **message: Any) -> dict[str, str]:
        self.sent.append(message)
        return {"MessageId": str(len(self.sent))}


def _mapping() -> MappingConfig:
    sources = {}
    for name, file in (("stripe", "stripe-checkout.json"), ("shopify", "shopify-orders-paid.json")):
        (source,) = json.loads((PRESETS / file).read_text(encoding="utf-8"))["sources"].values()
        sources[name] = {**source, "auth": {**source["auth"], "secretKey": name}}
    return parse_mapping({"version": 1, "apiVersion": "2026-05-17", "sources": sources}, file="presets (unit)")


def _request(
    mapping: MappingConfig, source: str, body: bytes, provider: dict[str, str] | None = None
) -> InboundRequest:
    """``body`` as its provider posts it to /events/<source>, signed with the source's secret at NOW."""
    event = json.loads((ROOT / "events" / "apigw" / "post-event-crm-humanos-hmac.json").read_text(encoding="utf-8"))
    path = f"/events/{source}"
    event.update(rawPath=path, pathParameters={"source": source}, body=body.decode())
    event["requestContext"]["http"]["path"] = path
    url = f"https://{event['requestContext']['domainName']}{path}"
    auth = mapping.source(source).auth
    assert auth is not None
    headers = signed_headers(auth, SECRETS[source][0], body, now=NOW, url=url, headers=provider)
    kept = {k: v for k, v in event["headers"].items() if k not in ("x-signature", "x-timestamp", "content-length")}
    event["headers"] = {**kept, **{k.lower(): v for k, v in headers.items()}, "content-length": str(len(body))}
    return InboundRequest.from_apigw_v2(event)


@pytest.fixture
def route() -> tuple[IngestService, _RecordingSqs, io.StringIO]:
    stream = io.StringIO()
    sqs = _RecordingSqs()
    secrets = SenderSecrets(
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:senders", boto3_client=_SecretsManager()
    )
    logger = bridge_logger(service="unit-test-ingest-log-line", stream=stream)
    logger.registered_handler.setStream(stream)  # a Logger of this service built by an earlier test keeps its handler
    service = IngestService(
        _mapping(),
        sqs,
        queue_url=QUEUE_URL,
        dead_letter_queue_url=QUEUE_URL + "-dead-letters",
        sender_secrets=secrets,
        logger=logger,
        clock=lambda: NOW,
    )
    return service, sqs, stream


def _entries(stream: io.StringIO) -> list[dict[str, Any]]:
    return check_lines(stream.getvalue().splitlines())


def test_an_accepted_event_writes_one_line_with_these_fields_and_a_masked_id(
    route: tuple[IngestService, _RecordingSqs, io.StringIO],
) -> None:
    """The sender's id holds an e-mail address: the line shows it masked, in the id and the correlation id."""
    service, sqs, stream = route
    event = json.loads((SAMPLES / "stripe-checkout-session-completed.json").read_bytes())
    event["id"] = "evt_ana.silva@example.com"
    body = json.dumps(event).encode()
    request = _request(service.mapping, "stripe", body)

    reply = service.accept_event("stripe", request)

    assert (reply.status, reply.body) == (202, {"eventId": "e***@e***.com", "status": "accepted"})
    (entry,) = _entries(stream)
    assert sorted(entry) == [
        "correlation_id",
        "eventId",
        "eventType",
        "latencyMs",
        "level",
        "location",
        "message",
        "outcome",
        "route",
        "service",
        "source",
        "timestamp",
    ]
    assert {key: entry[key] for key in ("level", "message", "route", "outcome", "source", "eventType", "eventId")} == {
        "level": "INFO",
        "message": "event accepted",
        "route": "events",
        "outcome": "accepted",
        "source": "stripe",
        "eventType": "checkout.session.completed",
        "eventId": "e***@e***.com",
    }
    assert entry["correlation_id"] == "e***@e***.com"
    assert str(entry["location"]).startswith("_report:")
    assert isinstance(entry["latencyMs"], float)
    signature = request.headers["stripe-signature"]
    for hidden in (SECRETS["stripe"][0], signature, signature.rpartition("v1=")[2], "ana.silva@example.com"):
        assert hidden not in stream.getvalue()
    assert [message["MessageBody"] for message in sqs.sent] == [body.decode()]


def test_a_refused_event_writes_a_warning_with_its_status_cause_and_reason_and_no_signature(
    route: tuple[IngestService, _RecordingSqs, io.StringIO],
) -> None:
    service, sqs, stream = route
    body = (SAMPLES / "stripe-checkout-session-completed.json").read_bytes()
    request = _request(service.mapping, "stripe", body)
    forged = body.replace(b'"paid"', b'"unpaid"')
    tampered = dataclasses.replace(request, body=forged)  # signed for the original body

    reply = service.accept_event("stripe", tampered)

    assert reply.status == 401
    (entry,) = _entries(stream)
    assert {key: entry[key] for key in ("level", "message", "route", "outcome", "source", "status", "cause")} == {
        "level": "WARNING",
        "message": "event rejected",
        "route": "events",
        "outcome": "rejected",
        "source": "stripe",
        "status": 401,
        "cause": "unauthorized",
    }
    assert entry["reason"].startswith("signature_mismatch")
    assert "eventId" not in entry and "eventType" not in entry  # not read: the body was never trusted
    signature = request.headers["stripe-signature"]
    assert signature.rpartition("v1=")[2] not in stream.getvalue()
    assert sqs.sent == []


def test_a_header_keeping_source_queues_the_exact_body_inside_its_envelope(
    route: tuple[IngestService, _RecordingSqs, io.StringIO],
) -> None:
    """Shopify's topic and delivery id travel with its body, which is queued byte for byte inside the envelope."""
    service, sqs, _ = route
    body = (SAMPLES / "shopify-orders-paid.json").read_bytes()

    reply = service.accept_event("shopify", _request(service.mapping, "shopify", body, SHOPIFY_HEADERS))

    assert reply.status == 202
    (message,) = sqs.sent
    assert message["MessageBody"] == (
        '{"humanosBridgeEnvelope":2,"headers":{"x-shopify-topic":"orders/paid",'
        '"x-shopify-webhook-id":"b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"},"event":' + body.decode() + "}"
    )
    assert json.loads(message["MessageBody"])["event"] == json.loads(body)
    assert message["MessageAttributes"]["source"] == {"DataType": "String", "StringValue": "shopify"}
    assert message["MessageAttributes"]["receivedAt"] == {
        "DataType": "String",
        "StringValue": "2026-05-28T20:26:40.000Z",
    }
