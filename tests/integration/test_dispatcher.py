"""The SQS dispatcher against moto (SQS, DynamoDB, Secrets Manager) and the Humanos sandbox.

Batches are delivered by ``SqsEventSource``, which shapes records exactly as Lambda does and
settles them the same way (delete what succeeded, leave ``batchItemFailures``).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from humanos_bridge import wiring
from humanos_bridge.core import signing
from humanos_bridge.core.queue_messages import NotAnSqsBatch
from humanos_bridge.dispatch.service import Backoff
from humanos_bridge.settings import Settings
from humanos_bridge_local.lambda_runtime import LocalContext, SqsEventSource
from humanos_bridge_local.sandbox import Fault, RecordedCall, Sandbox
from tests.support.bridge import ROOT, BridgeEnv, business_event, dispatcher_bridge, load_function

app = load_function("dispatcher")


@pytest.fixture
def bridge(moto: Any, sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[BridgeEnv]:
    with dispatcher_bridge(moto, sandbox, monkeypatch) as env:
        yield env


def crm_event(n: int) -> dict[str, Any]:
    return business_event("crm-contact-created", id=f"evt_crm_{n:04d}")


def crm_key(n: int) -> str:
    """The idempotency key, and so the default internalId, of crm_event(n)."""
    return f"crm:evt_crm_{n:04d}:marketing-consent-sms"


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
    assert sorted(json.loads(c.body)["internalId"] for c in created) == [crm_key(0), crm_key(1), crm_key(2)]
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
            "nothing names the message's source: no 'source' attribute",
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


class CrashedInvocation(LocalContext):
    """The context of an invocation whose deadline passes while it waits for Humanos: the dispatcher, which
    reads it first to plan its calls, is told the whole timeout; every later reader is told none is left.

    The next reader is Powertools Idempotency, saving the event's in-progress record: it sets that record to
    expire at now + the time left, so at the moment of saving. When the event is delivered again the record
    has therefore expired, as a crashed invocation's has in Lambda (SQS redelivers only after the visibility
    timeout, longer than the function's). Nothing waits for it: Powertools compares that expiry with its own
    reading of the wall clock at the redelivery, in milliseconds, a whole delivery later.
    """

    def __init__(self, timeout_seconds: float) -> None:
        super().__init__(timeout_seconds)
        self.timeout_seconds = timeout_seconds
        self.reads = 0

    def get_remaining_time_in_millis(self) -> int:
        self.reads += 1
        return int(self.timeout_seconds * 1000) if self.reads == 1 else 0


def crash_once_dispatcher(moto: Any, bridge: BridgeEnv) -> Any:
    """A dispatcher whose first idempotency save is lost."""
    persistence = SaveFailsOnce(table_name=bridge.table, boto3_client=moto.client("dynamodb"))
    return wiring.dispatcher(Settings.from_env(), persistence=persistence, backoff=Backoff(0.0, 0.0))


def deliver_after_crash(bridge: BridgeEnv, dispatcher: Any) -> None:
    """Deliver the event to an invocation that ends after Humanos answered, before the record was saved; deliver
    it again. Both invocations have 60 s, far more than the dispatcher keeps for a look-up and a POST, so no
    call is refused for want of time however slow the machine."""
    crashed = CrashedInvocation(timeout_seconds=60.0)
    first = bridge.deliver(lambda event, context: dispatcher.dispatch_batch(event, crashed))
    assert len(first.failed_ids) == 1  # reported for retry: we do not know our record is saved
    assert crashed.reads == 2, "expected two readers: the dispatcher's plan, then Powertools' in-progress expiry"
    bridge.make_visible(first)
    again = bridge.deliver(lambda event, context: dispatcher.dispatch_batch(event, LocalContext(timeout_seconds=60.0)))
    assert again.failed_ids == []
    dispatcher.close()


@pytest.mark.parametrize(
    ("name", "source"),
    [("crm-contact-created", "crm"), ("shop-order-paid", "shop")],
    ids=["default-internalId", "custom-internalId"],
)
def test_crash_after_humanos_answered_is_recovered_by_internal_id(
    bridge: BridgeEnv, moto: Any, name: str, source: str
) -> None:
    """The redelivery finds the request by internalId (claimed by this event when it was created) and creates
    nothing new: Humanos sees one POST and one GET. The crashed invocation's in-progress record has expired
    by the redelivery because its context says no time is left when the record is saved (CrashedInvocation),
    not because the test waits."""
    bridge.enqueue(business_event(name), source=source)
    deliver_after_crash(bridge, crash_once_dispatcher(moto, bridge))
    assert len(bridge.sandbox.created) == 1
    assert [(c.method, c.status) for c in bridge.sandbox.calls] == [("POST", 201), ("GET", 200)]


def test_a_request_canceled_before_the_redelivery_is_taken_and_reported(
    bridge: BridgeEnv, moto: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The crash left the event's request at Humanos, and someone canceled it before the redelivery. The
    redelivery takes it as the event's (another would be a second request for one event, undoing that cancel)
    and says so in a warning: nobody will be asked for a code."""
    bridge.enqueue(business_event("crm-contact-created"), source="crm")
    dispatcher = crash_once_dispatcher(moto, bridge)
    first = bridge.deliver(lambda event, context: dispatcher.dispatch_batch(event, CrashedInvocation(60.0)))
    assert len(first.failed_ids) == 1
    [request] = bridge.sandbox.created
    headers = signing.signed_headers(bridge.sandbox.api_key, bridge.sandbox.signature_secret, None)
    cancel = urllib3.request("DELETE", f"{bridge.sandbox.base_url}/request/{request['id']}", headers=headers)
    assert cancel.status == 201
    bridge.make_visible(first)

    with caplog.at_level(logging.INFO):
        again = bridge.deliver(lambda event, context: dispatcher.dispatch_batch(event, LocalContext(60.0)))
    dispatcher.close()

    assert again.failed_ids == [] and len(bridge.sandbox.created) == 1
    [line] = [record for record in caplog.records if record.getMessage() == "event recovered"]
    assert (line.levelname, vars(line)["canceledRequestIds"], vars(line)["requestId"]) == (
        "WARNING",
        [request["id"]],
        request["id"],
    )


