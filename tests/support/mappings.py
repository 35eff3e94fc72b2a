"""Small mapping documents for tests: one source, one event type, the rules a test needs."""

from __future__ import annotations

from typing import Any


def one_source(
    rules: list[dict[str, Any]],
    *,
    event_type: str = "x",
    source: str = "crm",
    api_version: str = "2026-05-17",
    **fields: Any,
) -> dict[str, Any]:
    """A mapping document whose ``source`` maps ``event_type`` with ``rules``; ``fields`` set or replace the
    source's keys (``eventType`` and ``eventId`` default to the event's ``type`` and ``id``)."""
    spec: dict[str, Any] = {"eventType": "type", "eventId": "id", "rules": {event_type: rules}}
    spec.update(fields)
    return {"version": 1, "apiVersion": api_version, "sources": {source: spec}}
