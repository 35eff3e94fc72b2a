"""A batching sender's event (HubSpot posts a JSON array) through the dispatcher: one request per item, exactly once.

Real parts: moto in server mode for SQS, DynamoDB and Secrets Manager, the Humanos sandbox over HTTP, the
dispatcher function as Lambda imports it, and ``mappings/bridge.json``'s ``hubspot`` source (``forEach``).
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from humanos_bridge_local.sandbox import Fault
from tests.support.bridge import ROOT, BridgeEnv, dispatcher_bridge, load_function

app = load_function("dispatcher")
BATCH = json.loads((ROOT / "events" / "business" / "hubspot-contact-batch.json").read_text(encoding="utf-8"))
#: The batch's phone changes (contact.propertyChange of phone), by HubSpot's eventId.
NEW_CONTACTS = ("hubspot:1001", "hubspot:1002", "hubspot:1004")


@pytest.fixture
def bridge(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[BridgeEnv]:
    with dispatcher_bridge(moto, sandbox, monkeypatch, single_attempts=True) as env:
        yield env


def created_internal_ids(bridge: BridgeEnv) -> Counter[str]:
    return Counter(json.loads(call.body)["internalId"] for call in bridge.creations())


def test_a_batch_becomes_one_request_per_new_contact_and_a_redelivered_batch_none(
    bridge: BridgeEnv, caplog: pytest.LogCaptureFixture
) -> None:
    bridge.enqueue(BATCH, source="hubspot")
    assert bridge.deliver(app.lambda_handler).failed_ids == []
    for _ in range(2):  # HubSpot retries the whole batch, and SQS may deliver it twice more
        bridge.enqueue(BATCH, source="hubspot")
        assert bridge.deliver(app.lambda_handler).failed_ids == []
    assert created_internal_ids(bridge) == Counter(NEW_CONTACTS)
    bodies = {json.loads(c.body)["internalId"]: json.loads(c.body) for c in bridge.creations()}
    assert bodies["hubspot:1002"]["contacts"] == ["+351912000102"]  # each item's own contact, alone
    assert bodies["hubspot:1002"]["name"] == "Marketing consent for HubSpot contact 5102"
    logged = [r for r in caplog.records if getattr(r, "requests", None) == 3]
    assert [r.getMessage() for r in logged] == ["event created", "event duplicate", "event duplicate"]
    assert [getattr(r, "requestsCreated", None) for r in logged] == [3, 0, 0]


def test_a_failure_part_way_retries_the_event_and_creates_only_what_is_missing(bridge: BridgeEnv) -> None:
    """Item 2 of 3 fails (503): the record is retried; the first item is not created again, the third is created."""
    bridge.sandbox.inject(Fault.status(503), body_contains=b"hubspot:1002")
    bridge.enqueue(BATCH, source="hubspot")
    first = bridge.deliver(app.lambda_handler)
    assert len(first.failed_ids) == 1
    assert created_internal_ids(bridge) == Counter(["hubspot:1001"])
    bridge.sandbox.clear_faults()
    bridge.make_visible(first)
    assert bridge.deliver(app.lambda_handler).failed_ids == []
    assert created_internal_ids(bridge) == Counter(NEW_CONTACTS)
    assert bridge.dead_letters() == []


def test_a_bad_item_parks_the_whole_event_before_anything_is_sent(bridge: BridgeEnv) -> None:
    broken = json.loads(json.dumps(BATCH))
    broken[3]["propertyValue"] = "912 000 103"  # no country code: not a valid contact
    bridge.enqueue(broken, source="hubspot")
    assert bridge.deliver(app.lambda_handler).failed_ids == []
    assert bridge.creations() == []
    [parked] = bridge.dead_letters()
    reason = parked["MessageAttributes"]["errorReason"]["StringValue"]
    assert reason.startswith("forEach item 2: body.contacts[0]: not an e-mail address")
    assert "912 000 103" not in reason


_EXAMPLES = itertools.count(1)


def fresh_batch() -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The sample batch with eventIds no earlier example used, and the keys of its new contacts."""
    offset = next(_EXAMPLES) * 10_000
    batch = json.loads(json.dumps(BATCH))
    for item in batch:
        item["eventId"] += offset
    keys = tuple(f"hubspot:{item['eventId']}" for item in batch if item.get("propertyName") == "phone")
    return batch, keys


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plan=st.lists(
        st.tuples(st.sampled_from(["deliver", "fail-item", "redeliver-twice"]), st.integers(min_value=0, max_value=2)),
        min_size=1,
        max_size=5,
    )
)
def test_whatever_fails_and_however_often_it_comes_each_new_contact_is_created_once(
    bridge: BridgeEnv, plan: list[tuple[str, int]]
) -> None:
    """Deliveries, redeliveries and per-item failures in any order: at the end, every item exactly once."""
    batch, keys = fresh_batch()
    for step, item in plan:
        if step == "fail-item":
            bridge.sandbox.inject(Fault.status(503), times=1, body_contains=keys[item].encode())
        for _ in range(2 if step == "redeliver-twice" else 1):
            bridge.enqueue(batch, source="hubspot")
        bridge.make_visible(bridge.deliver(app.lambda_handler))
    bridge.sandbox.clear_faults()
    while (result := bridge.deliver(app.lambda_handler)).received:
        bridge.make_visible(result)
    created = created_internal_ids(bridge)
    assert [created[key] for key in keys] == [1, 1, 1]
    assert max(created.values()) == 1  # no earlier example's item either
    assert bridge.dead_letters() == []
