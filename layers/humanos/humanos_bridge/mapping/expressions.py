"""JMESPath for mapping files: the custom functions, compile-time checks and safe evaluation.

Every expression is compiled once, when the mapping file loads; unknown functions and wrong
argument counts are load errors too (JMESPath itself would only notice them on the first event).
At run time only our errors escape, and their messages never quote the event's values, which may
be contacts.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, getcontext, localcontext
from typing import Any, NamedTuple

import jmespath
from jmespath import exceptions as jp_exceptions
from jmespath import functions as jp_functions
from jmespath import visitor as jp_visitor

from humanos_bridge.core.errors import MappingError
from humanos_bridge.core.wire import js_number
from humanos_bridge.mapping.evaluation import CompiledResult, compile_tree


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


class FunctionFailed(Exception):
    """A bridge function cannot give a value for these arguments; ``message`` says why without quoting them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Mapped(NamedTuple):
    event: Any
    #: The request headers the source keeps, by lower-case name.
    headers: Mapping[str, str]
    #: The fields of the SNS or EventBridge envelope the event came in, if any.
    envelope: Mapping[str, Any] | None = None


#: The event being mapped, for ``root()`` and ``header()``: JMESPath functions see only their arguments.
_MAPPED: contextvars.ContextVar[_Mapped | None] = contextvars.ContextVar("mapped_event", default=None)


@contextlib.contextmanager
def evaluating(
    event: Any, headers: Mapping[str, str] | None = None, envelope: Mapping[str, Any] | None = None
) -> Iterator[None]:
    """Expressions evaluated inside see ``event`` as ``root()``, ``headers`` (lower-case names) through
    ``header()`` and ``envelope`` through ``envelope()``; one context per thread, so the records of a batch
    mapped side by side never mix."""
    token = _MAPPED.set(_Mapped(event, headers or {}, envelope))
    try:
        yield
    finally:
        _MAPPED.reset(token)


def _mapped() -> _Mapped:
    held = _MAPPED.get()
    if held is None:  # a bug: the engine always evaluates inside evaluating()
        raise FunctionFailed("root() and header() are only available while the engine maps an event")
    return held


def _decimal(value: int | float) -> Decimal:
    # repr() is the shortest text that reads back as the same float: 19.99 stays 19.99, not 19.989999...
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


#: fixed()'s quantize exponents, 10**-n for n decimals (0 to 20).
_EXPONENTS = tuple(Decimal(1).scaleb(-decimals) for decimals in range(21))


def _number(value: Decimal) -> int | float:
    if not value.is_finite():
        raise FunctionFailed("the result is not a finite number")
    return int(value) if value == value.to_integral_value() else float(value)


def _arithmetic(name: str, a: Any, b: Any) -> int | float | None:
    """Decimal arithmetic, so that money adds up as written (19.99 * 3 = 59.97, not 59.970000000000006)."""
    if a is None or b is None:
        return None
    x, y = _decimal(a), _decimal(b)
    try:
        if name == "add":
            return _number(x + y)
        if name == "subtract":
            return _number(x - y)
        if name == "multiply":
            return _number(x * y)
        if y == 0:
            raise FunctionFailed("divide() by zero; guard it, e.g. with a `when` condition")
        return _number(x / y)
    except InvalidOperation:
        raise FunctionFailed(f"{name}() cannot compute this result") from None


def _parse_date(value: str) -> date | datetime:
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise FunctionFailed(
            "format_date() argument 1 is not an ISO 8601 date or date-time (2026-03-01, 2026-03-01T09:30:00Z)"
        ) from None


