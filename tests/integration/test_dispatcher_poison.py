"""Poison messages put straight on the queue, against moto and the Humanos sandbox.

A business system may send to the request queue directly, so its bodies are as untrusted as a
webhook's. One that cannot be parsed safely must be parked with its reason the first time it is
delivered, not retried until the redrive policy gives up, and must not hold back its batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.bridge import BridgeEnv, business_event, dispatcher_bridge, load_function

app = load_function("dispatcher")


@pytest.fixture
def bridge(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[BridgeEnv]:
    with dispatcher_bridge(moto, sandbox, monkeypatch) as env:
        yield env


def attribute(message: dict[str, Any], name: str) -> str | None:
    value = message.get("MessageAttributes", {}).get(name)
    return value["StringValue"] if value else None


def test_a_body_nested_100000_deep_is_parked_on_first_delivery_and_its_batch_goes_on(bridge: BridgeEnv) -> None:
    """Given a batch of two good events and one body nested 100,000 levels (200 KB, under SQS's limit),
    when it is delivered once, then the deep one is in the dead-letter queue with its reason, unchanged,
    the two others became requests, and nothing is left to retry."""
    poison = "[" * 100_000 + "]" * 100_000
    good = [bridge.enqueue(business_event("crm-contact-created", id=f"evt_crm_{n}")) for n in range(2)]
    deep = bridge.enqueue(None, raw=poison)

    result = bridge.deliver(app.lambda_handler)

    assert (result.received, result.deleted, result.failed_ids) == (3, 3, [])
    [parked] = bridge.dead_letters()
    assert attribute(parked, "originalMessageId") == deep
    assert attribute(parked, "errorCode") == "serialisation_error"
    assert attribute(parked, "errorReason") == "body is nested deeper than 64 levels; flatten the event"
    assert attribute(parked, "source") == "crm"
    assert parked["Body"] == poison
    assert len(bridge.creations()) == len(good) == 2
    assert bridge.deliver(app.lambda_handler).received == 0
