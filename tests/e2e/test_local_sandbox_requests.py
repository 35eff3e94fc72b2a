"""The local stack's sandbox, as ``humanos-bridge sandbox requests`` and a hand-signed call see it."""

from __future__ import annotations

import json

import pytest

from humanos_bridge_local.cli import main
from humanos_bridge_local.stack import LocalStack
from tests.e2e.stack_helpers import business_event, creations_for, dispatched, post


def test_the_stacks_sandbox_key_is_pinned_to_the_version_the_bridge_sends(stack: LocalStack) -> None:
    """HumanosApiVersion is empty by default, so the mapping's apiVersion applies: the key is pinned to it."""
    assert stack.mapping is not None and stack.sandbox is not None
    assert stack.sandbox.pinned_api_version == stack.mapping.api_version == "2026-05-17"


def test_sandbox_requests_shows_what_the_bridge_created(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    """An event goes through the stack; ``sandbox requests`` finds its request by the internalId the bridge
    gave it, reading the stack's own credentials, with the contact masked."""
    assert post(stack, "crm", business_event("crm-contact-created", id="evt_e2e_listed"))[0] == 202
    [outcome] = dispatched(stack, "evt_e2e_listed")
    [created] = creations_for(stack, "evt_e2e_listed")
    internal_id = json.loads(created.body)["internalId"]

    assert main(["sandbox", "requests", "--internal-id", internal_id]) == 0

    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith(f"1 request(s) with internalId {internal_id} stored by the Humanos sandbox at")
    assert created.response["id"] == outcome.request_id and outcome.request_id in out
    assert "+35********78" in out and "+351912345678" not in out
