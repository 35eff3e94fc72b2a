"""The one place where request bodies become bytes: JSON the way ``JSON.stringify`` writes it.

Humanos checks the signature against its own re-serialisation of the parsed body, so the bytes we
sign and send must be exactly what Node's ``JSON.stringify`` produces for the same value: key order
kept (except that, as in every JavaScript object, integer-like keys such as ``"0"`` come first in
ascending order), no spaces, non-ASCII as raw UTF-8, numbers in ECMAScript's shortest form (``1`` not ``1.0``,
``1e+21`` not ``1e21``, ``1e-7`` not ``1e-07``), lone surrogates escaped as ``\\udxxx``.
Values JavaScript cannot represent the same way (NaN, Infinity, integers beyond 2**53) are refused.

Reading goes through here too: :func:`loads` counts the nesting depth of untrusted text in linear
time before parsing, so no body can push the parser into Python's recursion limit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from itertools import accumulate
from typing import Any

from humanos_bridge.core.errors import SerialisationError

#: Largest integer JavaScript holds exactly; beyond it Humanos's re-serialisation would differ.
MAX_SAFE_INTEGER = 2**53 - 1
#: Deeper bodies are refused, written or read, rather than risking Python's recursion limit.
MAX_DEPTH = 64

#: JavaScript objects list "array index" keys (canonical integers below 2**32 - 1) first, ascending.
_MAX_ARRAY_INDEX = 2**32 - 2
_encode_string = json.encoder.encode_basestring  # C-accelerated, raw UTF-8
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# The depth count keeps only brackets, and the quotes that say which brackets are text.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'[]{}"')
# Opening brackets step +1, closing ones -1 (0xff read as a signed byte).
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
# How much of a body nested_deeper_than reads first, from what length, and how many brackets _deepest sums
# at a time.
_HEAD_CHARS = 1024
_HEAD_WORTH_CHARS = 16384
_STEP_CHUNK = 16384


def dumps(value: Any) -> str:
    """Serialise ``value`` compactly, as ``JSON.stringify(value)`` would."""
    if _plain(value, 0):
        # json's C encoder writes such a value exactly as _write does, in a fraction of the time (a Shopify
        # envelope: 43 -> 24 µs, 20 of them escaping the body; a Stripe body: 9 -> 6 µs); _plain is what makes
        # the two agree, and anything else takes _write.
        return _escape_lone_surrogates(_encode_plain(value))
    parts: list[str] = []
    _write(value, parts, "$", 0)
    return _escape_lone_surrogates("".join(parts))


def _escape_lone_surrogates(text: str) -> str:
    # A Python str can only hold a surrogate code point unpaired; JSON.stringify escapes those. An ASCII
    # str holds none, and says so without a scan.
    if not text.isascii() and _LONE_SURROGATE.search(text):
        return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
    return text


def check_writable(value: Any) -> None:
    """SerialisationError, as :func:`dumps` raises it, unless ``value`` can be written; nothing is written."""
    if not _plain(value, 0):
        dumps(value)


# The C encoder set as _write writes: raw UTF-8 (encode_basestring), no spaces. Cycles cannot reach it
# (_plain bounds the depth) and neither can NaN (_plain refuses it), so neither check is needed.
_encode_plain = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode
_encode_plain_sorted = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), check_circular=False, sort_keys=True
).encode


def _plain(value: Any, depth: int) -> bool:
    """True when json's encoder writes ``value`` exactly as :func:`_write` does, and _write would not refuse it.

    Only exact dicts, lists, strs, ints, bools, None and floats; keys that are strings not starting with a
    digit (no "array index" key to move first); integers JavaScript holds exactly; floats whose ``repr`` is
    already ECMAScript's form; at most MAX_DEPTH levels. False says only "not certain": _write decides then.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if kind is float:
        # Between 1e-4 and 1e16, repr writes the shortest digits in plain notation, as ECMAScript does, except
        # for whole numbers (repr "5.0", JavaScript "5"); outside, repr has an exponent, and nan/inf end in a letter.
        text = repr(value)
        return "e" not in text and not text.endswith(".0") and text[-1].isdigit()
    if depth >= MAX_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or "0" <= key[:1] <= "9" or not _plain(item, depth + 1):
                return False
        return True
    if kind is list:
        for item in value:  # noqa: SIM110 - all() over a generator costs twice this loop on short lists
            if not _plain(item, depth + 1):
                return False
        return True
    return False


