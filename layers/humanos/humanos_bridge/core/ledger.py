"""What the bridge remembers about its own calls to Humanos, beside the idempotency records.

Two kinds of item in the idempotency table (same ``id`` key and ``expiration`` TTL as Powertools'
records, so no new table, index or permission):

- ``attempt#<SHA-256 of the idempotency key>``: written before the first ``POST /request`` for an event, whichever
  message, redrive or route carries it; holds when that first attempt started. Its presence is the
  one fact that says "an earlier attempt may have reached Humanos", so a look-up is needed.
- ``claim#<Humanos request id>``: the SHA-256 of the idempotency key of the one event a Humanos request
  belongs to. Written with a condition, so two events can never both take one request.
- ``uses#<SHA-256 of a shared internalId>``: one attribute per event that has attempted a request with
  that (custom) internalId, ``use#<SHA-256 of the idempotency key>``, holding when its latest attempt
  started and hashes of its body (``Use``). Written before each ``POST``, so a look-up that reads it
  after listing Humanos's requests knows every event that could have created one of them.

Keys are stored hashed, as Powertools stores its own: a custom idempotency key may quote event data.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from humanos_bridge.core.errors import MappingError

ATTEMPT, CLAIM, USES, USE = "attempt#", "claim#", "uses#", "use#"
#: A ``uses#`` item with more attributes than this drops those older than the TTL (they can no longer matter).
PRUNE_USES_ABOVE = 200
#: About how many events fit in one ``uses#`` item (400 KB, some 150 bytes each).
ITEM_LIMIT_USES = 2_500


class Use(NamedTuple):
    """One event's latest attempt with a shared internalId."""

    at_ms: int
    #: What Humanos's answers show of the body (contacts, name), hashed: events whose bodies differ there
    #: can never take each other's request by content.
    shows: str
    #: The whole body, hashed: events with equal bodies have interchangeable requests.
    body: str


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
        existing = self._put_new(ATTEMPT + digest(key), {"firstAttemptAt": {"N": str(now_ms)}}, now)
        if existing is None:
            return None
        return int(existing.get("firstAttemptAt", {}).get("N", now_ms))

    def claim(self, request_id: str, key: str) -> bool:
        """Make ``request_id`` the request of the event ``key``; False when another event already owns it."""
        existing = self._put_new(CLAIM + request_id, {"key": {"S": digest(key)}}, self._clock())
        return existing is None or existing.get("key", {}).get("S") == digest(key)

    def record_use(self, internal_id: str, key: str, *, shows: str, body: str) -> None:
        """Note that the event ``key`` starts an attempt with the shared ``internal_id`` now (see ``Use``)."""
        now = self._clock()
        value = {"at": {"N": str(int(now * 1000))}, "shows": {"S": shows}, "body": {"S": body}}
        try:
            item = self.dynamodb.update_item(
                TableName=self.table,
                Key={self.key_attr: {"S": USES + digest(internal_id)}},
                UpdateExpression="SET #use = :use, #expiry = :expiry",
                ExpressionAttributeNames={"#use": USE + digest(key), "#expiry": self.expiry_attr},
                ExpressionAttributeValues={":use": {"M": value}, ":expiry": {"N": str(int(now) + self.ttl_seconds)}},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as exc:
            if "item size" not in str(exc).lower():
                raise
            raise MappingError(
                "too many events share one custom internalId: the bridge cannot keep track of them "
                f"(about {ITEM_LIMIT_USES:,} within the idempotency TTL fill DynamoDB's 400 KB item); give the "
                "rule an internalId unique to each event (the default, the idempotency key, is)"
            ) from exc
        if len(item) > PRUNE_USES_ABOVE:
            # Without pruning the item grows with every event that ever used the internalId (400 KB cap).
            stale = [USE + event for event, use in _uses(item).items() if use.at_ms < (now - self.ttl_seconds) * 1000]
            for start in range(0, len(stale), 100):
                names = {f"#s{i}": name for i, name in enumerate(stale[start : start + 100])}
                self.dynamodb.update_item(
                    TableName=self.table,
                    Key={self.key_attr: {"S": USES + digest(internal_id)}},
                    UpdateExpression="REMOVE " + ", ".join(names),
                    ExpressionAttributeNames=names,
                )

    def uses(self, internal_id: str) -> dict[str, Use]:
        """Every event's latest attempt with the shared ``internal_id``, by the event's ``digest``."""
        item = self.dynamodb.get_item(
            TableName=self.table, Key={self.key_attr: {"S": USES + digest(internal_id)}}, ConsistentRead=True
        ).get("Item", {})
        return _uses(item)

    def claimant(self, request_id: str) -> str | None:
        """The ``digest`` of the event that owns ``request_id``; None while no event does."""
        item = self.dynamodb.get_item(
            TableName=self.table, Key={self.key_attr: {"S": CLAIM + request_id}}, ConsistentRead=True
        ).get("Item")
        return None if item is None else item.get("key", {}).get("S")

    def owned_by(self, request_id: str, key: str) -> bool | None:
        """Whether the event ``key`` owns ``request_id``: True, False (another event does), None (unclaimed)."""
        owner = self.claimant(request_id)
        return None if owner is None else owner == digest(key)

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


def _uses(item: dict[str, Any]) -> dict[str, Use]:
    uses = {}
    for name, value in item.items():
        fields = value.get("M") if name.startswith(USE) else None
        if fields and "at" in fields:
            shows, body = fields.get("shows", {}).get("S", ""), fields.get("body", {}).get("S", "")
            uses[name.removeprefix(USE)] = Use(int(fields["at"]["N"]), shows, body)
    return uses


def digest(key: str) -> str:
    """How the ledger names an event (or an internalId): the SHA-256 of its idempotency key."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
