"""Compiled expressions (mapping/evaluation.py) give what jmespath's own interpreter gives, errors included.

The reference is jmespath's ``ParsedResult.search`` with the bridge's functions called through jmespath's
``Functions.call_function`` (its per-call signature checks): what every expression ran on before they were
compiled. Expressions and data are generated, so every node type, every function, and the cases where
JMESPath's semantics differ from Python's (0/1 against true/false, falsy values, ordering across types,
strings indexed) meet each other.
"""

from __future__ import annotations

from typing import Any

import jmespath
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from jmespath import exceptions as jp_exceptions
from jmespath import functions as jp_functions

from humanos_bridge.mapping.evaluation import CompiledResult
from humanos_bridge.mapping.expressions import FUNCTION_NAMES, BridgeFunctions, compile_expression, evaluating


class _ReferenceFunctions(BridgeFunctions):
    """The bridge's functions, each call checked by jmespath itself (as before expressions were compiled)."""

    def call_function(self, function_name: str, resolved_args: list[Any]) -> Any:
        return jp_functions.Functions.call_function(self, function_name, resolved_args)


_REFERENCE = jmespath.Options(custom_functions=_ReferenceFunctions())


def _outcome(search: Any, data: Any) -> tuple[str, Any]:
    """("ok", value) or ("raised", (type, message)), with values tagged by type (1 is not True here)."""
    try:
        return "ok", _tagged(search(data))
    except Exception as exc:  # the exception itself is what is compared
        return "raised", (type(exc), str(exc))


def _tagged(value: Any) -> Any:
    if isinstance(value, dict):
        return ("dict", [(key, _tagged(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [_tagged(item) for item in value])
    return (type(value).__name__, value)


def assert_same_as_interpreter(text: str, data: Any, headers: dict[str, str] | None = None) -> None:
    compiled = compile_expression(text).parsed
    assert isinstance(compiled, CompiledResult)
    reference = jmespath.compile(text)
    with evaluating(data, headers or {"x-topic": "orders/paid"}):
        expected = _outcome(lambda d: reference.search(d, options=_REFERENCE), data)
        assert _outcome(compiled.search, data) == expected


# -- generated expressions ----------------------------------------------------------------------------

names = st.sampled_from(["a", "b", "c", "items", '"x y"'])
literals = st.sampled_from(
    ["`0`", "`1`", "`2.5`", "`-1`", "`true`", "`false`", "`null`", "'a'", "''", "`[]`", "`{}`", "`[1, 2]`",
     '`{"a": 1}`', "'paid'", "`\"1\"`"]
)  # fmt: skip
comparators = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
#: Every function, called with its arity (compile_expression refuses other counts).
_ARGUMENTS = {name: BridgeFunctions.FUNCTION_TABLE[name]["signature"] for name in FUNCTION_NAMES}


def _expressions(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pair = st.tuples(children, children)
    return st.one_of(
        st.builds(lambda a, b: f"{a}.{b}", children, names),
        st.builds(lambda a, i: f"{a}[{i}]", children, st.sampled_from(["0", "1", "-1", "5"])),
        st.builds(lambda a, s: f"{a}[{s}]", children, st.sampled_from(["1:3", "::2", "::-1", "-2:", ":0"])),
        st.builds(lambda a, b: f"{a}[*].{b}", children, names),
        st.builds(lambda a: f"{a}[]", children),
        st.builds(lambda a: f"{a}.*", children),
        st.builds(lambda a, b, op, c: f"{a}[?{b} {op} {c}]", children, children, comparators, children),
        st.builds(lambda p, op: f"{p[0]} {op} {p[1]}", pair, comparators),
        st.builds(lambda p: f"{p[0]} | {p[1]}", pair),
        st.builds(lambda p: f"({p[0]} || {p[1]})", pair),
        st.builds(lambda p: f"({p[0]} && {p[1]})", pair),
        st.builds(lambda a: f"!{a}", children),
        st.builds(lambda p: f"{{k: {p[0]}, j: {p[1]}}}", pair),
        st.builds(lambda p: f"[{p[0]}, {p[1]}]", pair),
        st.builds(lambda p: f"{p[0]}.[{p[1]}]", pair),
        st.builds(lambda a, b: f"sort_by({a}, &{b})", children, children),
        st.builds(lambda a, b: f"max_by({a}, &{b})", children, children),
        st.builds(lambda a, b: f"map(&{b}, {a})", children, children),
        st.sampled_from(FUNCTION_NAMES).flatmap(
            lambda name: st.lists(children, min_size=_arity(name), max_size=_arity(name) + 2 * _variadic(name)).map(
                lambda args: f"{name}({', '.join(args)})"
            )
        ),
    )


def _arity(name: str) -> int:
    return len(_ARGUMENTS[name])


def _variadic(name: str) -> int:
    signature = _ARGUMENTS[name]
    return int(bool(signature) and bool(signature[-1].get("variadic")))


expressions = st.recursive(st.one_of(names, literals, st.just("@")), _expressions, max_leaves=6)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, 1, -1, 2, 0.0, 1.0, 2.5, 1250, "", "a", "paid", "1", "2026-03-01", "+351 912 345 678"]),
    st.integers(min_value=-1000, max_value=1000),
    st.text(max_size=6),
)
data = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "items", "x y", "k"]), inner, max_size=4)
    ),
    max_leaves=12,
)


