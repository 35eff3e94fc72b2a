"""The ingest function's queue route and health, through ``lambda_handler`` with API Gateway HTTP API events.

Real parts: moto in server mode (SQS, Secrets Manager, DynamoDB) reached over HTTP, and the Humanos
sandbox. Events come from ``events/apigw/`` and are re-signed at call time by ``apigw_event``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from humanos_bridge.core.errors import ConfigError
from humanos_bridge.mapping import load_mapping_cached
from tests.support.apigw import CRM_SECRET, SHOP_SECRET, apigw_event, load_apigw
from tests.support.bridge import business_event
from tests.support.ingest_env import IngestEnv, app, create_ingest, ingest_mapping

UNAUTHORIZED = {"error": {"code": "unauthorized", "message": "request signature could not be verified"}}


@pytest.fixture
def ingest(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[IngestEnv]:
    yield create_ingest(moto, sandbox, monkeypatch, tmp_path)
    app.service.cache_clear()


def attributes(message: dict[str, Any]) -> dict[str, str]:
    return {name: value["StringValue"] for name, value in message.get("MessageAttributes", {}).items()}


# --- accepted ------------------------------------------------------------------------------------


def test_humanos_hmac_event_is_queued_as_sent_with_its_attributes(ingest: IngestEnv) -> None:
    """A crm event signed like Humanos's requests: 202, and the raw body queued with source, id, time, trace."""
    event = apigw_event("post-event-crm-humanos-hmac")
    answer = ingest.invoke(event)
    assert (answer.status, answer.body) == (202, {"eventId": "evt_crm_0001", "status": "accepted"})
    [message] = ingest.queued()
    assert message["Body"] == event["body"]
    attrs = attributes(message)
    assert {k: attrs[k] for k in ("source", "eventId", "traceId")} == {
        "source": "crm",
        "eventId": "evt_crm_0001",
        "traceId": event["requestContext"]["requestId"],
    }
    assert attrs["receivedAt"].endswith("Z") and attrs["receivedAt"][:2] == "20"


def test_trace_id_comes_from_xray_when_tracing_is_on(ingest: IngestEnv) -> None:
    """Lambda sets _X_AMZN_TRACE_ID per invocation with active tracing; the queue message carries it."""
    ingest.monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-6a0d7b95-0b3f4c2d1e5a6b7c8d9e0f11;Sampled=1")
    assert ingest.invoke(apigw_event()).status == 202
    [message] = ingest.queued()
    assert attributes(message)["traceId"] == "Root=1-6a0d7b95-0b3f4c2d1e5a6b7c8d9e0f11;Sampled=1"


def test_standard_webhooks_event_is_queued(ingest: IngestEnv) -> None:
    """A shop event (Standard Webhooks); shop events carry no id, so the mapping's content hash is the id."""
    event = apigw_event("post-event-shop-standard-webhooks")
    answer = ingest.invoke(event)
    assert answer.status == 202 and answer.body["status"] == "accepted"
    [message] = ingest.queued()
    assert message["Body"] == event["body"]
    assert attributes(message)["eventId"] == answer.body["eventId"]
    assert len(answer.body["eventId"]) == 64


def test_base64_body_is_verified_over_the_decoded_bytes_and_queued_decoded(ingest: IngestEnv) -> None:
    """API Gateway base64-encodes some bodies; the signature covers the sender's bytes, which are queued."""
    event = apigw_event("post-event-shop-base64")
    assert event["isBase64Encoded"] is True
    assert ingest.invoke(event).status == 202
    [message] = ingest.queued()
    assert message["Body"].encode() == base64.b64decode(event["body"])


def test_body_bytes_are_queued_exactly_as_signed(ingest: IngestEnv) -> None:
    """Whitespace, key order and non-ASCII survive: the queue gets the sender's bytes, not a re-serialisation."""
    raw = (
        '{ "type": "contact.created",  "id": "evt_ç_1",'
        ' "data": {"contact": {"phone": "+351912345678", "firstName": "Zoë"}}}'
    )
    assert ingest.invoke(apigw_event(body=raw.encode())).status == 202
    assert ingest.queued()[0]["Body"] == raw


