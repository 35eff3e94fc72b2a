"""The SQS dispatcher against moto (SQS, DynamoDB, Secrets Manager) and the Humanos sandbox.

Batches are delivered by ``SqsEventSource``, which shapes records exactly as Lambda does and
settles them the same way (delete what succeeded, leave ``batchItemFailures``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from humanos_bridge import wiring
from humanos_bridge.dispatch import Backoff
from humanos_bridge.queue_messages import NotAnSqsBatch
from humanos_bridge.settings import Settings
from humanos_bridge_local.lambda_runtime import LocalContext
from humanos_bridge_local.sandbox import Fault
from tests.support.bridge import ROOT, BridgeEnv, business_event, create_bridge, load_function

app = load_function("dispatcher")


@pytest.fixture
def bridge(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[BridgeEnv]:
    env = create_bridge(moto, sandbox, monkeypatch)
    app.dispatcher.cache_clear()
    yield env
    if app.dispatcher.cache_info().currsize:
        app.dispatcher().close()
    app.dispatcher.cache_clear()


def crm_event(n: int) -> dict[str, Any]:
    return business_event("crm-contact-created", id=f"evt_crm_{n:04d}")


def attribute(message: dict[str, Any], name: str) -> str | None:
    value = message.get("MessageAttributes", {}).get(name)
    return value["StringValue"] if value else None


def test_each_event_becomes_one_request(bridge: BridgeEnv) -> None:
    """Three events, three signed requests; the batch reports no failures and the queue is empty."""
    for n in range(3):
        bridge.enqueue(crm_event(n))
    result = bridge.deliver(app.lambda_handler)
    assert (result.received, result.deleted, result.failed_ids) == (3, 3, [])
    created = bridge.creations()
    assert sorted(json.loads(c.body)["internalId"] for c in created) == ["evt_crm_0000", "evt_crm_0001", "evt_crm_0002"]
    assert all(c.headers["idempotency-key"].startswith("crm:evt_crm_") for c in created)
    assert bridge.deliver(app.lambda_handler).received == 0


def test_permanent_failures_are_parked_with_their_reason_and_acknowledged(bridge: BridgeEnv) -> None:
    """Malformed JSON and an unmappable event go to the DLQ at once; the good one is created."""
    good = bridge.enqueue(crm_event(1))
    broken = bridge.enqueue(None, raw='{"id": "evt_x", "type": ')
    unknown_type = bridge.enqueue(business_event("crm-contact-created", id="evt_crm_t", type="contact.deleted"))
    result = bridge.deliver(app.lambda_handler)
    assert result.failed_ids == [] and result.deleted == 3
    assert len(bridge.creations()) == 1
    parked = {attribute(m, "originalMessageId"): m for m in bridge.dead_letters()}
    assert set(parked) == {broken, unknown_type}
    assert good not in parked
    assert attribute(parked[broken], "errorCode") == "serialisation_error"
    assert attribute(parked[broken], "errorReason").startswith("body is not valid JSON: Expecting value at line 1")
    assert attribute(parked[unknown_type], "errorCode") == "mapping_error"
    assert "contact.deleted" in attribute(parked[unknown_type], "errorReason")
    assert attribute(parked[unknown_type], "eventId") == "evt_crm_t"
    assert attribute(parked[unknown_type], "source") == "crm"
    assert attribute(parked[unknown_type], "firstSeenAt").endswith("Z")
    assert parked[broken]["Body"] == '{"id": "evt_x", "type": '


@pytest.mark.parametrize(
    ("source", "raw", "code", "reason"),
    [
        (
            None,
            json.dumps({"id": "e1", "type": "contact.created"}),
            "missing_source",
            "message has no 'source' attribute",
        ),
        ("billing", json.dumps({"id": "e2"}), "unknown_source", "billing"),
        ("crm", "", "serialisation_error", "body is not valid JSON"),
        ("crm", "[1, 2]", "mapping_error", ""),
        (
            "crm",
            json.dumps({"id": "e3", "type": "contact.created", "data": {"contact": {"phone": "12"}}}),
            "invalid_body",
            "contacts",
        ),
    ],
    ids=["no-source", "unknown-source", "empty-body", "json-array", "invalid-contact"],
)
def test_malformed_messages_are_parked_never_dropped(
    bridge: BridgeEnv, source: str | None, raw: str, code: str, reason: str
) -> None:
    """Every malformed message ends in the DLQ with a code and a reason; nothing reaches Humanos."""
    bridge.enqueue(None, raw=raw, source=source)
    assert bridge.deliver(app.lambda_handler).failed_ids == []
    [parked] = bridge.dead_letters()
    assert attribute(parked, "errorCode") == code
    assert reason in attribute(parked, "errorReason")
    assert bridge.creations() == []
    assert "12" not in (attribute(parked, "errorReason") or "").replace("2026", "")


def test_retryable_failure_is_reported_and_backed_off_by_retry_after(bridge: BridgeEnv) -> None:
    """A 429 with Retry-After: the record is a batch item failure and stays invisible at least that long."""
    bridge.sandbox.inject(Fault.status(429, retry_after="120"))
    message_id = bridge.enqueue(crm_event(1))
    result = bridge.deliver(app.lambda_handler)
    assert result.failed_ids == [message_id]
    assert bridge.deliver(app.lambda_handler).received == 0  # invisible: backed off, not lost
    assert bridge.dead_letters() == []


def test_duplicates_in_one_batch_create_one_request(bridge: BridgeEnv) -> None:
    """The same event delivered twice in one batch: one creation, both acknowledged."""
    bridge.enqueue(crm_event(7))
    bridge.enqueue(crm_event(7))
    result = bridge.deliver(app.lambda_handler)
    assert (result.deleted, result.failed_ids) == (2, [])
    assert len(bridge.creations()) == 1
    assert len([c for c in bridge.sandbox.calls if c.method == "POST"]) == 1  # Humanos not even asked twice


def test_duplicates_across_batches_do_not_call_humanos_again(
    bridge: BridgeEnv, caplog: pytest.LogCaptureFixture
) -> None:
    """A redelivered event is answered from the idempotency table and logged as a duplicate."""
    bridge.enqueue(crm_event(8))
    bridge.deliver(app.lambda_handler)
    bridge.enqueue(crm_event(8))
    result = bridge.deliver(app.lambda_handler)
    assert result.failed_ids == []
    assert len([c for c in bridge.sandbox.calls if c.method == "POST"]) == 1
    outcomes = [r.outcome for r in caplog.records if getattr(r, "eventId", None) == "evt_crm_0008"]
    assert outcomes == ["created", "duplicate"]


class SaveFailsOnce(DynamoDBPersistenceLayer):
    """Fault injection no real DynamoDB produces on demand: the success update is lost once,
    as when Lambda times out after Humanos answered but before the record was saved."""

    failures_left = 1

    def _update_record(self, data_record: Any) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("simulated crash before the idempotency record was saved")
        super()._update_record(data_record)


def crash_once_dispatcher(moto: Any, bridge: BridgeEnv) -> Any:
    """A dispatcher whose first idempotency save is lost, for 1-second invocations (0.5 s per call)."""
    persistence = SaveFailsOnce(table_name=bridge.table, boto3_client=moto.client("dynamodb"))
    settings = Settings.from_env(call_deadline_seconds=0.5)
    return wiring.dispatcher(settings, persistence=persistence, backoff=Backoff(0.0, 0.0), settle_reserve_seconds=0.1)


def deliver_after_crash(bridge: BridgeEnv, dispatcher: Any) -> None:
    handler = lambda event, context: dispatcher.dispatch_batch(event, LocalContext(timeout_seconds=1.0))  # noqa: E731
    first = bridge.deliver(handler)
    assert len(first.failed_ids) == 1  # reported for retry: we do not know our record is saved
    time.sleep(1.1)  # the crashed invocation's deadline passes; its in-progress record expires
    bridge.make_visible(first)
    assert bridge.deliver(handler).failed_ids == []
    dispatcher.close()


@pytest.mark.parametrize(
    ("name", "source"),
    [("crm-contact-created", "crm"), ("shop-order-paid", "shop")],
    ids=["default-internalId", "custom-internalId"],
)
def test_crash_after_humanos_answered_is_recovered_by_internal_id(
    bridge: BridgeEnv, moto: Any, name: str, source: str
) -> None:
    """The redelivery finds the request by internalId (a custom one only when created after the
    event was first queued) and creates nothing new: Humanos sees one POST and one GET."""
    bridge.enqueue(business_event(name), source=source)
    deliver_after_crash(bridge, crash_once_dispatcher(moto, bridge))
    assert len(bridge.sandbox.created) == 1
    assert [(c.method, c.status) for c in bridge.sandbox.calls] == [("POST", 201), ("GET", 200)]


def test_crash_without_internal_id_is_recovered_by_the_idempotency_key(
    bridge: BridgeEnv, moto: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """With no internalId to look up, the same Idempotency-Key makes Humanos answer the first
    response again: two POSTs, one request."""
    mapping = json.loads((ROOT / "mappings" / "bridge.json").read_text())
    mapping["sources"]["crm"]["rules"]["contact.created"][0]["internalId"] = None
    bridge.with_mapping(monkeypatch, mapping, tmp_path)
    bridge.enqueue(crm_event(9))
    deliver_after_crash(bridge, crash_once_dispatcher(moto, bridge))
    assert len(bridge.sandbox.created) == 1
    posts = [c for c in bridge.sandbox.calls if c.method == "POST"]
    assert [c.status for c in posts] == [201, 201]
    assert posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
    assert posts[0].response == posts[1].response


def test_429_storm_backs_off_then_each_event_is_created_once(
    bridge: BridgeEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While Humanos answers 429 every record is retried later (never parked); then each is created once."""
    monkeypatch.setenv("HUMANOS_MAX_ATTEMPTS", "1")
    bridge.sandbox.inject(Fault.status(429, retry_after="30"))
    ids = {bridge.enqueue(crm_event(n)) for n in range(5)}
    storm = bridge.deliver(app.lambda_handler)
    assert set(storm.failed_ids) == ids
    assert bridge.deliver(app.lambda_handler).received == 0  # all backed off by at least Retry-After
    bridge.sandbox.clear_faults()
    bridge.make_visible(storm)
    assert bridge.deliver(app.lambda_handler).failed_ids == []
    assert len(bridge.creations()) == 5
    assert bridge.dead_letters() == []


