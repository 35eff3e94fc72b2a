"""The expression language's functions beyond JMESPath, its errors, and the traps `mappings check` warns about.

Every case here comes from mapping a real webhook (Stripe, Shopify, Typeform, an HR system) and is written
the way a mapping file writes it.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from humanos_bridge.core.errors import ConfigError, MappingError
from humanos_bridge.mapping import parse_mapping
from humanos_bridge.mapping.expressions import ExpressionSyntaxError, compile_expression, evaluating
from humanos_bridge.mapping.lint import warnings
from tests.support.mappings import one_source


def value(expression: str, event: Any) -> Any:
    """What ``expression`` gives for ``event``, evaluated as the engine does."""
    with evaluating(event):
        return compile_expression(expression).search(event, where="request.name")


def syntax_error(expression: str) -> str:
    with pytest.raises(ExpressionSyntaxError) as raised:
        compile_expression(expression)
    return raised.value.message


# -- numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cents", "text"), [(1250, "12.50"), (1999, "19.99"), (1200, "12.00"), (5, "0.05"), (0, "0.00")]
)
def test_stripe_cents_become_money_text(cents: int, text: str) -> None:
    event = {"data": {"object": {"amount_total": cents, "currency": "eur"}}}
    expression = "concat(fixed(divide(data.object.amount_total, `100`), `2`), ' ', upper(data.object.currency))"
    assert value(expression, event) == f"{text} EUR"


def test_line_totals_are_computed_in_decimal() -> None:
    """19.99 x 3 is 59.97, not the float 59.97000000000001; prices arrive as text in Shopify."""
    event = {"line_items": [{"price": "19.99", "quantity": 3}, {"price": "0.10", "quantity": 3}]}
    assert value("line_items[*].multiply(quantity, to_number(price))", event) == [59.97, 0.3]
    assert value("line_items[*].fixed(multiply(quantity, to_number(price)), `2`)", event) == ["59.97", "0.30"]


def test_arithmetic_on_a_missing_number_gives_null_so_the_field_is_left_out() -> None:
    assert value("add(a, `1`)", {}) is None
    assert value("fixed(a, `2`)", {}) is None


@pytest.mark.parametrize(("decimals", "text"), [(0, "3"), (1, "2.5"), (2, "2.50")])
def test_fixed_rounds_half_up(decimals: int, text: str) -> None:
    assert value(f"fixed(`2.5`, `{decimals}`)", {}) == text


def test_fixed_half_up_also_for_floats_that_print_short() -> None:
    # 0.125 is exact in binary, 2.675 is not (2.67499999...); both read as written.
    assert value("fixed(`0.125`, `2`)", {}) == "0.13"
    assert value("fixed(`2.675`, `2`)", {}) == "2.68"


def test_division_by_zero_names_the_field_and_the_fix() -> None:
    with pytest.raises(MappingError, match=r"^request.name: expression `divide\(a, `0`\)` failed: divide\(\) by zero"):
        value("divide(a, `0`)", {"a": 1})


@given(
    a=st.decimals(min_value=-(10**9), max_value=10**9, places=2),
    b=st.decimals(min_value=-(10**9), max_value=10**9, places=2),
)
def test_sums_of_money_are_exact(a: Any, b: Any) -> None:
    event = {"a": float(a), "b": float(b)}
    assert value("fixed(add(a, b), `2`)", event) == str((a + b).quantize(type(a)("0.01")))


# -- text and dates --------------------------------------------------------------------------------


def test_text_functions_for_dates_ids_and_phones() -> None:
    event = {"startDate": "2026-03-01", "tags": "vip,new", "phone": "+351 912-345-678", "order": 42}
    assert value("substring(startDate, `8`, `2`)", event) == "01"
    assert value("split(tags, ',')", event) == ["vip", "new"]
    assert value("replace(replace(phone, ' ', ''), '-', '')", event) == "+351912345678"
    assert value("pad_left(order, `6`, '0')", event) == "000042"
    assert value("pad_right('ab', `4`, '.')", event) == "ab.."
    assert value("substring(missing, `0`, `2`)", event) is None


@pytest.mark.parametrize(
    ("when", "text"),
    [
        ("2026-03-01", "01/03/2026"),
        ("2026-03-01T09:30:00Z", "01/03/2026 09:30"),
        ("2026-03-01T09:30:00+01:00", "01/03/2026 09:30"),
    ],
)
def test_dates_are_formatted(when: str, text: str) -> None:
    pattern = "%d/%m/%Y" if len(when) == 10 else "%d/%m/%Y %H:%M"
    assert value(f"format_date(startDate, '{pattern}')", {"startDate": when}) == text


def test_unix_seconds_are_dates_in_utc() -> None:
    """Stripe's timestamps: 1772355600 is 2026-03-01T09:00:00Z."""
    assert value("format_date(created, '%d/%m/%Y %H:%M')", {"created": 1772355600}) == "01/03/2026 09:00"
    with pytest.raises(MappingError, match="not a Unix time in seconds"):
        value("format_date(created, '%Y')", {"created": 1e20})


def test_a_date_that_is_not_iso_8601_fails_naming_the_form_and_never_the_value() -> None:
    with pytest.raises(MappingError) as raised:
        value("format_date(d, '%d/%m/%Y')", {"d": "ana@example.com"})
    assert "not an ISO 8601 date" in raised.value.message
    assert "ana@example.com" not in raised.value.message


# -- tables and the whole event --------------------------------------------------------------------