class BridgeFunctions(jp_functions.Functions):  # type: ignore[misc]  # jmespath ships no type hints
    """The functions mapping files need beyond standard JMESPath (which has ``join`` and ``not_null``)."""

    def call_function(self, function_name: str, resolved_args: list[Any]) -> Any:
        # jmespath re-derives every parameter's allowed types from its signature's strings on each call (~2 µs a
        # call, 11 calls per Stripe event); _CALLS reads each signature once (compiled expressions call them
        # directly). Unknown names take jmespath's path, and so its error.
        call = _CALLS.get(function_name)
        if call is None:
            return super().call_function(function_name, resolved_args)
        return call(resolved_args)

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

    # -- numbers ----------------------------------------------------------------------------------
    # JMESPath has no arithmetic operators; these are its four, in decimal. A null argument gives null.

    @jp_functions.signature({"types": ["number", "null"]}, {"types": ["number", "null"]})  # type: ignore[untyped-decorator]
    def _func_add(self, a: Any, b: Any) -> int | float | None:
        return _arithmetic("add", a, b)

    @jp_functions.signature({"types": ["number", "null"]}, {"types": ["number", "null"]})  # type: ignore[untyped-decorator]
    def _func_subtract(self, a: Any, b: Any) -> int | float | None:
        return _arithmetic("subtract", a, b)

    @jp_functions.signature({"types": ["number", "null"]}, {"types": ["number", "null"]})  # type: ignore[untyped-decorator]
    def _func_multiply(self, a: Any, b: Any) -> int | float | None:
        return _arithmetic("multiply", a, b)

    @jp_functions.signature({"types": ["number", "null"]}, {"types": ["number", "null"]})  # type: ignore[untyped-decorator]
    def _func_divide(self, a: Any, b: Any) -> int | float | None:
        return _arithmetic("divide", a, b)

    @jp_functions.signature({"types": ["number", "null"]}, {"types": ["number"]})  # type: ignore[untyped-decorator]
    def _func_fixed(self, value: Any, decimals: Any) -> str | None:
        """``fixed(divide(amount_total, `100`), `2`)`` -> ``"12.50"``: text with that many decimals, half up."""
        if value is None:
            return None
        if int(decimals) != decimals or not 0 <= decimals <= 20:
            raise FunctionFailed("fixed() argument 2 must be a whole number of decimals from 0 to 20")
        exponent = _EXPONENTS[int(decimals)]
        number = _decimal(value)
        # quantize() refuses a result with more digits than the precision (28): 1e26 with 2 decimals has 29.
        digits = number.adjusted() + 2 + int(decimals)
        if digits <= getcontext().prec:  # the usual amount: no context of its own needed (1.5 µs a call)
            return str(number.quantize(exponent, rounding=ROUND_HALF_UP))
        with localcontext() as context:
            context.prec = digits
            return str(number.quantize(exponent, rounding=ROUND_HALF_UP))

    # -- text -------------------------------------------------------------------------------------
    # A null string gives null, so that the field it fills is left out.

    @jp_functions.signature({"types": ["string", "null"]}, {"types": ["number"]}, {"types": ["number"]})  # type: ignore[untyped-decorator]
    def _func_substring(self, value: str | None, start: Any, length: Any) -> str | None:
        """``substring('2026-03-01', `8`, `2`)`` -> ``"01"``: from ``start`` (0 = the first character)."""
        if value is None:
            return None
        if start < 0 or length < 0 or int(start) != start or int(length) != length:
            raise FunctionFailed("substring() start and length must be whole numbers, 0 or more")
        return value[int(start) : int(start) + int(length)]

    @jp_functions.signature({"types": ["string", "null"]}, {"types": ["string"]})  # type: ignore[untyped-decorator]
    def _func_split(self, value: str | None, separator: str) -> list[str] | None:
        """``split('a,b', ',')`` -> ``["a", "b"]``."""
        if value is None:
            return None
        if not separator:
            raise FunctionFailed("split() argument 2 is empty; give the separator, e.g. ','")
        return value.split(separator)

    @jp_functions.signature({"types": ["string", "null"]}, {"types": ["string"]}, {"types": ["string"]})  # type: ignore[untyped-decorator]
    def _func_replace(self, value: str | None, old: str, new: str) -> str | None:
        """``replace(phone, ' ', '')``: every occurrence."""
        if value is None:
            return None
        if not old:
            raise FunctionFailed("replace() argument 2 is empty; give the text to replace")
        return value.replace(old, new)

    @jp_functions.signature({"types": ["string", "number", "null"]}, {"types": ["number"]}, {"types": ["string"]})  # type: ignore[untyped-decorator]
    def _func_pad_left(self, value: Any, width: Any, fill: str) -> str | None:
        """``pad_left(orderNumber, `8`, '0')`` -> ``"00001234"``."""
        return None if value is None else _text(value).rjust(_width(width), _fill(fill))

    @jp_functions.signature({"types": ["string", "number", "null"]}, {"types": ["number"]}, {"types": ["string"]})  # type: ignore[untyped-decorator]
    def _func_pad_right(self, value: Any, width: Any, fill: str) -> str | None:
        return None if value is None else _text(value).ljust(_width(width), _fill(fill))

    # -- dates ------------------------------------------------------------------------------------

    @jp_functions.signature({"types": ["string", "number", "null"]}, {"types": ["string"]})  # type: ignore[untyped-decorator]
    def _func_format_date(self, value: str | float | None, pattern: str) -> str | None:
        """``format_date('2026-03-01', '%d/%m/%Y')`` -> ``"01/03/2026"`` (C ``strftime`` directives).

        A number is Unix seconds (Stripe's ``created``), shown in UTC; a date-time keeps its own offset.
        """
        if value is None:
            return None
        if isinstance(value, (int, float)):
            try:
                return datetime.fromtimestamp(value, UTC).strftime(pattern)
            except (OverflowError, OSError, ValueError):
                raise FunctionFailed("format_date() argument 1 is not a Unix time in seconds") from None
        return _parse_date(value).strftime(pattern)

    # -- tables and context -----------------------------------------------------------------------

    @jp_functions.signature({"types": ["object"]}, {"types": ["string", "number", "null"]})  # type: ignore[untyped-decorator]
    def _func_lookup(self, table: dict[str, Any], key: Any) -> Any:
        """``lookup(`{"pt-PT": "PRT"}`, locale)``: the table's value for the key, or null (then default())."""
        return None if key is None else table.get(_text(key))

    @jp_functions.signature()  # type: ignore[untyped-decorator]
    def _func_root(self) -> Any:
        """``root()``: the whole event, also inside a filter or projection, where ``@`` is the current item."""
        return _mapped().event

    @jp_functions.signature()  # type: ignore[untyped-decorator]
    def _func_envelope(self) -> Any:
        """``envelope()``: the SNS notification or EventBridge event the business event came in (without the
        event itself), or null: ``envelope().id``, ``envelope()."detail-type"``, ``envelope().MessageId``."""
        found = _mapped().envelope
        return dict(found) if found is not None else None

    @jp_functions.signature({"types": ["string"]})  # type: ignore[untyped-decorator]
    def _func_header(self, name: str) -> str | None:
        """``header('X-Shopify-Topic')``: a request header the source keeps (its ``headers``), or null."""
        return _mapped().headers.get(name.lower())


