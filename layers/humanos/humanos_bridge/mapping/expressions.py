"""JMESPath for mapping files: the custom functions, compile-time checks and safe evaluation.

Every expression is compiled once, when the mapping file loads; unknown functions and wrong
argument counts are load errors too (JMESPath itself would only notice them on the first event).
At run time only our errors escape, and their messages never quote the event's values, which may
be contacts.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jmespath
from jmespath import exceptions as jp_exceptions
from jmespath import functions as jp_functions

from humanos_bridge.errors import MappingError
from humanos_bridge.wire import js_number


class ExpressionSyntaxError(ValueError):
    """A mapping expression cannot be compiled; ``message`` says why without quoting it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ArgumentTypeError(jp_exceptions.JMESPathTypeError):  # type: ignore[misc]  # jmespath ships no type hints
    """A function argument of a type the function does not take, with its position (1 = the first).

    ``in_array``: the argument is an array, and one of its items has the wrong type.
    """

    def __init__(
        self, function_name: str, position: int, cause: jp_exceptions.JMESPathTypeError, *, in_array: bool
    ) -> None:
        super().__init__(function_name, cause.current_value, cause.actual_type, cause.expected_types)
        self.position = position
        self.in_array = in_array


class BridgeFunctions(jp_functions.Functions):  # type: ignore[misc]  # jmespath ships no type hints
    """The functions mapping files need beyond standard JMESPath (which has ``join`` and ``not_null``)."""

    def _type_check(self, actual: list[Any], signature: list[dict[str, Any]], function_name: str) -> None:
        # jmespath checks one argument per declared parameter, so a variadic function's further arguments
        # went unchecked (concat() wrote an object into a request name as Python text). Every argument is
        # checked here, a variadic function's extra ones against its last parameter, and the error says which.
        for index, value in enumerate(actual):
            types = signature[min(index, len(signature) - 1)]["types"]
            if not types:
                continue
            try:
                self._type_check_single(value, types, function_name)
            except jp_exceptions.JMESPathTypeError as exc:
                in_array = exc.current_value is not value
                raise ArgumentTypeError(function_name, index + 1, exc, in_array=in_array) from None

    @jp_functions.signature({"types": []}, {"types": []})  # type: ignore[untyped-decorator]
    def _func_default(self, value: Any, fallback: Any) -> Any:
        """``default(x, 'ENG')``: ``x`` unless it is null or an empty string."""
        return fallback if value is None or value == "" else value

    @jp_functions.signature({"types": []})  # type: ignore[untyped-decorator]
    def _func_as_list(self, value: Any) -> list[Any]:
        """``as_list(phone)``: null -> ``[]``, a list -> itself, anything else -> ``[value]``."""
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]

    @jp_functions.signature({"types": ["array"]})  # type: ignore[untyped-decorator]
    def _func_compact(self, values: list[Any]) -> list[Any]:
        """``compact([phone, email])``: drop nulls and empty strings from a list."""
        return [v for v in values if v is not None and v != ""]

    @jp_functions.signature({"types": ["string", "null"]})  # type: ignore[untyped-decorator]
    def _func_lower(self, value: str | None) -> str | None:
        return None if value is None else value.lower()

    @jp_functions.signature({"types": ["string", "null"]})  # type: ignore[untyped-decorator]
    def _func_upper(self, value: str | None) -> str | None:
        return None if value is None else value.upper()

    @jp_functions.signature({"types": ["string", "null"]})  # type: ignore[untyped-decorator]
    def _func_trim(self, value: str | None) -> str | None:
        return None if value is None else value.strip()

    @jp_functions.signature({"types": ["string", "number", "null"], "variadic": True})  # type: ignore[untyped-decorator]
    def _func_concat(self, *parts: Any) -> str:
        """``concat('Order ', id)``: strings and numbers joined; nulls are skipped."""
        return "".join(_text(p) for p in parts if p is not None)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        # Numbers read as JavaScript prints them (1 not 1.0), like the body Humanos sees.
        return js_number(value) if value == value and abs(value) != float("inf") else str(value)
    return str(value)


