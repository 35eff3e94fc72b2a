"""A complete bridge environment on moto (server mode) and the Humanos sandbox, for tests.

``BridgeEnv`` creates the queue, its dead-letter queue (with a redrive policy), the idempotency
table and the Humanos secret, sets the environment the functions read, and offers small verbs
for tests: ``enqueue`` an event, ``deliver`` a batch through the dispatcher handler like
Lambda's event source would, read the dead-letter queue.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from humanos_bridge.core.client import reset_default_pool
from humanos_bridge.mapping import load_mapping_cached
from humanos_bridge_local.lambda_runtime import BatchResult, SqsEventSource

ROOT = Path(__file__).resolve().parents[2]


def load_function(name: str) -> ModuleType:
    """Import ``functions/<name>/app.py`` under a unique module name (every function has an app.py)."""
    module_name = f"function_{name}_app"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "functions" / name / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def business_event(name: str, **overrides: Any) -> dict[str, Any]:
    """A sample business event from ``events/business/``, with top-level fields replaced."""
    event = json.loads((ROOT / "events" / "business" / f"{name}.json").read_text(encoding="utf-8"))
    event = copy.deepcopy(event)
    event.update(overrides)
    return event


@dataclass
class BridgeEnv:
    moto: Any
    sandbox: Any
    queue_url: str
    dlq_url: str
    table: str
    secret_arn: str
    fifo: bool = False

    @property
    def sqs(self) -> Any:
        return self.moto.client("sqs")

    def enqueue(
        self, event: Any, *, source: str | None = "crm", group: str | None = None, raw: str | None = None
    ) -> str:
        attributes = {"source": {"DataType": "String", "StringValue": source}} if source else {}
        extra: dict[str, Any] = {}
        if self.fifo:
            extra = {
                "MessageGroupId": group or "default",
                "MessageDeduplicationId": uuid.uuid4().hex,
            }
        body = raw if raw is not None else json.dumps(event)
        answer = self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body, MessageAttributes=attributes, **extra)
        return str(answer["MessageId"])

    def event_source(self, handler: Any, batch_size: int = 10) -> SqsEventSource:
        return SqsEventSource(self.sqs, self.queue_url, handler, batch_size=batch_size, function_timeout=30)

    def deliver(self, handler: Any, batch_size: int = 10) -> BatchResult:
        return self.event_source(handler, batch_size).poll_once()

    def dead_letters(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=60
            ).get("Messages", [])
            if not got:
                return messages
            messages.extend(got)

    def make_visible(self, result: BatchResult) -> None:
        """Pretend the back-off has passed: the batch's failed messages become visible again."""
        for receipt in result.failed_receipts:
            self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)

    def with_mapping(self, monkeypatch: Any, mapping: dict[str, Any], tmp_path: Path) -> None:
        """Use another mapping file (written to ``tmp_path``) for this test."""
        path = tmp_path / "mapping.json"
        path.write_text(json.dumps(mapping), encoding="utf-8")
        monkeypatch.setenv("MAPPING_FILE", str(path))
        load_mapping_cached.cache_clear()

    def creations(self) -> list[Any]:
        """Every POST /request the sandbox answered with 201."""
        return [c for c in self.sandbox.calls if c.method == "POST" and c.path == "/request" and c.status == 201]


def create_bridge(moto: Any, sandbox: Any, monkeypatch: Any, *, fifo: bool = False, max_receive: int = 5) -> BridgeEnv:
    sqs = moto.client("sqs")
    suffix = ".fifo" if fifo else ""
    fifo_attrs = {"FifoQueue": "true"} if fifo else {}
    dlq_url = sqs.create_queue(QueueName=f"dead-letters{suffix}", Attributes=fifo_attrs)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)})
    queue_url = sqs.create_queue(
        QueueName=f"requests{suffix}", Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "180", **fifo_attrs}
    )["QueueUrl"]
    moto.client("dynamodb").create_table(
        TableName="idempotency",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    secret = json.dumps({"apiKey": sandbox.api_key, "signatureSecret": sandbox.signature_secret})
    secret_arn = moto.client("secretsmanager").create_secret(Name="humanos", SecretString=secret)["ARN"]
    env = {
        "AWS_ENDPOINT_URL": moto.endpoint_url,
        "HUMANOS_BASE_URL": sandbox.base_url,
        "HUMANOS_SECRET_ID": secret_arn,
        "MAPPING_FILE": str(ROOT / "mappings" / "bridge.json"),
        "IDEMPOTENCY_TABLE": "idempotency",
        "REQUEST_QUEUE_URL": queue_url,
        "DEAD_LETTER_QUEUE_URL": dlq_url,
        "RATE_LIMIT_PER_MINUTE": "60000",
        "HUMANOS_READ_TIMEOUT": "2",
        "POWERTOOLS_SERVICE_NAME": "humanos-bridge",
        "POWERTOOLS_METRICS_NAMESPACE": "HumanosBridge",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    load_mapping_cached.cache_clear()
    reset_default_pool()
    return BridgeEnv(moto, sandbox, queue_url, dlq_url, "idempotency", secret_arn, fifo)


@contextlib.contextmanager
def dispatcher_bridge(
    moto: Any, sandbox: Any, monkeypatch: Any, *, fifo: bool = False, single_attempts: bool = False
) -> Iterator[BridgeEnv]:
    """A bridge for the dispatcher function: its cached dispatcher is built fresh and closed afterwards.

    ``single_attempts`` makes the client try each call once, so every injected fault reaches the dispatcher.
    """
    app = load_function("dispatcher")
    env = create_bridge(moto, sandbox, monkeypatch, fifo=fifo)
    if single_attempts:
        monkeypatch.setenv("HUMANOS_MAX_ATTEMPTS", "1")
    app.dispatcher.cache_clear()
    try:
        yield env
    finally:
        if app.dispatcher.cache_info().currsize:
            app.dispatcher().close()
        app.dispatcher.cache_clear()