def _width(width: Any) -> int:
    if int(width) != width or not 0 <= width <= 1000:
        raise FunctionFailed("pad width must be a whole number from 0 to 1000")
    return int(width)


def _fill(fill: str) -> str:
    if len(fill) != 1:
        raise FunctionFailed("pad fill must be exactly one character, e.g. '0'")
    return fill


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        # Numbers read as JavaScript prints them (1 not 1.0), like the body Humanos sees.
        return js_number(value) if value == value and abs(value) != float("inf") else str(value)
    return str(value)


#: One options object for every search: the custom functions are stateless.
_OPTIONS = jmespath.Options(custom_functions=BridgeFunctions())
#: Evaluates what compiled closures hand back to jmespath (``&expr`` arguments); it holds no per-search state.
_INTERPRETER = jp_visitor.TreeInterpreter(_OPTIONS)
#: Function name -> (minimum arguments, variadic), standard and custom alike.
_ARITY: dict[str, tuple[int, bool]] = {
    name: (len(spec["signature"]), bool(spec["signature"] and spec["signature"][-1].get("variadic")))
    for name, spec in BridgeFunctions.FUNCTION_TABLE.items()
}


def _direct_call(name: str, spec: dict[str, Any]) -> Callable[[list[Any]], Any]:
    """A call of function ``name`` with evaluated arguments, as ``Functions.call_function`` makes it.

    The arguments are checked against the signature read once here; a call that does not plainly fit (a wrong
    count or type, or a signature with typed arrays such as ``array-number``, whose items jmespath checks) goes
    through jmespath's own checks, so it fails, or passes, exactly as it did.
    """
    functions = _OPTIONS.custom_functions
    function = spec["function"]

    def checked(args: list[Any]) -> Any:
        return jp_functions.Functions.call_function(functions, name, args)

    signature = spec["signature"]
    allowed: list[frozenset[str] | None] = []
    for parameter in signature:
        types = parameter["types"]
        if any("-" in kind for kind in types):
            return checked
        # jmespath compares type(value).__name__ with these names (a bool is no number there); none: any type.
        allowed.append(frozenset(py for kind in types for py in jp_functions.REVERSE_TYPES_MAP[kind]) or None)
    count = len(allowed)
    variadic = bool(signature) and bool(signature[-1].get("variadic"))
    last = count - 1

    def call(args: list[Any]) -> Any:
        if len(args) != count:
            return call_variadic(args) if variadic and len(args) > count else checked(args)
        for value, types in zip(args, allowed, strict=True):
            if types is not None and type(value).__name__ not in types:
                return checked(args)
        return function(functions, *args)

    def call_variadic(args: list[Any]) -> Any:
        # A variadic function's extra arguments are checked against its last parameter, as _type_check does.
        for index, value in enumerate(args):
            types = allowed[index if index < last else last]
            if types is not None and type(value).__name__ not in types:
                return checked(args)
        return function(functions, *args)

    return call


