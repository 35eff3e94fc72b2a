"""Property: any event id goes all the way round, and every line logged on the way is ASCII JSON.

Whatever JSON can carry as an id (lone surrogates, controls, bidi overrides, contacts, tens of thousands of
characters): the ingest function answers it (202, or a 4xx when the id is empty or the body too large),
and an accepted event is queued, refused by Humanos (402, injected in the sandbox) and parked by the
dispatcher, put back by ``dlq redrive``'s own ``redrive_one``, and created. No step raises, and every
line the functions log is ASCII JSON, bounded, with no e-mail address in it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from humanos_bridge.core.masking import safe_id
from humanos_bridge.mapping import bound_key
from humanos_bridge_local.commands.dlq import parked_messages, redrive_one
from humanos_bridge_local.endpoints import Target
from humanos_bridge_local.lambda_runtime import LocalContext
from humanos_bridge_local.sandbox import Fault
from tests.support.apigw import apigw_event, response_json
from tests.support.bridge import BridgeEnv, business_event
from tests.support.ingest_env import IngestEnv, create_ingest, dispatching
from tests.support.ingest_env import app as ingest_app
from tests.support.logs import check_lines, written_lines

# Every code point, lone surrogates included (hypothesis leaves those out unless told).
ANY_CHARACTER = st.characters(exclude_categories=())
EVENT_IDS = st.one_of(
    st.text(ANY_CHARACTER, max_size=60),
    # Long ids: a few characters repeated, up to 60,000 times (past the body limit once escaped, for some).
    st.builds(
        lambda piece, times: piece * times,
        st.text(ANY_CHARACTER, min_size=1, max_size=4),
        st.integers(min_value=100, max_value=60_000),
    ),
    st.sampled_from(["evt_\ud800_x", "ana.silva@example.com", "+351 912 345 678", "\x1b[31mred\x1b[0m", "a\nrow"]),
)


@pytest.fixture
def round_trip(
    moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[IngestEnv, ModuleType]]:
    """The ingest function and the dispatcher on one bridge."""
    ingest = create_ingest(moto, sandbox, monkeypatch, tmp_path)
    try:
        with dispatching(ingest) as dispatcher:
            yield ingest, dispatcher
    finally:
        ingest_app.service.cache_clear()


def start_afresh(bridge: BridgeEnv) -> None:
    """Each example meets nothing an earlier one left: no message, no idempotency record, no stored request."""
    for queue in (bridge.queue_url, bridge.dlq_url):  # drained: SQS purges a queue once a minute at most
        while messages := bridge.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                bridge.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    dynamodb = bridge.moto.client("dynamodb")
    for page in dynamodb.get_paginator("scan").paginate(TableName=bridge.table):
        for item in page["Items"]:
            dynamodb.delete_item(TableName=bridge.table, Key={"id": item["id"]})
    bridge.sandbox.reset()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(event_id=EVENT_IDS)
@example(event_id="hr-\ud800-poison")  # finding 3's id
@example(event_id="evt_" + "a" * 200_000)  # finding 4's: accepted, and one 400 KB log line per step before
def test_any_event_id_goes_round_without_an_exception_and_every_log_line_is_ascii_json(
    round_trip: tuple[IngestEnv, ModuleType], event_id: str
) -> None:
    ingest, dispatcher = round_trip
    bridge = ingest.bridge
    start_afresh(bridge)
    target = Target("the test bridge", bridge.moto.session, bridge.moto.endpoint_url, bridge.queue_url, bridge.dlq_url)
    # ASCII JSON, as most senders write it: a lone surrogate travels as the escape "\ud800", which JSON allows.
    body = json.dumps(business_event("crm-contact-created", id=event_id)).encode()

    with written_lines(ingest_app.logger) as lines:
        response = ingest_app.lambda_handler(apigw_event(body=body), LocalContext(20, "ingest"))
        status = response["statusCode"]
        assert response["body"].isascii()
        event(f"ingest answered {status}")
        if status == 202:
            assert response_json(response) == {"eventId": safe_id(event_id), "status": "accepted"}
            bridge.sandbox.inject(Fault.status(402), times=1)
            parked = bridge.deliver(dispatcher.lambda_handler)
            with parked_messages(target) as items:
                [item] = items
                assert (item.event_id, item.code) == (safe_id(event_id), "humanos_rejected")
                redrive_one(bridge.sqs, target, item)
            created = bridge.deliver(dispatcher.lambda_handler)
            assert [parked.failed_ids, created.failed_ids] == [[], []]
        else:
            assert status in (413, 422), response_json(response)

    outcomes = [entry["outcome"] for entry in check_lines(lines) if "outcome" in entry]
    if status == 202:
        assert outcomes == ["accepted", "parked", "created"]
        # Created under the exact id (hashed into its key), never under its safe form.
        key = bound_key(f"crm:{event_id}:marketing-consent-sms")
        assert [request["internalId"] for request in bridge.sandbox.created] == [key]
    else:
        assert outcomes == ["rejected"]
