"""Request headers in mappings: a source lists the headers it keeps, expressions read them with header()."""

from __future__ import annotations

from typing import Any

import pytest

from humanos_bridge.core.errors import ConfigError
from humanos_bridge.core.queue_messages import MalformedEnvelope, unwrap_event, wrap_event
from humanos_bridge.core.wire import loads
from humanos_bridge.mapping import MappingConfig, parse_mapping


def shopify(**source: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "headers": ["X-Shopify-Topic", "X-Shopify-Webhook-Id"],
        "eventType": "header('X-Shopify-Topic')",
        "eventId": "id",
        "unmatched": "ignore",
        "rules": {
            "orders/paid": [
                {
                    "name": "agreement",
                    "request": {
                        "contacts": "=as_list(email)",
                        "groupIds": ["g"],
                        "name": "=concat('Delivery ', header('x-shopify-webhook-id'))",
                    },
                }
            ]
        },
    }
    spec.update(source)
    return {"version": 1, "apiVersion": "2026-05-17", "sources": {"shopify": spec}}


def load(document: dict[str, Any]) -> MappingConfig:
    return parse_mapping(document, file="m.json")


def problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load(document)
    return list(raised.value.details["errors"])


ORDER = {"id": 5871203254375, "email": "ana@example.com"}


def test_the_topic_and_the_delivery_id_come_from_headers_whatever_their_case() -> None:
    headers = {"x-shopify-topic": "orders/paid", "x-shopify-webhook-id": "b545"}
    request = load(shopify()).map_event("shopify", ORDER, headers)
    assert (request.event_type, request.event_id, request.body["name"]) == (
        "orders/paid",
        "5871203254375",
        "Delivery b545",
    )
    assert load(shopify()).event_identity("shopify", ORDER, headers) == ("orders/paid", "5871203254375")


def test_without_its_headers_the_event_has_no_type_and_says_where_it_looked() -> None:
    with pytest.raises(Exception, match=r"event type: `header\('X-Shopify-Topic'\)` found nothing"):
        load(shopify()).map_event("shopify", ORDER)


def test_a_header_the_source_does_not_keep_is_a_load_error_naming_the_fix() -> None:
    document = shopify(eventId="header('X-Shopify-Event-Id')")
    assert problems(document) == [
        "m.json: sources.shopify.eventId: header('X-Shopify-Event-Id') reads a header the source does not keep; "
        'add "X-Shopify-Event-Id" to sources.shopify.headers'
    ]


@pytest.mark.parametrize(
    "name", ["Authorization", "Cookie", "X-Shopify-Hmac-Sha256", "Stripe-Signature", "X-Api-Key", "X-Auth-Token"]
)
def test_headers_that_carry_credentials_are_never_kept(name: str) -> None:
    (problem,) = problems(shopify(headers=["X-Shopify-Topic", "X-Shopify-Webhook-Id", name]))
    assert problem.startswith(f"m.json: sources.shopify.headers[2]: {name} looks like a credential")


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ("X-Shopify-Topic", "must be a list of header names"),
        (["X-Shopify-Topic", "x-shopify-topic"], "is listed twice"),
        (["X-Shopify-Topic", "bad name"], "not an HTTP header name"),
        ([f"X-H{i}" for i in range(11)], "at most 10 headers"),
    ],
)
def test_the_header_list_is_checked(headers: Any, says: str) -> None:
    assert any(says in problem for problem in problems(shopify(headers=headers)))


def test_header_takes_a_literal_name() -> None:
    document = shopify(eventId="header(id)")
    assert any("header() takes the header's name as a literal string" in p for p in problems(document))


def test_the_envelope_keeps_the_exact_body_and_the_headers() -> None:
    body = b'{"id": 1,   "email": "ana@example.com", "note": "caf\xc3\xa9"}'
    text = wrap_event(body, {"x-shopify-topic": "orders/paid"})
    unwrapped = unwrap_event(loads(text))
    assert unwrapped == (body.decode(), {"x-shopify-topic": "orders/paid"})
    assert unwrap_event(loads(body)) is None  # a plain event


@pytest.mark.parametrize(
    "envelope",
    [
        {"humanosBridgeEnvelope": 2, "headers": {}, "body": "{}"},
        {"humanosBridgeEnvelope": 1, "headers": [], "body": "{}"},
        {"humanosBridgeEnvelope": 1, "headers": {}, "body": {}},
        {"humanosBridgeEnvelope": 1, "headers": {"a": 1}, "body": "{}"},
    ],
)
def test_a_broken_envelope_is_a_precise_error(envelope: dict[str, Any]) -> None:
    with pytest.raises(MalformedEnvelope, match="humanosBridgeEnvelope"):
        unwrap_event(envelope)