#: Function name -> its call with evaluated arguments (what compiled expressions and call_function run).
_CALLS: dict[str, Callable[[list[Any]], Any]] = {
    name: _direct_call(name, spec) for name, spec in BridgeFunctions.FUNCTION_TABLE.items()
}


def _call_for(name: str) -> Callable[[list[Any]], Any]:
    found = _CALLS.get(name)
    if found is not None:
        return found
    return lambda args: _OPTIONS.custom_functions.call_function(name, args)  # unknown: jmespath's error, per call


#: Function names offered in "did you mean" hints and the README.
FUNCTION_NAMES: tuple[str, ...] = tuple(sorted(_ARITY))


class Expression(NamedTuple):
    """A compiled JMESPath expression with the text it came from."""

    text: str
    parsed: Any

    def search(self, data: Any, *, where: str) -> Any:
        """Evaluate over ``data``; failures become MappingError naming ``where`` (never a value)."""
        try:
            return self.parsed.search(data, options=_OPTIONS)
        except FunctionFailed as exc:
            raise MappingError(
                f"{where}: expression `{self.text}` failed: {exc.message}",
                path=where,
                details={"reason": "expression_failed"},
            ) from None
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


def header_names(expression: Expression) -> list[str | None]:
    """The names ``header()`` is called with in ``expression``; None for a name that is not a literal."""
    found: list[str | None] = []
    stack = [expression.parsed.parsed]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if node.get("type") == "function_expression" and node.get("value") == "header":
            (argument,) = node["children"] or [None]
            literal = argument.get("value") if isinstance(argument, dict) and argument["type"] == "literal" else None
            found.append(literal if isinstance(literal, str) else None)
        stack.extend(node.get("children", ()))
    return found


def compile_expression(text: str) -> Expression:
    """Compile ``text`` once, checking function names and argument counts too."""
    if not text.strip():
        raise ExpressionSyntaxError("empty JMESPath expression; write one, e.g. `data.id`")
    try:
        parsed = jmespath.compile(text)
    except jp_exceptions.ParseError as exc:
        reason = _parse_reason(exc, text)
        raise ExpressionSyntaxError(f"invalid JMESPath at character {exc.lex_position}: {reason}") from None
    except jp_exceptions.JMESPathError as exc:
        raise ExpressionSyntaxError(f"invalid JMESPath: {type(exc).__name__}") from None
    for name, count in _function_calls(parsed.parsed):
        _check_call(name, count)
    try:
        run = compile_tree(parsed.parsed, _INTERPRETER, _call_for)
        compiled = CompiledResult(parsed.expression, parsed.parsed, run)
    except RecursionError:  # a tree too deep to compile would be too deep to walk too; jmespath then reports it
        return Expression(text=text, parsed=parsed)
    return Expression(text=text, parsed=compiled)


