"""Humanos webhooks for the receiver's tests: built as Humanos builds them, valid by default, one change per test.

The encryption and the signature here are the tests' own (``hashlib.pbkdf2_hmac``, ``hmac`` and
``cryptography``'s AESGCM), independent of ``humanos_bridge.receive``; ``test_receiver_sdk.py`` proves that
the official SDK accepts what they make. ``ReceiverEnv`` is the receiver function on moto: the webhook
secret, the idempotency table, the bus, and a rule that copies every event on it to an SQS queue, which is
how the tests read what was published.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.support.bridge import ROOT, load_function

#: The example webhook secrets (events/apigw/README.md): never use them anywhere else.
SIGNATURE_SECRET = "humanos-webhook-signature-secret-example"
ENCRYPTION_SECRET = base64.b64encode(b"example-humanos-webhook-key-32b!").decode("ascii")
ENCRYPTION_SALT = "humanos-webhook-salt-example"
SAMPLE = "post-humanos-webhook-credential"
VERSIONS = ("2026-04-14", "2026-05-17", "2026-09-01")
BUS = "humanos-bridge-webhooks"
CONTACT = "+351912345678"
INTERNAL_ID = "crm:evt_crm_0001:marketing-consent-sms"


def key_for(secret: str = ENCRYPTION_SECRET, salt: str = ENCRYPTION_SALT) -> bytes:
    """PBKDF2-HMAC-SHA256, 10,000 iterations, 32 bytes, as Humanos derives the AES key."""
    return hashlib.pbkdf2_hmac("sha256", base64.b64decode(secret), salt.encode("utf-8"), 10_000, 32)


def encrypt(plaintext: bytes, *, secret: str = ENCRYPTION_SECRET, salt: str = ENCRYPTION_SALT) -> dict[str, str]:
    """The envelope ``{iv, data, tag}`` Humanos sends: AES-256-GCM, a fresh 12-byte IV, the tag apart."""
    iv = os.urandom(12)
    sealed = AESGCM(key_for(secret, salt)).encrypt(iv, plaintext, None)
    parts = {"iv": iv, "data": sealed[:-16], "tag": sealed[-16:]}
    return {name: base64.b64encode(value).decode("ascii") for name, value in parts.items()}


def envelope_body(payload: dict[str, Any] | bytes, **options: str) -> bytes:
    """The body of a webhook: the payload (JSON as ``JSON.stringify`` writes it) encrypted, then the envelope."""
    plaintext = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
    return json.dumps(encrypt(plaintext, **options), separators=(",", ":")).encode("ascii")


def signature(body: bytes, timestamp_ms: int, secret: str = SIGNATURE_SECRET) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"``, keyed with the secret as UTF-8 text."""
    return hmac.new(secret.encode("utf-8"), f"{timestamp_ms}.".encode() + body, hashlib.sha256).hexdigest()


def humanos_event(event_type: str = "credential", version: str | None = "2026-05-17", **changes: Any) -> dict[str, Any]:
    """A plaintext webhook event of ``event_type`` in ``version``'s shape (None: no api_version, the first shape).

    ``changes`` replace top-level fields (``None`` removes one).
    """
    legacy = version is None or version < "2026-05-17"
    date = "2026-05-20T09:14:58.000Z"
    event: dict[str, Any] = {
        "eventType": event_type,
        "requestId": "6650f0c2a1b2c3d4e5f60718",
        "issuerDid": "did:via:humanos:org:example",
        "internalId": INTERNAL_ID,
        "user": {"contact": CONTACT, "did" if legacy else "id": "did:via:user:3f9c2a", "internalId": "c_1001"},
    }
    if version is not None:
        event["api_version"] = version
    if legacy:
        event["decisionDate"] = date
    event.update(_fields(event_type, version, legacy, date))
    for name, value in changes.items():
        if value is None:
            event.pop(name, None)
        else:
            event[name] = value
    return event


