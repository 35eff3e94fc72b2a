"""Request templates: JSON with constants and ``=``-prefixed JMESPath expressions.

Convention (one, so nothing is ambiguous): a string that starts with ``=`` is an expression over
the event (``"=data.contact.phone"``); ``==`` escapes a literal leading ``=`` (``"==5"`` is the text
``=5``); everything else is a constant, kept as written. An expression that yields null leaves its
object key (or list item) out, so optional fields simply disappear when the event lacks them.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, NamedTuple, Union

from humanos_bridge.mapping.expressions import Expression, ExpressionSyntaxError, compile_expression

#: Marks a string as an expression.
EXPRESSION_PREFIX = "="
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def child_path(base: str, key: str) -> str:
    """``sources.crm`` + ``contact.created`` -> ``sources.crm["contact.created"]`` (dots stay unambiguous)."""
    if _IDENTIFIER.fullmatch(key):
        return f"{base}.{key}" if base else key
    return f"{base}[{json.dumps(key, ensure_ascii=False)}]"


class Const(NamedTuple):
    value: Any


class Expr(NamedTuple):
    expression: Expression
    #: Where the expression sits in the mapping file, for run-time messages.
    where: str


class Obj(NamedTuple):
    items: tuple[tuple[str, Node], ...]


class Arr(NamedTuple):
    items: tuple[Node, ...]


Node = Union[Const, Expr, Obj, Arr]  # noqa: UP007 - a runtime alias; the records above name it lazily


class _Omit:
    """A value left out because its expression yielded null."""


OMIT = _Omit()


class TemplateError(ValueError):
    """A template cannot be compiled: ``where`` (a suffix under the template's path) and ``message``."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def compile_template(value: Any, where: str, errors: list[TemplateError]) -> Node:
    """Compile ``value`` once; problems are appended to ``errors`` (all of them, not only the first)."""
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            items.append((str(key), compile_template(item, child_path(where, str(key)), errors)))
        return Obj(tuple(items))
    if isinstance(value, list):
        return Arr(tuple(compile_template(item, f"{where}[{i}]", errors) for i, item in enumerate(value)))
    if isinstance(value, str):
        return _compile_string(value, where, errors)
    if value is None or isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value)):
        return Const(value)
    errors.append(TemplateError(where, f"a {type(value).__name__} is not a JSON value; write it as a string"))
    return Const(None)


def _compile_string(value: str, where: str, errors: list[TemplateError]) -> Node:
    if value.startswith(EXPRESSION_PREFIX * 2):
        return Const(value[1:])
    if not value.startswith(EXPRESSION_PREFIX):
        return Const(value)
    try:
        return Expr(compile_expression(value[1:]), where)
    except ExpressionSyntaxError as exc:
        errors.append(
            TemplateError(where, f"{exc.message}; fix the expression after '=' (write '==' for a literal '=')")
        )
        return Const(None)


def is_constant(node: Node) -> bool:
    """True when ``node`` holds no expression."""
    if isinstance(node, Const):
        return True
    if isinstance(node, Expr):
        return False
    children = (n for _, n in node.items) if isinstance(node, Obj) else node.items
    return all(is_constant(child) for child in children)


def render(node: Node, event: Any) -> Any:
    """Produce the value of ``node`` for ``event``; OMIT when an expression yielded null at the top."""
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Expr):
        result = node.expression.search(event, where=node.where)
        return OMIT if result is None else result
    if isinstance(node, Obj):
        out = {}
        for key, child in node.items:
            # A constant child is read here, not through a call (a preset's body has 5-10 of them).
            if isinstance(child, Const):
                out[key] = child.value
                continue
            value = render(child, event)
            if value is not OMIT:
                out[key] = value
        return out
    return [value for value in (render(child, event) for child in node.items) if value is not OMIT]
