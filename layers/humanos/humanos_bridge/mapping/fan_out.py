"""Fan-out: a rule with ``forEach`` makes one request per item of an array, and never mixes items.

Each item's body is rendered from that item alone (``root()`` still reaches the event, for what the items
share), with its own idempotency key and internalId, so that a redelivered event creates no request twice
and two people in two items can never meet in one body. Without ``forEach``, contacts taken from every item of
an array would all land in one request: the file is refused unless it says that is meant
(``allContactsInOneRequest``, for co-signers of one document).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from humanos_bridge.core import wire
from humanos_bridge.core.body_validation import json_type
from humanos_bridge.core.errors import MappingError, SerialisationError
from humanos_bridge.mapping.model import RuleConfig
from humanos_bridge.mapping.templates import Arr, Expr, Node, Obj

#: Body fields that hold people, and the keys that hold them inside a list's items.
CONTACT_FIELDS: dict[str, tuple[str, ...]] = {
    "contacts": (),
    "users": ("contact", "secondaryContact"),
    "expectedDocIds": ("contact",),
}
#: The most items one event may fan out to; Humanos takes one request per call, so each item costs a call.
MAX_ITEMS = 100
#: JMESPath nodes that produce one value per item of an array.
_PER_ITEM = ("projection", "filter_projection", "value_projection", "flatten")


def items_of(rule: RuleConfig, event: Any) -> list[Any]:
    """The array the rule's ``forEach`` finds in the event: a precise error when it is not one."""
    assert rule.for_each is not None
    where = f"{rule.path}.forEach"
    found = rule.for_each.search(event, where=where)
    if not isinstance(found, list):
        what = "nothing" if found is None else f"a {json_type(found)}"
        raise MappingError(
            f"{where}: `{rule.for_each.text}` found {what}, not an array; point forEach at the list of items",
            path=where,
            details={"reason": "for_each_not_array"},
        )
    if len(found) > MAX_ITEMS:
        raise MappingError(
            f"{where}: `{rule.for_each.text}` found {len(found)} items, more than {MAX_ITEMS} requests from one "
            "event; have the sender split the batch",
            path=where,
            details={"reason": "for_each_too_many"},
        )
    return found


def item_key(base: str, item: Any, where: str) -> str:
    """The default key of one item: the rule's key plus a hash of the item's canonical JSON.

    Derived from the item, not its position: a sender that re-sends the batch in another order makes
    the same requests, and two equal items are one request.
    """
    try:
        canonical = wire.canonical_bytes(item)
    except (SerialisationError, TypeError, RecursionError) as exc:
        reason = exc.message if isinstance(exc, SerialisationError) else type(exc).__name__
        raise MappingError(
            f"{where}: an item cannot be hashed for its idempotency key ({reason}); set idempotencyKey from the "
            "item's own id",
            path=where,
            details={"reason": "item_unhashable"},
        ) from None
    return f"{base}:{hashlib.sha256(canonical).hexdigest()[:16]}"


def contacts_from_arrays(request: Obj) -> list[str]:
    """Paths of the template's contact expressions that collect one value per item of an array."""
    return [where for where, expression in _contact_expressions(request) if _per_item(expression.parsed.parsed)]


def _contact_expressions(request: Obj) -> Iterator[tuple[str, Any]]:
    for key, child in request.items:
        inner = CONTACT_FIELDS.get(key)
        if inner is None:
            continue
        for node in _expr_nodes(child, inner):
            yield node.where, node.expression


def _expr_nodes(node: Node, inner: tuple[str, ...]) -> Iterator[Expr]:
    if isinstance(node, Expr):
        yield node
    elif isinstance(node, Arr):
        for item in node.items:
            yield from _expr_nodes(item, inner)
    elif isinstance(node, Obj):
        for key, child in node.items:
            if key in inner:
                yield from _expr_nodes(child, ())


def _per_item(node: Any) -> bool:
    """True when the expression can give values from several items of one array."""
    if not isinstance(node, dict):
        return False
    kind = node.get("type")
    children = node.get("children", [])
    if kind == "pipe" and _picks_one(children[1]):
        return False  # people[*].phone | [0]: one item's value
    if kind in _PER_ITEM and not _built_here(children[0]):
        return True
    if kind == "function_expression" and node.get("value") == "map":
        return True
    return any(_per_item(child) for child in children)


def _built_here(source: Any) -> bool:
    """A list written in the expression (``[phone, email][]``), not an array of the event's items."""
    if isinstance(source, dict) and source.get("type") == "flatten":
        return _built_here(source["children"][0])
    return isinstance(source, dict) and source.get("type") in ("multi_select_list", "literal")


def _picks_one(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") == "index_expression" and node["children"][-1]["type"] == "index"
