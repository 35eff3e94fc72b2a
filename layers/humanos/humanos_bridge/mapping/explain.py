"""Why an event maps the way it does: each rule's ``when``, the rule chosen, and what every expression found.

For ``humanos-bridge mappings preview --explain``. Nothing here changes how events are mapped: the same
compiled expressions run one at a time, and for each value the parts of its expression that found nothing
are named (``data.contact`` when ``data.contact.phone`` is null because the event has no contact). Values
are returned as they are: whoever shows them masks them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jmespath.parser import ParsedResult

from humanos_bridge.core.errors import MappingError
from humanos_bridge.mapping.engine import MappingConfig, event_type_of
from humanos_bridge.mapping.expressions import Expression, evaluating
from humanos_bridge.mapping.model import RuleConfig, SourceConfig
from humanos_bridge.mapping.templates import Arr, Expr, Node, Obj

#: What a null value means, by where the expression sits in the rule.
IF_NULL_REQUEST = "the field is left out"
IF_NULL_INTERNAL_ID = "no internalId is sent"
IF_NULL_FOR_EACH = "the event cannot be mapped: forEach must find an array (the template below reads its first item)"
IF_NULL_IDEMPOTENCY_KEY = "the event cannot be mapped: the idempotency key must be a non-empty string"


@dataclass(frozen=True)
class Evaluation:
    """One expression of a rule, evaluated over the event."""

    #: Where it sits in the mapping file (``sources.crm.rules["contact.created"][0].request.name``).
    where: str
    expression: str
    #: Its value; None when it found nothing or failed.
    value: Any
    #: The first step of each path in it that found nothing (``data.contact``), in the expression's order.
    missing: tuple[str, ...] = ()
    #: Why it failed (a MappingError message, which quotes no event value); None when it did not.
    error: str | None = None
    #: What a null value means here (``IF_NULL_*``); None for a ``when``.
    if_null: str | None = None


@dataclass(frozen=True)
class RuleExplanation:
    """One rule for the event's type."""

    name: str
    path: str
    #: None: the rule has no ``when``.
    when: Evaluation | None
    #: The ``when`` holds (JMESPath truthiness); True without a ``when``, False when it failed.
    holds: bool
    #: The rule map_event uses: the first that holds, unless an earlier ``when`` failed (then none is).
    chosen: bool
    #: Every expression of the request template, then of internalId and idempotencyKey.
    values: tuple[Evaluation, ...]


@dataclass(frozen=True)
class EventExplanation:
    event_type: str
    #: The rules for the event's type, in the file's order; empty when the type has none.
    rules: tuple[RuleExplanation, ...]


def explain_event(
    cfg: MappingConfig,
    source: str,
    event: Any,
    headers: Mapping[str, str] | None = None,
    envelope: Mapping[str, Any] | None = None,
) -> EventExplanation:
    """Explain, rule by rule, how ``event`` from ``source`` maps.

    Raises UnknownSourceError and MappingError (no event type) as ``map_event`` does; an expression that
    fails is reported in its :class:`Evaluation`, not raised.
    """
    config = cfg.source(source)
    with evaluating(event, headers, envelope):  # root(), header(), envelope() answer as when the engine maps it
        return _explain(config, event)


def _explain(config: SourceConfig, event: Any) -> EventExplanation:
    event_type = event_type_of(config, event)
    explained = []
    decided = False  # a rule was chosen, or a `when` failed: map_event tries no further rule
    for rule in config.rules.get(event_type, ()):
        when: Evaluation | None = None
        holds = True
        if rule.when is not None:
            where = f"{rule.path}.when"
            when = evaluate(rule.when, where, event)
            holds = when.error is None and rule.when.is_true(event, where=where)
        chosen = holds and not decided
        explained.append(RuleExplanation(rule.name, rule.path, when, holds, chosen, _values(rule, event)))
        decided = decided or holds or (when is not None and when.error is not None)
    return EventExplanation(event_type, tuple(explained))


def evaluate(expression: Expression, where: str, event: Any, *, if_null: str | None = None) -> Evaluation:
    """The value of ``expression`` over ``event``, and the parts of it that found nothing."""
    try:
        value = expression.search(event, where=where)
    except MappingError as exc:
        return Evaluation(where, expression.text, None, error=exc.message)
    return Evaluation(where, expression.text, value, missing_parts(expression, event), if_null=if_null)