def test_crash_without_internal_id_is_recovered_by_the_idempotency_key(
    bridge: BridgeEnv, moto: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """With no internalId to look up, the same Idempotency-Key makes Humanos answer the first
    response again: two POSTs, one request. (No waiting for the crashed record to expire: CrashedInvocation.)"""
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
    with dispatcher_bridge(moto, sandbox, monkeypatch, fifo=True, single_attempts=True) as env:
        yield env


def test_fifo_failure_holds_back_its_group_only_and_order_holds(fifo_bridge: BridgeEnv) -> None:
    """Group A is a1, a2, a3 and a2 fails: a3 is not sent before a2, group B goes on; on the
    next delivery a2 then a3 are created, in order."""
    bridge = fifo_bridge
    ids = {name: bridge.enqueue(crm_event(n), group=name[0]) for n, name in enumerate(["a1", "a2", "a3", "b1"])}
    bridge.sandbox.inject(Fault.status(503), times=1, body_contains=f'"internalId":"{crm_key(1)}"'.encode())
    first = bridge.deliver(app.lambda_handler)
    assert sorted(first.failed_ids) == sorted([ids["a2"], ids["a3"]])
    posted = [json.loads(c.body)["internalId"] for c in bridge.sandbox.calls if c.method == "POST"]
    assert crm_key(2) not in posted  # a3 waited behind a2
    bridge.make_visible(first)
    second = bridge.deliver(app.lambda_handler)
    assert second.failed_ids == []
    created = [json.loads(c.body)["internalId"] for c in bridge.creations()]
    assert sorted(created) == [crm_key(0), crm_key(1), crm_key(2), crm_key(3)]
    group_a = [i for i in created if i in (crm_key(0), crm_key(1), crm_key(2))]
    assert group_a == [crm_key(0), crm_key(1), crm_key(2)]


def test_sample_sqs_events_dispatch_as_documented(bridge: BridgeEnv) -> None:
    """events/sqs/ holds what `sam local invoke -e` would send; each has the outcome its README states."""
    valid = json.loads((ROOT / "events" / "sqs" / "batch-valid.json").read_text())
    assert app.lambda_handler(valid, LocalContext()) == {"batchItemFailures": []}
    assert sorted(json.loads(c.body)["internalId"] for c in bridge.creations()) == [
        "crm:evt_crm_0001:marketing-consent-sms",
        "employee-E-2041",
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


# -- every record of a batch in flight at once ----------------------------------------------------------


def event_of_key(idempotency_key: str | None) -> str | None:
    """The event id in a default Idempotency-Key, ``<source>:<event id>:<rule name>``."""
    parts = (idempotency_key or "").split(":")
    return parts[1] if len(parts) > 2 else None


class LockstepGate:
    """The sandbox's ``on_call`` hook: holds each ``POST /request`` answer until its whole round is in flight.

    The sandbox records a call, and calls this hook, before it answers; a held call is therefore
    still waiting for its answer. Each record has a lane and an index in it (``expect``); round ``r``
    is the ``r``-th record of every lane that gets that far. A call is released only once every call
    of its round has arrived, so the round's calls were all in flight at once. A call that arrives
    outside its round (a lane's next record sent before the previous one was answered, or out of
    order) is a problem, as is a round that never fills (calls sent in waves). No clock is read:
    the timeout only ends a round that would never fill.
    """

    def __init__(self, timeout_seconds: float = 10.0) -> None:
        self.timeout_seconds = timeout_seconds
        self._condition = threading.Condition()
        self.expect({}, [])

    def expect(self, positions: dict[str, tuple[str, int]], calls_per_round: list[int]) -> None:
        """``positions``: event id -> (lane, index); ``calls_per_round``: how many calls each round holds."""
        with self._condition:
            self.positions = positions
            self.calls_per_round = calls_per_round
            self.arrived = [0] * len(calls_per_round)
            self.round = 0
            self.broken = False
            self.problems: list[str] = []

    def __call__(self, call: RecordedCall) -> None:
        if (call.method, call.path) != ("POST", "/request"):
            return
        event_id = event_of_key(call.headers.get("idempotency-key"))
        with self._condition:
            if event_id not in self.positions or self.broken:
                return
            lane, index = self.positions[event_id]
            if index != self.round:
                self.problems.append(f"{event_id} (lane {lane}, #{index}) arrived during round {self.round}")
                return
            self.arrived[index] += 1
            if self.arrived[index] == self.calls_per_round[index]:
                self.round += 1
                self._condition.notify_all()
            elif not self._condition.wait_for(lambda: self.round > index or self.broken, self.timeout_seconds):
                self.broken = True
                self.problems.append(
                    f"round {index}: only {self.arrived[index]} of {self.calls_per_round[index]} calls were in flight"
                )
                self._condition.notify_all()


@contextlib.contextmanager
def gated_bridge(moto: Any, monkeypatch: pytest.MonkeyPatch, gate: LockstepGate, *, fifo: bool) -> Iterator[BridgeEnv]:
    # Single attempts: a failure is final, so no repeated call joins a round.
    with (
        Sandbox(on_call=gate) as sandbox,
        dispatcher_bridge(moto, sandbox, monkeypatch, fifo=fifo, single_attempts=True) as env,
    ):
        # Held answers must not time out on the client's side before the gate lets them go.
        monkeypatch.setenv("HUMANOS_READ_TIMEOUT", str(gate.timeout_seconds + 1))
        yield env


@pytest.fixture
def gate() -> LockstepGate:
    return LockstepGate()


@pytest.fixture
def standard_gated(moto: Any, monkeypatch: pytest.MonkeyPatch, gate: LockstepGate) -> Iterator[BridgeEnv]:
    with gated_bridge(moto, monkeypatch, gate, fifo=False) as env:
        yield env


@pytest.fixture
def fifo_gated(moto: Any, monkeypatch: pytest.MonkeyPatch, gate: LockstepGate) -> Iterator[BridgeEnv]:
    with gated_bridge(moto, monkeypatch, gate, fifo=True) as env:
        yield env


@pytest.mark.parametrize("size", [10, 30])
def test_every_record_of_a_batch_is_in_flight_at_once(
    standard_gated: BridgeEnv, gate: LockstepGate, caplog: pytest.LogCaptureFixture, size: int
) -> None:
    """Given a batch of 10 (the template's default BatchSize) or 30 independent events,
    when the dispatcher handles it, then Humanos holds all of its calls unanswered at the same
    moment (one round of the gate), each event is created once, and no pooled connection is
    discarded (urllib3 warns when a pool is smaller than the calls in flight)."""
    bridge = standard_gated
    ids = [f"evt_wide_{size}_{n:03d}" for n in range(size)]
    for event_id in ids:
        bridge.enqueue(business_event("crm-contact-created", id=event_id))
    gate.expect({event_id: (event_id, 0) for event_id in ids}, [size])
    source = SqsEventSource(
        bridge.sqs, bridge.queue_url, app.lambda_handler, batch_size=size, window_seconds=5, function_timeout=30
    )
    result = source.poll_once()
    assert gate.problems == []
    assert (result.received, result.failed_ids) == (size, [])
    assert sorted(event_of_key(r["idempotencyKey"]) for r in bridge.sandbox.created) == ids
    discarded = [r for r in caplog.records if "Connection pool is full" in r.getMessage()]
    assert discarded == [], discarded[0].getMessage() if discarded else ""


EXAMPLES = itertools.count()


@st.composite
def fifo_batches(draw: st.DrawFn) -> tuple[dict[str, int], list[str], dict[str, int | None]]:
    """Lane sizes (at most 10 records in all), the order the records are enqueued in (each lane's own
    records keep their order), and for each lane the index of the record Humanos refuses, if any."""
    sizes_list = draw(st.lists(st.integers(1, 4), min_size=1, max_size=5).filter(lambda s: sum(s) <= 10))
    sizes = {"abcde"[n]: size for n, size in enumerate(sizes_list)}
    order = draw(st.permutations([lane for lane, size in sizes.items() for _ in range(size)]))
    failures = {lane: draw(st.none() | st.integers(0, size - 1)) for lane, size in sizes.items()}
    return sizes, list(order), failures


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=fifo_batches())
@example(batch=({"a": 3, "b": 1}, ["a", "a", "a", "b"], {"a": 1, "b": None}))  # a1 a2 a3 b1, a2 fails
@example(batch=({"a": 2, "b": 2, "c": 2, "d": 2, "e": 2}, list("abcdeabcde"), dict.fromkeys("abcde")))
def test_fifo_groups_run_side_by_side_each_in_order_one_call_at_a_time(
    fifo_gated: BridgeEnv, gate: LockstepGate, batch: tuple[dict[str, int], list[str], dict[str, int | None]]
) -> None:
    """Given FIFO message groups of random sizes, enqueued interleaved, some with a record Humanos refuses,
    when one batch is dispatched, then round r of Humanos calls is exactly the r-th record of every group
    still going, all in flight at once (groups side by side, each one call at a time, in order); a refused
    record and every later one of its group are retried, the later ones never sent; the rest are created,
    in group order."""
    bridge = fifo_gated
    sizes, order, failures = batch
    run = next(EXAMPLES)
    positions: dict[str, tuple[str, int]] = {}
    event_of: dict[str, str] = {}
    seen: Counter[str] = Counter()
    for lane in order:
        index = seen[lane]
        seen[lane] += 1
        event_id = f"evt_fifo_{run:03d}_{lane}{index}"
        positions[event_id] = (lane, index)
        message_id = bridge.enqueue(business_event("crm-contact-created", id=event_id), group=f"g{run:03d}{lane}")
        event_of[message_id] = event_id
        if failures[lane] == index:
            bridge.sandbox.inject(Fault.status(503), times=1, body_contains=event_id.encode())
    last_sent = {lane: size - 1 if failures[lane] is None else failures[lane] for lane, size in sizes.items()}
    gate.expect(positions, [sum(1 for last in last_sent.values() if last >= r) for r in range(max(sizes.values()))])

    result = bridge.deliver(app.lambda_handler)
    try:
        assert gate.problems == []
        assert result.received == len(order)
        held = {e for e, (lane, i) in positions.items() if failures[lane] is not None and i >= failures[lane]}
        assert {event_of[m] for m in result.failed_ids} == held
        posted = {event_of_key(c.headers.get("idempotency-key")) for c in bridge.sandbox.calls if c.method == "POST"}
        sent = {e for e, (lane, i) in positions.items() if i <= last_sent[lane]}
        assert posted & set(positions) == sent
        created = [event_of_key(r["idempotencyKey"]) for r in bridge.sandbox.created]
        created = [e for e in created if e in positions]
        for lane, size in sizes.items():
            stop = size if failures[lane] is None else failures[lane]
            assert [positions[e][1] for e in created if positions[e][0] == lane] == list(range(stop))
    finally:
        # Leave nothing behind for the next example: its groups are new, but the queue is shared.
        receipts = result.failed_receipts
        for start in range(0, len(receipts), 10):
            bridge.sqs.delete_message_batch(
                QueueUrl=bridge.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(receipts[start : start + 10])],
            )
        bridge.sandbox.clear_faults()


def test_rate_limit_still_bounds_calls_with_the_whole_batch_in_flight(
    bridge: BridgeEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a container share of 5 creations a second (RATE_LIMIT_PER_MINUTE=602 over 2 containers: a
    bucket of 1 refilled at 300 a minute, so at most 1 + 5 calls in any second) and a Humanos that refuses
    (429) an 8th creation within one second, when 10 events are dispatched in one batch, all at once,
    then Humanos refuses none: the token bucket, not the number of lanes, set the pace. (A burst of the
    10 would have drawn three 429s; one call of slack covers scheduling between token and arrival.)"""
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "602")
    monkeypatch.setenv("DISPATCHER_MAX_CONCURRENCY", "2")
    monkeypatch.setenv("HUMANOS_MAX_ATTEMPTS", "1")  # a 429 would be a failure of the batch, not hidden by a retry
    bridge.sandbox.set_rate_limit(7, window_seconds=1.0)
    for n in range(10):
        bridge.enqueue(crm_event(100 + n))
    result = bridge.deliver(app.lambda_handler)
    assert (result.received, result.failed_ids) == (10, [])
    assert [c.status for c in bridge.sandbox.calls if c.method == "POST"] == [201] * 10
