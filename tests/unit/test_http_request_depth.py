"""The nesting-depth check that runs on untrusted bodies before they are parsed: right, and linear on any input.

``wire.loads`` makes the decision for both functions (the ingest function's ``parse_json`` and the
dispatcher's message bodies). The bodies below once took the count seconds to minutes (a string that
never closes, made of escaped quotes); how fast it is now lives in ``bench/bench_depth.py``, not here.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from humanos_bridge.core import wire
from humanos_bridge.core.errors import SerialisationError
from humanos_bridge.core.http_request import InvalidJsonError, parse_json
from humanos_bridge.core.outcomes import classify_failure
from humanos_bridge.core.wire import json_depth

#: ``{`` x33, then a string that never closes, made of escaped quotes: 200 KB.
PATHOLOGICAL = b"{" * 33 + b'"' + b'\\"' * 100_000
TOO_DEEP_32 = "request body is nested deeper than 32 levels; flatten the event"


def real_depth(value: Any) -> int:
    """How deeply ``value`` nests arrays and objects, from the value itself."""
    if isinstance(value, list):
        return 1 + max(map(real_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(real_depth, value.values()), default=0)
    return 0


def reference_depth(text: str) -> tuple[int, bool]:
    """A parser's reading, one character at a time: the depth up to the first backslash outside a string
    (where a JSON parser stops), and whether there was one."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == "\\":
            return deepest, True
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest, False


# Strings full of what could confuse a count: brackets, quotes, backslashes, and non-ASCII.
confusing = st.sampled_from('[]{}"\\ a/\u00e9\u4e2d\U0001f600\ufffd')
tricky_text = st.text(alphabet=confusing, max_size=12) | st.text(max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | tricky_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(tricky_text, children, max_size=4),
    max_leaves=40,
)
# What text that is not quite JSON is made of: escapes and their near misses, next to brackets and quotes.
pieces = ["[", "]", "{", "}", '"', "\\", "\\\\", '\\"', '"\\\\"', "\\\\\\", ",1", "\u00e9"]
dumps_options = st.sampled_from(
    [{}, {"ensure_ascii": False}, {"separators": (",", ":")}, {"indent": 2}, {"indent": 1, "ensure_ascii": False}]
)


# -- json_depth ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        pytest.param(b"", 0, id="empty"),
        pytest.param(b'"text"', 0, id="scalar"),
        pytest.param(b'{"a": [1, {"b": []}], "c": {}}', 4, id="mixed"),
        pytest.param(b'["[[[{{{", "]]]"]', 1, id="brackets-in-strings-are-text"),
        pytest.param(b'["\\"[[[", [[]]]', 3, id="escaped-quote-stays-in-the-string"),
        pytest.param(b'["\\\\", [[]]]', 3, id="escaped-backslash-then-the-quote-closes"),
        pytest.param(b'["\\\\\\"[[", 1]', 1, id="escaped-backslash-then-escaped-quote"),
        pytest.param(b'{"a": "[[[[[[', 1, id="unterminated-string-runs-to-the-end"),
        pytest.param(PATHOLOGICAL, 33, id="pathological-unterminated-escapes"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, 100_000, id="deep"),
        pytest.param(b"[" * 100_000, 100_000, id="deep-never-closed"),
        pytest.param(b"[" + b"[1]," * 20_000 + b"[" * 40 + b"]" * 41, 41, id="deep-after-a-long-flat-head"),
    ],
)
def test_json_depth_counts_nesting_outside_strings(body: bytes, depth: int) -> None:
    """The depth of arrays and objects, whatever the strings hold; bytes and text count alike."""
    assert json_depth(body) == depth
    assert json_depth(body.decode("utf-8")) == depth


@given(json_values, dumps_options)
def test_json_depth_is_the_real_depth_of_any_json_document(value: Any, options: dict[str, Any]) -> None:
    """Whatever json.dumps writes (escapes, unicode, indentation), the count is the value's own nesting."""
    text = json.dumps(value, **options)
    assert json_depth(text) == real_depth(value)
    assert json_depth(text.encode("utf-8")) == real_depth(value)


@given(st.binary(max_size=300))
def test_json_depth_never_raises_on_arbitrary_bytes(body: bytes) -> None:
    """Any bytes at all give a depth; only the parser, later, says whether they are JSON."""
    assert json_depth(body) >= 0


@settings(max_examples=500)
@given(st.lists(st.sampled_from(pieces), max_size=30).map("".join) | st.text(max_size=40))
def test_json_depth_is_never_below_what_a_parser_reaches(text: str) -> None:
    """On any text, the count equals a parser's character-by-character reading; with a backslash outside a
    string (never JSON), it may differ after it, but never falls below the depth reached before it."""
    depth, stopped = reference_depth(text)
    if stopped:
        assert json_depth(text) >= depth
    else:
        assert json_depth(text) == depth


