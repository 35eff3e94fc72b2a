"""What the bridge remembers about its own calls to Humanos, beside the idempotency records.

Two kinds of item in the idempotency table (same ``id`` key and ``expiration`` TTL as Powertools'
records, so no new table, index or permission):

- ``attempt#<SHA-256 of the idempotency key>``: written before the first ``POST /request`` for an event, whichever
  message, redrive or route carries it; holds when that first attempt started. Its presence is the
  one fact that says "an earlier attempt may have reached Humanos", so a look-up is needed.
- ``claim#<Humanos request id>``: the SHA-256 of the idempotency key of the one event a Humanos request
  belongs to. Written with a condition, so two events can never both take one request.

Keys are stored hashed, as Powertools stores its own: a custom idempotency key may quote event data.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

ATTEMPT, CLAIM = "attempt#", "claim#"


class Ledger:
    """Attempts and claims in a DynamoDB table (the idempotency table)."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        ttl_seconds: int,
        key_attr: str = "id",
        expiry_attr: str = "expiration",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.ttl_seconds = ttl_seconds
        self.key_attr = key_attr
        self.expiry_attr = expiry_attr
        self._clock = clock

    @classmethod
    def beside(cls, persistence: Any, *, ttl_seconds: int) -> Ledger:
        """The ledger in the table of a Powertools ``DynamoDBPersistenceLayer``."""
        return cls(
            persistence.client,
            persistence.table_name,
            ttl_seconds=ttl_seconds,
            key_attr=persistence.key_attr,
            expiry_attr=persistence.expiry_attr,
        )

    def record_attempt(self, key: str) -> int | None:
        """Note that an attempt for ``key`` starts now. Returns when an earlier one started (Unix ms), or None."""
        now = self._clock()
        now_ms = int(now * 1000)
        existing = self._put_new(ATTEMPT + _digest(key), {"firstAttemptAt": {"N": str(now_ms)}}, now)
        if existing is None:
            return None
        return int(existing.get("firstAttemptAt", {}).get("N", now_ms))

    def claim(self, request_id: str, key: str) -> bool:
        """Make ``request_id`` the request of the event ``key``; False when another event already owns it."""
        existing = self._put_new(CLAIM + request_id, {"key": {"S": _digest(key)}}, self._clock())
        return existing is None or existing.get("key", {}).get("S") == _digest(key)

    def owned_by(self, request_id: str, key: str) -> bool | None:
        """Whether the event ``key`` owns ``request_id``: True, False (another event does), None (unclaimed)."""
        item = self.dynamodb.get_item(
            TableName=self.table, Key={self.key_attr: {"S": CLAIM + request_id}}, ConsistentRead=True
        ).get("Item")
        return None if item is None else item.get("key", {}).get("S") == _digest(key)

    def _put_new(self, item_id: str, values: dict[str, Any], now: float) -> dict[str, Any] | None:
        """Put the item unless it exists; the existing item when it does."""
        expires = int(now) + self.ttl_seconds
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item={self.key_attr: {"S": item_id}, self.expiry_attr: {"N": str(expires)}, **values},
                ConditionExpression="attribute_not_exists(#id)",
                ExpressionAttributeNames={"#id": self.key_attr},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException as exc:
            item: dict[str, Any] = exc.response.get("Item") or {}
            return item
        return None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