#: What a character JMESPath does not know usually meant, and what to write instead.
_UNKNOWN_CHARACTERS = {
    "/": "JMESPath has no arithmetic operators: write divide(a, `100`) (also add, subtract, multiply)",
    "+": "JMESPath has no arithmetic operators: write add(a, b) (also subtract, multiply, divide)",
    "%": "JMESPath has no arithmetic operators; see add(), subtract(), multiply(), divide(), fixed()",
    "$": "JMESPath has no variables: write root() for the whole event (also inside a filter) and "
    "header('Name') for a request header",
    "-": "JMESPath has no arithmetic operators: write subtract(a, b); a negative number is a literal: `-1`",
}


def _parse_reason(exc: jp_exceptions.ParseError, text: str) -> str:
    if isinstance(exc, jp_exceptions.IncompleteExpressionError):
        return "the expression ends too early"
    if isinstance(exc, jp_exceptions.LexerError):
        character = text[exc.lex_position] if 0 <= exc.lex_position < len(text) else ""
        hint = _UNKNOWN_CHARACTERS.get(character)
        return f"unknown character {character!r}; {hint}" if hint else str(exc.message)
    token = exc.token_type.lower()
    if token == "number":
        return "a bare number; numbers are literals in backticks: length(items) > `0`, [0] only as an index"
    if token == "star" and _follows_value(text, exc.lex_position):
        return "`*` here is not multiplication (JMESPath has no arithmetic operators): write multiply(a, b)"
    if token == "quoted_identifier":
        return "a \"double-quoted\" name is a field; write text in single quotes: 'paid'"
    return f"unexpected {token} token"


def _follows_value(text: str, position: int) -> bool:
    """True when ``*`` at ``position`` comes after an operand (``a * b``), not after ``.``/``[`` (a wildcard)."""
    before = text[:position].rstrip()
    return bool(before) and (before[-1].isalnum() or before[-1] in ")]_'`\"")


def _function_calls(node: Any) -> Iterator[tuple[str, int]]:
    if not isinstance(node, dict):
        return
    if node.get("type") == "function_expression":
        yield str(node["value"]), len(node["children"])
    for child in node.get("children", ()):
        yield from _function_calls(child)


#: Functions people reach for from other languages, and what this one has instead.
_FALSE_FRIENDS = {
    "format": "build text with concat(), numbers with fixed(x, `2`), dates with format_date(d, '%d/%m/%Y')",
    "printf": "build text with concat() and numbers with fixed(x, `2`)",
    "round": "fixed(x, `2`) gives the text with 2 decimals (rounded half up)",
    "substr": "substring(s, start, length)",
    "slice": "substring(s, start, length) for text; [start:stop] for an array",
    "len": "length(x)",
    "count": "length(x)",
    "str": "to_string(x)",
    "string": "to_string(x)",
    "int": "to_number(x)",
    "float": "to_number(x)",
    "number": "to_number(x)",
    "date": "format_date(d, '%d/%m/%Y')",
    "strftime": "format_date(d, '%d/%m/%Y')",
    "if": "there is no if(): use a rule's `when`, or `condition && a || b` (when a is never false or empty)",
    "iif": "there is no iif(): use a rule's `when`, or `condition && a || b` (when a is never false or empty)",
    "coalesce": "default(x, fallback), or not_null(a, b, ...)",
    "get": "lookup(table, key) for a table; a path (a.b) for a field",
    "sum_of": "sum(array)",
    "mul": "multiply(a, b)",
    "div": "divide(a, b)",
    "sub": "subtract(a, b)",
    "plus": "add(a, b)",
}


def _check_call(name: str, count: int) -> None:
    if name not in _ARITY:
        if name in _FALSE_FRIENDS:
            raise ExpressionSyntaxError(f"unknown function {name}(); {_FALSE_FRIENDS[name]}")
        close = difflib.get_close_matches(name, FUNCTION_NAMES, n=1)
        hint = f"did you mean {close[0]}()?" if close else f"available: {', '.join(FUNCTION_NAMES)}"
        raise ExpressionSyntaxError(f"unknown function {name}(); {hint}")
    minimum, variadic = _ARITY[name]
    if count < minimum or (not variadic and count != minimum):
        wanted = f"at least {minimum}" if variadic else str(minimum)
        raise ExpressionSyntaxError(f"{name}() takes {wanted} argument{'s' if minimum != 1 else ''}, got {count}")
