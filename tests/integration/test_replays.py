"""Replays within the tolerance window: each signed delivery is handled once (``humanos_bridge.core.replays``).

Real parts: moto in server mode (SQS, Secrets Manager, DynamoDB holding the claims) over HTTP, and the
Humanos sandbox, here for an organisation that delivers its codes itself: the synchronous route's answers
carry each subject's ``code`` and ``link``, which a replay must never get.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from humanos_bridge.core.errors import DeliveryInProgress, ReplayedDelivery, ReplayOfAnswered
from humanos_bridge.core.replays import EVENTS, IN_PROGRESS_SECONDS, REPLAYED_MESSAGE, REQUESTS, ReplayGuard
from humanos_bridge.core.sender_auth import SignedDelivery
from humanos_bridge_local.sandbox import Fault, Sandbox
from tests.integration.conftest import SANDBOX_API_KEY, SANDBOX_SIGNATURE_SECRET
from tests.support.apigw import apigw_event
from tests.support.bridge import load_function
from tests.support.ingest_env import IngestEnv, app, create_ingest

SHOP = "post-event-shop-standard-webhooks"
SHOP_SYNC = "post-request-shop-standard-webhooks"
REPLAYED = {"error": {"code": "replayed_delivery", "message": REPLAYED_MESSAGE}}
dispatcher_app = load_function("dispatcher")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """The sandbox of an organisation that delivers its codes itself: subjects come back with code and link."""
    with Sandbox(api_key=SANDBOX_API_KEY, signature_secret=SANDBOX_SIGNATURE_SECRET, delivers_codes=True) as server:
        yield server


@pytest.fixture
def ingest(moto: Any, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[IngestEnv]:
    monkeypatch.setenv("HUMANOS_MAX_ATTEMPTS", "1")  # the synchronous route answers at once; the sender retries
    yield create_ingest(moto, sandbox, monkeypatch, tmp_path)
    app.service.cache_clear()
    if dispatcher_app.dispatcher.cache_info().currsize:
        dispatcher_app.dispatcher().close()
    dispatcher_app.dispatcher.cache_clear()


def to_route(event: dict[str, Any], route: str) -> dict[str, Any]:
    """The very same signed request (headers and body untouched) sent to ``route`` instead."""
    moved = copy.deepcopy(event)
    source = moved["pathParameters"]["source"]
    moved["rawPath"] = moved["requestContext"]["http"]["path"] = f"/{route}/{source}"
    moved["routeKey"] = moved["requestContext"]["routeKey"] = f"POST /{route}/{{source}}"
    return moved


def codes_and_links(answer_body: Any) -> list[tuple[str, str]]:
    return [(s["code"], s["link"]) for s in answer_body.get("subjects", []) if "code" in s or "link" in s]


# --- the queue route -----------------------------------------------------------------------------


def test_a_hundred_copies_of_one_signed_delivery_queue_one_message(ingest: IngestEnv) -> None:
    """One humanos-hmac request sent 100 times: 100 identical 202 answers, one queue message."""
    event = apigw_event()  # signed once
    answers = [ingest.invoke(copy.deepcopy(event)) for _ in range(100)]
    assert {(a.status, json.dumps(a.body)) for a in answers} == {
        (202, json.dumps({"eventId": "evt_crm_0001", "status": "accepted"}))
    }
    [message] = ingest.queued()
    assert message["Body"] == event["body"]


def test_standard_webhooks_retry_with_the_same_webhook_id_is_answered_but_not_queued_again(ingest: IngestEnv) -> None:
    """A Standard Webhooks sender retries with the same webhook-id, a later timestamp and so a new signature:
    the receiver deduplicates on the id, and the sender sees the first answer, not an error."""
    first_event = apigw_event(SHOP, webhook_id="msg_lost_answer_1")
    retry_event = apigw_event(SHOP, webhook_id="msg_lost_answer_1", skew_seconds=30)
    assert retry_event["headers"]["webhook-signature"] != first_event["headers"]["webhook-signature"]

    first, retry = ingest.invoke(first_event), ingest.invoke(retry_event)

    assert first.status == 202 and first.body["status"] == "accepted"
    assert (retry.status, retry.body) == (first.status, first.body)
    assert len(ingest.queued()) == 1


def test_humanos_hmac_retry_signed_afresh_is_handled_and_exactly_once_keeps_one_request(ingest: IngestEnv) -> None:
    """A humanos-hmac sender's retry has a fresh timestamp, so a new signature: a new delivery, queued again.
    The event's idempotency key then makes the second message a duplicate: Humanos gets one request."""
    first = ingest.invoke(apigw_event())
    retry = ingest.invoke(apigw_event(skew_seconds=1))  # signed a second later
    assert first.status == retry.status == 202

    result = ingest.bridge.deliver(dispatcher_app.lambda_handler)  # both messages, one batch

    assert (result.received, result.deleted, result.failed_ids) == (2, 2, [])
    assert len(ingest.bridge.creations()) == 1


