"""Property: whatever the body and headers, the ingest function never answers 5xx and never queues
an event whose sender did not authenticate.

Each example goes through ``lambda_handler`` against moto; the queue is counted at the end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tests.support.apigw import apigw_event
from tests.support.bridge import business_event
from tests.support.ingest_env import IngestEnv, app, create_ingest

HEADER_NAMES = st.sampled_from(
    ["content-type", "x-timestamp", "x-signature", "webhook-id", "webhook-timestamp", "webhook-signature", "x-other"]
)
HEADER_VALUES = st.text(max_size=40) | st.sampled_from(["application/json", "v1,AAAA", "1779268501", ""])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
REAL_EVENTS = st.sampled_from(["crm-contact-created", "shop-order-paid", "hr-employee-hired"]).map(
    lambda name: json.dumps(business_event(name)).encode()
)
BODIES = st.one_of(
    REAL_EVENTS,
    REAL_EVENTS,  # weighted: real events are what reaches the queue
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    # Real events with one field replaced by anything.
    st.tuples(st.sampled_from(["id", "type", "data"]), JSON_VALUES).map(
        lambda kv: json.dumps(business_event("crm-contact-created", **{kv[0]: kv[1]})).encode()
    ),
)


@pytest.fixture
def ingest(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    yield create_ingest(moto, sandbox, monkeypatch, tmp_path)
    app.service.cache_clear()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=BODIES,
    signed=st.sampled_from([True, True, False]),
    base64_body=st.booleans(),
    source=st.sampled_from(["crm", "shop", "hr", "crm", "shop", "hr", "nope", "ünï"]),
    headers=st.just({}) | st.dictionaries(HEADER_NAMES, HEADER_VALUES | st.none(), max_size=3),
)
@example(  # the accepted path, always tried
    body=json.dumps(business_event("crm-contact-created")).encode(),
    signed=True,
    base64_body=True,
    source="crm",
    headers={},
)
def test_no_5xx_and_nothing_queued_without_authentication(
    ingest: IngestEnv,
    body: bytes,
    signed: bool,
    base64_body: bool,
    source: str,
    headers: dict[str, str | None],
) -> None:
    """Random bodies and headers, signed or not: never a 5xx; a message is queued only for an accepted,
    authenticated request (the queue is drained after each example, so each sees only its own)."""
    request = apigw_event(source=source, body=body, signed=signed, base64_body=base64_body or None, headers=headers)
    answer = ingest.invoke(request)
    assert answer.status < 500, answer.body
    assert set(answer.body) <= {"error", "eventId", "status"}
    accepted = answer.status == 202 and answer.body["status"] == "accepted"
    event(f"status {answer.status}")  # --hypothesis-show-statistics shows the mix reached
    if not signed:
        assert answer.status in (401, 404, 413), answer.body
    assert len(ingest.queued()) == (1 if accepted else 0)
