"""Hostile identifiers: an event id, an event type or an object key holds whatever JSON can carry.

A lone surrogate, a terminal escape, an e-mail address or 200,000 characters reach the logs, the queues'
attributes, the error bodies and the operator's terminal only in their safe form (``masking.safe_id``):
escaped, contacts masked, bounded. The exact id stays the key: idempotency keys and internalIds are made
from it. Through the functions' handlers and the operator commands, on moto and the Humanos sandbox.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from humanos_bridge.core.outcomes import Failure
from humanos_bridge.core.queue_messages import QueuedEvent
from humanos_bridge.dispatch.dead_letters import Parcel, park
from humanos_bridge.mapping import bound_key
from humanos_bridge_local.cli import main
from humanos_bridge_local.commands.dlq import parked_messages
from humanos_bridge_local.endpoints import Target
from humanos_bridge_local.lambda_runtime import LocalContext
from humanos_bridge_local.sandbox import Fault
from tests.support.apigw import apigw_event, response_json
from tests.support.bridge import BridgeEnv, business_event, dispatcher_bridge, load_function
from tests.support.ingest_env import IngestEnv, create_ingest, dispatching
from tests.support.ingest_env import app as ingest_app
from tests.support.logs import check_lines, written_lines

dispatcher_app = load_function("dispatcher")

POISON = "hr-\ud800-poison"
FAKE_ROW = "contact.created\n00:00:00.000  dispatch  crm     contact.created     evt_fake  created"
REFUSED_402 = (
    "Humanos answered 402 Payment Required: Payment Required; check the Humanos organisation's plan and billing"
)


@pytest.fixture
def ingest(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[IngestEnv]:
    yield create_ingest(moto, sandbox, monkeypatch, tmp_path)
    ingest_app.service.cache_clear()


@pytest.fixture
def bridge(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[BridgeEnv]:
    with dispatcher_bridge(moto, sandbox, monkeypatch) as env:
        yield env


def hired(event_id: str, *, contract: str = "contractor", employee_id: str = "E-2041") -> dict[str, Any]:
    """An HR hire: contractors get the default internalId (the idempotency key), employees a custom one."""
    event = business_event("hr-employee-hired", eventId=event_id)
    event["employee"].update(contract=contract, id=employee_id)
    return event


def target_of(bridge: BridgeEnv) -> Target:
    return Target("the test bridge", bridge.moto.session, bridge.moto.endpoint_url, bridge.queue_url, bridge.dlq_url)


def attribute(message: dict[str, Any], name: str) -> str | None:
    value = (message.get("MessageAttributes") or {}).get(name)
    return value["StringValue"] if value else None


def printable_lines(text: str) -> list[str]:
    lines = text.splitlines()
    for line in lines:
        assert line.isprintable(), line[:200]
    return lines


# --- finding 3: a poison message never blocks its batch ---------------------------------------------


def test_a_poison_id_does_not_keep_its_batch_from_being_parked(
    bridge: BridgeEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three events Humanos refuses with 402, the middle one's id with a lone surrogate: all three are parked
    with their reason and acknowledged; `dlq redrive` finds the poisoned one by the id it was sent with, and
    redriven, all three are created, the poisoned one after its internalId look-up like the others."""
    bridge.sandbox.inject(Fault.status(402), times=3)
    for event_id in ("hr-first", POISON, "hr-last"):
        bridge.enqueue(hired(event_id), source="hr")  # json.dumps: the surrogate travels as "\ud800"

    with written_lines(dispatcher_app.logger) as lines:
        result = bridge.deliver(dispatcher_app.lambda_handler)

    assert (result.deleted, result.failed_ids) == (3, [])
    with parked_messages(target_of(bridge)) as parked:
        found = {(p.event_id, p.code, p.attribute("errorStatus"), p.reason) for p in parked}
    assert found == {
        (shown, "humanos_rejected", "402", REFUSED_402) for shown in ("hr-first", "hr-\\ud800-poison", "hr-last")
    }
    logged = [(e["message"], e["correlation_id"]) for e in check_lines(lines) if e.get("outcome")]
    assert sorted(logged) == [("event parked", i) for i in sorted(["hr-first", "hr-\\ud800-poison", "hr-last"])]

    queues = ["--queue-url", bridge.queue_url, "--dlq-url", bridge.dlq_url]
    assert main(["dlq", "list", *queues]) == 0
    listing = printable_lines(capsys.readouterr().out)
    assert any(line.startswith("  hr-\\ud800-poison ") and "humanos_rejected" in line for line in listing)
    assert main(["dlq", "redrive", "--event-id", POISON, *queues]) == 0
    assert printable_lines(capsys.readouterr().out) == ["redriven 1/1: hr-\\ud800-poison (hr)"]
    assert main(["dlq", "redrive", "--all", *queues]) == 0

    result = bridge.deliver(dispatcher_app.lambda_handler)

    assert (result.deleted, result.failed_ids) == (3, [])
    # The exact id, hashed, is the poisoned event's key and internalId: looked up, then created.
    key = bound_key(f"hr:{POISON}:contractor-kyc")
    assert key.isascii() and key != bound_key("hr:hr-\udfff-poison:contractor-kyc")
    assert [c.query["internalId"] for c in bridge.sandbox.calls if c.method == "GET"].count(key) == 1
    assert {r["internalId"] for r in bridge.sandbox.created} == {
        bound_key(f"hr:{event_id}:contractor-kyc") for event_id in ("hr-first", POISON, "hr-last")
    }


