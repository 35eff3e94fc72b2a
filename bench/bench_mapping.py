"""Mapping figures: one typical event through map_event (body validation included), and loading the example file.

The per-event figure is compared with serialising the resulting body once (``wire.dump_bytes``), measured in the
same run, so the ratio says how much the mapping adds on top of work every request does anyway. Each preset in
``mappings/presets/`` is also timed on its real-shaped sample event (``preset_<name>_map_event_us``): those use
the heavier functions (arithmetic, filters, lookups, dates) on provider-sized payloads.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jmespath.parser import Parser

from bench.timing import best_per_call
from humanos_bridge.core import wire
from humanos_bridge.mapping import load_mapping

ROOT = Path(__file__).resolve().parent.parent
MAPPING = ROOT / "mappings" / "bridge.json"
EVENT = ROOT / "events" / "business" / "crm-contact-created.json"
PRESETS = ROOT / "mappings" / "presets"
PRESET_EVENTS = ROOT / "events" / "business" / "presets"
#: preset file stem -> its sample event (each preset has one source).
PRESET_SAMPLES = {
    "stripe-checkout": "stripe-checkout-session-completed.json",
    "shopify-orders-paid": "shopify-orders-paid.json",
    "typeform-consent": "typeform-form-response.json",
    "hr-employee-hired": "hr-employee-hired.json",
    "hubspot-contacts": "hubspot-contact-batch.json",
}
#: The request headers a preset's provider sends with its sample (what the ingest route keeps for header()).
PRESET_HEADERS = {"shopify-orders-paid": {"x-shopify-topic": "orders/paid", "x-shopify-webhook-id": "b54557e4"}}
#: What one preset event may cost through map_event (a goal to watch, not a test).
PRESET_GOAL_US = 150


def _cold_load() -> None:
    # jmespath keeps parsed expressions in a process-wide cache; a new container starts without it.
    Parser.purge()
    load_mapping(MAPPING)


def run() -> dict[str, Any]:
    config = load_mapping(MAPPING)
    event = json.loads(EVENT.read_text(encoding="utf-8"))
    body = config.map_event("crm", event).body
    map_s = best_per_call(lambda: config.map_event("crm", event), 5_000)
    dumps_s = best_per_call(lambda: wire.dump_bytes(body), 5_000)
    load_s = best_per_call(_cold_load, 50)
    return {
        "map_event_us_per_event": round(map_s * 1e6, 1),
        "serialise_body_us_baseline": round(dumps_s * 1e6, 1),
        "map_event_vs_serialise_ratio": round(map_s / dumps_s, 1),
        "load_and_compile_bridge_json_ms": round(load_s * 1e3, 2),
        **_presets(),
        "preset_map_event_goal_us_at_most": PRESET_GOAL_US,
    }


def _presets() -> dict[str, float]:
    figures = {}
    for stem, sample in PRESET_SAMPLES.items():
        config = load_mapping(PRESETS / f"{stem}.json")
        (source,) = config.sources
        event = json.loads((PRESET_EVENTS / sample).read_text(encoding="utf-8"))
        headers = PRESET_HEADERS.get(stem, {})
        # Fails here, not inside the timing, if the preset and its sample disagree.
        requests = len(config.map_requests(source, event, headers))
        seconds = best_per_call(functools.partial(config.map_requests, source, event, headers), 2_000)
        name = f"preset_{stem.replace('-', '_')}"
        figures[f"{name}_map_event_us"] = round(seconds * 1e6, 1)
        if requests > 1:  # forEach: the whole event, and each of its requests
            figures[f"{name}_requests_per_event"] = requests
            figures[f"{name}_map_us_per_request"] = round(seconds * 1e6 / requests, 1)
    return figures
