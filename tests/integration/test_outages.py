"""Outages and operator mistakes make events wait, never park them (issue: "Ready for production").

A Humanos outage, or a wrong Humanos secret, keeps every event on the queue, backing off, until it is
fixed; then each event is created once and the dead-letter queue stays empty. Time is compressed by
configuration: the back-off is zero (each delivery finds the failed messages visible again), and the
queue's maxReceiveCount is the template's default, so the deliveries run here are fewer than a day's.
``test_the_default_receive_count_is_at_least_a_day_of_back_off`` pins that they stand for a day.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from humanos_bridge import wiring
from humanos_bridge.dispatch.service import Backoff, Dispatcher
from humanos_bridge.settings import Settings
from humanos_bridge_local.lambda_runtime import LocalContext
from humanos_bridge_local.sandbox import Fault
from tests.infrastructure.cfn_template import Template
from tests.support.bridge import BridgeEnv, business_event, create_bridge

#: The template's default, read from template.yaml (a test below checks it stands for a day).
MAX_RECEIVE = int(Template(Path(__file__).parents[2] / "template.yaml").parameters["MaxReceiveCount"]["Default"])
#: Deliveries made while the fault lasts: many more than the old default (5) ever allowed.
FAILING_DELIVERIES = 12


@pytest.fixture
def bridge(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[BridgeEnv]:
    monkeypatch.setenv("HUMANOS_MAX_ATTEMPTS", "1")  # each delivery makes one call: faults reach the dispatcher
    yield create_bridge(moto, sandbox, monkeypatch, max_receive=MAX_RECEIVE)


@pytest.fixture
def dispatcher(bridge: BridgeEnv) -> Iterator[Dispatcher]:
    built = wiring.dispatcher(Settings.from_env(), backoff=Backoff(0.0, 0.0))
    yield built
    built.close()


def handler(dispatcher: Dispatcher) -> Any:
    return lambda event, context: dispatcher.dispatch_batch(event, LocalContext(timeout_seconds=30.0))


def enqueue_three(bridge: BridgeEnv) -> None:
    for n in range(3):
        bridge.enqueue(business_event("crm-contact-created", id=f"evt_outage_{n}"), source="crm")


def test_a_humanos_outage_parks_nothing_and_every_event_goes_through_once_it_ends(
    bridge: BridgeEnv, dispatcher: Dispatcher
) -> None:
    """Given Humanos answering 503 to every call, when the events are delivered again and again, then none is
    parked; once Humanos is back, each is created exactly once."""
    bridge.sandbox.inject(Fault.status(503))
    enqueue_three(bridge)

    for _ in range(FAILING_DELIVERIES):
        result = bridge.deliver(handler(dispatcher))
        assert len(result.failed_ids) == 3
    bridge.sandbox.clear_faults()
    bridge.deliver(handler(dispatcher))

    assert bridge.dead_letters() == []
    assert sorted(json.dumps(r["body"]).count("evt_outage_") for r in bridge.sandbox.created) == [1, 1, 1]
    assert len({r["body"]["internalId"] for r in bridge.sandbox.created}) == 3
    assert bridge.deliver(handler(dispatcher)).received == 0


def test_a_wrong_humanos_secret_makes_events_wait_until_the_operator_fixes_it(
    bridge: BridgeEnv, dispatcher: Dispatcher
) -> None:
    """Given a wrong signature secret in Secrets Manager (Humanos answers 401, also after the one refresh),
    when events are delivered, then they wait; once the operator puts the right secret, each is created once."""
    secrets = bridge.moto.client("secretsmanager")
    right = secrets.get_secret_value(SecretId=bridge.secret_arn)["SecretString"]
    wrong = json.dumps({**json.loads(right), "signatureSecret": "a-rotation-gap"})
    secrets.put_secret_value(SecretId=bridge.secret_arn, SecretString=wrong)
    enqueue_three(bridge)

    for _ in range(FAILING_DELIVERIES):
        assert len(bridge.deliver(handler(dispatcher)).failed_ids) == 3
    assert {c.status for c in bridge.sandbox.calls} == {401}
    secrets.put_secret_value(SecretId=bridge.secret_arn, SecretString=right)
    bridge.deliver(handler(dispatcher))  # a 401 reads the secret again at once: no TTL to wait for

    assert bridge.dead_letters() == []
    assert len(bridge.sandbox.created) == 3


def test_a_placeholder_secret_makes_events_wait_too(bridge: BridgeEnv, dispatcher: Dispatcher) -> None:
    """The stack creates its secrets with REPLACE_ME placeholders: events sent before they are filled wait."""
    secrets = bridge.moto.client("secretsmanager")
    right = secrets.get_secret_value(SecretId=bridge.secret_arn)["SecretString"]
    placeholder = json.dumps({"apiKey": "REPLACE_ME", "signatureSecret": "REPLACE_ME"})
    secrets.put_secret_value(SecretId=bridge.secret_arn, SecretString=placeholder)
    enqueue_three(bridge)

    for _ in range(3):
        assert len(bridge.deliver(handler(dispatcher)).failed_ids) == 3
    secrets.put_secret_value(SecretId=bridge.secret_arn, SecretString=right)
    bridge.deliver(handler(dispatcher))

    assert bridge.dead_letters() == []
    assert len(bridge.sandbox.created) == 3


def test_the_default_receive_count_is_at_least_a_day_of_back_off() -> None:
    """The least time a message failing on every receive spends before SQS parks it, with the dispatcher's
    back-off and the template's MaxReceiveCount: more than 24 hours."""
    assert Backoff().min_seconds_until(MAX_RECEIVE) >= 24 * 3600


@pytest.mark.parametrize("retry_after", ["120", "HTTP-date 120 s ahead"])
def test_the_dispatcher_keeps_a_message_invisible_at_least_retry_after(bridge: BridgeEnv, retry_after: str) -> None:
    """A 429 with Retry-After (seconds, or an HTTP-date): the visibility the dispatcher gives SQS is at least it.
    Read from the ChangeMessageVisibilityBatch call itself (a botocore event hook observes, changes nothing)."""
    if retry_after.startswith("HTTP-date"):
        retry_after = email.utils.formatdate(time.time() + 120, usegmt=True)
    built = wiring.dispatcher(Settings.from_env())  # the production back-off
    asked: list[int] = []
    built.sqs.meta.events.register(
        "before-parameter-build.sqs.ChangeMessageVisibilityBatch",
        lambda params, **_: asked.extend(e["VisibilityTimeout"] for e in params["Entries"]),
    )
    bridge.sandbox.inject(Fault.status(429, retry_after=retry_after))
    bridge.enqueue(business_event("crm-contact-created", id="evt_retry_after"), source="crm")
    try:
        result = bridge.deliver(handler(built))
    finally:
        built.close()

    assert len(result.failed_ids) == 1, result
    assert len(asked) == 1
    assert 118 <= asked[0] <= 900  # the HTTP-date loses up to a second or two to the clock; 900 s is the cap
