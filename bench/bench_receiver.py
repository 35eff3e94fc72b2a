"""Receiver figures: its own cost per Humanos webhook with the key cached, and the cost of one key derivation.

``ReceiverService.handle_webhook`` runs on a real API Gateway request (``events/apigw/post-humanos-webhook-
credential.json``: signature check, envelope, AES-256-GCM, the event's shape, the dedup key, the business
origin from the mapping, the log line), with the webhook secret already cached and the key already derived
(as on every warm invocation). The two AWS calls are replaced by **stand-in clients that only count**
(named ``..._standin_aws`` below): a DynamoDB client whose conditional put always succeeds, and an EventBridge
client whose PutEvents always takes the entry. The same path with the real claim, mark and PutEvents on a
moto server is measured in the same run for comparison (each webhook a distinct event, so none is a replay).

The key derivation (PBKDF2-HMAC-SHA256, 10,000 iterations) runs once per container and secret: it is timed
alone, and as part of a container's first webhook.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from moto.server import ThreadedMotoServer

from bench.timing import best_per_call
from humanos_bridge.core.http_request import InboundRequest
from humanos_bridge.core.replays import ReplayGuard
from humanos_bridge.mapping import load_mapping
from humanos_bridge.receive import decryption
from humanos_bridge.receive.dedup import Deduplicator
from humanos_bridge.receive.origin import OriginIndex
from humanos_bridge.receive.publish import Publisher
from humanos_bridge.receive.service import ReceiverService
from humanos_bridge.receive.webhook_auth import sign_webhook
from humanos_bridge.receive.webhook_secret import WebhookSecretStore

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "events" / "apigw" / "post-humanos-webhook-credential.json"
#: The example webhook secrets the sample is made with (events/apigw/README.md).
SIGNATURE_SECRET = "humanos-webhook-signature-secret-example"
ENCRYPTION_SECRET = "ZXhhbXBsZS1odW1hbm9zLXdlYmhvb2sta2V5LTMyYiE="
ENCRYPTION_SALT = "humanos-webhook-salt-example"
BUS = "bench-webhooks"


class _ConditionalCheckFailed(Exception):
    pass


class _CountingDynamoDB:
    """Stand-in for the DynamoDB client: every write only counts (a claim never finds an earlier one)."""

    class exceptions:
        ConditionalCheckFailedException = _ConditionalCheckFailed

    def __init__(self) -> None:
        self.writes = 0

    def _write(self, **kwargs: Any) -> dict[str, Any]:
        self.writes += 1
        return {}

    put_item = update_item = delete_item = _write


class _CountingEvents:
    """Stand-in for the EventBridge client: PutEvents only counts, and takes every entry."""

    def __init__(self) -> None:
        self.put = 0

    def put_events(self, **kwargs: Any) -> dict[str, Any]:
        self.put += 1
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(self.put)}]}


def _request(request_id: str | None = None) -> InboundRequest:
    """The sample webhook, signed now; with ``request_id``, a distinct event (re-encrypted) of the same shape."""
    event = json.loads(SAMPLE.read_text(encoding="utf-8"))
    body = event["body"].encode()
    if request_id is not None:
        envelope = decryption.parse_envelope(body)
        payload = json.loads(decryption.decrypt(envelope, ENCRYPTION_SECRET, ENCRYPTION_SALT))
        payload["requestId"] = request_id
        plaintext = json.dumps(payload, separators=(",", ":")).encode()
        body = decryption.encrypt_envelope(plaintext, ENCRYPTION_SECRET, ENCRYPTION_SALT)
    event["headers"].update(sign_webhook(SIGNATURE_SECRET, body), **{"content-length": str(len(body))})
    event["body"] = body.decode()
    return InboundRequest.from_apigw_v2(event)


def run() -> dict[str, Any]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        os.environ.setdefault(key, value)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed in finally
    try:
        host, port = server.get_host_and_port()
        session = boto3.session.Session(region_name="eu-west-1")

        def client(name: str) -> Any:
            return session.client(name, endpoint_url=f"http://{host}:{port}")

        secrets_client, dynamodb, events = client("secretsmanager"), client("dynamodb"), client("events")
        secret = {
            "signatureSecret": SIGNATURE_SECRET,
            "encryptionSecret": ENCRYPTION_SECRET,
            "encryptionSalt": ENCRYPTION_SALT,
        }
        arn = secrets_client.create_secret(Name="webhooks", SecretString=json.dumps(secret))["ARN"]
        dynamodb.create_table(
            TableName="idempotency",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        events.create_event_bus(Name=BUS)
        secrets = WebhookSecretStore(arn, ttl_seconds=3600, boto3_client=secrets_client)
        origins = OriginIndex.from_mapping(load_mapping(ROOT / "mappings" / "bridge.json"))
        logger = Logger(service="bench-receiver", stream=devnull)

        def service(table: Any, bus: Any) -> ReceiverService:
            dedup = Deduplicator(ReplayGuard(table, "idempotency", logger=logger))
            return ReceiverService(secrets, Publisher(bus, BUS), dedup, origins=origins, logger=logger)

        fast, real = service(_CountingDynamoDB(), _CountingEvents()), service(dynamodb, events)
        sample = _request()
        # Fails here, not inside the timing, if the sample, its secrets or the service disagree.
        assert fast.handle_webhook(sample).status == 200
        cached_s = best_per_call(lambda: fast.handle_webhook(sample), 2000)

        def first_of_a_container() -> None:
            decryption.cipher_for.cache_clear()
            fast.handle_webhook(sample)

        first_s = best_per_call(first_of_a_container, 20)
        derive_s = best_per_call(lambda: decryption.derive_key(ENCRYPTION_SECRET, ENCRYPTION_SALT), 50)
        distinct = iter([_request(uuid.uuid4().hex) for _ in range(3 * 100 + 1)])
        assert real.handle_webhook(next(distinct)).body == {"status": "published"}
        moto_s = best_per_call(lambda: real.handle_webhook(next(distinct)), 100, rounds=3)
        replay = _request(uuid.uuid4().hex)
        real.handle_webhook(replay)
        replay_s = best_per_call(lambda: real.handle_webhook(replay), 100, rounds=3)
        fetches = secrets.fetch_count
    finally:
        devnull.close()
        server.stop()
    return {
        "handle_webhook_us_key_cached_standin_aws": round(cached_s * 1e6, 1),
        "handle_webhook_us_first_in_container_standin_aws": round(first_s * 1e6, 1),
        "key_derivation_us": round(derive_s * 1e6, 1),
        "key_derivation_per_cached_webhook": round(derive_s / cached_s, 1),
        "handle_webhook_us_with_moto_claim_publish_mark": round(moto_s * 1e6, 1),
        "handle_webhook_replay_us_with_moto": round(replay_s * 1e6, 1),
        "own_cost_share_of_moto_path": round(cached_s / moto_s, 3),
        "webhook_secret_fetches": fetches,
    }