@pytest.mark.parametrize("key", ["new", "old"])
def test_rotation_accepts_either_active_secret(ingest: IngestEnv, key: str) -> None:
    """With two secrets stored for crm, a sender still on the old one and one on the new one both get in."""
    ingest.set_sender_secrets({"crm": ["crm-new-secret", CRM_SECRET], "shop-webhooks": [SHOP_SECRET]})
    secret = "crm-new-secret" if key == "new" else CRM_SECRET
    assert ingest.invoke(apigw_event(secret=secret)).status == 202
    assert len(ingest.queued()) == 1


def test_rotation_with_two_standard_webhooks_secrets(ingest: IngestEnv) -> None:
    """The same for Standard Webhooks: both whsec_ secrets verify while both are stored."""
    newer = "whsec_" + base64.b64encode(b"a-newer-shop-webhook-signing-key").decode()
    ingest.set_sender_secrets({"crm": [CRM_SECRET], "shop-webhooks": [newer, SHOP_SECRET]})
    for secret in (newer, SHOP_SECRET):
        assert ingest.invoke(apigw_event("post-event-shop-standard-webhooks", secret=secret)).status == 202
    assert len(ingest.queued()) == 2


def test_ignored_event_type_answers_202_ignored_and_is_not_queued(ingest: IngestEnv) -> None:
    """hr ignores employee.updated: the sender learns it, nothing is queued."""
    event = apigw_event(source="hr", body=business_event("hr-employee-updated"))
    answer = ingest.invoke(event)
    assert (answer.status, answer.body) == (202, {"eventId": "hr-9c44e1", "status": "ignored"})
    assert ingest.queued() == []


# --- refused -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"signed": False}, id="unsigned"),
        pytest.param({"skew_seconds": -301}, id="stale"),
        pytest.param({"skew_seconds": 301}, id="future"),
        pytest.param({"tamper": b'{"id":"evt_crm_0001","type":"contact.created","data":{}}'}, id="tampered"),
        pytest.param({"secret": "someone-elses-secret"}, id="wrong-secret"),
        pytest.param({"scheme": "standard-webhooks", "secret": SHOP_SECRET}, id="wrong-scheme"),
        pytest.param({"headers": {"x-signature": "not-hex"}}, id="garbled-signature"),
        pytest.param({"headers": {"x-timestamp": "yesterday"}}, id="garbled-timestamp"),
    ],
)
def test_every_authentication_failure_gets_one_answer_and_queues_nothing(
    ingest: IngestEnv, overrides: dict[str, Any]
) -> None:
    """401 with the same body whatever failed, so a caller learns nothing about which check it was."""
    answer = ingest.invoke(apigw_event(**overrides))
    assert (answer.status, answer.body) == (401, UNAUTHORIZED)
    assert ingest.queued() == []


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"signed": False}, id="unsigned"),
        pytest.param({"skew_seconds": -400}, id="stale"),
        pytest.param({"skew_seconds": 400}, id="future"),
        pytest.param({"tamper": b'{"type":"order.paid","data":{}}'}, id="tampered"),
        pytest.param({"headers": {"webhook-signature": "v2,abc"}}, id="no-v1-entry"),
        pytest.param({"headers": {"webhook-id": "msg_other"}}, id="id-swapped"),
    ],
)
def test_standard_webhooks_failures_get_the_same_answer(ingest: IngestEnv, overrides: dict[str, Any]) -> None:
    """The shop source refuses forged, replayed and unsigned events alike."""
    answer = ingest.invoke(apigw_event("post-event-shop-standard-webhooks", **overrides))
    assert (answer.status, answer.body) == (401, UNAUTHORIZED)
    assert ingest.queued() == []


