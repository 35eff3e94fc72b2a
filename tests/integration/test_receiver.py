"""The receiver function through ``lambda_handler`` with API Gateway HTTP API events: Humanos's webhooks in,
events on EventBridge out.

Real parts: moto in server mode (Secrets Manager, DynamoDB, EventBridge, and an SQS queue that a rule on the
bus feeds, which is how these tests read what was published), reached over HTTP by real boto3 clients.
Webhooks are encrypted and signed as Humanos does it, by ``tests/support/receiver.py``.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from humanos_bridge.receive import decryption
from humanos_bridge_local.cfn import load_template
from humanos_bridge_local.http_gateway import HttpGateway, routes_from_events
from humanos_bridge_local.lambda_runtime import LocalContext
from tests.support.bridge import ROOT
from tests.support.logs import check_lines, written_lines
from tests.support.receiver import (
    CONTACT,
    ENCRYPTION_SECRET,
    INTERNAL_ID,
    SIGNATURE_SECRET,
    VERSIONS,
    ReceiverEnv,
    create_bus_with_queue,
    create_receiver,
    envelope_body,
    humanos_event,
    load_sample,
    sign_event,
    signature,
    webhook_event,
    webhook_secret,
)

UNAUTHORIZED = {"error": {"code": "unauthorized", "message": "request signature could not be verified"}}
EVENT_TYPES = ("credential", "identity", "otp.failed", "test")
#: The detail-type each sample event type is published as (the samples accept and verify).
DETAIL_TYPES = {
    "credential": "Credential Accepted",
    "identity": "Identity Verified",
    "otp.failed": "OTP Failed",
    "test": "Test",
}
BUSINESS = {"source": "crm", "eventId": "evt_crm_0001", "rule": "marketing-consent-sms"}


@pytest.fixture
def receiver(moto: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[ReceiverEnv]:
    env = create_receiver(moto, monkeypatch)
    yield env
    env.module.service.cache_clear()


# --- published -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [None, *VERSIONS])
@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_each_event_type_in_each_version_is_published_once(
    receiver: ReceiverEnv, event_type: str, version: str | None
) -> None:
    """Given a webhook of each type in each API version's shape (None: no api_version, the first shape), when
    it arrives, then it answers 200 and one event is on the bus with the detail a consumer routes on."""
    payload = humanos_event(event_type, version)

    answer = receiver.invoke(webhook_event(payload))

    assert (answer.status, answer.body) == (200, {"status": "published"})
    [published] = receiver.published()
    assert published["source"] == "humanos.bridge"
    assert published["detail-type"] == DETAIL_TYPES[event_type]
    detail = published["detail"]
    assert detail["payload"] == payload, "the decrypted webhook travels as Humanos sent it"
    assert detail["eventType"] == event_type
    assert detail["requestId"] == payload["requestId"]
    assert detail["internalId"] == INTERNAL_ID
    assert detail["business"] == BUSINESS, "the business event the request was made for"
    assert len(detail["webhookKey"]) == 64
    assert detail.get("apiVersion") == version


@pytest.mark.parametrize("version", [None, *VERSIONS])
def test_the_decision_reads_the_same_in_every_version(receiver: ReceiverEnv, version: str | None) -> None:
    """A rejected credential and a failed identity check: the detail-type says so, and ``decision`` has the same
    fields whichever shape Humanos used (``action`` top-level or in ``decision``, ``decisionDate`` or ``date``)."""
    legacy = version is None or version < "2026-05-17"
    date = "2026-05-20T09:14:58.000Z"
    if legacy:
        rejected = humanos_event("credential", version, action="reject")
        failed = humanos_event("identity", version, decision={"success": False, "isFraud": True, "riskScore": 0.9})
    else:
        rejected = humanos_event("credential", version, decision={"action": "reject", "date": date})
        failed = humanos_event("identity", version, decision={"success": False, "isFraud": True, "date": date})

    assert receiver.invoke(webhook_event(rejected)).status == 200
    assert receiver.invoke(webhook_event(failed)).status == 200

    credential, identity = receiver.published()
    assert credential["detail-type"] == "Credential Rejected"
    assert credential["detail"]["decision"] == {"action": "reject", "accepted": False, "date": date}
    assert credential["detail"]["credentialId"] == rejected["credential"]["id"]
    assert identity["detail-type"] == "Identity Failed"
    assert identity["detail"]["decision"] == {"success": False, "isFraud": True, "date": date}


def test_the_sample_event_in_events_is_published(receiver: ReceiverEnv) -> None:
    """events/apigw/post-humanos-webhook-credential.json, re-signed now: its body decrypts with the example secrets."""
    assert receiver.invoke(webhook_event()).status == 200
    [published] = receiver.published()
    assert published["detail-type"] == "Credential Accepted"
    assert published["detail"]["business"] == BUSINESS


def test_a_custom_internal_id_is_published_without_a_business_origin(receiver: ReceiverEnv) -> None:
    """An internalId the mapping's rules do not send by default (an employee id) tells no business event."""
    assert receiver.invoke(webhook_event(humanos_event(internalId="employee-4711"))).status == 200
    [published] = receiver.published()
    assert published["detail"]["internalId"] == "employee-4711"
    assert "business" not in published["detail"]


