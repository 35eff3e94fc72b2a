"""Recovery by internalId never takes another event's request (issue: "Exactly once, for real").

Each test replays one sequence an adversarial review found, against moto and the Humanos sandbox:
an event that met a failure is redelivered, looks its request up by internalId, and must end with
its own request (built from its own rule), never with a sibling's.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from humanos_bridge import wiring
from humanos_bridge.core.ledger import digest
from humanos_bridge.dispatch.service import Backoff
from humanos_bridge.settings import Settings
from humanos_bridge_local.lambda_runtime import LocalContext
from humanos_bridge_local.sandbox import Fault
from tests.support.bridge import BridgeEnv, business_event, dispatcher_bridge, load_function

app = load_function("dispatcher")


@pytest.fixture
def bridge(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[BridgeEnv]:
    with dispatcher_bridge(moto, sandbox, monkeypatch, single_attempts=True) as env:
        yield env


@pytest.fixture
def fifo_bridge(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[BridgeEnv]:
    with dispatcher_bridge(moto, sandbox, monkeypatch, fifo=True, single_attempts=True) as env:
        yield env


def stored_with(bridge: BridgeEnv, marker: str) -> list[dict[str, Any]]:
    """Requests the sandbox stores whose body holds ``marker``."""
    return [r for r in bridge.sandbox.created if marker in json.dumps(r["body"])]


def redeliver(bridge: BridgeEnv) -> None:
    """Deliver, then make what failed visible again and deliver once more (the back-off has passed)."""
    first = bridge.deliver(app.lambda_handler)
    bridge.make_visible(first)
    bridge.deliver(app.lambda_handler)


def employee(event_id: str, first_name: str, contract: str = "employee", employee_id: str = "E-2041") -> dict[str, Any]:
    event = business_event("hr-employee-hired", eventId=event_id)
    event["employee"] = {**event["employee"], "id": employee_id, "firstName": first_name, "contract": contract}
    return event


def test_same_event_id_from_two_sources_gets_two_requests(bridge: BridgeEnv) -> None:
    """crm event 1001 is created; hr event 1001 (another rule) meets one 503, and on redelivery must get its
    own request, not crm's."""
    bridge.enqueue(business_event("crm-contact-created", id="1001"), source="crm")
    bridge.deliver(app.lambda_handler)
    bridge.sandbox.inject(Fault.status(503), times=1, body_contains=b"grp_contractor_onboarding")
    bridge.enqueue(employee("1001", "Joao", contract="contractor", employee_id="C-0107"), source="hr")

    redeliver(bridge)

    assert len(stored_with(bridge, "grp_marketing_consent")) == 1
    assert len(stored_with(bridge, "grp_contractor_onboarding")) == 1
    assert bridge.dead_letters() == []


def test_events_sharing_a_custom_internal_id_each_get_their_own_request(bridge: BridgeEnv) -> None:
    """Two hires of one employee share internalId employee-E-2041; the second meets a 429 and on redelivery
    must not be 'recovered' with the first one's request."""
    bridge.enqueue(employee("evt_A", "Ana"), source="hr")
    bridge.deliver(app.lambda_handler)
    bridge.sandbox.inject(Fault.status(429, retry_after="1"), times=1, body_contains=b"Welcome, Beatriz")
    bridge.enqueue(employee("evt_B", "Beatriz"), source="hr")

    redeliver(bridge)

    assert len(stored_with(bridge, "Welcome, Ana")) == 1
    assert len(stored_with(bridge, "Welcome, Beatriz")) == 1


