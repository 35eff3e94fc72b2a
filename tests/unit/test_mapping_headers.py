"""Request headers in mappings: a source lists the headers it keeps, expressions read them with header()."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from humanos_bridge.core.errors import ConfigError
from humanos_bridge.core.http_request import InvalidJsonError, parse_json
from humanos_bridge.core.queue_messages import MalformedEnvelope, unwrap_event, wrap_event
from humanos_bridge.core.wire import dumps, loads
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


def test_the_envelope_carries_the_exact_body_and_the_headers() -> None:
    body = b'{"id": 1,   "email": "ana@example.com", "note": "caf\xc3\xa9"}\n'
    text = wrap_event(body, {"x-shopify-topic": "orders/paid"})
    assert body.decode() in text  # as it came, not escaped into a string
    assert unwrap_event(loads(text)) == (loads(body), {"x-shopify-topic": "orders/paid"})
    assert unwrap_event(loads(body)) is None  # a plain event


def test_a_version_1_envelope_queued_before_an_upgrade_is_still_read() -> None:
    body = '{"id": 1, "note": "caf\u00e9"}'
    message = {"humanosBridgeEnvelope": 1, "headers": {"X-Shopify-Topic": "orders/paid"}, "body": body}
    assert unwrap_event(loads(dumps(message))) == ({"id": 1, "note": "café"}, {"x-shopify-topic": "orders/paid"})


@pytest.mark.parametrize("event", [{}, [], "text", 0, None, {"humanosBridgeEnvelope": 2, "headers": {}, "event": 1}])
def test_any_json_event_comes_out_of_the_envelope_as_it_went_in(event: Any) -> None:
    """A body shaped like an envelope is the sender's event: only the outer envelope is opened."""
    assert unwrap_event(loads(wrap_event(dumps(event).encode(), {}))) == (event, {})


@pytest.mark.parametrize(
    "envelope",
    [
        {"humanosBridgeEnvelope": 2, "headers": {}, "body": "{}"},
        {"humanosBridgeEnvelope": 2, "event": {}},
        {"humanosBridgeEnvelope": 2, "headers": {"a": 1}, "event": {}},
        {"humanosBridgeEnvelope": 3, "headers": {}, "event": {}},
        {"humanosBridgeEnvelope": 1, "headers": [], "body": "{}"},
        {"humanosBridgeEnvelope": 1, "headers": {}, "body": {}},
        {"humanosBridgeEnvelope": 1, "headers": {"a": 1}, "body": "{}"},
    ],
)
def test_a_broken_envelope_is_a_precise_error(envelope: dict[str, Any]) -> None:
    with pytest.raises(MalformedEnvelope, match="humanosBridgeEnvelope"):
        unwrap_event(envelope)


# Text that could break an envelope built by concatenation: quotes, braces, escapes, separators, non-ASCII.
_tricky = st.text(alphabet=st.sampled_from('{}[]",:\\ \n\t\u00e9\u2028\U0001f600'), max_size=10) | st.text(max_size=10)
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _tricky,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_tricky, children, max_size=4),
    max_leaves=30,
)


@given(
    event=_json_values,
    options=st.sampled_from([{}, {"ensure_ascii": False}, {"separators": (",", ":")}, {"indent": 2}]),
    padding=st.tuples(st.sampled_from(["", " ", "\n", "\r\n\t"]), st.sampled_from(["", " ", "\n"])),
    headers=st.dictionaries(st.text(min_size=1, max_size=8), _tricky, max_size=3),
)
def test_every_body_ingest_accepts_comes_out_of_its_envelope_equal(
    event: Any, options: dict[str, Any], padding: tuple[str, str], headers: dict[str, str]
) -> None:
    """Whatever JSON a sender posts, however it is spaced, the dispatcher reads the event ingest parsed."""
    body = (padding[0] + json.dumps(event, **options) + padding[1]).encode()
    try:
        accepted = parse_json(body)
    except InvalidJsonError:  # refused at the door (lone surrogates, U+FFFE): never queued
        return
    message = loads(wrap_event(body, headers))
    assert unwrap_event(message) == (accepted, {name.lower(): value for name, value in headers.items()})
