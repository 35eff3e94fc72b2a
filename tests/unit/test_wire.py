"""The wire format: bodies serialised exactly as Node's JSON.stringify writes them.

Humanos verifies signatures against its own re-serialisation of the parsed body, so any byte
of difference between our serialisation and JSON.stringify is a 401 in production. The
compatibility tests run the real thing: Node.js (on every machine image of this project).
"""

from __future__ import annotations

import json
import math
import subprocess
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from humanos_bridge.core import wire
from humanos_bridge.core.errors import SerialisationError

# Node parses each transported value and writes it back with JSON.stringify.
_NODE_STRINGIFY = """
let input = '';
process.stdin.on('data', c => input += c);
process.stdin.on('end', () => {
  const values = JSON.parse(input);
  process.stdout.write(JSON.stringify(values.map(v => JSON.stringify(v))));
});
"""

safe_ints = st.integers(min_value=-wire.MAX_SAFE_INTEGER, max_value=wire.MAX_SAFE_INTEGER)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | safe_ints | finite_floats | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=25,
)


def node_stringify(values: list[object]) -> list[str]:
    """JSON.stringify of each value, computed by Node.js."""
    # Transport as ASCII-escaped JSON so that what Node parses is exactly the Python value.
    transported = json.dumps(values, ensure_ascii=True)
    done = subprocess.run(
        ["node", "-e", _NODE_STRINGIFY], input=transported, capture_output=True, text=True, check=True, timeout=30
    )
    return json.loads(done.stdout)


@settings(max_examples=25, deadline=None)
@given(st.lists(json_values, min_size=40, max_size=40))
def test_dumps_matches_json_stringify_for_random_values(values: list[object]) -> None:
    """Any JSON value serialises to the same text as JSON.stringify (numbers, unicode, nesting)."""
    assert [wire.dumps(v) for v in values] == node_stringify(values)


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": 2},  # key order kept, not sorted
        {"b": 1, "10": 2, "2": 3, "01": 4, "4294967295": 5, "4294967294": 6, "-1": 7},  # JS puts index keys first
        [2**53, -(2**53), 10**20],  # beyond 2**53 yet written back identically by JS
        {"name": "João Ñandú", "emoji": "🙂👍🏽", "cjk": "承認"},  # raw UTF-8, no \\u escapes
        {"ctrl": "\x00\x1f\x7f\u2028\u2029", "quote": '"\\/'},
        {"lone": "\ud800 and \udfff"},  # JSON.stringify escapes lone surrogates
        [1.0, -0.0, 1e21, 1e-7, 1e16, 0.1, 123.456, 1.5e-6, 5e-324, 1.7976931348623157e308],
        {"big": "x" * 300_000},  # very large body
        {},
        [],
        "",
    ],
    ids=[
        "order",
        "index-keys",
        "exact-big-ints",
        "non-ascii",
        "controls",
        "lone-surrogate",
        "numbers",
        "large",
        "empty-object",
        "empty-list",
        "empty",
    ],
)
def test_dumps_matches_json_stringify_for_edge_cases(value: object) -> None:
    """The edge cases that differ between Python's json module and JSON.stringify."""
    assert [wire.dumps(value)] == node_stringify([value])


