"""Replay protection: each signed delivery is handled once while its signature still verifies.

A captured request verifies again for as long as its timestamp is within the tolerance
(``SIGNATURE_TOLERANCE_SECONDS``, 300 s, both directions). So right after the signature check, before
any other work (no parsing, no queue message, no Humanos call), the ingest function claims the
delivery in the idempotency table; a copy that finds the claim is a replay.

The same delivery (``sender_auth.SignedDelivery``)
--------------------------------------------------
- ``standard-webhooks``: the same ``webhook-id``, as the spec asks receivers to deduplicate. A sender's
  retry keeps the id (with a new timestamp and signature), so it is a copy too.
- ``humanos-hmac``: the same ``X-Timestamp`` and ``X-Signature``. A sender's retry is signed afresh (a
  new timestamp, so a new signature): a new delivery, handled in full, whose event the idempotency key
  still turns into one Humanos request (``exactly_once``).
- the other signing schemes (``stripe``, ``hubspot-v3``, ``hmac`` with a timestamp): the same timestamp and
  signature; those that sign no timestamp (``github``, ``shopify``, ``typeform``): the same signature,
  remembered for 15 days; static credentials (``basic-auth``, ``api-key``): the same body.

Both are scoped by the source's ``auth.secretKey``, the sender: two senders may both number their
messages ``msg_1``. A copy sent to the other route, or to another source with that secretKey, is a replay.

What a copy gets
----------------
======================================  =================================================================
the first copy                          a later copy
======================================  =================================================================
answered on ``/events`` (202)           on ``/events``: the same 202 and body, nothing queued. A sender
                                        retrying after a lost answer must not see an error (Standard
                                        Webhooks senders retry with the same webhook-id).
being handled on ``/events``            on ``/events``: 503 ``delivery_in_progress`` with Retry-After. The
                                        first copy may still fail, and the retry must then run.
failed on ``/events`` (4xx or 5xx)      handled in full: the failed first copy released its claim.
on ``/requests`` (whatever its answer,  409 ``replayed_delivery``: no request id, no subjects. The
failures too), or a copy sent to        synchronous route's answer can carry each subject's ``code`` and
``/requests``                           ``link`` (when the organisation delivers codes itself), and whoever
                                        replays a captured request must not get them, nor have a request
                                        that failed (Humanos down) created for it later. A sender that
                                        wants the request (again) signs a new delivery (a fresh timestamp,
                                        or a new webhook-id): the event's idempotency key answers 200 with
                                        the request when one exists.
======================================  =================================================================

The claim
---------
One item per delivery beside the bridge's other items (``ledger``): ``delivery#<SHA-256 of the scheme,
secretKey and delivery id>``, put with a condition, so of two concurrent copies exactly one goes on.
Its ``expiration`` (the table's TTL attribute) is when the latest copy seen goes stale; DynamoDB deletes
expired items late, so the condition treats an expired claim as absent. While the first copy is
handled the item holds a random ``owner``; then the answer's ``eventId`` and ``status`` replace it, or
a failure on ``/events`` deletes the item. A claim that a crashed invocation left on ``/events`` is
taken over by a copy on ``/events`` after ``IN_PROGRESS_SECONDS``; one left on ``/requests`` holds until
it goes stale, so a replay never finishes a Humanos request that a crashed invocation started.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from humanos_bridge.core.errors import DeliveryInProgress, ReplayedDelivery, ReplayOfAnswered
from humanos_bridge.core.ledger import Ledger, digest
from humanos_bridge.core.sender_auth import SignedDelivery

#: Prefix of the claims' ids in the table, beside the ledger's ``attempt#``, ``claim#`` and ``uses#``.
DELIVERY = "delivery#"
#: The two routes a delivery can come by (``POST /events/{source}``, ``POST /requests/{source}``).
EVENTS, REQUESTS = "events", "requests"
#: How long a claim is held for the invocation handling it: longer than the ingest function's Timeout
#: (20 s in template.yaml), so only a claim whose invocation is gone is ever taken over.
IN_PROGRESS_SECONDS = 30
#: What a refused copy is told (409): nothing about the first copy's outcome.
REPLAYED_MESSAGE = (
    "this signed request was received before (the same signature, or the same webhook-id) and is not "
    "handled twice; to send the event again, sign it again (a new timestamp, or a new webhook-id)"
)
_ROUTE, _OWNER, _BUSY, _STATUS, _EVENT = "route", "owner", "busyUntil", "status", "eventId"


class Claim(NamedTuple):
    """This invocation's hold on a delivery, until ``ReplayGuard.settle``."""

    item_id: str
    owner: str
    route: str