def test_non_ascii_and_a_lone_surrogate_in_the_payload_reach_the_bus(receiver: ReceiverEnv) -> None:
    """JSON may carry "\\ud800", which has no UTF-8 form: it is published escaped, the rest as it was."""
    payload = humanos_event("identity")
    payload["identity"]["fullName"] = "Zoë Ærø"
    raw = json.dumps(payload, ensure_ascii=False).replace("Zoë", "Zoë \\ud800").encode()

    assert receiver.invoke(webhook_event(raw)).status == 200
    [published] = receiver.published()
    assert published["detail"]["payload"]["identity"]["fullName"] == "Zoë \ud800 Ærø"


# --- refused: signature (401) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"skew_seconds": -301}, id="stale"),
        pytest.param({"skew_seconds": 301}, id="future"),
        pytest.param({"secret": "someone-elses-secret"}, id="wrong-secret"),
        pytest.param({"headers": {"x-signature": None}}, id="no-signature"),
        pytest.param({"headers": {"x-timestamp": None}}, id="no-timestamp"),
        pytest.param({"headers": {"x-signature": "not-hex"}}, id="garbled-signature"),
        pytest.param({"headers": {"x-timestamp": "yesterday"}}, id="garbled-timestamp"),
    ],
)
def test_every_signature_failure_gets_one_answer_and_publishes_nothing(
    receiver: ReceiverEnv, overrides: dict[str, Any]
) -> None:
    """401 with the same body whatever failed, so a caller learns nothing about which check it was."""
    answer = receiver.invoke(webhook_event(humanos_event(), **overrides))
    assert (answer.status, answer.body) == (401, UNAUTHORIZED)
    assert receiver.published() == []


def test_a_body_changed_after_signing_is_refused(receiver: ReceiverEnv) -> None:
    """The signature covers the raw envelope: another envelope (even a valid one) under it is refused."""
    other = envelope_body(humanos_event(internalId="someone-else"))
    answer = receiver.invoke(webhook_event(humanos_event(), tamper=other))
    assert (answer.status, answer.body) == (401, UNAUTHORIZED)
    assert receiver.published() == []


def test_the_log_says_which_signature_check_failed(receiver: ReceiverEnv) -> None:
    """The caller gets one answer; the operator's log line names the check and how far the clock was off."""
    with written_lines(receiver.module.logger) as lines:
        receiver.invoke(webhook_event(humanos_event(), skew_seconds=-400))
    [entry] = [e for e in check_lines(lines) if e.get("message") == "webhook rejected"]
    assert entry["status"] == 401 and str(entry["reason"]).startswith("timestamp_stale: timestamp 400 s older")