def test_sample_tampered_and_unsigned_events_are_refused(ingest: IngestEnv) -> None:
    """The files as stored: one with a body changed after signing, one without signature headers."""
    for name in ("post-event-crm-tampered", "post-event-crm-unsigned"):
        assert ingest.invoke(load_apigw(name)).body == UNAUTHORIZED
    assert ingest.queued() == []


def test_source_without_stored_secrets_refuses_every_sender(ingest: IngestEnv) -> None:
    """Until the operator stores secrets for a source, it is closed (the template's placeholder is {})."""
    ingest.set_sender_secrets({})
    answer = ingest.invoke(apigw_event())
    assert (answer.status, answer.body) == (401, UNAUTHORIZED)


def test_unknown_source_is_404(ingest: IngestEnv) -> None:
    """A source the mapping does not define."""
    answer = ingest.invoke(apigw_event("post-event-unknown-source"))
    assert (answer.status, answer.body) == (
        404,
        {
            "error": {
                "code": "unknown_source",
                "message": "unknown source 'billing'; POST to /events/<source> with a configured source",
            }
        },
    )


def test_unknown_route_is_404_in_the_same_shape(ingest: IngestEnv) -> None:
    """Routes the handler does not serve still answer with the one error shape."""
    event = apigw_event()
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/webhooks/crm"
    answer = ingest.invoke(event)
    assert (answer.status, answer.body["error"]["code"]) == (404, "not_found")


def test_body_over_256_kib_is_413_before_authentication(ingest: IngestEnv) -> None:
    """A body no queue message can hold is refused before any HMAC runs over it (here: unsigned)."""
    answer = ingest.invoke(apigw_event(body=b" " * (256 * 1024 + 1), signed=False))
    assert (answer.status, answer.body) == (
        413,
        {
            "error": {
                "code": "payload_too_large",
                "message": "request body is 262145 bytes; the limit is 262144 bytes (a queue message's size)",
                "details": {"limit": 262144},
            }
        },
    )


@pytest.mark.parametrize(
    ("content_type", "shown"),
    [("text/plain", "'text/plain'"), (None, "nothing"), ("application/x-www-form-urlencoded", None)],
)
def test_non_json_content_type_is_415(ingest: IngestEnv, content_type: str | None, shown: str | None) -> None:
    """Only application/json (after authentication, so strangers learn nothing else)."""
    answer = ingest.invoke(apigw_event(headers={"content-type": content_type}))
    assert answer.status == 415
    shown = shown or repr(content_type)
    assert answer.body == {
        "error": {
            "code": "unsupported_media_type",
            "message": f"Content-Type must be application/json, got {shown}; send the event as JSON",
            "details": {"expected": "application/json"},
        }
    }


def test_json_content_type_with_charset_is_accepted(ingest: IngestEnv) -> None:
    """Media type parameters and case do not matter."""
    assert ingest.invoke(apigw_event(headers={"content-type": "Application/JSON; charset=UTF-8"})).status == 202


@pytest.mark.parametrize(
    ("body", "message", "details"),
    [
        pytest.param(b"", "request body is empty; send the event as a JSON object", None, id="empty"),
        pytest.param(
            b'{"id": "evt_1",',
            "request body is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 16",
            None,
            id="truncated",
        ),
        pytest.param(b'{"total": NaN}', "request body: NaN is not valid JSON", None, id="nan"),
        pytest.param(
            b"\xff\xfe{}",
            "request body is not UTF-8 (invalid byte at offset 0); send UTF-8 JSON",
            None,
            id="not-utf8",
        ),
        pytest.param(
            b"[" * 33 + b"]" * 33,
            "request body is nested deeper than 32 levels; flatten the event",
            {"maxDepth": 32},
            id="too-deep",
        ),
        pytest.param(
            b"[" * 100_000,
            "request body is nested deeper than 32 levels; flatten the event",
            {"maxDepth": 32},
            id="deep-enough-to-crash-a-recursive-parser",
        ),
    ],
)
def test_bad_json_is_400_with_the_reason(
    ingest: IngestEnv, body: bytes, message: str, details: dict[str, Any] | None
) -> None:
    """Malformed bodies (signed correctly) are refused precisely."""
    answer = ingest.invoke(apigw_event(body=body))
    expected: dict[str, Any] = {"code": "invalid_json", "message": message}
    if details:
        expected["details"] = details
    assert (answer.status, answer.body) == (400, {"error": expected})
    assert ingest.queued() == []


