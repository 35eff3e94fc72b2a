"""Whatever a sender puts in an event, a mapping error says where it happened and never quotes a contact.

The events are the presets' real-shaped samples with leaves replaced, removed or retyped at random; every
string planted is a contact-like value (phones, e-mails, near-misses of both) that must not come back in a
message, since messages go to logs, metrics, error bodies and the dead-letter queue.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import event as note
from hypothesis import given, settings
from hypothesis import strategies as st

from humanos_bridge.core.errors import EventIgnored, MappingError
from humanos_bridge.mapping import load_mapping

ROOT = Path(__file__).resolve().parents[2]
PRESETS = {
    "stripe-checkout.json": ("stripe-checkout-session-completed.json", {}),
    "shopify-orders-paid.json": ("shopify-orders-paid.json", {"x-shopify-topic": "orders/paid"}),
    "typeform-consent.json": ("typeform-form-response.json", {}),
    "hr-employee-hired.json": ("hr-employee-hired.json", {}),
    "hubspot-contacts.json": ("hubspot-contact-batch.json", {}),
}
CONFIGS = {name: load_mapping(ROOT / "mappings" / "presets" / name) for name in PRESETS}
SAMPLES = {
    name: json.loads((ROOT / "events" / "business" / "presets" / sample).read_text(encoding="utf-8"))
    for name, (sample, _) in PRESETS.items()
}

digits = st.text(alphabet="0123456789", min_size=7, max_size=12)
contacts = st.one_of(
    digits.map(lambda d: f"+351{d}"),  # valid-looking phones
    digits.map(lambda d: f"{d[:3]} {d[3:6]} {d[6:]}"),  # local numbers: refused, never echoed
    st.from_regex(r"[a-z]{3,8}@[a-z]{3,8}\.(com|pt)", fullmatch=True),
    st.from_regex(r"[a-z]{3,8}@[a-z]{3,8}", fullmatch=True),  # no dot in the domain: refused
)
replacements = st.one_of(contacts, st.none(), st.integers(), st.lists(contacts, max_size=2), st.booleans())


def leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in leaves(item, (*path, key))] or [path]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in leaves(item, (*path, index))] or [path]
    return [path]


def plant(event: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = event
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return event


@settings(max_examples=600, deadline=None)
@given(
    preset=st.sampled_from(sorted(PRESETS)),
    picks=st.lists(st.tuples(st.integers(min_value=0, max_value=10_000), replacements), min_size=1, max_size=8),
)
def test_errors_name_a_path_and_never_a_contact(preset: str, picks: list[tuple[int, Any]]) -> None:
    event = copy.deepcopy(SAMPLES[preset])
    planted: list[str] = []
    for index, value in picks:
        paths = leaves(event)
        event = plant(event, paths[index % len(paths)], value)
        planted += [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
    (source,) = CONFIGS[preset].sources
    try:
        CONFIGS[preset].map_requests(source, event, PRESETS[preset][1])
    except EventIgnored as exc:
        note("ignored")
        message = exc.message
    except MappingError as exc:
        note(f"refused: {exc.details.get('reason', type(exc).__name__)}")
        message = exc.message
        assert exc.details.get("path") or message.startswith(("event type:", "event id:", "forEach item")), message
    else:
        note("mapped")
        return
    for value in planted:
        local_part = value.split("@")[0]
        assert value not in message and (len(local_part) < 4 or local_part not in message), (value, message)
