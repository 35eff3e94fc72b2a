"""The demo manifest's webhook steps: each refers to a step before it, and the bus check names what differs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from humanos_bridge.core.errors import ConfigError
from humanos_bridge_local.commands.demo import (
    DECIDE,
    MANIFEST,
    REDELIVER,
    TAMPER,
    WebhookStep,
    _bus_difference,
    load_manifest,
    load_webhook_steps,
)


def test_the_repositorys_manifest_decides_tampers_and_redelivers() -> None:
    data = json.loads(MANIFEST.read_text(encoding="utf-8"))
    names = {step.name for step in load_manifest(MANIFEST)}

    webhooks = load_webhook_steps(MANIFEST, data, names)

    assert [step.action for step in webhooks] == [DECIDE, DECIDE, TAMPER, REDELIVER]
    assert [step.expect.get("bus") for step in webhooks] == ["Credential Accepted", "Credential Rejected", None, None]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"name": "w", "action": "decide", "outcome": "accept", "of": "no such step", "expect": {}},
            "webhooks[0]: names 'no such step', which is no step",
        ),
        ({"name": "w", "action": "redeliver", "of": "a", "expect": {}}, "which is no decide webhook step before it"),
        ({"name": "w", "action": "decide", "of": "a", "expect": {}}, "a decide needs an outcome, one of accept"),
        ({"name": "w", "action": "forge", "of": "a", "expect": {}}, "action must be decide, redeliver or tamper"),
        ({"name": "w", "action": "decide"}, "needs name, action, of and expect"),
    ],
)
def test_a_webhook_step_that_cannot_run_is_refused_before_the_stack_starts(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_webhook_steps(Path("demo.json"), {"webhooks": [raw]}, {"a"})


def test_each_webhook_of_a_step_must_put_one_event_on_the_bus() -> None:
    """A decision that sends two webhooks (two credentials) expects two events; a step without ``bus`` none."""
    step = WebhookStep("w", DECIDE, "a", {"bus": "Credential Accepted"}, "accept", request_id="req1")
    step.deliveries = [object(), object()]  # type: ignore[list-item]
    quiet = WebhookStep("r", REDELIVER, "w", {"http": 200}, request_id="req1")

    assert step.expected_on_bus == [("Credential Accepted", "req1"), ("Credential Accepted", "req1")]
    assert quiet.expected_on_bus == []


def test_the_bus_difference_names_what_is_missing_and_what_is_extra() -> None:
    expected = [("Credential Accepted", "req1"), ("Credential Rejected", "req2")]
    found = [("Credential Accepted", "req1"), ("Credential Accepted", "req1")]

    assert _bus_difference(expected, found) == (
        "missing Credential Rejected for req2; unexpected Credential Accepted for req1"
    )