def test_nesting_inside_strings_does_not_count(ingest: IngestEnv) -> None:
    """Brackets in string values are text, not depth: the event is accepted."""
    event = business_event("crm-contact-created")
    event["data"]["contact"]["firstName"] = "[{" * 50
    assert ingest.invoke(apigw_event(body=event)).status == 202


def test_unmappable_event_is_422_with_the_precise_reason_and_path(ingest: IngestEnv) -> None:
    """The crm sample whose phone has no +country code can never become a request: the sender hears now."""
    answer = ingest.invoke(apigw_event(body=business_event("crm-contact-created-invalid")))
    reason = "body.contacts[0]: not an e-mail address or a +international phone number (8 to 15 digits after the +)"
    assert (answer.status, answer.body) == (
        422,
        {
            "error": {
                "code": "invalid_body",
                "message": reason,
                "details": {
                    "errors": [reason],
                    "path": "body.contacts[0]",
                    "source": "crm",
                    "rule": "marketing-consent-sms",
                },
            }
        },
    )
    assert ingest.queued() == []


def test_unmatched_event_type_is_422_naming_the_rules_path(ingest: IngestEnv) -> None:
    """crm rejects event types it has no rule for (unmatched: reject)."""
    answer = ingest.invoke(apigw_event(body=business_event("crm-contact-created", type="contact.deleted")))
    assert answer.status == 422
    assert answer.body["error"]["code"] == "mapping_error"
    assert answer.body["error"]["message"] == (
        "source crm: event type 'contact.deleted' has no rules; add a rule under "
        'sources.crm.rules["contact.deleted"] or set unmatched: "ignore"'
    )
    assert answer.body["error"]["details"] == {"path": "sources.crm.rules", "source": "crm"}


def test_error_bodies_never_echo_contacts(ingest: IngestEnv) -> None:
    """A phone number in an unmappable event stays out of the answer."""
    event = business_event("crm-contact-created")
    event["data"]["contact"]["phone"] = "00351 912 345 678"
    answer = ingest.invoke(apigw_event(body=event))
    assert answer.status == 422
    assert "912" not in json.dumps(answer.body)


def test_enqueue_failure_is_503_with_retry_after_and_nothing_queued(ingest: IngestEnv) -> None:
    """The queue does not exist (a broken deployment): the sender is told to retry, nothing is half-accepted."""
    missing = ingest.bridge.queue_url.rsplit("/", 1)[0] + "/no-such-queue"
    ingest.monkeypatch.setenv("REQUEST_QUEUE_URL", missing)
    app.service.cache_clear()
    answer = ingest.invoke(apigw_event())
    assert (answer.status, answer.body) == (
        503,
        {"error": {"code": "aws_error", "message": "the service cannot take the request now; retry after 5 s"}},
    )
    assert answer.headers["Retry-After"] == "5"
    assert ingest.queued() == []


# --- health and start-up -------------------------------------------------------------------------


