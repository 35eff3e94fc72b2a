"""Warnings for JMESPath that is valid but rarely means what its author meant (``mappings check``).

Each trap below was hit mapping real webhooks: the file loads, the event maps, and the body is wrong
or no rule ever matches. They are warnings, not errors: each has a legitimate use.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jmespath.lexer import Lexer

from humanos_bridge.core.sender_auth import protects_body, signs_timestamp
from humanos_bridge.mapping.engine import MappingConfig
from humanos_bridge.mapping.expressions import Expression
from humanos_bridge.mapping.model import AuthConfig

_COMPARATORS = ("eq", "ne", "lt", "lte", "gt", "gte")


def warnings(config: MappingConfig) -> list[str]:
    """Every trap in every expression of the file, as ``<path>: `<expression>`: <what happens>; <fix>``."""
    found: list[str] = []
    for name in config.sources:
        found.extend(auth_warnings(name, config.source(name).auth))
        for rules in config.source(name).rules.values():
            for rule in rules:
                for where, expression, is_field in rule.expressions():
                    found.extend(f"{where}: `{expression.text}`: {trap}" for trap in traps(expression, is_field))
    return found


def auth_warnings(source: str, auth: AuthConfig | None) -> list[str]:
    """What a source's sender authentication leaves open: a static credential, or no signed timestamp."""
    if auth is None:
        return []
    where = f"sources.{source}.auth"
    if not protects_body(auth.scheme):
        return [
            f'{where}: "{auth.scheme}" checks a static credential: it does not protect the body (whoever sees one '
            "request, in a log or a proxy, can send any event with it) and carries no replay window (a captured "
            "request verifies at any later time; the bridge refuses only an identical copy, for 15 days); use the "
            'sender\'s signature (a preset, or "scheme": "hmac") if it has one, send only over HTTPS, and rotate '
            "the credential (new secret first in the sender secret) if it may have leaked"
        ]
    if not signs_timestamp(auth.scheme, auth.settings):
        return [
            f'{where}: "{auth.scheme}" signs no timestamp: a captured request verifies forever; the bridge refuses '
            "an identical copy for 15 days and the event's idempotency key stops a second Humanos request, but "
            "rotate the secret if a request may have leaked"
        ]
    return []


def traps(expression: Expression, is_field: bool) -> list[str]:
    """The traps in one expression; ``is_field``: it fills a body field (not a `when`)."""
    ast = expression.parsed.parsed
    found = []
    if any(node["type"] == "pipe" and _is_and_or(node["children"][1]) for node in _nodes(ast)):
        found.append(_PIPE_TRAP)
    if _quoted_name_compared(expression.text):
        found.append(_QUOTED_TRAP)
    found.extend(_bare_word_trap(operator, word) for operator, word in _bare_words_compared(expression.text))
    if is_field and ast["type"] in ("not_expression", "comparator"):
        found.append(_LOGIC_FIELD_TRAP)
    if is_field and ast["type"] == "multi_select_list":
        found.append(_NULL_ITEMS_TRAP)
    return found


_PIPE_TRAP = (
    "`|` binds loosest, so the && or || after it reads its other operand from the piped result, not from the "
    "event; put the piped part in parentheses: (answers[?ref=='ok'].value | [0]) == 'yes' && other"
)
_QUOTED_TRAP = (
    'a "double-quoted" word beside a comparison is a field name, not text; write text in single quotes: '
    "status == 'paid'"
)
_LOGIC_FIELD_TRAP = (
    "a comparison or ! gives true or false, never null, so the field is always sent; choose between bodies "
    "with a rule's `when`, or use `a || b` for a fallback"
)
_NULL_ITEMS_TRAP = "a list built with [a, b] keeps its null items, and they stay in the body; wrap it: compact([a, b])"


#: JMESPath's names for its equality operators, as written.
_EQUALITY = {"eq": "==", "ne": "!="}
#: Tokens after a name that make it a path or a call (``a.b``, ``a[0]``, ``f(x)``), not a lone word.
_PATH_CONTINUATIONS = ("dot", "lbracket", "lparen", "filter", "flatten")
#: Bare words people write for JSON's constants; in JMESPath they are field names too.
_JSON_CONSTANTS = ("true", "false", "null")


def _bare_word_trap(operator: str, word: str) -> str:
    if word in _JSON_CONSTANTS:
        return (
            f"{word} after {operator} is a field named {word!r}, not JSON's {word}, so the comparison is almost "
            f"never what it seems; write the constant in backticks: {operator} `{word}`"
        )
    return (
        f"{word} after {operator} is a field of the event, not text: an event without that field compares with "
        f"null, so the result is false (or true when the other side is missing too); for text, quote it: "
        f"{operator} '{word}' (comparing two fields is fine as it is)"
    )


def _bare_words_compared(text: str) -> list[tuple[str, str]]:
    """``(operator, word)`` for each unquoted single word right after == or != (``status == paid``)."""
    tokens = list(Lexer().tokenize(text))
    found = []
    for index in range(len(tokens) - 2):
        operator, word, after = tokens[index : index + 3]
        if (
            operator["type"] in _EQUALITY
            and word["type"] == "unquoted_identifier"
            and after["type"] not in _PATH_CONTINUATIONS
        ):
            found.append((_EQUALITY[operator["type"]], str(word["value"])))
    return found


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict) and "type" in node:
        yield node
        for child in node.get("children", ()):
            yield from _nodes(child)


def _is_and_or(node: Any) -> bool:
    # `x | [0] == 'a'` is fine (the comparison is meant for the piped value); `x | [0] == 'a' && y` reads y
    # from the piped value too, not from the event.
    return isinstance(node, dict) and node.get("type") in ("and_expression", "or_expression")


def _quoted_name_compared(text: str) -> bool:
    tokens = [token["type"] for token in Lexer().tokenize(text)]
    for index, kind in enumerate(tokens):
        if kind != "quoted_identifier":
            continue
        neighbours = tokens[max(index - 1, 0) : index] + tokens[index + 1 : index + 2]
        if any(neighbour in _COMPARATORS for neighbour in neighbours):
            return True
    return False