# --- refused: envelope and decryption (400) --------------------------------------------------------


def _envelope(**changes: str) -> bytes:
    envelope = json.loads(envelope_body(humanos_event()))
    envelope.update(changes)
    return json.dumps(envelope, separators=(",", ":")).encode()


def _flipped(value: str, index: int = 0) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("part", ["data", "tag", "iv"])
def test_a_tampered_ciphertext_tag_or_iv_signed_again_is_refused_with_400(receiver: ReceiverEnv, part: str) -> None:
    """Given an envelope altered and then signed with the right secret (a sender holding the signature secret but
    not the encryption key), the tag does not verify: 400, nothing published."""
    envelope = json.loads(envelope_body(humanos_event()))
    envelope[part] = _flipped(envelope[part])

    answer = receiver.invoke(webhook_event(body=json.dumps(envelope).encode()))

    assert answer.status == 400 and answer.body["error"]["code"] == "decryption_failed"
    assert receiver.published() == []


def test_a_webhook_encrypted_with_another_secret_is_refused_with_400(receiver: ReceiverEnv) -> None:
    """The dashboard's encryption secret was rotated and ours was not: the log says which secret to check."""
    other = base64.b64encode(b"another-32-byte-encryption-key!!").decode()
    with written_lines(receiver.module.logger) as lines:
        answer = receiver.invoke(webhook_event(humanos_event(), encryption_secret=other))
    assert answer.status == 400 and receiver.published() == []
    [entry] = [e for e in check_lines(lines) if e.get("message") == "webhook rejected"]
    assert "encryptionSecret or encryptionSalt" in str(entry["reason"])


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b'["iv","data","tag"]', id="not-an-object"),
        pytest.param(_envelope(tag="AAAA"), id="short-tag"),
        pytest.param(_envelope(iv="AAAA"), id="short-iv"),
        pytest.param(_envelope(data="not base64!"), id="data-not-base64"),
        pytest.param(b'{"iv":"AAAAAAAAAAAAAAAA","data":""}', id="no-tag"),
    ],
)
def test_a_signed_body_that_is_no_envelope_is_refused_with_400(receiver: ReceiverEnv, body: bytes) -> None:
    answer = receiver.invoke(webhook_event(body=body))
    assert answer.status == 400 and answer.body["error"]["code"] == "invalid_envelope"
    assert receiver.published() == []


# --- refused: the event's shape (422) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(humanos_event(eventType="request.expired"), "eventType 'request.expired'", id="unknown-type"),
        pytest.param(
            humanos_event(user={"contact": CONTACT, "did": "did:via:user:1"}), "user.id is missing", id="did-in-0517"
        ),
        pytest.param(humanos_event(version=None, decisionDate=None), "decisionDate is missing", id="no-date-0414"),
        pytest.param(humanos_event(decision={"action": "accept"}), "decision.date is missing", id="no-date-0517"),
        pytest.param(
            humanos_event(version="2026-09-01", credential={"id": "urn:via:credential:1", "status": "REJECTED"}),
            "credential.status must be one of ACTIVE, DRAFT, INACTIVE",
            id="status-0901",
        ),
        pytest.param(humanos_event(api_version="17 May 2026"), "api_version must be a date", id="bad-version"),
        pytest.param(humanos_event("identity", "2026-05-17", decision=None), "decision is missing", id="no-decision"),
    ],
)
def test_an_event_outside_the_documented_shapes_is_refused_with_422_and_the_field_logged(
    receiver: ReceiverEnv, payload: dict[str, Any], reason: str
) -> None:
    """Signed and decrypted, so from Humanos: our model disagrees. 422, a generic body, the field in the log."""
    with written_lines(receiver.module.logger) as lines:
        answer = receiver.invoke(webhook_event(payload))
    assert answer.status == 422 and answer.body["error"]["code"] == "invalid_webhook_event"
    assert receiver.published() == []
    [entry] = [e for e in check_lines(lines) if e.get("message") == "webhook rejected"]
    assert reason in str(entry["reason"])


