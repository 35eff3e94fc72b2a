"""Running Lambda handlers in-process, the way the Lambda service would.

``LocalContext`` is a Lambda context with a real deadline. ``SqsEventSource`` drives a handler from
an SQS queue the way Lambda's SQS event source mapping does: batches up to a size and a window,
records shaped exactly as Lambda delivers them, ``batchItemFailures`` left on the queue, the rest
deleted, and the whole batch left when the handler raises. Visibility changes made by the handler
and the queue's redrive policy are SQS's own business, as in AWS.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


class LocalContext:
    """A Lambda context whose remaining time counts down from ``timeout_seconds``."""

    def __init__(self, timeout_seconds: float = 30.0, function_name: str = "local-function") -> None:
        self._deadline = time.monotonic() + timeout_seconds
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


def lambda_sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One ``ReceiveMessage`` result as Lambda's SQS event source delivers it."""
    attributes = {k: v for k, v in (message.get("Attributes") or {}).items()}
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message.get("Body", "").encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


@dataclass
class BatchResult:
    """What one delivered batch came to."""

    received: int = 0
    deleted: int = 0
    failed_ids: list[str] = field(default_factory=list)
    #: Receipt handles of the messages left on the queue (to make them visible again in tests).
    failed_receipts: list[str] = field(default_factory=list)
    error: str | None = None


class SqsEventSource:
    """Lambda's SQS event source mapping, in-process: poll, invoke, delete what succeeded."""

    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Handler,
        *,
        batch_size: int = 10,
        window_seconds: float = 0.0,
        function_timeout: float = 30.0,
        function_name: str = "DispatcherFunction",
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.handler = handler
        self.batch_size = batch_size
        self.window_seconds = window_seconds
        self.function_timeout = function_timeout
        self.function_name = function_name
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self.queue_arn = attributes["QueueArn"]
        self.region = self.queue_arn.split(":")[3]

    def receive(self, wait_seconds: float = 0.0) -> list[dict[str, Any]]:
        """Up to ``batch_size`` messages, gathered for at most the batching window."""
        messages: list[dict[str, Any]] = []
        window_ends = time.monotonic() + self.window_seconds
        while len(messages) < self.batch_size:
            answer = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                WaitTimeSeconds=int(wait_seconds) if not messages else 0,
            )
            got = answer.get("Messages", [])
            messages.extend(got)
            if not got and (not messages or time.monotonic() >= window_ends):
                break
            if time.monotonic() >= window_ends and messages:
                break
        return messages

    def deliver(self, messages: list[dict[str, Any]]) -> BatchResult:
        """Invoke the handler with ``messages`` and settle them as Lambda does."""
        result = BatchResult(received=len(messages))
        if not messages:
            return result
        event = {"Records": [lambda_sqs_record(m, self.queue_arn, self.region) for m in messages]}
        try:
            response = self.handler(event, LocalContext(self.function_timeout, self.function_name))
        except Exception as exc:  # Lambda leaves the whole batch to reappear after its visibility timeout
            result.error = f"{type(exc).__name__}: {exc}"
            result.failed_ids = [m["MessageId"] for m in messages]
            result.failed_receipts = [m["ReceiptHandle"] for m in messages]
            return result
        failures = (response or {}).get("batchItemFailures", [])
        result.failed_ids = [f["itemIdentifier"] for f in failures]
        failed = set(result.failed_ids)
        result.failed_receipts = [m["ReceiptHandle"] for m in messages if m["MessageId"] in failed]
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        result.deleted = len(done)
        return result

    def poll_once(self, wait_seconds: float = 0.0) -> BatchResult:
        return self.deliver(self.receive(wait_seconds))
