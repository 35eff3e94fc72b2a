"""An idempotency store with DynamoDB's latency and concurrency, for one benchmark figure only.

moto serves DynamoDB calls one after another in one process (about 7 ms each here), so a batch whose
records make three calls each waits for thirty in a row: the moto figures measure moto. DynamoDB
serves them side by side in single-digit milliseconds. To show what the dispatcher itself does with a
batch, ``ModelledPersistence`` keeps records in a dict and sleeps ``latency`` seconds in every call,
outside any lock, so calls overlap as they do on DynamoDB. It models the latency, not DynamoDB's
semantics: it serves fresh events (records that do not exist yet), which is all the benchmark sends.
The tests never use it; they run against moto.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

#: DynamoDB's typical latency for a small item in the same region.
DEFAULT_LATENCY_SECONDS = 0.005


class ConditionalCheckFailedException(Exception):
    def __init__(self, item: dict[str, Any]) -> None:
        super().__init__("The conditional request failed")
        self.response = {"Item": item}


class ModelledTable:
    """The three DynamoDB calls the ledger makes (``humanos_bridge.core.ledger``), on a dict."""

    class exceptions:
        ConditionalCheckFailedException = ConditionalCheckFailedException

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.items: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def put_item(self, *, Item: dict[str, Any], ConditionExpression: str = "", **_: Any) -> dict[str, Any]:
        time.sleep(self.latency)
        key = Item["id"]["S"]
        with self.lock:
            if "attribute_not_exists" in ConditionExpression and key in self.items:
                raise ConditionalCheckFailedException(self.items[key])
            self.items[key] = Item
        return {}

    def get_item(self, *, Key: dict[str, Any], **_: Any) -> dict[str, Any]:
        time.sleep(self.latency)
        with self.lock:
            item = self.items.get(Key["id"]["S"])
        return {"Item": item} if item is not None else {}


class ModelledPersistence(BasePersistenceLayer):
    """Powertools' idempotency records on a dict, each call taking ``latency`` seconds."""

    def __init__(self, latency: float = DEFAULT_LATENCY_SECONDS) -> None:
        super().__init__()
        self.latency = latency
        self.records: dict[str, DataRecord] = {}
        self.lock = threading.Lock()
        # What ``Ledger.beside`` reads from a DynamoDBPersistenceLayer.
        self.client = ModelledTable(latency)
        self.table_name, self.key_attr, self.expiry_attr = "modelled", "id", "expiration"

    def _get_record(self, idempotency_key: str) -> DataRecord:
        time.sleep(self.latency)
        with self.lock:
            record = self.records.get(idempotency_key)
        if record is None:
            raise IdempotencyItemNotFoundError
        return record

    def _put_record(self, data_record: DataRecord) -> None:
        time.sleep(self.latency)
        with self.lock:
            existing = self.records.get(data_record.idempotency_key)
            if existing is not None:
                raise IdempotencyItemAlreadyExistsError(old_data_record=existing)
            self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        time.sleep(self.latency)
        with self.lock:
            self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        time.sleep(self.latency)
        with self.lock:
            self.records.pop(data_record.idempotency_key, None)