def test_a_body_too_large_is_refused_before_any_work(receiver: ReceiverEnv) -> None:
    """413 above 256 KiB, whether or not it is signed."""
    answer = receiver.invoke(webhook_event(body=b"{" + b" " * (256 * 1024) + b"}"))
    assert answer.status == 413 and receiver.published() == []


# --- exactly once ----------------------------------------------------------------------------------


def test_a_replay_answers_200_and_publishes_nothing(receiver: ReceiverEnv) -> None:
    """The very same delivery twice (a copy), then Humanos's retry (re-encrypted: a new IV; signed afresh)."""
    payload = humanos_event()
    first = webhook_event(payload)

    assert receiver.invoke(first).body == {"status": "published"}
    assert receiver.invoke(first).body == {"status": "replayed"}
    retry = receiver.invoke(webhook_event(payload))

    assert (retry.status, retry.body) == (200, {"status": "replayed"})
    assert len(receiver.published()) == 1


def test_another_decision_on_the_same_request_is_published(receiver: ReceiverEnv) -> None:
    """Two credentials of one request, and the same credential for another contact, are three events."""
    second = humanos_event(credential={"id": "urn:via:credential:other", "status": "ACTIVE"})
    other_contact = humanos_event(user={"contact": "+351918888888", "id": "did:via:user:9"})
    for payload in (humanos_event(), second, other_contact):
        assert receiver.invoke(webhook_event(payload)).body == {"status": "published"}
    assert len({event["detail"]["webhookKey"] for event in receiver.published()}) == 3


