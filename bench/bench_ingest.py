"""Ingest figures: the handler's own cost per accepted event (verification, parsing, mapping, log line).

``IngestService.accept_event`` runs on a real API Gateway request (``events/apigw/``), with the sender
secret already cached (as on every warm invocation). The queue call is replaced by a **stand-in SQS
client whose send_message only counts** (named ``..._standin_sqs`` below), so the figure is the
function's own work; the same path with the real enqueue to a moto server is measured in the same run
for comparison. Metrics are off (``metrics=None``); the per-request log line is written to /dev/null.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from moto.server import ThreadedMotoServer

from bench.timing import best_per_call
from humanos_bridge.http_request import InboundRequest
from humanos_bridge.ingest import IngestService
from humanos_bridge.mapping import parse_mapping
from humanos_bridge.sender_auth import HumanosHmacVerifier, StandardWebhooksVerifier
from humanos_bridge.sender_secrets import SenderSecrets

ROOT = Path(__file__).resolve().parent.parent
CRM_SECRET = "crm-sender-secret-example"
SHOP_SECRET = "whsec_ZXhhbXBsZS1zaG9wLXdlYmhvb2stc2lnbmluZy1rZXk="


class _CountingSqs:
    """Stand-in for the SQS client: send_message only counts (the figure excludes the queue call)."""

    def __init__(self) -> None:
        self.sent = 0

    def send_message(self, **kwargs: Any) -> dict[str, str]:
        self.sent += 1
        return {"MessageId": str(self.sent)}


def _request(name: str, scheme: str) -> InboundRequest:
    event = json.loads((ROOT / "events" / "apigw" / f"{name}.json").read_text(encoding="utf-8"))
    body = event["body"].encode()
    if scheme == "humanos-hmac":
        signed = HumanosHmacVerifier([CRM_SECRET]).sign(body)
    else:
        signed = StandardWebhooksVerifier([SHOP_SECRET]).sign_headers("msg_bench", body)
    event["headers"].update({k.lower(): v for k, v in signed.items()})
    return InboundRequest.from_apigw_v2(event)


def run() -> dict[str, Any]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        os.environ.setdefault(key, value)
    document = json.loads((ROOT / "mappings" / "bridge.json").read_text(encoding="utf-8"))
    document["sources"]["hr"]["auth"] = {"scheme": "humanos-hmac"}
    mapping = parse_mapping(document, file="bridge.json (hr signed)")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed in finally
    try:
        host, port = server.get_host_and_port()
        session = boto3.session.Session(region_name="eu-west-1")
        secretsmanager = session.client("secretsmanager", endpoint_url=f"http://{host}:{port}")
        sqs = session.client("sqs", endpoint_url=f"http://{host}:{port}")
        secret = {"crm": [CRM_SECRET], "shop-webhooks": [SHOP_SECRET]}
        arn = secretsmanager.create_secret(Name="senders", SecretString=json.dumps(secret))["ARN"]
        queue_url = sqs.create_queue(QueueName="requests")["QueueUrl"]
        secrets = SenderSecrets(arn, ttl_seconds=3600, boto3_client=secretsmanager)
        logger = Logger(service="bench-ingest", stream=devnull)
        standin = _CountingSqs()

        def service(client: Any) -> IngestService:
            return IngestService(mapping, client, queue_url=queue_url, sender_secrets=secrets, logger=logger)

        fast, real = service(standin), service(sqs)
        crm = _request("post-event-crm-humanos-hmac", "humanos-hmac")
        shop = _request("post-event-shop-standard-webhooks", "standard-webhooks")
        for svc in (fast, real):  # warm: secret fetched and cached, verifiers built
            assert svc.accept_event("crm", crm).status == 202
            assert svc.accept_event("shop", shop).status == 202
        hmac_s = best_per_call(lambda: fast.accept_event("crm", crm), 2000)
        webhooks_s = best_per_call(lambda: fast.accept_event("shop", shop), 2000)
        moto_s = best_per_call(lambda: real.accept_event("crm", crm), 100, rounds=3)
        fetches = secrets.fetch_count
    finally:
        devnull.close()
        server.stop()
    return {
        "accept_event_humanos_hmac_us_standin_sqs": round(hmac_s * 1e6, 1),
        "accept_event_standard_webhooks_us_standin_sqs": round(webhooks_s * 1e6, 1),
        "accept_event_humanos_hmac_us_with_moto_enqueue": round(moto_s * 1e6, 1),
        "own_cost_share_of_moto_enqueue_path": round(hmac_s / moto_s, 3),
        "sender_secret_fetches": fetches,
    }
