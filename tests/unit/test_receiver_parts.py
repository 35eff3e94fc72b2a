"""The receiver's other parts on their own: the webhook secret's shape, the publisher's answer check, the
answers table."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from humanos_bridge.core.errors import ConfigError, CredentialsError, DeliveryInProgress, SignatureError
from humanos_bridge.core.http_request import PayloadTooLargeError
from humanos_bridge.receive.decryption import DecryptionError, EnvelopeError
from humanos_bridge.receive.events import WebhookEventError, parse_event
from humanos_bridge.receive.publish import MAX_ENTRY_BYTES, Publisher, PublishError, detail_json
from humanos_bridge.receive.service import webhook_outcome
from humanos_bridge.receive.webhook_secret import WebhookSecrets, parse_webhook_secret
from tests.support.receiver import ENCRYPTION_SECRET, humanos_event

SHAPE = 'store JSON {"signatureSecret": "..." or ["<new>", "<old>"]'


# --- the webhook secret --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "signature_secrets"),
    [("sig-value-1", ("sig-value-1",)), (["sig-new-1", "sig-old-1"], ("sig-new-1", "sig-old-1"))],
)
def test_the_signature_secret_is_one_string_or_a_list_for_rotation(value: Any, signature_secrets: tuple[str]) -> None:
    text = json.dumps({"signatureSecret": value, "encryptionSecret": ENCRYPTION_SECRET, "encryptionSalt": "salt-1"})
    assert parse_webhook_secret("arn", text) == WebhookSecrets(signature_secrets, ENCRYPTION_SECRET, "salt-1")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{}", "'signatureSecret' and 'encryptionSecret' and 'encryptionSalt' are missing"),
        ({"signatureSecret": [], "encryptionSecret": ENCRYPTION_SECRET, "encryptionSalt": "s"}, "'signatureSecret'"),
        ({"signatureSecret": ["ok-1", ""], "encryptionSecret": ENCRYPTION_SECRET, "encryptionSalt": "s"}, "non-empty"),
        ({"signatureSecret": "sig-1", "encryptionSecret": "not base64!", "encryptionSalt": "s"}, "must be base64"),
        ({"signatureSecret": "sig-1", "encryptionSecret": ENCRYPTION_SECRET, "encryptionSalt": ""}, "encryptionSalt"),
        ("not json: super-secret-value", "is not JSON"),
    ],
)
def test_a_malformed_webhook_secret_names_the_field_never_a_value(value: Any, problem: str) -> None:
    """Retryable (503): Humanos keeps the event while the operator fixes the secret."""
    text = value if isinstance(value, str) else json.dumps(value)
    with pytest.raises(CredentialsError) as caught:
        parse_webhook_secret("arn:webhooks", text)
    assert problem in str(caught.value) and SHAPE in str(caught.value)
    assert caught.value.retryable is True
    for secret in ("sig-1", "ok-1", "super-secret-value", ENCRYPTION_SECRET):
        assert secret not in str(caught.value)


def test_the_secrets_repr_shows_lengths_only() -> None:
    secrets = WebhookSecrets(("sig-new-1", "sig-old"), ENCRYPTION_SECRET, "salt-1")
    assert repr(secrets) == (
        "WebhookSecrets(signature_secrets=[<9 chars>, <7 chars>], encryption_secret=<44 chars>, "
        "encryption_salt=<6 chars>)"
    )


# --- the publisher -------------------------------------------------------------------------------


class FailingEvents:
    """Fault injection no local server produces: PutEvents answering 200 with a failed entry (EventBridge does
    this for throttled or refused entries). A stand-in client, not a patch of boto3."""

    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer
        self.calls: list[dict[str, Any]] = []

    def put_events(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


EVENT = parse_event(json.dumps(humanos_event()).encode())


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}]},
            "ThrottlingException Rate exceeded",
        ),
        ({"FailedEntryCount": 0, "Entries": []}, "no EventId"),
        (ClientError({"Error": {"Code": "AccessDeniedException"}}, "PutEvents"), "answered AccessDeniedException"),
        (EndpointConnectionError(endpoint_url="https://events"), "EndpointConnectionError"),
    ],
)
def test_a_failed_entry_is_a_failure_like_an_exception(answer: Any, reason: str) -> None:
    """FailedEntryCount > 0 (PutEvents still answers 200) and exceptions alike: retryable PublishError, 503."""
    events = FailingEvents(answer)
    with pytest.raises(PublishError) as caught:
        Publisher(events, "bus-1").publish_event(EVENT, "k" * 64, None)
    assert reason in str(caught.value) and caught.value.retryable
    assert webhook_outcome(caught.value).status == 503
    [call] = events.calls
    assert call["Entries"][0]["EventBusName"] == "bus-1" and call["Entries"][0]["Source"] == "humanos.bridge"


def test_a_detail_over_eventbridges_limit_drops_the_payload_not_the_decision() -> None:
    detail = {"webhookKey": "k", "decision": {"action": "accept"}, "payload": {"blob": "é" * MAX_ENTRY_BYTES}}
    sent = json.loads(detail_json(detail))
    assert sent == {"webhookKey": "k", "decision": {"action": "accept"}, "payloadOmitted": True}


# --- the answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (PayloadTooLargeError("too big"), 413, "payload_too_large"),
        (SignatureError("stale", reason="timestamp_stale"), 401, "unauthorized"),
        (EnvelopeError("no tag"), 400, "invalid_envelope"),
        (DecryptionError("tag"), 400, "decryption_failed"),
        (WebhookEventError("user.id is missing"), 422, "invalid_webhook_event"),
        (DeliveryInProgress("first copy"), 503, "delivery_in_progress"),
        (PublishError("bus"), 503, "publish_failed"),
        (CredentialsError("webhook secret unreadable"), 503, "credentials_error"),
        (ConfigError("WEBHOOK_EVENT_BUS_NAME missing"), 500, "internal_error"),
        (KeyError("bug"), 503, "internal_error"),  # a bug of ours: Humanos retries, nothing is lost
    ],
)
def test_every_failure_has_its_answer_and_the_body_is_generic(error: Exception, status: int, code: str) -> None:
    outcome = webhook_outcome(error)
    assert (outcome.status, outcome.code) == (status, code)
    if status in (400, 422):
        assert str(error) not in outcome.message and str(error) in outcome.reason