def test_fifo_event_held_back_behind_a_failure_is_created_not_recovered(fifo_bridge: BridgeEnv) -> None:
    """One FIFO group per employee: A's first POST gets a 503, so B is held back unsent; on the next delivery
    A is created and B must be created too, from its own rule."""
    bridge = fifo_bridge
    bridge.sandbox.inject(Fault.status(503), times=1, body_contains=b"Welcome, Ana")
    bridge.enqueue(employee("evt_A", "Ana"), source="hr", group="E-2041")
    bridge.enqueue(employee("evt_B", "Beatriz"), source="hr", group="E-2041")

    redeliver(bridge)

    assert len(stored_with(bridge, "Welcome, Ana")) == 1
    assert len(stored_with(bridge, "Welcome, Beatriz")) == 1


def test_a_second_message_of_an_event_looks_up_after_an_ambiguous_attempt(
    bridge: BridgeEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first attempt reached Humanos but its answer was lost; Humanos then forgets the Idempotency-Key.
    The sender sends the event again (a new message, received once): it must find the first request."""
    event = business_event("crm-contact-created", id="evt_ambiguous")
    bridge.sandbox.inject(Fault.drop_after_processing(), times=1)
    bridge.enqueue(event, source="crm")
    first = bridge.deliver(app.lambda_handler)
    assert len(first.failed_ids) == 1
    bridge.sandbox.forget_idempotency_keys()

    bridge.enqueue(event, source="crm")  # the sender's retry: a new message
    bridge.deliver(app.lambda_handler)
    # Unless the jittered back-off (it may be 0 s) already let the first message into that batch:
    with contextlib.suppress(bridge.sqs.exceptions.ReceiptHandleIsInvalid):
        bridge.make_visible(first)
    bridge.deliver(app.lambda_handler)

    assert len(stored_with(bridge, "evt_ambiguous")) == 1


def test_lookup_then_post_never_starts_a_call_that_could_outlive_the_invocation(bridge: BridgeEnv) -> None:
    """A redelivery may make two calls (the look-up, then the POST). With time left for one call only, neither
    starts: the record is retried, and Humanos sees nothing after the first attempt."""
    settings = Settings.from_env(call_deadline_seconds=1.0)
    dispatcher = wiring.dispatcher(settings, backoff=Backoff(0.0, 0.0), settle_reserve_seconds=0.5)
    handler = lambda event, context: dispatcher.dispatch_batch(event, LocalContext(timeout_seconds=2.0))  # noqa: E731
    bridge.sandbox.inject(Fault.status(503), times=1)
    bridge.enqueue(business_event("crm-contact-created", id="evt_deadline"), source="crm")
    first = bridge.deliver(handler)  # 1.5 s left: enough for the first attempt's single POST
    bridge.make_visible(first)

    second = bridge.deliver(handler)  # 1.5 s left: not enough for a look-up and a POST of 1 s each
    dispatcher.close()

    assert len(second.failed_ids) == 1
    assert [(c.method, c.status) for c in bridge.sandbox.calls] == [("POST", 503)]


def test_a_request_humanos_gives_back_that_another_event_owns_is_parked_not_acknowledged(bridge: BridgeEnv) -> None:
    """Humanos answers the event's own Idempotency-Key with a request another event (not a twin) has claimed:
    a request made outside the bridge with this internalId, or clocks more than 5 minutes apart. The event is
    parked with a reason a human can act on; it is never acknowledged with that request."""
    bridge.sandbox.inject(Fault.drop_after_processing(), times=1)
    bridge.enqueue(employee("evt_A", "Ana"), source="hr")
    first = bridge.deliver(app.lambda_handler)  # created at Humanos, answer lost
    [taken] = bridge.sandbox.created
    bridge.moto.client("dynamodb").put_item(  # another event's claim, as a wrong clock could let it happen
        TableName=bridge.table, Item={"id": {"S": f"claim#{taken['id']}"}, "key": {"S": digest("crm:9:other")}}
    )
    bridge.make_visible(first)

    bridge.deliver(app.lambda_handler)

    [parked] = bridge.dead_letters()
    assert parked["MessageAttributes"]["errorCode"]["StringValue"] == "request_owned_by_another_event"
    assert len(bridge.sandbox.created) == 1