def test_secret_rotation_mid_batch_costs_one_refresh(bridge: BridgeEnv, moto: Any) -> None:
    """The secret rotates in Secrets Manager and at Humanos between batches: the next batch
    meets one 401, fetches the secret again once, and every event is still created."""
    bridge.enqueue(crm_event(1))
    bridge.deliver(app.lambda_handler)  # warms the credentials cache
    new_secret = bridge.sandbox.rotate_secret()
    moto.client("secretsmanager").put_secret_value(
        SecretId=bridge.secret_arn,
        SecretString=json.dumps({"apiKey": bridge.sandbox.api_key, "signatureSecret": new_secret}),
    )
    for n in range(2, 6):
        bridge.enqueue(crm_event(n))
    result = bridge.deliver(app.lambda_handler)
    assert result.failed_ids == []
    assert len(bridge.creations()) == 5
    assert app.dispatcher().sender.client.credentials.fetch_count == 2


def test_permanent_humanos_rejection_is_parked_with_status(bridge: BridgeEnv) -> None:
    """A 402 from Humanos needs a human: parked with the status, not retried."""
    bridge.sandbox.inject(Fault.status(402))
    bridge.enqueue(crm_event(3))
    assert bridge.deliver(app.lambda_handler).failed_ids == []
    [parked] = bridge.dead_letters()
    assert (attribute(parked, "errorCode"), attribute(parked, "errorStatus")) == ("humanos_rejected", "402")