class ReplayGuard:
    """Claims deliveries in a DynamoDB table (the idempotency table)."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        key_attr: str = "id",
        expiry_attr: str = "expiration",
        clock: Callable[[], float] = time.time,
        logger: Logger | None = None,
    ) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.key_attr = key_attr
        self.expiry_attr = expiry_attr
        self.logger = logger or Logger(child=True)
        self._clock = clock

    @classmethod
    def beside(cls, ledger: Ledger, *, logger: Logger | None = None) -> ReplayGuard:
        """The guard in the ledger's table, with its key and TTL attributes."""
        return cls(
            ledger.dynamodb, ledger.table, key_attr=ledger.key_attr, expiry_attr=ledger.expiry_attr, logger=logger
        )

    def admit(self, delivery: SignedDelivery, *, sender: str, route: str) -> Claim:
        """Claim ``delivery`` for this invocation; raise a ``ReplayedDelivery`` (or ``DeliveryInProgress``) for a copy.

        ``sender`` is the source's ``auth.secretKey``, ``route`` ``EVENTS`` or ``REQUESTS``.
        """
        now = self._clock()
        item_id = DELIVERY + digest("\0".join((delivery.scheme, sender, delivery.delivery_id)))
        owner = uuid.uuid4().hex
        names = {"#id": self.key_attr, "#expiry": self.expiry_attr}
        values = {":now": {"N": str(int(now))}}
        condition = "attribute_not_exists(#id) OR #expiry < :now"
        if route == EVENTS:
            # Nothing is handed out on this route, so a copy may finish what a crashed invocation left here.
            condition += " OR (#busy < :now AND #route = :route)"
            names |= {"#busy": _BUSY, "#route": _ROUTE}
            values[":route"] = {"S": EVENTS}
        item = {
            self.key_attr: {"S": item_id},
            self.expiry_attr: {"N": str(delivery.stale_after)},
            _ROUTE: {"S": route},
            _OWNER: {"S": owner},
            _BUSY: {"N": str(int(now) + IN_PROGRESS_SECONDS)},
        }
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item=item,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException as exc:
            first: dict[str, Any] = exc.response.get("Item") or {}
            self._extend(item_id, first, delivery.stale_after)
            raise _replay(first, route) from None
        return Claim(item_id, owner, route)

    def settle(self, claim: Claim, *, succeeded: bool, event_id: str | None = None, status: str = "") -> None:
        """Keep the claim with the answer's ``event_id`` and ``status``; a failure on ``EVENTS`` releases it.

        Never raises: the answer is already decided. A claim that cannot be settled stays until it expires
        (copies meanwhile get 503 or 409, never a second handling).
        """
        key = {self.key_attr: {"S": claim.item_id}}
        names = {"#owner": _OWNER}
        values = {":owner": {"S": claim.owner}}
        try:
            if succeeded or claim.route != EVENTS:
                update = "SET #status = :status"
                names |= {"#busy": _BUSY, "#status": _STATUS}
                values[":status"] = {"S": status}
                if event_id is not None:
                    update += ", #event = :event"
                    names["#event"], values[":event"] = _EVENT, {"S": event_id}
                self.dynamodb.update_item(
                    TableName=self.table,
                    Key=key,
                    UpdateExpression=update + " REMOVE #owner, #busy",
                    ConditionExpression="#owner = :owner",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
            else:
                self.dynamodb.delete_item(
                    TableName=self.table,
                    Key=key,
                    ConditionExpression="#owner = :owner",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=values,
                )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            pass  # taken over after IN_PROGRESS_SECONDS: the invocation that took it settles it
        except (ClientError, BotoCoreError) as exc:
            self.logger.warning(
                "replay claim not settled; copies of this delivery are refused until it expires",
                extra={"cause": type(exc).__name__, "succeeded": succeeded},
            )

    def _extend(self, item_id: str, first: dict[str, Any], stale_after: int) -> None:
        """A copy signed later (a Standard Webhooks retry) keeps the claim until that copy goes stale too."""
        if int(first.get(self.expiry_attr, {}).get("N", "0")) >= stale_after:
            return
        # A failed condition: another copy extended it further, or it was released meanwhile.
        with contextlib.suppress(self.dynamodb.exceptions.ConditionalCheckFailedException):
            self.dynamodb.update_item(
                TableName=self.table,
                Key={self.key_attr: {"S": item_id}},
                UpdateExpression="SET #expiry = :expiry",
                ConditionExpression="attribute_exists(#id) AND #expiry < :expiry",
                ExpressionAttributeNames={"#id": self.key_attr, "#expiry": self.expiry_attr},
                ExpressionAttributeValues={":expiry": {"N": str(stale_after)}},
            )


def _replay(first: dict[str, Any], route: str) -> ReplayedDelivery | DeliveryInProgress:
    """What a copy of the delivery ``first`` claimed gets on ``route`` (the table in the module docstring)."""
    first_route = first.get(_ROUTE, {}).get("S")
    if route == EVENTS and first_route == EVENTS:
        status = first.get(_STATUS, {}).get("S")
        if status is None:
            return DeliveryInProgress("the first copy of this delivery is still being handled; retry in a few seconds")
        return ReplayOfAnswered(REPLAYED_MESSAGE, event_id=first.get(_EVENT, {}).get("S"), status=status)
    return ReplayedDelivery(REPLAYED_MESSAGE)