@settings(max_examples=500)
@given(
    st.lists(st.sampled_from(pieces), max_size=60).map("".join) | st.text(max_size=40),
    st.integers(min_value=0, max_value=8),
    st.integers(min_value=0, max_value=2),
)
def test_nested_deeper_than_is_json_depth_past_the_limit(text: str, limit: int, padding: int) -> None:
    """The shortcuts (the head of a long body, the count of brackets outside strings) never change the
    answer: deeper than the limit exactly when the depth is, short bodies and long ones (past the head
    check's 16 KiB) alike."""
    body = text + " " * (padding * 10_000)
    assert wire.nested_deeper_than(body, limit) == (json_depth(body) > limit)
    assert wire.nested_deeper_than(" " * (padding * 10_000) + text, limit) == (json_depth(text) > limit)


# -- wire.loads: the one decision, for both functions ----------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("[" * 100_000 + "]" * 100_000, id="deep"),
        pytest.param("[" * 100_000, id="deep-never-closed"),
        pytest.param('{"a": [' + "1," * 5_000 + "[" * 65 + "]" * 65 + "]}", id="deep-after-the-head"),
        pytest.param("{" * 65 + '"' + '\\"' * 100_000, id="pathological"),
    ],
)
def test_too_deep_a_body_is_a_permanent_serialisation_error(body: str) -> None:
    """A body nested past MAX_DEPTH is refused before parsing, never as a RecursionError, and is parked, not retried."""
    with pytest.raises(SerialisationError) as caught:
        wire.loads(body)
    assert caught.value.message == "body is nested deeper than 64 levels; flatten the event"
    assert caught.value.details == {"maxDepth": 64}
    failure = classify_failure(caught.value)
    assert (failure.retryable, failure.code) == (False, "serialisation_error")


def test_the_depth_limit_is_inclusive_and_a_parameter() -> None:
    """MAX_DEPTH levels parse; one more does not; callers may ask for less."""
    assert wire.loads("[" * 64 + "]" * 64) is not None
    with pytest.raises(SerialisationError, match="deeper than 64 levels"):
        wire.loads("[" * 65 + "]" * 65)
    with pytest.raises(SerialisationError, match="deeper than 2 levels"):
        wire.loads("[[[1]]]", max_depth=2)


def test_bytes_in_any_json_encoding_are_counted_as_the_parser_reads_them() -> None:
    """UTF-16 bytes are decoded as json.loads decodes them before counting."""
    assert wire.loads(json.dumps({"a": ["[[["]}).encode("utf-16")) == {"a": ["[[["]}
    with pytest.raises(SerialisationError, match="nested deeper than 64 levels"):
        wire.loads(("[" * 10_000).encode("utf-16-le"))


@given(st.binary(max_size=300))
def test_loads_raises_only_serialisation_error_on_arbitrary_bytes(body: bytes) -> None:
    """Nothing else escapes from untrusted bytes."""
    with contextlib.suppress(SerialisationError):
        wire.loads(body)


# -- parse_json: the ingest function's check -------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(PATHOLOGICAL, id="pathological"),
        pytest.param(b"[" * 33 + b'"' + b'\\"' * 100_000 + b'"' + b"]" * 33, id="pathological-but-valid"),
        pytest.param(b"[" * 100_000, id="deep"),
        pytest.param(b'{"a": "' + b"x" * 5_000 + b'", "b": ' + b"[" * 33 + b"]" * 33 + b"}", id="deep-after-the-head"),
    ],
)
def test_parse_json_refuses_too_deep_bodies_with_the_limit(body: bytes) -> None:
    """Too deep is a 400 with the limit, however the depth is hidden."""
    with pytest.raises(InvalidJsonError) as caught:
        parse_json(body)
    assert (caught.value.message, caught.value.details) == (TOO_DEEP_32, {"maxDepth": 32})


def test_parse_json_reports_an_unterminated_string_of_escapes_as_syntax() -> None:
    """Shallow, but a string that never closes: the parser's own reason, with its position."""
    with pytest.raises(InvalidJsonError, match=r"^request body is not valid JSON: Unterminated string starting at"):
        parse_json(b'{"a": "' + b'\\"' * 100_000)


def test_parse_json_accepts_the_deepest_allowed_body_with_brackets_in_its_strings() -> None:
    """32 levels parse, with long strings of brackets, quotes and backslashes inside."""
    text = "[" * 32 + json.dumps('[{"\\' * 10_000) + "]" * 32
    value = parse_json(text.encode())
    for _ in range(31):
        value = value[0]
    assert value == ['[{"\\' * 10_000]


@given(st.binary(max_size=300))
def test_parse_json_raises_only_invalid_json_error_on_arbitrary_bytes(body: bytes) -> None:
    """Any bytes: a value or InvalidJsonError, never another exception."""
    with contextlib.suppress(InvalidJsonError):
        parse_json(body)