def _compiles(text: str) -> bool:
    try:
        compile_expression(text)
    except Exception:  # generated text that is not an expression is skipped, not tested
        return False
    return True


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(expressions.filter(_compiles), data)
@example("a.b == `1`", {"a": {"b": True}})
@example("a == `0`", {"a": False})
@example("a[?b == 'paid'].c | [0]", {"a": [{"b": "paid", "c": 1}, {"b": 1, "c": 2}]})
@example("!a", {"a": 0})
@example("a < b", {"a": "x", "b": 1})
@example("concat(a, b)", {"a": {"x": 1}, "b": "y"})
@example("sum(a)", {"a": [1, "2"]})
@example("a[::0]", {"a": [1]})
def test_compiled_expressions_give_what_the_interpreter_gives(text: str, event: Any) -> None:
    """Given any expression the loader accepts and any event, when it is evaluated compiled and by the
    interpreter, then both give the same value (same types) or raise the same exception."""
    assert_same_as_interpreter(text, event)


@pytest.mark.parametrize(
    "text",
    [
        "data.object.id",
        "fixed(divide(data.object.amount_total, `100`), `2`)",
        "concat('Order ', fixed(divide(data.object.amount_total, `100`), `2`), ' ', upper(data.object.currency))",
        'default(lookup(`{"pt": "PRT", "en": "ENG"}`, data.object.locale), \'ENG\')',
        "data.object.payment_status == 'paid'",
        "line_items[*].{title: title, total: fixed(multiply(quantity, to_number(price)), `2`)}",
        "as_list(compact([email, customer.email, phone]) | [0])",
        "[?subscriptionType == 'contact.propertyChange' && propertyName == 'phone']",
        "header('X-Topic')",
        "root().data.object.id",
        "fixed(`1e26`, `2`)",
        "fixed(`2.675`, `2`)",
    ],
)
def test_preset_shaped_expressions_give_what_the_interpreter_gives(text: str) -> None:
    """The expressions the presets use, on an event that has their fields and one that has none."""
    event = {
        "data": {"object": {"id": "cs_1", "amount_total": 1250, "currency": "eur", "locale": "pt",
                            "payment_status": "paid"}},
        "line_items": [{"title": "Mug", "quantity": 3, "price": "19.99"}, {"title": "Tee", "quantity": 1}],
        "email": None, "customer": {"email": "ana@example.com"}, "phone": "+351912345678",
    }  # fmt: skip
    batch = [{"subscriptionType": "contact.propertyChange", "propertyName": "phone", "objectId": 1}, {"a": 0}]
    for data in (event, {}, batch, None, "text"):
        assert_same_as_interpreter(text, data)


def test_a_function_called_with_a_wrong_type_fails_as_jmespath_says() -> None:
    """The signature read once gives the same error jmespath's per-call check gave, position included."""
    with evaluating({}, {}), pytest.raises(jp_exceptions.JMESPathTypeError) as raised:
        compile_expression("concat('a', `{}`)").parsed.search({})
    assert raised.value.position == 2
    assert_same_as_interpreter("concat('a', `{}`)", {})


def test_equal_texts_compile_to_equal_expressions() -> None:
    """Two loads of one mapping compare equal, as before (jmespath's cache returned one parsed object)."""
    assert compile_expression("a.b") == compile_expression("a.b")
    assert compile_expression("a.b") != compile_expression("a.c")
