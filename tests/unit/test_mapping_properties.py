"""Property-based: whatever an event holds, mapping it maps or fails with a permanent error, never crashes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from humanos_bridge.core import wire
from humanos_bridge.core.body_validation import validate_body
from humanos_bridge.core.errors import EventIgnored, MappingError
from humanos_bridge.mapping import MappedRequest, content_hash, load_mapping

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in (ROOT / "events" / "business").glob("*.json")}
BRIDGE = load_mapping(ROOT / "mappings" / "bridge.json")
USERS = load_mapping(ROOT / "mappings" / "users-2026-09-01.json")

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["+351912345678", "+351 912-345-678", "ana@example.com", "employee", "contractor", ""])
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
# Events shaped like the sample ones, with any value in any place: the engine's likeliest inputs.
field_names = st.sampled_from(
    ["id", "type", "event", "eventId", "data", "contact", "phone", "email", "employee", "contract", "personalEmail",
     "mobile", "customer", "orderId", "language", "firstName", "handbookResourceId", "total"]
)  # fmt: skip
shaped = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(field_names, children, max_size=5),
    max_leaves=25,
)
typed_events = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["contact.created", "order.paid", "other"]),
        "event": st.sampled_from(["employee.hired", "employee.updated"]),
        "id": scalars,
        "eventId": scalars,
    },
    optional={"data": shaped, "employee": shaped},
)


def _check(config: Any, source: str, event: Any) -> None:
    try:
        mapped = config.map_event(source, event)
    except (MappingError, EventIgnored):
        return
    assert isinstance(mapped, MappedRequest)
    # Whatever maps is a valid, serialisable body with a bounded key.
    assert validate_body(mapped.body, config.api_version) == mapped.body
    wire.dump_bytes(mapped.body)
    assert 0 < len(mapped.idempotency_key) <= 128


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=json_values, source=st.sampled_from(["crm", "shop", "hr", "nope"]))
def test_random_json_never_crashes_the_engine(event: Any, source: str) -> None:
    """Any JSON value at all, for any source: a request, or MappingError / EventIgnored."""
    _check(BRIDGE, source, event)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=typed_events, source=st.sampled_from(["crm", "shop", "hr"]))
@example(event=SAMPLES["crm-contact-created"], source="crm")
@example(event=SAMPLES["shop-order-paid"], source="shop")
@example(event=SAMPLES["hr-contractor-hired"], source="hr")
def test_event_shaped_input_never_crashes_the_engine(event: Any, source: str) -> None:
    """Events with the right types and random payloads reach the rules, templates and body checks."""
    _check(BRIDGE, source, event)
    _check(USERS, "crm", event)


def test_samples_reach_the_success_path_of_the_checks() -> None:
    """The examples above do map, so the properties exercise the success branch too."""
    assert BRIDGE.map_event("crm", SAMPLES["crm-contact-created"]).rule == "marketing-consent-sms"
    assert BRIDGE.map_event("shop", SAMPLES["shop-order-paid"]).rule == "purchase-agreement"
    assert BRIDGE.map_event("hr", SAMPLES["hr-contractor-hired"]).rule == "contractor-kyc"


@settings(max_examples=200, deadline=None)
@given(event=json_values)
def test_event_identity_never_crashes(event: Any) -> None:
    """Identity is computed or refused with a MappingError."""
    for source in ("crm", "shop", "hr"):
        try:
            event_type, event_id = BRIDGE.event_identity(source, event)
        except MappingError:
            continue
        assert isinstance(event_type, str)
        assert isinstance(event_id, str)


@settings(max_examples=200, deadline=None)
@given(event=st.dictionaries(st.text(max_size=6), st.integers() | st.text(max_size=6), max_size=6))
def test_content_hash_ignores_key_order(event: dict[str, Any]) -> None:
    """Reversing key order never changes the content hash."""
    try:
        expected = content_hash(event)
    except MappingError:
        return
    assert content_hash(dict(reversed(list(event.items())))) == expected
