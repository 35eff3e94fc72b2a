"""The synchronous route ``POST /requests/{source}``: Humanos's answer now, one request per event.

Real parts: moto (SQS, Secrets Manager, DynamoDB for the shared idempotency records) and the
Humanos sandbox, which records every call; tests count its creations.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

from humanos_bridge.core import signing
from humanos_bridge_local.sandbox import Fault
from tests.support.apigw import CRM_SECRET, SHOP_SECRET, apigw_event
from tests.support.bridge import ROOT, business_event, load_function
from tests.support.ingest_env import IngestEnv, app, create_ingest

SYNC = "post-request-shop-standard-webhooks"
dispatcher_app = load_function("dispatcher")


@pytest.fixture
def ingest(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[IngestEnv]:
    # One attempt per call: the route answers the sender at once and lets the sender retry.
    monkeypatch.setenv("HUMANOS_MAX_ATTEMPTS", "1")
    yield create_ingest(moto, sandbox, monkeypatch, tmp_path)
    app.service.cache_clear()
    if dispatcher_app.dispatcher.cache_info().currsize:
        dispatcher_app.dispatcher().close()
    dispatcher_app.dispatcher.cache_clear()


def creations(ingest: IngestEnv) -> list[Any]:
    return ingest.bridge.creations()


def test_sync_route_creates_the_request_and_answers_201_with_subjects(ingest: IngestEnv) -> None:
    """The shop order becomes one signed Humanos request; the sender gets its id, subjects and credentials."""
    answer = ingest.invoke(apigw_event(SYNC))
    assert answer.status == 201
    [created] = creations(ingest)
    stored = ingest.bridge.sandbox.created[0]
    assert answer.body["requestId"] == stored["id"]
    assert len(answer.body["eventId"]) == 64  # shop events carry no id: the content hash
    assert answer.body["credentials"] == [
        {
            "id": stored["credentials"][0]["id"],
            "name": "Purchase agreement for order ord_5001",
            "internalId": "ord_5001",
        }
    ]
    assert [s["id"] for s in answer.body["subjects"]] == [s["id"] for s in stored["subjects"]]
    # Contacts are masked in the answer: the sender knows them, logs and proxies need not.
    assert answer.body["subjects"][0]["contact"] == "A***@e***.com"
    assert created.headers["idempotency-key"] == "shop:order:ord_5001:agreement"
    assert json.loads(created.body)["internalId"] == "order-ord_5001"
    assert ingest.queued() == []


def test_retrying_the_same_event_returns_the_same_request_and_creates_nothing(ingest: IngestEnv) -> None:
    """Second call (a sender retry, freshly signed): 200 with the same request id; the sandbox saw one creation."""
    first = ingest.invoke(apigw_event(SYNC))
    second = ingest.invoke(apigw_event(SYNC))
    assert (first.status, second.status) == (201, 200)
    assert second.body["requestId"] == first.body["requestId"]
    assert second.body["subjects"] == first.body["subjects"]
    assert len(creations(ingest)) == 1
    assert [c.method for c in ingest.bridge.sandbox.calls] == ["POST"]


def test_sync_route_and_queue_share_one_request(ingest: IngestEnv) -> None:
    """The same order sent synchronously and then as a webhook: the dispatcher finds the record, no second request."""
    assert ingest.invoke(apigw_event(SYNC)).status == 201
    assert ingest.invoke(apigw_event("post-event-shop-standard-webhooks")).status == 202
    result = ingest.bridge.deliver(dispatcher_app.lambda_handler)
    assert (result.received, result.deleted, result.failed_ids) == (1, 1, [])
    assert len(creations(ingest)) == 1


def test_sync_route_refuses_unsigned_events_without_calling_humanos(ingest: IngestEnv) -> None:
    """Authentication comes first on this route too."""
    answer = ingest.invoke(apigw_event(SYNC, signed=False))
    assert (answer.status, answer.body["error"]["code"]) == (401, "unauthorized")
    assert ingest.bridge.sandbox.calls == []


def test_sync_route_refuses_unmappable_events_without_calling_humanos(ingest: IngestEnv) -> None:
    """An event that cannot become a body is 422 here as on the queue route."""
    event = business_event("shop-order-paid")
    event["data"]["customer"]["email"] = "not-an-address"
    answer = ingest.invoke(apigw_event(SYNC, body=event))
    assert answer.status == 422
    assert answer.body["error"]["details"]["path"] == "body.contacts[0]"
    assert ingest.bridge.sandbox.calls == []


def test_sync_route_answers_ignored_events_like_the_queue_route(ingest: IngestEnv) -> None:
    """An ignored event type: 202 ignored, nothing sent."""
    answer = ingest.invoke(apigw_event(SYNC, source="hr", body=business_event("hr-employee-updated")))
    assert (answer.status, answer.body) == (202, {"eventId": "hr-9c44e1", "status": "ignored"})
    assert ingest.bridge.sandbox.calls == []


@pytest.mark.parametrize(
    ("fault", "status", "code", "message", "retry_after"),
    [
        pytest.param(
            Fault.status(429, retry_after="7"),
            503,
            "humanos_retryable",
            "Humanos is unavailable; retry after 7 s",
            "7",
            id="429-with-retry-after",
        ),
        pytest.param(
            Fault.status(503), 503, "humanos_retryable", "Humanos is unavailable; retry after 5 s", "5", id="503"
        ),
        pytest.param(
            Fault.status(400),
            422,
            "humanos_rejected",
            "Humanos answered 400 Bad Request: Bad Request; fix the mapping or the event that produced this body",
            None,
            id="400",
        ),
        pytest.param(
            Fault.status(402),
            402,
            "humanos_rejected",
            "Humanos answered 402 Payment Required: Payment Required; "
            "check the Humanos organisation's plan and billing",
            None,
            id="402",
        ),
        pytest.param(
            Fault.status(409),
            409,
            "humanos_rejected",
            "Humanos answered 409 Conflict: Conflict; a conflicting request exists (possibly the same "
            "Idempotency-Key sent with a different body)",
            None,
            id="409",
        ),
        pytest.param(
            Fault.status(404),
            502,
            "humanos_rejected",
            "Humanos refused the request for a reason the sender cannot fix; the operator must check the logs",
            None,
            id="404-wrong-base-url",
        ),
    ],
)
def test_humanos_errors_map_through_the_one_table(
    ingest: IngestEnv, fault: Fault, status: int, code: str, message: str, retry_after: str | None
) -> None:
    """Retryable -> 503 + Retry-After; Humanos 4xx -> 422/402/409; anything the sender cannot fix -> 502."""
    ingest.bridge.sandbox.inject(fault)
    answer = ingest.invoke(apigw_event(SYNC))
    assert (answer.status, answer.body["error"]["code"], answer.body["error"]["message"]) == (status, code, message)
    assert answer.headers.get("Retry-After") == retry_after


def test_a_retry_after_humanos_recovers_creates_the_request_once(ingest: IngestEnv) -> None:
    """503 first (nothing stored), then the sender's retry creates it: one request."""
    ingest.bridge.sandbox.inject(Fault.status(503), times=1)
    assert ingest.invoke(apigw_event(SYNC)).status == 503
    assert ingest.invoke(apigw_event(SYNC)).status == 201
    assert len(creations(ingest)) == 1


