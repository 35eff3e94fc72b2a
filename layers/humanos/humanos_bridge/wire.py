"""The one place where request bodies become bytes: JSON the way ``JSON.stringify`` writes it.

Humanos checks the signature against its own re-serialisation of the parsed body, so the bytes we
sign and send must be exactly what Node's ``JSON.stringify`` produces for the same value: key order
kept (except that, as in every JavaScript object, integer-like keys such as ``"0"`` come first in
ascending order), no spaces, non-ASCII as raw UTF-8, numbers in ECMAScript's shortest form (``1`` not ``1.0``,
``1e+21`` not ``1e21``, ``1e-7`` not ``1e-07``), lone surrogates escaped as ``\\udxxx``.
Values JavaScript cannot represent the same way (NaN, Infinity, integers beyond 2**53) are refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from humanos_bridge.errors import SerialisationError

#: Largest integer JavaScript holds exactly; beyond it Humanos's re-serialisation would differ.
MAX_SAFE_INTEGER = 2**53 - 1
#: Deeper bodies are refused rather than risking Python's recursion limit.
MAX_DEPTH = 64

#: JavaScript objects list "array index" keys (canonical integers below 2**32 - 1) first, ascending.
_MAX_ARRAY_INDEX = 2**32 - 2
_encode_string = json.encoder.encode_basestring  # C-accelerated, raw UTF-8
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def dumps(value: Any) -> str:
    """Serialise ``value`` compactly, as ``JSON.stringify(value)`` would."""
    parts: list[str] = []
    _write(value, parts, "$", 0)
    text = "".join(parts)
    # A Python str can only hold a surrogate code point unpaired; JSON.stringify escapes those.
    if _LONE_SURROGATE.search(text):
        text = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)
    return text


def dump_bytes(value: Any) -> bytes:
    """Serialise ``value`` to the exact UTF-8 bytes that are signed and sent."""
    return dumps(value).encode("utf-8")


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


def loads(data: bytes | str) -> Any:
    """Parse JSON, refusing NaN/Infinity literals that ``JSON.parse`` would refuse too."""

    def _refuse(constant: str) -> Any:
        raise SerialisationError(f"{constant} is not valid JSON")

    try:
        return json.loads(data, parse_constant=_refuse)
    except SerialisationError:
        raise
    except (ValueError, UnicodeDecodeError) as exc:
        raise SerialisationError(f"body is not valid JSON: {_describe(exc)}") from exc


def _describe(exc: Exception) -> str:
    # JSONDecodeError's message names the position, never echoes the document.
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return type(exc).__name__