#: One options object for every search: the custom functions are stateless.
_OPTIONS = jmespath.Options(custom_functions=BridgeFunctions())
#: Function name -> (minimum arguments, variadic), standard and custom alike.
_ARITY: dict[str, tuple[int, bool]] = {
    name: (len(spec["signature"]), bool(spec["signature"] and spec["signature"][-1].get("variadic")))
    for name, spec in BridgeFunctions.FUNCTION_TABLE.items()
}
#: Function names offered in "did you mean" hints and the README.
FUNCTION_NAMES: tuple[str, ...] = tuple(sorted(_ARITY))


@dataclass(frozen=True)
class Expression:
    """A compiled JMESPath expression with the text it came from."""

    text: str
    parsed: Any

    def search(self, data: Any, *, where: str) -> Any:
        """Evaluate over ``data``; failures become MappingError naming ``where`` (never a value)."""
        try:
            return self.parsed.search(data, options=_OPTIONS)
        except jp_exceptions.JMESPathTypeError as exc:
            expected = ", ".join(exc.expected_types)
            actual = jp_functions.TYPES_MAP.get(exc.actual_type, exc.actual_type)
            argument = ""
            if isinstance(exc, ArgumentTypeError):
                argument = f" argument {exc.position}"
                actual = f"an array with a {actual} item" if exc.in_array else actual
            raise MappingError(
                f"{where}: expression `{self.text}` failed: {exc.function_name}(){argument} expected {expected} "
                f"but got {actual}; guard it, e.g. with default() or a `when` condition",
                path=where,
                details={"reason": "expression_failed"},
            ) from None
        except (jp_exceptions.JMESPathError, TypeError, ValueError, OverflowError, RecursionError) as exc:
            # Messages of these can quote the data (a contact), so only the kind is kept.
            raise MappingError(
                f"{where}: expression `{self.text}` failed ({type(exc).__name__}); check the event's shape",
                path=where,
                details={"reason": "expression_failed"},
            ) from None

    def is_true(self, data: Any, *, where: str) -> bool:
        """JMESPath truthiness: false, null, "", [] and {} are false; everything else (0 too) is true."""
        result = self.search(data, where=where)
        if result is None or result is False:
            return False
        return not (isinstance(result, (str, list, dict)) and len(result) == 0)


def compile_expression(text: str) -> Expression:
    """Compile ``text`` once, checking function names and argument counts too."""
    if not text.strip():
        raise ExpressionSyntaxError("empty JMESPath expression; write one, e.g. `data.id`")
    try:
        parsed = jmespath.compile(text)
    except jp_exceptions.ParseError as exc:
        raise ExpressionSyntaxError(f"invalid JMESPath at character {exc.lex_position}: {_parse_reason(exc)}") from None
    except jp_exceptions.JMESPathError as exc:
        raise ExpressionSyntaxError(f"invalid JMESPath: {type(exc).__name__}") from None
    for name, count in _function_calls(parsed.parsed):
        _check_call(name, count)
    return Expression(text=text, parsed=parsed)


def _parse_reason(exc: jp_exceptions.ParseError) -> str:
    if isinstance(exc, jp_exceptions.IncompleteExpressionError):
        return "the expression ends too early"
    if isinstance(exc, jp_exceptions.LexerError):
        return str(exc.message)
    return f"unexpected {exc.token_type.lower()} token"


def _function_calls(node: Any) -> Iterator[tuple[str, int]]:
    if not isinstance(node, dict):
        return
    if node.get("type") == "function_expression":
        yield str(node["value"]), len(node["children"])
    for child in node.get("children", ()):
        yield from _function_calls(child)


def _check_call(name: str, count: int) -> None:
    if name not in _ARITY:
        close = difflib.get_close_matches(name, FUNCTION_NAMES, n=1)
        hint = f"did you mean {close[0]}()?" if close else f"available: {', '.join(FUNCTION_NAMES)}"
        raise ExpressionSyntaxError(f"unknown function {name}(); {hint}")
    minimum, variadic = _ARITY[name]
    if count < minimum or (not variadic and count != minimum):
        wanted = f"at least {minimum}" if variadic else str(minimum)
        raise ExpressionSyntaxError(f"{name}() takes {wanted} argument{'s' if minimum != 1 else ''}, got {count}")