def test_eventbridge_failing_answers_503_and_the_retry_publishes_exactly_once(
    moto: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a bus that does not exist yet (EventBridge refuses PutEvents for real), the webhook gets 503 with
    Retry-After and nothing is published; once the bus exists, Humanos's retry publishes it, once."""
    receiver = create_receiver(moto, monkeypatch, with_bus=False)
    payload = humanos_event("identity")
    try:
        with written_lines(receiver.module.logger) as lines:
            failed = receiver.invoke(webhook_event(payload))
        assert failed.status == 503 and failed.headers.get("Retry-After") == "5"
        assert failed.body["error"]["code"] == "publish_failed"
        [entry] = [e for e in check_lines(lines) if e.get("message") == "webhook failed"]
        assert "ResourceNotFoundException" in str(entry["reason"])

        receiver.queue_url = create_bus_with_queue(moto)
        retried = receiver.invoke(webhook_event(payload))
        again = receiver.invoke(webhook_event(payload))

        assert retried.body == {"status": "published"} and again.body == {"status": "replayed"}
        [published] = receiver.published()
        assert published["detail-type"] == "Identity Verified"
    finally:
        receiver.module.service.cache_clear()


def test_an_unfilled_webhook_secret_answers_503_so_humanos_retries(receiver: ReceiverEnv) -> None:
    """The stack's placeholder ``{}``: the operator has not put the dashboard's values yet. Not a 4xx: Humanos
    keeps the event and retries; then it is published."""
    receiver.put_secret({})
    waiting = receiver.invoke(webhook_event(humanos_event()))
    assert waiting.status == 503 and waiting.headers.get("Retry-After") == "60"

    receiver.put_secret(webhook_secret())
    assert receiver.invoke(webhook_event(humanos_event())).status == 200
    assert len(receiver.published()) == 1


# --- rotation --------------------------------------------------------------------------------------


def test_rotating_the_signature_secret_refuses_no_webhook(receiver: ReceiverEnv) -> None:
    """Put the new secret first (both listed), rotate in the dashboard, then drop the old one: a webhook signed
    with whichever secret Humanos uses at each step is published."""
    new = "humanos-webhook-signature-secret-rotated"
    steps = [
        (webhook_secret(SIGNATURE_SECRET), [SIGNATURE_SECRET]),  # before
        (webhook_secret([new, SIGNATURE_SECRET]), [SIGNATURE_SECRET, new]),  # during: either one
        (webhook_secret([new]), [new]),  # after
    ]
    sent = 0
    for stored, signers in steps:
        receiver.put_secret(stored)
        for signer in signers:
            sent += 1
            answer = receiver.invoke(webhook_event(humanos_event(requestId=f"req-{sent}"), secret=signer))
            assert answer.status == 200, (stored["signatureSecret"], signer)
    assert len(receiver.published()) == sent
    old = receiver.invoke(webhook_event(humanos_event(requestId="req-late"), secret=SIGNATURE_SECRET))
    assert old.status == 401, "once dropped, the old secret signs nothing"


def test_the_key_is_derived_once_per_container(receiver: ReceiverEnv) -> None:
    """PBKDF2 runs for the first webhook only; later ones reuse the cached key."""
    decryption.cipher_for.cache_clear()
    for number in range(3):
        assert receiver.invoke(webhook_event(humanos_event(requestId=f"req-{number}"))).status == 200
    info = decryption.cipher_for.cache_info()
    assert (info.misses, info.hits) == (1, 2)


# --- nothing leaked --------------------------------------------------------------------------------


def test_no_contact_identity_data_or_secret_reaches_the_log(receiver: ReceiverEnv) -> None:
    """Published, replayed, refused: every line is masked JSON without the payload's personal data or a secret."""
    payload = humanos_event("identity")
    with written_lines(receiver.module.logger) as lines:
        receiver.invoke(webhook_event(payload))
        receiver.invoke(webhook_event(payload))
        receiver.invoke(webhook_event(payload, secret="wrong"))
        receiver.invoke(webhook_event(humanos_event(eventType="unknown")))
    text = "\n".join(lines)
    assert len(check_lines(lines)) >= 4
    for secret in (CONTACT, "351912345678", "Ana Silva", "1990-01-31", SIGNATURE_SECRET, ENCRYPTION_SECRET):
        assert secret not in text
    # What is no secret stays readable: the API version is a date, not a phone number to mask.
    published = json.loads(next(line for line in lines if '"webhook published"' in line))
    assert published["apiVersion"] == payload["api_version"]


def test_an_unknown_route_is_404(receiver: ReceiverEnv) -> None:
    event = load_sample()
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/humanos/other"
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /humanos/other"
    answer = receiver.invoke(sign_event(event))
    assert answer.status == 404


# --- over HTTP -------------------------------------------------------------------------------------


def test_a_webhook_posted_over_http_through_the_gateway_is_published_once(receiver: ReceiverEnv) -> None:
    """Humanos's POST as bytes on a socket: the local HTTP API (routes from template.yaml's ReceiverFunction)
    builds the API Gateway event, the handler verifies the raw body it received; a second POST is a replay."""
    events = load_template(ROOT / "template.yaml")["Resources"]["ReceiverFunction"]["Properties"]["Events"]
    gateway = HttpGateway(
        routes_from_events(events), lambda event: receiver.module.lambda_handler(event, LocalContext(10, "receiver"))
    ).start()
    body = envelope_body(humanos_event("otp.failed"))
    stamp = int(time.time() * 1000)
    headers = {"Content-Type": "application/json", "X-Timestamp": str(stamp), "X-Signature": signature(body, stamp)}
    try:
        http = urllib3.PoolManager()
        url = f"{gateway.base_url}/humanos/webhooks"
        first = http.request("POST", url, body=body, headers=headers)
        second = http.request("POST", url, body=body, headers=headers)
    finally:
        gateway.stop()

    assert (first.status, json.loads(first.data)) == (200, {"status": "published"})
    assert (second.status, json.loads(second.data)) == (200, {"status": "replayed"})
    assert [event["detail-type"] for event in receiver.published()] == ["OTP Failed"]