#: Values on either side of each edge where dumps stops handing the value to json's C encoder: floats whose repr
#: is not ECMAScript's form, integers past 2**53, keys JavaScript moves first, types other than dict and list.
edge_floats = st.sampled_from(
    [1e-4, 9.999e-5, 1e-7, 1e16, 9999999999999998.0, 1e21, 123.0, -0.0, 0.0, 0.5, -2.5, 5e-324, 1.5e300]
)
edge_ints = st.sampled_from([2**53 - 1, -(2**53 - 1), 2**53, -(2**53 + 2), 2**54 + 4, 10**20, 0, True, False])
edge_keys = st.sampled_from(["0", "1", "01", "1a", "a1", "", "4294967295", "-1", "é", "\ud800"]) | st.text(max_size=4)
edge_values = st.recursive(
    st.none() | st.booleans() | edge_floats | finite_floats | edge_ints | safe_ints | st.text(max_size=6),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(edge_keys, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=15, deadline=None)
@given(st.lists(edge_values, min_size=40, max_size=40))
def test_dumps_matches_json_stringify_on_either_side_of_the_fast_path(values: list[object]) -> None:
    """Values the C encoder writes and values only our writer may write serialise as JSON.stringify does."""
    assert [wire.dumps(v) for v in values] == node_stringify(values)


def _sorted_keys(value: object) -> object:
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


@given(edge_values)
def test_canonical_bytes_are_the_value_with_keys_sorted_written_as_usual(value: object) -> None:
    """Content hashes hash the same bytes whichever way they are written: keys sorted at every level, then
    JSON.stringify's own order (index keys first)."""
    assert _written(wire.canonical_bytes, value) == _written(wire.dump_bytes, _sorted_keys(value))


def _written(write: Any, value: object) -> object:
    try:
        return write(value)
    except SerialisationError as refused:
        return refused.message


@pytest.mark.parametrize(
    "value",
    [
        {"x": [1, math.nan]},
        {"id": 2**53 + 1},
        {1: "a"},
        {"x": b"raw"},
        {"ok": 1, "x": {2, 3}},
        [[[[1]]]],
        {"a": (1, 2.0)},
        {"lone": "\ud800"},
    ],
)
def test_check_writable_refuses_exactly_what_dumps_refuses(value: object) -> None:
    """check_writable writes nothing, and raises dumps's error, message and path included, or nothing."""
    try:
        wire.dumps(value)
    except SerialisationError as refused:
        with pytest.raises(SerialisationError) as raised:
            wire.check_writable(value)
        assert raised.value.message == refused.message
    else:
        wire.check_writable(value)


def test_tuples_and_subclasses_are_written_as_json_stringify_writes_them() -> None:
    """What the C encoder would write differently is left to our writer (an IntEnum, a tuple, an OrderedDict)."""
    from collections import OrderedDict
    from enum import IntEnum

    class Level(IntEnum):
        HIGH = 3

    assert wire.dumps({"a": (1, 2.0), "b": OrderedDict([("2", 1), ("1", 0)]), "c": Level.HIGH}) == (
        '{"a":[1,2],"b":{"1":0,"2":1},"c":3}'
    )


def test_dump_bytes_are_compact_utf8() -> None:
    """No spaces after separators; non-ASCII is UTF-8, not escaped."""
    assert wire.dump_bytes({"a": [1, 2], "b": "é"}) == '{"a":[1,2],"b":"é"}'.encode()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused(value: float) -> None:
    """NaN and Infinity have no JSON form; refusing beats sending null silently."""
    with pytest.raises(SerialisationError, match=r"^\$\.x\[1\]: NaN and Infinity are not JSON"):
        wire.dumps({"x": [1, value]})


def test_integers_beyond_javascript_precision_are_refused() -> None:
    """2**53 + 1 would be re-serialised differently by Node, breaking the signature."""
    with pytest.raises(SerialisationError, match=r"^\$\.id: integer has more digits than JavaScript keeps exactly"):
        wire.dumps({"id": 2**53 + 1})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1: "a"}, r"^\$: object key of type int; JSON keys must be strings"),
        ({"x": b"raw"}, r"^\$\.x: a bytes is not a JSON value; convert it first"),
        ({"x": {1, 2}}, r"^\$\.x: a set is not a JSON value"),
    ],
)
def test_non_json_values_are_refused_with_their_path(value: object, message: str) -> None:
    """The error names where the bad value sits."""
    with pytest.raises(SerialisationError, match=message):
        wire.dumps(value)


def test_too_deep_nesting_is_refused() -> None:
    """Deep nesting is refused before Python's recursion limit is reached."""
    value: object = 1
    for _ in range(wire.MAX_DEPTH + 1):
        value = [value]
    with pytest.raises(SerialisationError, match="nested deeper than 64 levels"):
        wire.dumps(value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a": NaN}', "NaN is not valid JSON"),
        (b'{"a": 1', "body is not valid JSON: Expecting ',' delimiter at line 1 column 8"),
        (b"\xff\xfe", "body is not valid JSON"),
        (b"[1, -Infinity]", "-Infinity is not valid JSON"),
        (
            '\ufeff{"a": 1}',
            r"body is not valid JSON: Unexpected UTF-8 BOM \(decode using utf-8-sig\) at line 1 column 1",
        ),
        (
            b"\xef\xbb\xbf{",
            "body is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2",
        ),
    ],
)
def test_loads_refuses_what_json_parse_refuses(data: bytes | str, message: str) -> None:
    """Only SerialisationError escapes from untrusted bytes, with the position but not the content."""
    with pytest.raises(SerialisationError, match=message):
        wire.loads(data)


@given(st.one_of(st.text(max_size=40), st.text(alphabet='{}[]":,0123456789.eE+-tfnrulasNIy \ufeff\\', max_size=40)))
def test_loads_reads_and_refuses_text_as_json_loads_does(text: str) -> None:
    """One decoder serves every call: the same value, or the same refusal, as json.loads with the same option."""

    def refuse(constant: str) -> Any:
        raise SerialisationError(f"{constant} is not valid JSON")

    try:
        expected: Any = json.loads(text, parse_constant=refuse)
    except SerialisationError as exc:
        expected = exc.message
    except ValueError as exc:
        expected = f"body is not valid JSON: {wire._describe(exc)}"
    try:
        found: Any = wire.loads(text)
    except SerialisationError as exc:
        found = exc.message
    assert found == expected


@given(json_values)
def test_loads_of_dumps_round_trips(value: object) -> None:
    """What we write, we read back unchanged (floats included)."""
    assert wire.dumps(wire.loads(wire.dump_bytes(value))) == wire.dumps(value)