def _fields(event_type: str, version: str | None, legacy: bool, date: str) -> dict[str, Any]:
    """The fields of ``event_type`` in ``version``'s shape."""
    latest = version is not None and version >= "2026-09-01"
    if event_type == "credential":
        credential: dict[str, Any] = {
            "id": "urn:via:credential:4b0f3c1e-8f7a-4b4a-9e55-2c1d0a9b7e61",
            "resourceType": "CONSENT",
            "status": "ACTIVE",
            "name": "Marketing consent (SMS)",
            "internalId": None,
        }
        if legacy:
            return {"action": "accept", "credential": {**credential, "proofs": [], "data": []}}
        credential.update(
            description="SMS marketing from Example Lda",
            tags=["marketing"],
            w3cCredential={"type": ["VerifiableCredential"], "issuer": "did:via:humanos:org:example"},
            decisions=[{"id": "dec_1", "contact": CONTACT, "accepted": True, "decidedAt": date}],
        )
        if latest:
            credential.update(executionsRemaining=3, evidence={}, proof={})
        return {"decision": {"action": "accept", "date": date}, "credential": credential}
    if event_type == "identity":
        identity = {"fullName": "Ana Silva", "birth": "1990-01-31", "docId": "12345678", "countryAlpha3": "PRT"}
        if legacy:
            decision: dict[str, Any] = {"success": True, "isFraud": False, "riskScore": 0.02}
        elif latest:
            decision = {"success": True, "date": date}
        else:
            decision = {"success": True, "isFraud": False, "date": date, "riskScore": 0.02}
        return {"identity": identity, "decision": decision}
    if event_type == "otp.failed":
        return {
            "otp": {
                "resendEndpoint": "https://api.humanos.id/request/resend/6650f0c2a1b2c3d4e5f60718?contact=%2B351912345678",
                "error": {"code": "UNDELIVERABLE", "message": "every SMS provider failed"},
            }
        }
    if event_type == "test":
        return {"message": "This is a test webhook from the Humanos dashboard"}
    return {}


def load_sample() -> dict[str, Any]:
    return json.loads((ROOT / "events" / "apigw" / f"{SAMPLE}.json").read_text(encoding="utf-8"))


def webhook_event(
    payload: dict[str, Any] | bytes | None = None,
    *,
    body: bytes | None = None,
    secret: str = SIGNATURE_SECRET,
    skew_seconds: float = 0,
    timestamp_ms: int | None = None,
    tamper: bytes | None = None,
    headers: dict[str, str | None] | None = None,
    encryption_secret: str = ENCRYPTION_SECRET,
    encryption_salt: str = ENCRYPTION_SALT,
) -> dict[str, Any]:
    """The API Gateway event of ``events/apigw/post-humanos-webhook-credential.json`` with a new webhook, signed now.

    ``payload`` is encrypted (default: the sample's own body, re-signed); ``body`` replaces the envelope as is;
    ``tamper`` replaces the body after signing; ``headers`` set (None: remove) headers after signing.
    """
    event = copy.deepcopy(load_sample())
    if body is None:
        if payload is None:
            body = event["body"].encode("utf-8")
        else:
            body = envelope_body(payload, secret=encryption_secret, salt=encryption_salt)
    stamp = int((time.time() + skew_seconds) * 1000) if timestamp_ms is None else timestamp_ms
    sent = tamper if tamper is not None else body
    event["headers"].update(
        {"x-timestamp": str(stamp), "x-signature": signature(body, stamp, secret), "content-length": str(len(sent))}
    )
    for name, value in (headers or {}).items():
        if value is None:
            event["headers"].pop(name, None)
        else:
            event["headers"][name] = value
    event["body"] = sent.decode("utf-8", "surrogateescape")
    event["requestContext"]["requestId"] = uuid.uuid4().hex[:16]
    event["requestContext"]["timeEpoch"] = int(time.time() * 1000)
    return event