def queued(message_id: str, body: str = '{"eventId": "x"}', **attributes: str) -> QueuedEvent:
    """A record as the dispatcher receives it; ``attributes`` are its string message attributes."""
    return QueuedEvent(
        message_id, f"receipt-{message_id}", body, dict(attributes), 1, 0, None, "arn:aws:sqs:::requests"
    )


REFUSED = Failure(False, "humanos_rejected", REFUSED_402, 402)


def test_a_batch_the_dead_letter_queue_refuses_is_parked_one_message_at_a_time(moto: Any) -> None:
    """One message too long for the queue makes SQS refuse the whole batch: the others are parked one by one,
    and only that one is left unacknowledged, to be retried."""
    sqs = moto.client("sqs")
    dlq = sqs.create_queue(QueueName="small-dead-letters", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    parcels = [
        Parcel(queued(f"m-{n}", body), REFUSED, "crm", f"evt-{n}") for n, body in enumerate(["{}", "x" * 2000, "{}"])
    ]

    assert park(sqs, dlq, parcels) == {"m-1"}

    parked = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"])["Messages"]
    assert sorted(attribute(m, "eventId") or "" for m in parked) == ["evt-0", "evt-2"]


class AwsStrictSqs:
    """The moto SQS client, refusing what AWS refuses but moto stores: message attribute values holding
    characters outside those SQS allows (#x9, #xA, #xD, #x20 to #xD7FF, #xE000 to #xFFFD, #x10000 and up).
    Fault injection for a check moto does not make; everything else is moto's."""

    _REFUSED = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def send_message(self, **request: Any) -> Any:
        self._check(request, "SendMessage")
        return self._sqs.send_message(**request)

    def send_message_batch(self, **request: Any) -> Any:
        for entry in request["Entries"]:
            self._check(entry, "SendMessageBatch")
        return self._sqs.send_message_batch(**request)

    def _check(self, message: dict[str, Any], operation: str) -> None:
        for name, value in (message.get("MessageAttributes") or {}).items():
            if self._REFUSED.search(value.get("StringValue", "")):
                error = {"Code": "InvalidParameterValue", "Message": f"attribute {name} has invalid characters"}
                raise ClientError({"Error": error}, operation)


def test_a_message_refused_as_it_is_is_parked_with_its_attributes_in_their_safe_form(moto: Any) -> None:
    """A producer that writes to the queue itself sent a trace id SQS will not take back (a control character,
    a lone surrogate) and an e-mail address as the event id: that message is parked with every attribute escaped
    and bounded, and the rest of its batch as it is."""
    sqs = AwsStrictSqs(moto.client("sqs"))
    dlq = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    poisoned = queued("m-1", traceId="Root=1-\x01\ud800", receivedAt="2026-05-17T10:00:00.000Z")
    parcels = [
        Parcel(queued("m-0"), REFUSED, "crm", "evt-0"),
        Parcel(poisoned, REFUSED, "crm", "ana.silva@example.com"),
        Parcel(queued("m-2"), REFUSED, "crm", "evt-2"),
    ]

    assert park(sqs, dlq, parcels) == set()

    parked = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"])["Messages"]
    by_id = {attribute(m, "originalMessageId"): m for m in parked}
    assert sorted(by_id) == ["m-0", "m-1", "m-2"]
    assert attribute(by_id["m-1"], "traceId") == "Root=1-\\x01\\ud800"
    assert attribute(by_id["m-1"], "receivedAt") == "2026-05-17T10:00:00.000Z"  # ours: escaped, never masked
    assert attribute(by_id["m-1"], "eventId") == "a***@e***.com"  # finding 3: no contact in a DLQ attribute
    assert attribute(by_id["m-1"], "errorReason") == REFUSED_402


def test_an_internal_id_with_a_lone_surrogate_is_parked_before_any_request_is_made(bridge: BridgeEnv) -> None:
    """An employee's custom internalId (``employee-<id>``) with a lone surrogate could never be looked up:
    the event is parked with the reason and the fix, and Humanos is never called."""
    bridge.enqueue(hired("hr-kyc-1", contract="employee", employee_id="E-\ud800"), source="hr")

    result = bridge.deliver(dispatcher_app.lambda_handler)

    assert (result.deleted, result.failed_ids) == (1, [])
    [parked] = bridge.dead_letters()
    assert attribute(parked, "errorCode") == "invalid_body"
    assert (attribute(parked, "errorReason") or "").startswith("body.internalId: holds a lone surrogate")
    assert bridge.sandbox.calls == []


# --- findings 2 and 4: every log line is written, as ASCII JSON, with the id in its safe form --------


@pytest.mark.parametrize(
    ("event_id", "shown"),
    [
        ("evt_\ud800_x", "evt_\\ud800_x"),
        ("ana.silva@example.com", "a***@e***.com"),
        ("evt_" + "a" * 200_000, "evt_" + "a" * 107 + "…(+199,893 chars)"),
    ],
    ids=["lone-surrogate", "e-mail", "200000-chars"],
)
def test_an_event_id_leaves_both_functions_only_in_its_safe_form(ingest: IngestEnv, event_id: str, shown: str) -> None:
    """Accepted (202) and created at Humanos under its exact id, hashed; the answer, the queue attribute and
    every log line (each one written, ASCII JSON, bounded, no e-mail) carry the safe form."""
    body = json.dumps(business_event("crm-contact-created", id=event_id)).encode()
    with dispatching(ingest) as dispatcher, written_lines(ingest_app.logger) as lines:
        response = ingest_app.lambda_handler(apigw_event(body=body), LocalContext(20, "ingest"))
        [message] = ingest.queued()
        ingest.bridge.sqs.change_message_visibility(
            QueueUrl=ingest.bridge.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
        result = ingest.bridge.deliver(dispatcher.lambda_handler)

    assert response["statusCode"] == 202
    assert response["body"].isascii()  # any encoding can carry it: the connection is answered, never dropped
    assert response_json(response) == {"eventId": shown, "status": "accepted"}
    assert attribute(message, "eventId") == shown
    assert (result.deleted, result.failed_ids) == (1, [])
    [created] = ingest.bridge.sandbox.created
    assert created["internalId"] == bound_key(f"crm:{event_id}:marketing-consent-sms")
    entries = check_lines(lines)
    events = [(e["message"], e["correlation_id"], e["eventId"]) for e in entries if e.get("outcome")]
    assert events == [("event accepted", shown, shown), ("event created", shown, shown)]


# --- finding 5: hostile types and object keys in answers, logs and the operator's terminal ---------


def test_an_event_type_with_a_fake_row_is_refused_with_the_type_escaped(ingest: IngestEnv) -> None:
    """The CRM source rejects unknown types: the 422 names the type with its newline escaped, in the body
    and in the log's reason, so it adds no row to a log viewer or to the local flow table."""
    event = business_event("crm-contact-created", type=FAKE_ROW)
    with written_lines(ingest_app.logger) as lines:
        answer = ingest.invoke(apigw_event(body=json.dumps(event).encode()))

    assert answer.status == 422
    message = answer.body["error"]["message"]
    assert message.isprintable() and "contact.created\\n00:00:00.000" in message
    [logged] = [e for e in check_lines(lines) if e.get("outcome")]
    assert logged["reason"] == message


@pytest.mark.parametrize(
    ("event_id", "code"),
    [(None, "mapping_error"), ("ord-evt-1", "invalid_body")],
    ids=["its-content-hash-fails", "its-body-fails"],
)
def test_an_object_key_quoted_in_a_422_is_escaped_and_bounded(
    ingest: IngestEnv, event_id: str | None, code: str
) -> None:
    """A key of 3,000 characters starting with a newline and a terminal escape, holding 1e999 (Infinity once
    parsed, which JSON cannot carry): whether the event's content hash or its body fails on it, the 422 and
    the log quote where it is, escaped and cut."""
    event = business_event("shop-order-paid", **({"id": event_id} if event_id else {}))
    event["data"]["total"] = "TOTAL"
    hostile = '{"\\n\\u001b[2K' + "k" * 3000 + '": 1e999}'
    body = json.dumps(event).replace('"TOTAL"', hostile).encode()
    with written_lines(ingest_app.logger) as lines:
        answer = ingest.invoke(apigw_event(source="shop", body=body))

    assert (answer.status, answer.body["error"]["code"]) == (422, code)
    error = answer.body["error"]
    details = error.get("details", {})
    for text in [error["message"], *[v for v in details.values() if isinstance(v, str)], *details.get("errors", [])]:
        assert text.isprintable() and len(text) <= 1000, text[:200]
    assert "data.total.\\n\\x1b[2Kkkk" in error["message"] and error["message"].endswith(" chars)")
    [logged] = [e for e in check_lines(lines) if e.get("outcome")]
    assert logged["reason"] == error["message"]


def test_status_shows_outcomes_read_back_from_an_edited_file_safely(
    moto: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status` replays ``outcomes.json``: whatever it holds, each outcome is one harmless row."""
    queue = moto.client("sqs").create_queue(QueueName="requests")["QueueUrl"]
    outcomes = tmp_path / "outcomes.json"
    row = {
        "at": 0.0,
        "stage": "ingest",
        "outcome": "rejected",
        "source": "crm",
        "event_type": FAKE_ROW,
        "event_id": "\x1b[31mevt_\ud800",
        "status": 422,
        "code": "invalid_body",
        "reason": "\x1b[2J" + "x" * 5000,
    }
    outcomes.write_text(json.dumps([row]), encoding="utf-8")
    endpoints = tmp_path / "local.json"
    local = {
        "region": "eu-west-1",
        "apiUrl": moto.endpoint_url,  # something listens there: the file is not stale
        "awsEndpointUrl": moto.endpoint_url,
        "requestQueueUrl": queue,
        "outcomesFile": str(outcomes),
    }
    endpoints.write_text(json.dumps(local), encoding="utf-8")

    assert main(["status", "--endpoints", str(endpoints)]) == 0

    lines = printable_lines(capsys.readouterr().out)
    assert len(lines) == 5  # bridge, request queue, "recent outcomes", the header, one row
    assert "\\x1b[31mevt_\\ud800" in lines[-1] and len(lines[-1]) < 1200