def dump_bytes(value: Any) -> bytes:
    """Serialise ``value`` to the exact UTF-8 bytes that are signed and sent."""
    return dumps(value).encode("utf-8")


def canonical_bytes(value: Any) -> bytes:
    """The bytes of ``value`` with keys sorted at every level: equal values, equal bytes (content hashes)."""
    if _plain(value, 0):
        # No key is an array index (_plain), so JavaScript's order moves none and sorting is all there is:
        # json sorts as sorted() does (a HubSpot batch: 34 -> 19 µs).
        return _escape_lone_surrogates(_encode_plain_sorted(value)).encode("utf-8")
    return dump_bytes(_sorted_keys(value))


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


def js_number(value: float) -> str:
    """Format a finite float as ECMAScript's ``Number.prototype.toString`` does."""
    if value == 0:
        return "0"  # JSON.stringify(-0) is "0"
    sign = "-" if value < 0 else ""
    # repr() gives the shortest round-tripping digits, the same digits ECMAScript chooses.
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    digits = (int_part + frac_part).lstrip("0")
    # Position of the decimal point relative to the first significant digit.
    point = len(int_part.lstrip("0")) if int_part.strip("0") else -(len(frac_part) - len(frac_part.lstrip("0")))
    point += int(exp_text or 0)
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= point <= 21:
        return sign + digits + "0" * (point - k)
    if 0 < point <= 21:
        return sign + digits[:point] + "." + digits[point:]
    if -6 < point <= 0:
        return sign + "0." + "0" * (-point) + digits
    exponent = point - 1
    exp_sign = "+" if exponent >= 0 else "-"
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{head}e{exp_sign}{abs(exponent)}"


def _write(value: Any, out: list[str], path: str, depth: int) -> None:  # noqa: C901 - one branch per JSON type
    if depth > MAX_DEPTH:
        raise SerialisationError(f"{path}: nested deeper than {MAX_DEPTH} levels; flatten the body")
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_encode_string(value))
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER and not _js_round_trips(value):
            raise SerialisationError(
                f"{path}: integer has more digits than JavaScript keeps exactly (beyond 2**53); send it as a string"
            )
        out.append(str(value))
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise SerialisationError(f"{path}: NaN and Infinity are not JSON; replace them with null or a number")
        out.append(js_number(value))
    elif isinstance(value, Mapping):
        out.append("{")
        first = True
        for key, item in _js_key_order(value):
            if not isinstance(key, str):
                raise SerialisationError(f"{path}: object key of type {type(key).__name__}; JSON keys must be strings")
            if not first:
                out.append(",")
            first = False
            out.append(_encode_string(key))
            out.append(":")
            _write(item, out, f"{path}.{key}", depth + 1)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out, f"{path}[{index}]", depth + 1)
        out.append("]")
    else:
        raise SerialisationError(f"{path}: a {type(value).__name__} is not a JSON value; convert it first")


def _is_array_index(key: str) -> bool:
    return key.isascii() and key.isdigit() and (key == "0" or key[0] != "0") and int(key) <= _MAX_ARRAY_INDEX


def _js_key_order(value: Mapping[Any, Any]) -> list[tuple[Any, Any]]:
    """Order keys as a JavaScript object does: array-index keys first, ascending, then insertion order."""
    items = list(value.items())
    indexed = [(k, v) for k, v in items if isinstance(k, str) and _is_array_index(k)]
    if not indexed:
        return items
    named = [(k, v) for k, v in items if not (isinstance(k, str) and _is_array_index(k))]
    return sorted(indexed, key=lambda kv: int(kv[0])) + named


def _js_round_trips(value: int) -> bool:
    """True when JavaScript parses and re-writes this integer as the same digits."""
    try:
        return js_number(float(value)) == str(value)
    except OverflowError:
        return False


def _refuse_constant(constant: str) -> Any:
    raise SerialisationError(f"{constant} is not valid JSON")