def test_a_locale_table_with_a_default() -> None:
    table = '`{"pt-PT": "POR", "en-GB": "ENG", "es-ES": "SPA"}`'
    assert value(f"default(lookup({table}, locale), 'ENG')", {"locale": "pt-PT"}) == "POR"
    assert value(f"default(lookup({table}, locale), 'ENG')", {"locale": "fr-FR"}) == "ENG"
    assert value(f"default(lookup({table}, locale), 'ENG')", {}) == "ENG"


def test_root_reaches_the_event_inside_a_filter() -> None:
    event = {"wanted": "b", "items": [{"sku": "a", "n": 1}, {"sku": "b", "n": 2}]}
    assert value("items[?sku == root().wanted].n | [0]", event) == 2


def test_root_is_the_event_of_its_own_thread() -> None:
    """The dispatcher maps a batch's records side by side: each sees its own event."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda n: value("root().n", {"n": n}), range(200)))
    assert results == list(range(200))


# -- errors that say the real cause ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("format('x')", "unknown function format(); build text with concat(), numbers with fixed(x, `2`)"),
        ("amount_total / 100", "no arithmetic operators: write divide(a, `100`)"),
        ("a * b", "not multiplication"),
        ("a - b", "write subtract(a, b)"),
        ("length(a) > 0", "numbers are literals in backticks"),
        ("items[?sku == $.wanted]", "write root() for the whole event"),
        ("round(x)", "fixed(x, `2`)"),
        ("if(a, b, c)", "there is no if()"),
    ],
)
def test_errors_say_the_real_cause_and_the_fix(expression: str, says: str) -> None:
    assert says in syntax_error(expression)


def test_a_rule_key_from_another_tool_names_ours() -> None:
    document = one_source([{"condition": "a", "request": {"contacts": ["+351912345678"], "groupIds": ["g"]}}])
    with pytest.raises(ConfigError) as raised:
        parse_mapping(document, file="m.json")
    assert "sources.crm.rules.x[0].condition: unknown key; it is called 'when' here" in str(raised.value.details)


# -- traps `mappings check` warns about -----------------------------------------------------------


def lint(when: str | None = None, **request: Any) -> list[str]:
    rule: dict[str, Any] = {"name": "r", "request": {"contacts": ["+351912345678"], "groupIds": ["g"], **request}}
    if when is not None:
        rule["when"] = when
    return warnings(parse_mapping(one_source([rule]), file="m.json"))


def test_a_pipe_before_and_is_a_trap_and_parentheses_fix_it() -> None:
    trap = "answers[?ref=='consent'].boolean | [0] == `true` && status == 'paid'"
    (warning,) = lint(when=trap)
    assert warning.startswith("sources.crm.rules.x[0].when: `answers")
    assert "`|` binds loosest" in warning
    assert lint(when="(answers[?ref=='consent'].boolean | [0]) == `true` && status == 'paid'") == []
    assert lint(when="answers[?ref=='consent'].boolean | [0] == `true`") == []


def test_double_quotes_beside_a_comparison_are_a_field_not_text() -> None:
    (warning,) = lint(when='status == "paid"')
    assert "is a field name, not text" in warning
    assert lint(when="status == 'paid'") == []
    assert lint(when='"status-code" == `200`') != []  # a quoted name compared is flagged either side


def test_a_comparison_in_a_body_field_is_never_null() -> None:
    (warning,) = lint(name="=tier == 'vip'")
    assert warning.startswith("sources.crm.rules.x[0].request.name: ")
    assert "never null" in warning
    assert lint(name="=nickname || name") == []
    # `a && b` is null when a is missing, so it can leave a field out: no warning.
    assert lint(name="=startDate && concat('You start on ', startDate)") == []


def test_a_built_list_keeps_nulls() -> None:
    (warning,) = lint(contacts="=[mobile, email]")
    assert "compact([a, b])" in warning
    assert lint(contacts="=compact([mobile, email])") == []


def test_the_example_mappings_have_no_traps() -> None:
    from pathlib import Path

    from humanos_bridge.mapping import load_mapping

    root = Path(__file__).resolve().parents[2] / "mappings"
    for file in sorted(root.glob("*.json")):
        # A source's auth warning is about its provider (bridge.json's shopify signs no timestamp), not a trap.
        assert [w for w in warnings(load_mapping(file)) if ".auth: " not in w] == [], file


@pytest.mark.parametrize(
    ("auth", "says"),
    [
        ({"scheme": "api-key", "keyHeader": "X-Api-Key"}, '"api-key" checks a static credential: it does not protect'),
        ({"scheme": "basic-auth"}, '"basic-auth" checks a static credential'),
        ({"scheme": "github"}, '"github" signs no timestamp: a captured request verifies forever'),
    ],
)
def test_check_warns_about_sender_authentication_that_leaves_a_door_open(auth: dict[str, Any], says: str) -> None:
    document = one_source([{"name": "r", "request": {"contacts": ["+351912345678"], "groupIds": ["g"]}}], auth=auth)
    (warning,) = warnings(parse_mapping(document, file="m.json"))
    assert warning.startswith(f"sources.crm.auth: {says}")


@pytest.mark.parametrize("scheme", ["humanos-hmac", "stripe", "hubspot-v3"])
def test_signed_timestamps_need_no_warning(scheme: str) -> None:
    document = one_source([{"name": "r", "request": {"contacts": ["+351912345678"], "groupIds": ["g"]}}])
    document["sources"]["crm"]["auth"] = {"scheme": scheme}
    assert warnings(parse_mapping(document, file="m.json")) == []