def test_health_touches_neither_humanos_nor_secrets(ingest: IngestEnv) -> None:
    """Liveness works with every secret unreadable and calls nothing."""
    ingest.monkeypatch.setenv("SENDER_SECRET_ID", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gone")
    ingest.monkeypatch.setenv("HUMANOS_SECRET_ID", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gone-too")
    app.service.cache_clear()
    answer = ingest.invoke(load_apigw("get-health"))
    assert (answer.status, answer.body) == (200, {"status": "ok", "version": "0.1.0"})
    assert ingest.bridge.sandbox.calls == []


def test_a_source_without_authentication_stops_the_function_from_starting(
    ingest: IngestEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A mapping with an unsigned source (hr without auth): the ingest function refuses to serve at all."""
    mapping = ingest_mapping()
    del mapping["sources"]["hr"]["auth"]
    path = tmp_path / "unsigned-hr.json"
    path.write_text(json.dumps(mapping), encoding="utf-8")
    monkeypatch.setenv("MAPPING_FILE", str(path))
    load_mapping_cached.cache_clear()
    app.service.cache_clear()
    with pytest.raises(ConfigError) as caught:
        ingest.invoke(load_apigw("get-health"))
    assert str(caught.value) == (
        f"source(s) 'hr' in {path} have no sender authentication, so the ingest "
        'function would accept unsigned events; add "auth" (e.g. {"scheme": "humanos-hmac"}, or the sender\'s '
        'preset such as {"scheme": "stripe"}: mappings/README.md) to sources.hr (and each other one listed), or '
        "remove them from the mapping the ingest function loads"
    )


def test_a_source_that_parks_without_a_dead_letter_queue_stops_the_function_from_starting(
    ingest: IngestEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bridge.json's stripe and shopify sources park what their mapping refuses: they need DEAD_LETTER_QUEUE_URL."""
    monkeypatch.delenv("DEAD_LETTER_QUEUE_URL")
    app.service.cache_clear()
    with pytest.raises(ConfigError) as caught:
        ingest.invoke(load_apigw("get-health"))
    assert str(caught.value) == (
        'missing configuration: source(s) stripe, shopify park the events their mapping refuses (unmappable: "park"); '
        "set DEAD_LETTER_QUEUE_URL (the template sets it on deploy)"
    )


# --- logs and metrics ----------------------------------------------------------------------------


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_logs_say_why_a_request_was_refused_and_never_show_secrets_signatures_or_contacts(
    ingest: IngestEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """The caller gets one 401 message; the log line names the failed check. No secret, signature or phone."""
    accepted = apigw_event()
    stale = apigw_event(skew_seconds=-400)
    written: list[str] = []
    for request in (accepted, stale):
        caplog.clear()
        ingest.invoke(request)
        # Each record as Powertools writes it to the function's log (its JSON formatter, with the keys
        # of this invocation, so formatted before the next one).
        formatter = app.logger.registered_formatter
        written += [formatter.format(r) for r in caplog.records if r.name == app.logger.name]
    out = "\n".join(written)
    lines = [line for line in _json_lines(out) if line.get("message", "").startswith("event ")]
    assert [(line["outcome"], line.get("cause")) for line in lines] == [
        ("accepted", None),
        ("rejected", "unauthorized"),
    ]
    assert lines[0]["correlation_id"] == "evt_crm_0001"
    # The age grows while the test runs (a loaded machine may add a second): match its form, not its value.
    assert re.match(r"timestamp_stale: timestamp 40\d s older than the 300 s tolerance", lines[1]["reason"])
    for secret in (CRM_SECRET, stale["headers"]["x-signature"], accepted["headers"]["x-signature"], "912345678"):
        assert secret not in out


def test_metrics_count_outcomes_with_the_cause_as_a_dimension(
    ingest: IngestEnv, capfd: pytest.CaptureFixture[str]
) -> None:
    """EventsAccepted / EventsRejected (service-wide, for the alarm) and EventsRejected by cause."""
    ingest.invoke(apigw_event())
    ingest.invoke(apigw_event(signed=False))
    blobs = [line for line in _json_lines(capfd.readouterr().out) if "_aws" in line]
    names = {
        (metric["Name"], tuple(sorted(dims)))
        for blob in blobs
        for directive in blob["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
        for dims in directive["Dimensions"]
    }
    assert ("EventsAccepted", ("service",)) in names
    assert ("EventsRejected", ("service",)) in names
    assert ("EventsRejected", ("cause", "service")) in names
    assert ("IngestLatency", ("service",)) in names
    by_cause = [blob for blob in blobs if blob.get("cause")]
    assert [blob["cause"] for blob in by_cause] == ["unauthorized"]