# Built once: json.loads with any option builds a new decoder per call (~1.3 µs of each body parsed).
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def loads(data: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON, refusing what ``JSON.parse`` refuses (NaN, Infinity) and bodies nested deeper than ``max_depth``.

    Only SerialisationError escapes, whatever the input; the depth is checked in linear time first.
    """
    try:
        # Decoded as json.loads decodes bytes (UTF-8, -16 or -32), so the depth is counted on the text it parses.
        text = data if isinstance(data, str) else data.decode(json.detect_encoding(data), "surrogatepass")
        if nested_deeper_than(text, max_depth):
            raise SerialisationError(
                f"body is nested deeper than {max_depth} levels; flatten the event", details={"maxDepth": max_depth}
            )
        if text.startswith("\ufeff"):  # what json.loads checks before its decoder runs, with its message
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return _DECODER.decode(text)
    except SerialisationError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise SerialisationError(f"body is not valid JSON: {_describe(exc)}") from exc
    except RecursionError:  # unreachable after the depth check; kept so that no input can escape as a crash
        raise SerialisationError(
            f"body is nested deeper than {max_depth} levels; flatten the event", details={"maxDepth": max_depth}
        ) from None


def json_depth(data: bytes | str) -> int:
    """Deepest nesting of arrays and objects in ``data`` (bytes are read as UTF-8), counted without parsing.

    Brackets inside strings are text and do not count; a string that never closes runs to the end.
    Linear in the length and fast: the passes over the text are ``bytes`` methods running in C, and
    no regular expression is involved, so nothing can backtrack. Exact for every JSON document. In
    text that is not JSON, a backslash outside a string can hide the quote after it; a parser stops
    at that backslash and the count up to it is exact, so the result is never below the depth a
    parser reaches.
    """
    return _deepest(_bracket_steps(data))


def nested_deeper_than(text: str, limit: int) -> bool:
    """True when ``text`` nests arrays and objects more than ``limit`` levels deep (its :func:`json_depth`).

    The cheapest evidence goes first, and the count stops once the depth is past ``limit``.
    """
    # A body built to be too deep nearly always is from its first characters; a head's depth is
    # never above the whole's (its brackets are the whole's first ones), so a deep head settles it.
    # Worth it only where the whole costs much more than the head (a 7.7 KB body: 9 µs, its head 3 µs).
    if len(text) > _HEAD_WORTH_CHARS and json_depth(text[:_HEAD_CHARS]) > limit:
        return True
    steps = _bracket_steps(text)
    # Each level opens a bracket: a body with few of them cannot be deep (counted on the brackets alone,
    # cheaper than counting both kinds in the text: 4.8 -> 0.1 µs on a Shopify order).
    if steps.count(1) <= limit:
        return False
    return _deepest(steps, stop_above=limit) > limit


def _bracket_steps(data: bytes | str) -> bytes:
    """The brackets outside strings, in order: 0x01 for an opening one, 0xff (-1 as a signed byte) for a closing one."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if b"\\" in raw:
        # Escapes pair left to right, as a parser reads them: escaped backslashes first, then the quotes
        # still escaped are text. Every quote left opens or closes a string.
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = raw.translate(None, _NOT_STRUCTURE)
    # Two quotes side by side here hold no bracket between them: a string without brackets, or the gap
    # between two strings. Removing such a pair moves no bracket into or out of a string (the quotes after
    # it keep their parity), so the split below reads fewer, or no, pieces. When the pairs counted left to
    # right take every quote, no string holds a bracket and the quotes can simply go (a Shopify order, ~400
    # strings: 13 -> 5 µs for this function; the whole depth check, 25 -> 9 µs).
    if 2 * structure.count(b'""') == structure.count(b'"'):
        return structure.translate(_STEPS, b'"')
    # Split at the quotes: the even pieces are outside strings, whatever the strings hold.
    return b"".join(structure.replace(b'""', b"").split(b'"')[::2]).translate(_STEPS)


def _deepest(steps: bytes, *, stop_above: int | None = None) -> int:
    """The highest running sum of ``steps``, from 0; with ``stop_above``, the first chunk's high past it."""
    view = memoryview(steps).cast("b")
    depth = deepest = 0
    # In chunks, so that a count told where to stop does not read the rest; each chunk's sums run in C.
    for start in range(0, len(steps), _STEP_CHUNK):
        chunk = view[start : start + _STEP_CHUNK]
        deepest = max(deepest, max(accumulate(chunk, initial=depth)))
        if stop_above is not None and deepest > stop_above:
            break
        depth += 2 * steps.count(1, start, start + _STEP_CHUNK) - len(chunk)
    return deepest


def _describe(exc: Exception) -> str:
    # JSONDecodeError's message names the position, never echoes the document.
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return type(exc).__name__
