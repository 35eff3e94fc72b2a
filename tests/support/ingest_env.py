"""The ingest function's test environment: the bridge on moto and the sandbox, plus sender secrets.

Used by ``test_ingest*.py``. The mapping is ``mappings/bridge.json``, with ``hr`` made sure to name
``humanos-hmac`` authentication: the ingest function refuses to start while any source is unauthenticated.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from humanos_bridge_local.lambda_runtime import LocalContext
from tests.support.apigw import CRM_SECRET, HR_SECRET, SHOP_SECRET, response_json
from tests.support.bridge import ROOT, BridgeEnv, create_bridge, load_function

app = load_function("ingest")


@dataclass
class Answer:
    """A handler response, decoded."""

    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class IngestEnv:
    bridge: BridgeEnv
    sender_secret_arn: str
    monkeypatch: pytest.MonkeyPatch

    def invoke(self, event: dict[str, Any]) -> Answer:
        """Call the handler as Lambda would, with a fresh context."""
        response = app.lambda_handler(event, LocalContext(20, "ingest"))
        return Answer(response["statusCode"], response_json(response), dict(response.get("headers") or {}))

    def set_sender_secrets(self, secrets: dict[str, list[str]]) -> None:
        """Store new sender secrets and rebuild the service (its cache would keep the old ones for the TTL)."""
        self.bridge.moto.client("secretsmanager").put_secret_value(
            SecretId=self.sender_secret_arn, SecretString=json.dumps(secrets)
        )
        app.service.cache_clear()

    def queued(self) -> list[dict[str, Any]]:
        """Every message on the request queue (received with a long visibility, so each is seen once)."""
        messages: list[dict[str, Any]] = []
        while True:
            got = self.bridge.sqs.receive_message(
                QueueUrl=self.bridge.queue_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                VisibilityTimeout=300,
            ).get("Messages", [])
            if not got:
                return messages
            messages.extend(got)


def ingest_mapping() -> dict[str, Any]:
    mapping = json.loads((ROOT / "mappings" / "bridge.json").read_text(encoding="utf-8"))
    mapping["sources"]["hr"]["auth"] = {"scheme": "humanos-hmac"}
    return mapping


def create_ingest(
    moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, fifo: bool = False
) -> IngestEnv:
    bridge = create_bridge(moto, sandbox, monkeypatch, fifo=fifo)
    # The synchronous route's pacing is the subject of test_sync_rate_limit only; here it never makes a call wait.
    monkeypatch.setenv("SYNC_RATE_LIMIT_PER_MINUTE", "30000")
    bridge.with_mapping(monkeypatch, ingest_mapping(), tmp_path)
    secrets = {"crm": [CRM_SECRET], "shop-webhooks": [SHOP_SECRET], "hr": [HR_SECRET]}
    arn = moto.client("secretsmanager").create_secret(Name="senders", SecretString=json.dumps(secrets))["ARN"]
    monkeypatch.setenv("SENDER_SECRET_ID", arn)
    monkeypatch.setenv("HUMANOS_CALL_DEADLINE_SECONDS", "8")  # as template.yaml sets it for the ingest function
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    app.service.cache_clear()
    return IngestEnv(bridge, arn, monkeypatch)


@contextlib.contextmanager
def dispatching(env: IngestEnv) -> Iterator[ModuleType]:
    """The dispatcher function on the ingest function's bridge: what one queues, the other sends to Humanos.

    Yields the dispatcher's module (``env.bridge.deliver(module.lambda_handler)``); its cached dispatcher is
    built fresh and closed afterwards.
    """
    module = load_function("dispatcher")
    module.dispatcher.cache_clear()
    try:
        yield module
    finally:
        if module.dispatcher.cache_info().currsize:
            module.dispatcher().close()
        module.dispatcher.cache_clear()
