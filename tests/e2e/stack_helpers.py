"""Small verbs for the end-to-end tests: sample events, signed posts, waiting for the dispatcher, deciding a
request in the sandbox and reading what reached the webhook bus."""

from __future__ import annotations

import copy
import json
from typing import Any

import urllib3

from humanos_bridge_local import bus_events
from humanos_bridge_local.flow import DISPATCH, WEBHOOK, FlowEvent
from humanos_bridge_local.sandbox import Delivery
from humanos_bridge_local.senders import sender_auth, signed_headers
from humanos_bridge_local.stack import ROOT, LocalStack

WAIT_SECONDS = 15.0


def business_event(name: str, **overrides: Any) -> dict[str, Any]:
    event = json.loads((ROOT / "events" / "business" / f"{name}.json").read_text(encoding="utf-8"))
    event = copy.deepcopy(event)
    event.update(overrides)
    return event


def post(stack: LocalStack, source: str, event: Any, *, signed: bool = True) -> tuple[int, Any]:
    """POST an event to the stack's ingest API as its sender would; (status, JSON answer)."""
    assert stack.mapping is not None
    body = json.dumps(event).encode()
    auth = sender_auth(stack.mapping, source)
    headers = {"Content-Type": "application/json"}
    url = f"{stack.api_url}/events/{source}"
    if signed:
        headers = signed_headers(auth.config or auth.scheme, stack.sender_secrets[auth.secret_key][0], body, url=url)
    response = urllib3.request("POST", url, body=body, headers=headers, timeout=10)
    return response.status, json.loads(response.data)


def dispatched(stack: LocalStack, event_id: str, count: int = 1) -> list[FlowEvent]:
    """Wait until the dispatcher has logged ``count`` final outcomes for ``event_id``; return them all."""

    def outcomes(events: list[FlowEvent]) -> list[FlowEvent]:
        return [e for e in events if e.stage == DISPATCH and e.event_id == event_id and e.outcome != "retry"]

    stack.recorder.wait_for(lambda events: len(outcomes(events)) >= count, WAIT_SECONDS)
    return outcomes(stack.recorder.events)


def creations_for(stack: LocalStack, marker: str) -> list[Any]:
    """Every POST /request the sandbox answered 201 whose body holds ``marker``."""
    assert stack.sandbox is not None
    return [
        c
        for c in stack.sandbox.calls
        if c.method == "POST" and c.path == "/request" and c.status == 201 and marker.encode() in c.body
    ]


def decide(stack: LocalStack, request_id: str, outcome: str) -> list[Delivery]:
    """The sandbox decides ``request_id`` as its person would; its webhooks, once delivered (or failed for good)."""
    assert stack.sandbox is not None
    deliveries = stack.sandbox.decide(request_id, outcome)
    return stack.sandbox.wait_for_deliveries(deliveries, timeout=WAIT_SECONDS)


def webhook_rows(stack: LocalStack, request_id: str, count: int = 1) -> list[FlowEvent]:
    """Wait until the receiver has logged ``count`` webhooks of ``request_id``; return them all."""

    def rows(events: list[FlowEvent]) -> list[FlowEvent]:
        return [e for e in events if e.stage == WEBHOOK and e.request_id == request_id]

    stack.recorder.wait_for(lambda events: len(rows(events)) >= count, WAIT_SECONDS)
    return rows(stack.recorder.events)


def on_bus(stack: LocalStack, request_id: str) -> list[bus_events.BusEvent]:
    """The events on the webhook bus (read through the stack's own rule and queue) about ``request_id``."""
    events = bus_events.read_all(stack.client("sqs"), stack.events_queue_url)
    return [event for event in events if event.request_id == request_id]