def sign_event(event: dict[str, Any], secret: str = SIGNATURE_SECRET, *, skew_seconds: float = 0) -> dict[str, Any]:
    """``event`` (any body) with fresh signature headers over its body."""
    body = event["body"].encode("utf-8", "surrogateescape")
    stamp = int((time.time() + skew_seconds) * 1000)
    signed = copy.deepcopy(event)
    signed["headers"].update({"x-timestamp": str(stamp), "x-signature": signature(body, stamp, secret)})
    return signed


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class ReceiverEnv:
    """The receiver function on moto: its secret, the idempotency table, the bus and a queue fed by a rule on it."""

    moto: Any
    secret_arn: str
    queue_url: str
    bus: str
    module: Any

    def invoke(self, event: dict[str, Any]) -> Answer:
        from humanos_bridge_local.lambda_runtime import LocalContext

        response = self.module.lambda_handler(event, LocalContext(10, "receiver"))
        return Answer(response["statusCode"], json.loads(response["body"]), dict(response.get("headers") or {}))

    def published(self) -> list[dict[str, Any]]:
        """Every event that reached the bus (as EventBridge delivers it to the rule's SQS target), oldest first."""
        sqs = self.moto.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300)
            messages = got.get("Messages", [])
            if not messages:
                return sorted(found, key=lambda event: event["time"])
            found.extend(json.loads(message["Body"]) for message in messages)

    def put_secret(self, value: dict[str, Any]) -> None:
        """Store a new webhook secret and rebuild the service (its cache would keep the old one for the TTL)."""
        self.moto.client("secretsmanager").put_secret_value(SecretId=self.secret_arn, SecretString=json.dumps(value))
        self.module.service.cache_clear()


def webhook_secret(signature_secret: str | list[str] = SIGNATURE_SECRET) -> dict[str, Any]:
    return {
        "signatureSecret": signature_secret,
        "encryptionSecret": ENCRYPTION_SECRET,
        "encryptionSalt": ENCRYPTION_SALT,
    }


def create_bus_with_queue(moto: Any, bus: str = BUS) -> str:
    """The bus, and a rule on it sending every ``humanos.bridge`` event to a new SQS queue; the queue's URL."""
    events, sqs = moto.client("events"), moto.client("sqs")
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=f"published-{bus}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all-webhooks", EventBusName=bus, EventPattern=json.dumps({"source": ["humanos.bridge"]}))
    events.put_targets(Rule="all-webhooks", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return str(queue_url)


def resend_mapping(directory: Path, policy: dict[str, Any] | None) -> Path:
    """``mappings/bridge.json`` with the ``crm`` source's ``onOtpFailed`` set to ``policy`` (None: left out),
    written to ``directory``; the path, for ``MAPPING_FILE``."""
    document = json.loads((ROOT / "mappings" / "bridge.json").read_text(encoding="utf-8"))
    if policy is not None:
        document["sources"]["crm"]["onOtpFailed"] = policy
    path = directory / "bridge-otp.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def humanos_environment(moto: Any, base_url: str, api_key: str, signature_secret: str) -> dict[str, str]:
    """The Humanos secret on moto, and the variables that point the receiver's resends at ``base_url``."""
    secret = json.dumps({"apiKey": api_key, "signatureSecret": signature_secret})
    arn = moto.client("secretsmanager").create_secret(Name="humanos", SecretString=secret)["ARN"]
    return {"HUMANOS_BASE_URL": base_url, "HUMANOS_SECRET_ID": arn}


def create_receiver(
    moto: Any,
    monkeypatch: Any,
    *,
    bus: str = BUS,
    with_bus: bool = True,
    environment: dict[str, str] | None = None,
) -> ReceiverEnv:
    """The receiver's resources on moto and its environment; ``with_bus=False`` leaves the bus to be created later.
    ``environment`` adds or replaces variables (a mapping file, the Humanos ones of ``humanos_environment``)."""
    moto.client("dynamodb").create_table(
        TableName="idempotency",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    arn = moto.client("secretsmanager").create_secret(Name="webhooks", SecretString=json.dumps(webhook_secret()))["ARN"]
    queue_url = create_bus_with_queue(moto, bus) if with_bus else ""
    for key, value in {
        "AWS_ENDPOINT_URL": moto.endpoint_url,
        "WEBHOOK_SECRET_ID": arn,
        "WEBHOOK_EVENT_BUS_NAME": bus,
        "IDEMPOTENCY_TABLE": "idempotency",
        "MAPPING_FILE": str(ROOT / "mappings" / "bridge.json"),
        "POWERTOOLS_SERVICE_NAME": "humanos-bridge",
        "POWERTOOLS_METRICS_NAMESPACE": "HumanosBridge",
        **(environment or {}),
    }.items():
        monkeypatch.setenv(key, value)
    module = load_function("receiver")
    module.service.cache_clear()
    return ReceiverEnv(moto, arn, queue_url, bus, module)