def _values(rule: RuleConfig, event: Any) -> tuple[Evaluation, ...]:
    """The rule's expressions over the event; with forEach, its array, then the template over the first item."""
    if rule.for_each is None:
        return _template_values(rule, event)
    items = evaluate(rule.for_each, f"{rule.path}.forEach", event, if_null=IF_NULL_FOR_EACH)
    if isinstance(items.value, list) and items.value:
        return (items, *_template_values(rule, items.value[0]))
    return (items,)


def _template_values(rule: RuleConfig, scope: Any) -> tuple[Evaluation, ...]:
    parts = (
        (rule.request, IF_NULL_REQUEST),
        (rule.internal_id, IF_NULL_INTERNAL_ID),
        (rule.idempotency_key, IF_NULL_IDEMPOTENCY_KEY),
    )
    return tuple(
        evaluate(expr.expression, expr.where, scope, if_null=if_null)
        for node, if_null in parts
        if node is not None
        for expr in _expressions(node)
    )


def _expressions(node: Node) -> Iterator[Expr]:
    if isinstance(node, Expr):
        yield node
    elif isinstance(node, (Obj, Arr)):
        for child in (child for _, child in node.items) if isinstance(node, Obj) else node.items:
            yield from _expressions(child)


# ---- naming what found nothing, on jmespath's AST (dicts with "type", "children", "value") ----

#: Nodes that apply their children one after the other: ``data.contact.phone``, ``items[0][1]``.
_PATHS = {"subexpression", "index_expression"}
#: Nodes whose children all read the same input as the node itself.
_SAME_INPUT = {
    "function_expression",
    "comparator",
    "and_expression",
    "or_expression",
    "not_expression",
    "multi_select_list",
    "multi_select_dict",
    "key_val_pair",
}
#: Nodes whose first child reads the node's input and the rest read what it found.
_FIRST_CHILD = {"pipe", "projection", "value_projection", "filter_projection", "flatten"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def missing_parts(expression: Expression, event: Any) -> tuple[str, ...]:
    """For each path in ``expression``, its first step that finds nothing in ``event``, as text.

    ``data.contact.phone`` over an event without a contact gives ``("data.contact",)``; a function's
    arguments are looked at the same way. Best effort: ``()`` when nothing can be named.
    """
    try:
        return tuple(dict.fromkeys(_missing(expression.parsed.parsed, event)))
    except Exception:  # an AST this walk does not know: name nothing rather than fail the explanation
        return ()


def _missing(node: dict[str, Any], event: Any) -> list[str]:
    kind = node["type"]
    if kind == "field" or kind in _PATHS:
        return _first_missing_step(node, event)
    if kind in _SAME_INPUT:
        return [part for child in node["children"] for part in _missing(child, event)]
    if kind in _FIRST_CHILD:
        return _missing(node["children"][0], event)
    return []


def _first_missing_step(node: dict[str, Any], event: Any) -> list[str]:
    """``data``, then ``data.contact``, then ``data.contact.phone``: the first that finds nothing."""
    for step in _steps(node):
        if _search(step, event) is not None:
            continue
        if step["type"] == "field" or step["type"] in _PATHS:
            text = _text(step)
            return [text] if text else []
        return _missing(step, event)  # the path starts with a call, say: look inside it
    return []


def _steps(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The growing prefixes of a path, each a node that reads the path's input."""
    if node["type"] not in _PATHS:
        return [node]
    steps: list[dict[str, Any]] = []
    done: list[dict[str, Any]] = []
    for child in node["children"]:
        steps.extend({"type": node["type"], "children": [*done, step]} if done else step for step in _steps(child))
        done.append(child)
    return steps


def _search(node: dict[str, Any], event: Any) -> Any:
    return Expression("", ParsedResult("", node)).search(event, where="explain")


def _text(node: dict[str, Any]) -> str | None:
    """``node`` written back as JMESPath, for the parts a path is made of; None for any other part."""
    kind, value = node["type"], node.get("value")
    children = [_text(child) for child in node.get("children", ()) if isinstance(child, dict)]
    if None in children:
        return None
    parts: list[str] = [child for child in children if child is not None]
    if kind == "field":
        name = str(value)
        return name if _IDENTIFIER.fullmatch(name) else json.dumps(name)
    if kind == "index":
        return f"[{value}]"
    if kind == "current":
        return "@"
    if kind == "literal":
        return "'{}'".format(value.replace("'", "\\'")) if isinstance(value, str) else f"`{json.dumps(value)}`"
    if kind == "subexpression":
        return ".".join(parts)
    if kind == "index_expression":
        return "".join(parts)
    if kind == "function_expression":
        return f"{value}({', '.join(parts)})"
    if kind == "multi_select_list":
        return f"[{', '.join(parts)}]"
    return None