def test_a_copy_of_a_failed_delivery_is_handled_in_full(ingest: IngestEnv) -> None:
    """The first copy got 503 (the queue was unavailable), so it released its claim: the sender's retry with
    the same webhook-id is queued rather than answered as a success that queued nothing."""
    sqs = ingest.bridge.sqs
    sqs.delete_queue(QueueUrl=ingest.bridge.queue_url)
    first = ingest.invoke(apigw_event(SHOP, webhook_id="msg_after_outage"))
    assert first.status == 503
    assert sqs.create_queue(QueueName="requests")["QueueUrl"] == ingest.bridge.queue_url

    retry = ingest.invoke(apigw_event(SHOP, webhook_id="msg_after_outage", skew_seconds=5))

    assert (retry.status, retry.body["status"]) == (202, "accepted")
    assert len(ingest.queued()) == 1


# --- the synchronous route -----------------------------------------------------------------------


def test_a_replayed_synchronous_request_gets_409_without_codes_or_links(ingest: IngestEnv) -> None:
    """The first copy is answered 201 with each subject's code and link; the very same request replayed is
    refused with 409 and carries no request, subject, code or link. Humanos is called once."""
    event = apigw_event(SHOP_SYNC)
    first = ingest.invoke(copy.deepcopy(event))
    assert first.status == 201
    assert codes_and_links(first.body)  # the organisation delivers codes itself

    replay = ingest.invoke(copy.deepcopy(event))

    assert (replay.status, replay.body) == (409, REPLAYED)
    assert [c.method for c in ingest.bridge.sandbox.calls] == ["POST"]


def test_a_captured_webhook_replayed_to_the_synchronous_route_gets_409_and_calls_nobody(ingest: IngestEnv) -> None:
    """A crm request captured on its way to /events/crm and replayed to /requests/crm (the signature covers
    the timestamp and body, not the path): 409, no Humanos call, nothing more queued."""
    event = apigw_event()
    assert ingest.invoke(copy.deepcopy(event)).status == 202

    replay = ingest.invoke(to_route(event, "requests"))

    assert (replay.status, replay.body) == (409, REPLAYED)
    assert ingest.bridge.sandbox.calls == []
    assert len(ingest.queued()) == 1


def test_the_senders_own_retry_signed_afresh_gets_the_request_with_its_codes(ingest: IngestEnv) -> None:
    """A sender that lost the answer signs again (a fresh timestamp): 200 with the same request, codes and
    links, from the idempotency record: the sender holds the secret, a replayer does not."""
    first = ingest.invoke(apigw_event(route="requests"))
    retry = ingest.invoke(apigw_event(route="requests", skew_seconds=1))

    assert (first.status, retry.status) == (201, 200)
    assert retry.body["requestId"] == first.body["requestId"]
    assert codes_and_links(retry.body) == codes_and_links(first.body) != []
    assert len(ingest.bridge.creations()) == 1


def test_a_replay_of_a_failed_synchronous_request_does_not_create_it_later(ingest: IngestEnv) -> None:
    """Humanos was down for the first copy (503). The same copy replayed once Humanos is back gets 409: it
    must not create the request and hand its codes to whoever captured it. The sender's fresh retry does."""
    ingest.bridge.sandbox.inject(Fault.status(503), times=1)
    event = apigw_event(route="requests")
    assert ingest.invoke(copy.deepcopy(event)).status == 503

    replay = ingest.invoke(copy.deepcopy(event))
    retry = ingest.invoke(apigw_event(route="requests", skew_seconds=1))

    assert (replay.status, replay.body) == (409, REPLAYED)
    assert retry.status == 201 and codes_and_links(retry.body)
    assert len(ingest.bridge.creations()) == 1


