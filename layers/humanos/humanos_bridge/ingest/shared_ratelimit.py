"""The synchronous route's share of Humanos's rate limit, one bucket for every ingest container.

Dispatchers run at most ``MaxConcurrency`` containers, so each can pace itself with its own bucket
(``ratelimit.TokenBucket``). Ingest containers scale with HTTP traffic: no per-container share can
bound what they send together. So the synchronous route takes its tokens from ONE bucket kept in
the idempotency table (``rate#sync``: tokens and when they were counted), read and written with a
condition on the time it was read, so two containers never spend the same token. Capacity 1,
refilled at ``share - 1`` a minute: in any 60-second window the route sends at most ``share`` calls
(the argument of ``ratelimit``'s docstring, with one container), and the dispatchers get the rest
of the organisation's limit (``Settings.dispatcher_rate_per_minute``).

Two DynamoDB calls per creation on the synchronous route, none on the dispatcher's path.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from humanos_bridge.core.errors import ConfigError
from humanos_bridge.core.ratelimit import RateLimitedLocally

ITEM_ID = "rate#sync"
#: The item outlives any pause in traffic by far; a missing item is a full bucket.
TTL_SECONDS = 24 * 3600


class SharedTokenBucket:
    """A token bucket (capacity 1) in a DynamoDB item, shared by every container that uses it."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        per_minute: int,
        *,
        key_attr: str = "id",
        expiry_attr: str = "expiration",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ConfigError(f"SYNC_RATE_LIMIT_PER_MINUTE must be greater than 0 (got {per_minute})")
        self.dynamodb = dynamodb
        self.table = table
        self.per_minute = per_minute
        # One token is the full bucket; the rest of the share is refill (see the module docstring).
        self.rate_per_second = max(per_minute - 1, 1) / 60.0
        self.key_attr = key_attr
        self.expiry_attr = expiry_attr
        self._clock = clock
        self._sleep = sleep

    @classmethod
    def beside(cls, ledger: Any, per_minute: int) -> SharedTokenBucket:
        """The bucket in the table of a ``ledger.Ledger`` (the idempotency table)."""
        return cls(ledger.dynamodb, ledger.table, per_minute, key_attr=ledger.key_attr, expiry_attr=ledger.expiry_attr)

    def acquire(self, *, max_wait: float | None = None) -> float:
        """Take one token, sleeping until it is due. Returns the seconds waited.

        Raises RateLimitedLocally, without taking a token, when the wait would exceed ``max_wait``.
        """
        waited = 0.0
        while True:
            tokens, counted_ms = self._read()
            now = self._clock()
            if counted_ms is not None:
                tokens = min(1.0, tokens + max(now - counted_ms / 1000, 0.0) * self.rate_per_second)
            if tokens >= 1:
                if self._spend(tokens - 1, now, counted_ms):
                    return waited
                continue  # another container spent it first: count again
            wait = (1 - tokens) / self.rate_per_second
            if max_wait is not None and waited + wait > max_wait:
                raise RateLimitedLocally(
                    f"the synchronous route's share of the Humanos rate limit ({self.per_minute} a minute, "
                    f"SyncRateLimitPerMinute) is used up for {wait:.1f} s",
                    retry_after=wait,
                )
            self._sleep(wait)
            waited += wait

    def _read(self) -> tuple[float, int | None]:
        item = self.dynamodb.get_item(
            TableName=self.table, Key={self.key_attr: {"S": ITEM_ID}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return 1.0, None
        return float(item["tokens"]["N"]), int(item["countedAt"]["N"])

    def _spend(self, tokens_left: float, now: float, counted_ms: int | None) -> bool:
        """Write the bucket unless another container wrote it since it was read."""
        if counted_ms is None:
            condition: dict[str, Any] = {
                "ConditionExpression": "attribute_not_exists(#id)",
                "ExpressionAttributeNames": {"#id": self.key_attr},
            }
        else:
            condition = {
                "ConditionExpression": "countedAt = :read",
                "ExpressionAttributeValues": {":read": {"N": str(counted_ms)}},
            }
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item={
                    self.key_attr: {"S": ITEM_ID},
                    "tokens": {"N": f"{tokens_left:.6f}"},
                    # Milliseconds, and never the same as the value read: the condition must see the write.
                    "countedAt": {"N": str(max(int(now * 1000), (counted_ms or 0) + 1))},
                    self.expiry_attr: {"N": str(int(now) + TTL_SECONDS)},
                },
                **condition,
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True
