"""A provider preset says where its events keep their type and id; a source may leave both out, or override them.

No sockets: mapping files parsed in memory, events mapped with the headers the ingest route would keep.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from humanos_bridge.core.errors import ConfigError, MappingError
from humanos_bridge.core.sender_auth import PRESETS
from humanos_bridge.mapping import MappingConfig, content_hash, parse_mapping
from humanos_bridge.mapping.providers import IDENTITIES, with_provider_identity

REQUEST = {"contacts": "=as_list(pusher.email)", "groupIds": ["grp_release"], "name": "Release sign-off"}
RULES = {"push": [{"name": "notify", "request": REQUEST}]}
PUSH = {"ref": "refs/heads/main", "pusher": {"name": "ana", "email": "ana.silva@example.com"}}


def mapping(**source: Any) -> MappingConfig:
    """A one-source mapping file ("app") with ``source``'s keys; by default a GitHub source with only auth and rules."""
    spec = {"auth": {"scheme": "github"}, "rules": copy.deepcopy(RULES), **source}
    return parse_mapping({"version": 1, "apiVersion": "2026-05-17", "sources": {"app": spec}}, file="test.json")


def test_every_provider_preset_says_where_its_event_type_and_id_are() -> None:
    """A new preset needs its identity here too (its provider's documentation says where they are)."""
    assert sorted(IDENTITIES) == sorted(PRESETS)


def test_a_github_source_reads_the_event_and_delivery_headers_it_keeps() -> None:
    """Given only auth and rules; the type is X-GitHub-Event, the id X-GitHub-Delivery, and both headers are kept."""
    config = mapping()
    source = config.source("app")
    assert (source.event_type.text, source.event_id.text if source.event_id else None) == (
        "header('X-GitHub-Event')",
        "header('X-GitHub-Delivery')",
    )
    assert source.headers == ("x-github-event", "x-github-delivery")
    request = config.map_event("app", PUSH, {"x-github-event": "push", "x-github-delivery": "72d3162e-cc78"})
    assert (request.event_type, request.event_id, request.idempotency_key) == (
        "push",
        "72d3162e-cc78",
        "app:72d3162e-cc78:notify",
    )


def test_without_the_delivery_header_the_event_has_no_id() -> None:
    """An event put on the queue directly carries no headers: refused, naming where the id was looked for."""
    with pytest.raises(MappingError, match=r"event id: `header\('X-GitHub-Delivery'\)` found nothing"):
        mapping().map_event("app", PUSH, {"x-github-event": "push"})


def test_a_source_that_sets_its_own_id_keeps_it_and_keeps_only_the_headers_the_defaults_read() -> None:
    """eventId "after" overrides the preset's; the event type still comes from the preset's header."""
    config = mapping(eventId="after")
    source = config.source("app")
    assert (source.event_type.text, source.event_id.text if source.event_id else None) == (
        "header('X-GitHub-Event')",
        "after",
    )
    assert source.headers == ("x-github-event",)
    event = {**PUSH, "after": "c0ffee"}
    assert config.map_event("app", event, {"x-github-event": "push"}).event_id == "c0ffee"


def test_headers_the_source_lists_stay_first_and_are_not_listed_twice() -> None:
    config = mapping(headers=["X-GitHub-Hook-ID", "x-github-delivery"])
    assert config.source("app").headers == ("x-github-hook-id", "x-github-delivery", "x-github-event")


def test_a_shopify_source_is_matched_on_its_topic_header() -> None:
    """Rules are chosen by X-Shopify-Topic; the id is X-Shopify-Webhook-Id (Shopify's per-delivery id)."""
    rules = {"orders/paid": RULES["push"]}
    config = mapping(auth={"scheme": "shopify"}, rules=rules, unmatched="ignore")
    event = {"pusher": {"email": "ana.silva@example.com"}}
    paid = config.map_event("app", event, {"x-shopify-topic": "orders/paid", "x-shopify-webhook-id": "wh-1"})
    assert (paid.event_type, paid.event_id) == ("orders/paid", "wh-1")
    created = {"x-shopify-topic": "orders/create", "x-shopify-webhook-id": "wh-2"}
    assert config.event_identity("app", event, created) == ("orders/create", "wh-2")


@pytest.mark.parametrize(
    ("scheme", "event", "identity"),
    [
        ("stripe", {"id": "evt_1", "type": "push", "pusher": {"email": "a@example.com"}}, ("push", "evt_1")),
        (
            "typeform",
            {"event_id": "01JNB3Q8", "event_type": "push", "pusher": {"email": "a@example.com"}},
            ("push", "01JNB3Q8"),
        ),
    ],
)
def test_stripe_and_typeform_keep_their_identity_in_the_body(
    scheme: str, event: dict[str, Any], identity: tuple[str, str]
) -> None:
    config = mapping(auth={"scheme": scheme})
    assert config.source("app").headers == ()
    assert config.event_identity("app", event) == identity


def test_a_hubspot_batch_is_one_event_and_each_item_is_keyed_by_its_own_ids() -> None:
    """The array has no type or id of its own: 'batch' and its content hash; each item's key is its ids'."""
    rule = {**RULES["push"][0], "forEach": "@", "request": {**REQUEST, "contacts": "=as_list(propertyValue)"}}
    rules = {"batch": [rule]}
    config = mapping(auth={"scheme": "hubspot-v3"}, rules=rules)
    item = {"eventId": 7, "portalId": 62515, "subscriptionId": 2407, "attemptNumber": 0, "propertyValue": "+3519120001"}
    batch = [item, {**item, "eventId": 8, "propertyValue": "+3519120002"}]
    requests = config.map_requests("app", batch)
    assert {(r.event_type, r.event_id) for r in requests} == {("batch", content_hash(batch))}
    assert [r.idempotency_key for r in requests] == ["app:62515:2407:7:notify", "app:62515:2407:8:notify"]
    # HubSpot's retry of the first event, alone and with its attempt counted: the same key.
    [retried] = config.map_requests("app", [{**item, "attemptNumber": 1}])
    assert retried.idempotency_key == "app:62515:2407:7:notify"


def test_a_hubspot_source_may_set_its_own_item_key() -> None:
    rules = {"batch": [{**RULES["push"][0], "forEach": "@", "idempotencyKey": "=concat('hs:', objectId)"}]}
    config = mapping(auth={"scheme": "hubspot-v3"}, rules=rules)
    item = {"eventId": 7, "portalId": 1, "subscriptionId": 2, "objectId": 5101, "pusher": {"email": "a@example.com"}}
    assert [r.idempotency_key for r in config.map_requests("app", [item])] == ["hs:5101"]


def test_other_schemes_still_need_the_event_type() -> None:
    """humanos-hmac, Standard Webhooks, hmac and static credentials belong to no provider: nothing is filled in."""
    with pytest.raises(ConfigError, match=r"sources\.app\.eventType: required"):
        mapping(auth={"scheme": "humanos-hmac"})


@pytest.mark.parametrize("raw", [{"rules": {}}, {"auth": "github"}, {"auth": {"scheme": 3}}, {"auth": {}}])
def test_a_source_without_a_readable_provider_scheme_is_left_as_written(raw: dict[str, Any]) -> None:
    """Its own problems are reported as they are (load reports the bad auth block)."""
    assert with_provider_identity(raw) is raw


def test_a_malformed_headers_list_is_reported_as_written() -> None:
    with pytest.raises(ConfigError, match=r"sources\.app\.headers: must be a list of header names"):
        mapping(headers="X-GitHub-Event")
