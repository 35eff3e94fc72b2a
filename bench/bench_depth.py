"""Depth-check figures: the nesting count that runs on untrusted bodies before they are parsed.

For bodies of 16, 64, 128 and 256 KiB (the body limit) of four shapes, ``json_depth`` (the exact count over
the whole body) and ``parse_json`` (the ingest function's whole check: UTF-8, depth, then the parse; its depth
check reads the head first and stops once past the limit; the dispatcher's ``wire.loads`` is the same minus
the UTF-8 decode) are timed against ``json.loads`` on the same bytes, in the same run. Ratios are ours
divided by ``json.loads``: below 1 is faster than the parser itself.

- ``pathological``: ``{`` x33, ``"``, then ``\\"`` to the end: a string that never closes, made of escaped
  quotes. It once took the depth count 37 s at 64 KiB. ``json.loads`` fails on it at the second byte, so it
  is also compared with ``json.loads`` of a valid body of the same size and shape (``[`` x33, the same string
  closed, ``]`` x33), which the parser has to read to the end.
- ``deep``: ``[`` x n then ``]`` x n, valid JSON nested n deep; ``json.loads`` stops at its recursion limit.
- ``deep_tail``: a flat first half, then nesting to the end: the worst case for reading the head first.
- ``flat``: an array of small objects, the shape of a real event that is large.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from functools import partial
from typing import Any

from bench.timing import best_per_call
from humanos_bridge.core.errors import BridgeError
from humanos_bridge.core.http_request import MAX_JSON_DEPTH, parse_json
from humanos_bridge.core.wire import json_depth

SIZES_KIB = (16, 64, 128, 256)
_ITEM = b'{"id":12345,"name":"Ada Lovelace","tags":["a","b"],"ok":true}'


def pathological(size: int) -> bytes:
    return b"{" * 33 + b'"' + b'\\"' * ((size - 34) // 2)


def pathological_valid(size: int) -> bytes:
    return b"[" * 33 + b'"' + b'\\"' * ((size - 68) // 2) + b'"' + b"]" * 33


def deep(size: int) -> bytes:
    return b"[" * (size // 2) + b"]" * (size // 2)


def flat(size: int) -> bytes:
    return b"[" + b",".join([_ITEM] * ((size - 2) // (len(_ITEM) + 1))) + b"]"


def deep_tail(size: int) -> bytes:
    nesting = size // 4
    return flat(size - 2 * nesting - 1)[:-1] + b"," + b"[" * nesting + b"]" * nesting + b"]"


SHAPES: dict[str, Callable[[int], bytes]] = {
    "pathological": pathological,
    "deep": deep,
    "deep_tail": deep_tail,
    "flat": flat,
}


def _swallowing(func: Callable[[bytes], Any], body: bytes) -> Callable[[], None]:
    # The refusals are part of what is timed: json.loads and parse_json raise on most of these bodies.
    def call() -> None:
        with contextlib.suppress(ValueError, RecursionError, BridgeError):
            func(body)

    return call


def _best_us(timed: dict[str, tuple[Callable[[bytes], Any], bytes]], rounds: int = 9) -> dict[str, float]:
    """Best per-call time of each, in µs; the rounds alternate between them, so the machine's load hits all alike."""
    calls = {name: _calls_for(_swallowing(func, body)) for name, (func, body) in timed.items()}
    best = dict.fromkeys(timed, float("inf"))
    for _ in range(rounds):
        for name, (func, body) in timed.items():
            best[name] = min(best[name], best_per_call(_swallowing(func, body), calls[name], rounds=1) * 1e6)
    return best


def _calls_for(call: Callable[[], None], round_seconds: float = 0.01) -> int:
    """Calls that take about ``round_seconds``: these run from microseconds to milliseconds."""
    once = best_per_call(call, 1, rounds=3)
    return max(3, min(10_000, int(round_seconds / max(once, 1e-7))))


def _figures(body: bytes, valid_same_shape: bytes | None = None) -> dict[str, Any]:
    timed = {
        "json_loads": (json.loads, body),
        "json_depth": (json_depth, body),
        "parse_json": (partial(parse_json, max_depth=MAX_JSON_DEPTH), body),
    }
    if valid_same_shape is not None:
        timed["json_loads_valid_same_shape"] = (json.loads, valid_same_shape)
    us = _best_us(timed)
    figures: dict[str, Any] = {"bytes": len(body), "json_depth": json_depth(body)}
    figures.update({f"{name}_us": round(value, 1) for name, value in us.items()})
    for baseline in [name for name in us if name.startswith("json_loads")]:
        suffix = baseline.removeprefix("json_loads")
        figures[f"json_depth_vs_json_loads{suffix}"] = round(us["json_depth"] / us[baseline], 2)
        figures[f"parse_json_vs_json_loads{suffix}"] = round(us["parse_json"] / us[baseline], 2)
    return figures


def run() -> dict[str, Any]:
    results: dict[str, Any] = {}
    for kib in SIZES_KIB:
        size = kib * 1024
        for shape, build in SHAPES.items():
            valid = pathological_valid(size) if shape == "pathological" else None
            assert valid is None or (json.loads(valid) and json_depth(valid) == 33)
            results[f"{shape}_{kib}k"] = _figures(build(size), valid)
    results["note"] = (
        "ratios are ours / json.loads on the same bytes, best of 9 alternating rounds in the same run; "
        f"parse_json refuses every shape but flat (MAX_JSON_DEPTH={MAX_JSON_DEPTH}); json.loads fails fast on "
        "pathological (at byte 2) and deep (at its recursion limit), hence the valid same-shape comparison"
    )
    return results