def test_ignored_event_types_are_acknowledged_without_a_request(bridge: BridgeEnv) -> None:
    bridge.enqueue(business_event("hr-employee-updated"), source="hr")
    result = bridge.deliver(app.lambda_handler)
    assert (result.deleted, result.failed_ids) == (1, [])
    assert bridge.creations() == [] and bridge.dead_letters() == []


@pytest.mark.parametrize(
    "event",
    [{}, {"Records": []}, {"Records": [{"eventSource": "aws:kinesis"}]}, {"detail-type": "Scheduled Event"}],
    ids=["empty", "no-records", "kinesis", "eventbridge"],
)
def test_an_event_that_is_not_an_sqs_batch_is_an_error(bridge: BridgeEnv, event: dict[str, Any]) -> None:
    """Never an empty success: Lambda would delete a real batch answered that way."""
    with pytest.raises(NotAnSqsBatch):
        app.lambda_handler(event, LocalContext())


def test_logs_and_metrics_hold_no_contact_or_secret(
    bridge: BridgeEnv, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """Structured logs and EMF metrics carry ids and outcomes, never phones, e-mails or secrets."""
    bridge.enqueue(crm_event(1))
    bridge.enqueue(business_event("crm-contact-created", id="evt_bad", data={"contact": {"phone": "+1 234"}}))
    bridge.sandbox.inject(Fault.status(400), times=1)
    bridge.deliver(app.lambda_handler)
    metrics = capsys.readouterr().out
    logs = caplog.text + "".join(json.dumps(vars(r), default=str) for r in caplog.records)
    assert "evt_crm_0001" in logs and "RequestsCreated" in metrics
    for secret in (
        "+351",
        "912345678",
        "912-345-678",
        "ana@example.com",
        "+1 234",
        bridge.sandbox.api_key,
        bridge.sandbox.signature_secret,
    ):
        assert secret not in logs and secret not in metrics


@pytest.fixture
def fifo_bridge(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[BridgeEnv]:
    env = create_bridge(moto, sandbox, monkeypatch, fifo=True)
    monkeypatch.setenv("HUMANOS_MAX_ATTEMPTS", "1")
    app.dispatcher.cache_clear()
    yield env
    if app.dispatcher.cache_info().currsize:
        app.dispatcher().close()
    app.dispatcher.cache_clear()


def test_fifo_failure_holds_back_its_group_only_and_order_holds(fifo_bridge: BridgeEnv) -> None:
    """Group A is a1, a2, a3 and a2 fails: a3 is not sent before a2, group B goes on; on the
    next delivery a2 then a3 are created, in order."""
    bridge = fifo_bridge
    ids = {name: bridge.enqueue(crm_event(n), group=name[0]) for n, name in enumerate(["a1", "a2", "a3", "b1"])}
    bridge.sandbox.inject(Fault.status(503), times=1, body_contains=b'"internalId":"evt_crm_0001"')
    first = bridge.deliver(app.lambda_handler)
    assert sorted(first.failed_ids) == sorted([ids["a2"], ids["a3"]])
    posted = [json.loads(c.body)["internalId"] for c in bridge.sandbox.calls if c.method == "POST"]
    assert "evt_crm_0002" not in posted  # a3 waited behind a2
    bridge.make_visible(first)
    second = bridge.deliver(app.lambda_handler)
    assert second.failed_ids == []
    created = [json.loads(c.body)["internalId"] for c in bridge.creations()]
    assert sorted(created) == ["evt_crm_0000", "evt_crm_0001", "evt_crm_0002", "evt_crm_0003"]
    group_a = [i for i in created if i in ("evt_crm_0000", "evt_crm_0001", "evt_crm_0002")]
    assert group_a == ["evt_crm_0000", "evt_crm_0001", "evt_crm_0002"]


def test_sample_sqs_events_dispatch_as_documented(bridge: BridgeEnv) -> None:
    """events/sqs/ holds what `sam local invoke -e` would send; each has the outcome its README states."""
    valid = json.loads((ROOT / "events" / "sqs" / "batch-valid.json").read_text())
    assert app.lambda_handler(valid, LocalContext()) == {"batchItemFailures": []}
    assert sorted(json.loads(c.body)["internalId"] for c in bridge.creations()) == [
        "employee-E-2041",
        "evt_crm_0001",
        "order-ord_5001",
    ]
    invalid = json.loads((ROOT / "events" / "sqs" / "batch-invalid.json").read_text())
    assert app.lambda_handler(invalid, LocalContext()) == {"batchItemFailures": []}
    codes = sorted(attribute(m, "errorCode") for m in bridge.dead_letters())
    assert codes == ["invalid_body", "missing_source", "serialisation_error", "unknown_source"]
    with pytest.raises(NotAnSqsBatch):
        app.lambda_handler(json.loads((ROOT / "events" / "sqs" / "not-a-batch.json").read_text()), LocalContext())


def test_no_call_starts_that_could_outlive_the_invocation(bridge: BridgeEnv) -> None:
    """With less time left than one call may take, records are left for the next invocation, untouched."""
    message_id = bridge.enqueue(crm_event(1))
    result = bridge.event_source(lambda e, c: app.lambda_handler(e, LocalContext(timeout_seconds=5.0))).poll_once()
    assert result.failed_ids == [message_id]
    assert bridge.sandbox.calls == []