# --- the claims themselves (a clock of our own: no sleeping) --------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def claims(moto: Any) -> tuple[ReplayGuard, Clock]:
    """A guard on a fresh table shaped like the template's idempotency table, with a settable clock."""
    dynamodb = moto.client("dynamodb")
    dynamodb.create_table(
        TableName="idempotency",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    clock = Clock(1_000.0)
    return ReplayGuard(dynamodb, "idempotency", clock=clock), clock


def delivery(delivery_id: str = "msg_1", *, stale_after: int = 1_300) -> SignedDelivery:
    return SignedDelivery("standard-webhooks", delivery_id, stale_after)


def test_a_copy_while_the_first_is_handled_is_told_to_retry_on_the_queue_route(
    claims: tuple[ReplayGuard, Clock],
) -> None:
    """Unsettled: a copy on /events is asked to come back (the first may still fail); on /requests it is refused."""
    guard, _ = claims
    guard.admit(delivery(), sender="shop", route=EVENTS)
    with pytest.raises(DeliveryInProgress):
        guard.admit(delivery(), sender="shop", route=EVENTS)
    with pytest.raises(ReplayedDelivery) as refused:
        guard.admit(delivery(), sender="shop", route=REQUESTS)
    assert not isinstance(refused.value, ReplayOfAnswered)


def test_a_crashed_invocations_claim_is_taken_over_on_the_queue_route_only(claims: tuple[ReplayGuard, Clock]) -> None:
    """Never settled (the invocation died): after IN_PROGRESS_SECONDS a copy on /events finishes the work;
    a claim made on /requests holds until it is stale, so a replay never finishes a synchronous request."""
    guard, clock = claims
    guard.admit(delivery("msg_queued"), sender="shop", route=EVENTS)
    guard.admit(delivery("msg_sync"), sender="shop", route=REQUESTS)
    clock.now += IN_PROGRESS_SECONDS + 1

    guard.admit(delivery("msg_queued"), sender="shop", route=EVENTS)
    with pytest.raises(ReplayedDelivery):
        guard.admit(delivery("msg_sync"), sender="shop", route=EVENTS)


def test_a_copy_signed_later_keeps_the_claim_until_it_goes_stale_too(claims: tuple[ReplayGuard, Clock]) -> None:
    """The first copy goes stale at 1300, a retry signed later at 1400: that retry, replayed at 1350, is still
    a copy; at 1401 nothing can verify any more and the claim is taken as new (TTL deletion comes late)."""
    guard, clock = claims
    claim = guard.admit(delivery(stale_after=1_300), sender="shop", route=EVENTS)
    guard.settle(claim, succeeded=True, event_id="evt_1", status="accepted")
    with pytest.raises(ReplayOfAnswered):
        guard.admit(delivery(stale_after=1_400), sender="shop", route=EVENTS)

    clock.now = 1_350
    with pytest.raises(ReplayOfAnswered) as again:
        guard.admit(delivery(stale_after=1_400), sender="shop", route=EVENTS)
    assert (again.value.event_id, again.value.status) == ("evt_1", "accepted")

    clock.now = 1_401
    guard.admit(delivery(stale_after=1_700), sender="shop", route=EVENTS)


def test_delivery_ids_are_per_sender(claims: tuple[ReplayGuard, Clock]) -> None:
    """Two senders (secret keys) may both number their messages msg_1: neither is the other's copy."""
    guard, _ = claims
    guard.admit(delivery("msg_1"), sender="shop-webhooks", route=EVENTS)
    guard.admit(delivery("msg_1"), sender="billing-webhooks", route=EVENTS)


def test_claims_hold_no_delivery_id_or_signature(claims: tuple[ReplayGuard, Clock], moto: Any) -> None:
    """The item is named by a hash and holds the route, the expiry and (settled) the answer's shown id and status."""
    guard, _ = claims
    claim = guard.admit(SignedDelivery("humanos-hmac", "1779268501000.abc123", 1_300), sender="crm", route=EVENTS)
    guard.settle(claim, succeeded=True, event_id="evt_1", status="accepted")
    [item] = moto.client("dynamodb").scan(TableName="idempotency")["Items"]
    assert item["id"]["S"].startswith("delivery#") and "abc123" not in json.dumps(item)
    assert {name: next(iter(value.values())) for name, value in item.items() if name != "id"} == {
        "expiration": "1300",
        "route": "events",
        "status": "accepted",
        "eventId": "evt_1",
    }