def test_a_retry_that_finds_its_request_canceled_answers_200_with_canceled_at(ingest: IngestEnv) -> None:
    """Humanos created the request but every answer was lost (503, ambiguous); someone canceled it before the
    sender's retry. The retry finds it by internalId and answers with it, canceledAt included: nobody will be
    asked for a code, and a second request would undo that cancel."""
    sandbox = ingest.bridge.sandbox
    sandbox.inject(Fault.drop_after_processing())
    assert ingest.invoke(apigw_event(SYNC)).status == 503
    sandbox.clear_faults()
    [request] = sandbox.created
    headers = signing.signed_headers(sandbox.api_key, sandbox.signature_secret, None)
    assert urllib3.request("DELETE", f"{sandbox.base_url}/request/{request['id']}", headers=headers).status == 201

    answer = ingest.invoke(apigw_event(SYNC))

    assert (answer.status, answer.body["requestId"]) == (200, request["id"])
    assert answer.body["canceledAt"] == sandbox.created[0]["canceledAt"] is not None
    assert len(sandbox.created) == 1


def test_humanos_refusing_our_credentials_is_503_until_the_operator_fixes_it(ingest: IngestEnv) -> None:
    """Our API key is wrong: not the sender's fault. The operator will fix it: the sender retries in a minute."""
    ingest.bridge.moto.client("secretsmanager").put_secret_value(
        SecretId=ingest.bridge.secret_arn,
        SecretString=json.dumps({"apiKey": "wrong", "signatureSecret": ingest.bridge.sandbox.signature_secret}),
    )
    answer = ingest.invoke(apigw_event(SYNC))
    assert (answer.status, answer.body, answer.headers.get("Retry-After")) == (
        503,
        {"error": {"code": "humanos_auth", "message": "the service cannot take the request now; retry after 60 s"}},
        "60",
    )
    assert creations(ingest) == []


def test_a_malformed_humanos_secret_is_503_with_a_generic_message(ingest: IngestEnv) -> None:
    """The operator's to fix: the sender learns only to retry later, never what is wrong with the secret."""
    ingest.bridge.moto.client("secretsmanager").put_secret_value(
        SecretId=ingest.bridge.secret_arn, SecretString='{"apiKey": "only-a-key"}'
    )
    answer = ingest.invoke(apigw_event(SYNC))
    assert (answer.status, answer.body) == (
        503,
        {
            "error": {
                "code": "credentials_error",
                "message": "the service cannot take the request now; retry after 60 s",
            }
        },
    )
    assert ingest.bridge.sandbox.calls == []


def test_a_batch_that_fans_out_is_queued_with_its_request_count_and_refused_on_the_sync_route(
    ingest: IngestEnv,
) -> None:
    """HubSpot posts 4 events in one array; the hubspot rule's forEach makes 3 requests. /events queues the batch
    and says so; /requests, which answers with one request, refuses it with the route to use and sends nothing."""
    ingest.set_sender_secrets({"crm": [CRM_SECRET], "shop-webhooks": [SHOP_SECRET], "hubspot": [CRM_SECRET]})
    batch = json.loads((ROOT / "events" / "business" / "hubspot-contact-batch.json").read_text(encoding="utf-8"))
    queued = ingest.invoke(apigw_event(source="hubspot", route="events", body=batch, secret=CRM_SECRET))
    assert (queued.status, queued.body["status"], queued.body["requests"]) == (202, "accepted", 3)
    assert len(ingest.queued()) == 1
    refused = ingest.invoke(apigw_event(source="hubspot", route="requests", body=batch, secret=CRM_SECRET))
    assert refused.status == 422
    assert refused.body["error"]["message"] == (
        "this event makes 3 requests (rule marketing-consent-sms has forEach) and this route answers with one; "
        "POST it to /events/hubspot, which queues it and makes them all"
    )
    assert creations(ingest) == []
