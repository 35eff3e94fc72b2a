"""Exactly once, checked with a model (issue 11): a stateful property test against moto and the sandbox.

Hypothesis drives a ``RuleBasedStateMachine`` through random sequences of what happens to a bridge in
production: business events from three sources (whose event ids collide across sources), sent again as
new messages and on the synchronous route, delivered in batches to two dispatcher containers sharing one
idempotency table, while Humanos fails (5xx, 429 with Retry-After, connections dropped before or after
creating, answers later than the call deadline), invocations end early or are lost after Humanos
answered, a message's visibility expires while its first container is still calling Humanos (two
threads), the dead-letter queue is redriven (``dlq redrive``'s own code) and Humanos forgets its
idempotency keys.

Everything is real HTTP: moto in server mode and the Humanos sandbox. Nothing of boto3 or urllib3 is
patched; faults come only from the sandbox's fault rules and from one Powertools persistence subclass
(``SaveFailsWhenArmed``: the invocation is lost after our claim, before our idempotency record is saved).

The mapping (``MAPPING``) has one rule per source:

- ``crm`` keeps the default internalId (the idempotency key); bodies differ by name;
- ``hr`` and ``lms`` share a CUSTOM internalId, ``person-<id>``, over a pool of two people, so a look-up
  by internalId finds requests of other events, of the other source and of the other rule. Two ``hr``
  events of one person with the same first name (or two ``lms`` events of one person and course) have
  IDENTICAL bodies (twins): either may take either request, but never both the same one. An ``lms``
  enrolment of variant 0 is titled like an ``hr`` welcome of Ana: two RULES whose requests show the same
  contacts and name for one person but differ in groupIds (rivals): neither may take the other's.

The invariant, read from what the parts hold (the idempotency table's records and the ledger's claims,
the sandbox's stored requests with their bodies, the dead-letter queue), never from the model's guesses:

- after every step: no Humanos request is the request of two events; every request an event took (its
  completed record, its claim) was built from that event's own rule (its stored body is exactly the body
  the rule makes for that event, written out by hand in ``Event.expected_body``); a request with a shared
  internalId is claimed by the event whose record names it; no event claimed two requests; and nothing
  was acknowledged (deleted from the queue, or answered 200/201 on the synchronous route) without such a
  request or a parking in the dead-letter queue with its reason;
- at the end, once faults stop and everything is redelivered (and redriven) until quiet: every business
  event has exactly one request built from its own rule, or is parked with its reason; every request at
  Humanos belongs to exactly one event (no duplicate was created), except in the README's one window for
  doubles (a rival about, a lost answer, Humanos forgetting the key: ``_documented_double``, counted in
  the summary); the queue is empty.
  ``EXACTLY_ONCE_MODEL_STRICT=1`` also demands that no event is left parked: no fault here is permanent.

``EXACTLY_ONCE_MODEL_EXAMPLES`` and ``EXACTLY_ONCE_MODEL_STEPS`` make the run longer (``make model``); a
summary line (examples, steps, outcomes, faults that fired) is printed (``-s``). Sequences found are kept
below as plain tests, with two checks that the oracle itself catches a duplicate and a foreign request.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import urllib3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, event, settings, target
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from humanos_bridge import wiring
from humanos_bridge.core.exactly_once import REISSUE_SUFFIX
from humanos_bridge.dispatch.service import Backoff, Dispatcher
from humanos_bridge.settings import Settings
from humanos_bridge_local.commands.dlq import parked_messages, redrive_one
from humanos_bridge_local.endpoints import Target
from humanos_bridge_local.lambda_runtime import BatchResult, LocalContext, SqsEventSource
from humanos_bridge_local.sandbox import Fault, Sandbox
from tests.support import run_summary
from tests.support.apigw import apigw_event, response_json
from tests.support.bridge import BridgeEnv, create_bridge, load_function

ingest_app = load_function("ingest")

EXAMPLES = int(os.environ.get("EXACTLY_ONCE_MODEL_EXAMPLES", "12"))
STEPS = int(os.environ.get("EXACTLY_ONCE_MODEL_STEPS", "20"))
#: Stricter than the invariant: once faults stop, no event may be left parked (see the tests at the end).
STRICT = os.environ.get("EXACTLY_ONCE_MODEL_STRICT", "") not in ("", "0")

#: Seconds a Humanos call may take (HUMANOS_CALL_DEADLINE_SECONDS): short, so faults cost little time.
CALL_DEADLINE = 0.5
#: Kept back from each dispatcher invocation for settling the batch.
SETTLE_RESERVE = 0.1
#: A slow answer still within the call deadline, and one past it (the call times out; Humanos creates later).
SLOW_ANSWER, LATE_ANSWER = 0.25, 0.7
#: A crashed invocation's length: its in-progress record expires this long after it started. Room for the
#: look-up and the POST (SETTLE_RESERVE + 2 x CALL_DEADLINE), so a redelivered record is tried, not refused.
CRASH_INVOCATION = 1.2
#: Invocations ending early: no room for any call, and room for one call but not two (look-up, then POST).
ENDING_INVOCATIONS = (0.3, 0.8)
#: SQS moves a message to the dead-letter queue on its next receive after this many.
MAX_RECEIVE = 5
#: Records written by ExactlyOnce (Powertools key prefix) and by the ledger.
RECORD_PREFIX, CLAIM_PREFIX, ATTEMPT_PREFIX, USES_PREFIX = "humanos-request#", "claim#", "attempt#", "uses#"
#: The synchronous route's replay claims (``humanos_bridge.core.replays``): about deliveries, not events.
DELIVERY_PREFIX = "delivery#"
#: The synchronous route's shared token bucket (``shared_ratelimit``): pacing, not an event's record.
RATE_PREFIX = "rate#"

SENDER_SECRETS = {"crm": "crm-model-secret", "hr": "hr-model-secret", "lms": "lms-model-secret"}
EMAILS = {"p1": "ana@example.com", "p2": "bea@example.org"}
FIRST_NAMES = ("Ana", "Bea")
COURSES = ("privacy-101", "safety-201")
#: An lms enrolment's request name. Variant 0 has the name of an hr welcome for Ana: two RULES sharing the
#: internalId person-<id>, with the same contacts and name, whose requests differ only in groupIds.
LMS_TITLES = ("Welcome, Ana", "Enrolment in safety-201")
EVENT_IDS = ("1", "2", "3")
SOURCES = ("crm", "hr", "lms")
RULES = {"crm": "consent", "hr": "welcome", "lms": "enrolment"}
ID_FIELDS = {"crm": "id", "hr": "eventId", "lms": "id"}

MAPPING: dict[str, Any] = {
    "version": 1,
    "apiVersion": "2026-05-17",
    "description": "The exactly-once model: colliding event ids, a custom internalId shared across sources.",
    "sources": {
        "crm": {
            "eventType": "type",
            "eventId": "id",
            "unmatched": "reject",
            "auth": {"scheme": "humanos-hmac"},
            "rules": {
                "contact.created": [
                    {
                        "name": "consent",
                        "request": {
                            "contacts": "=as_list(data.email)",
                            "groupIds": ["grp_consent"],
                            "name": "=concat('Consent for ', data.first)",
                        },
                    }
                ]
            },
        },
        "hr": {
            "eventType": "event",
            "eventId": "eventId",
            "unmatched": "reject",
            "auth": {"scheme": "humanos-hmac"},
            "rules": {
                "person.joined": [
                    {
                        "name": "welcome",
                        "internalId": "=concat('person-', person.id)",
                        "request": {
                            "contacts": "=as_list(person.email)",
                            "groupIds": ["grp_welcome"],
                            "name": "=concat('Welcome, ', person.first)",
                        },
                    }
                ]
            },
        },
        "lms": {
            "eventType": "type",
            "eventId": "id",
            "unmatched": "reject",
            "auth": {"scheme": "humanos-hmac"},
            "rules": {
                "course.enrolled": [
                    {
                        "name": "enrolment",
                        "internalId": "=concat('person-', data.person)",
                        "request": {
                            "contacts": "=as_list(data.email)",
                            "groupIds": ["grp_course"],
                            "name": "=data.title",
                        },
                    }
                ]
            },
        },
    },
}


@dataclass(frozen=True)
class Event:
    """One business event of the model: its source, id and the content its sender always sends for it."""

    source: str
    event_id: str
    person: str
    variant: int

    @property
    def key(self) -> str:
        return f"{self.source}:{self.event_id}:{RULES[self.source]}"

    def payload(self) -> dict[str, Any]:
        email = EMAILS[self.person]
        if self.source == "crm":
            first = FIRST_NAMES[self.variant]
            return {"id": self.event_id, "type": "contact.created", "data": {"email": email, "first": first}}
        if self.source == "hr":
            person = {"id": self.person, "email": email, "first": FIRST_NAMES[self.variant]}
            return {"eventId": self.event_id, "event": "person.joined", "person": person}
        data = {
            "person": self.person,
            "email": email,
            "course": COURSES[self.variant],
            "title": LMS_TITLES[self.variant],
        }
        return {"id": self.event_id, "type": "course.enrolled", "data": data}

    def expected_body(self) -> dict[str, Any]:
        """The body this event's rule makes, written out by hand (the oracle, independent of the engine)."""
        email = EMAILS[self.person]
        if self.source == "crm":
            name, group, internal_id = f"Consent for {FIRST_NAMES[self.variant]}", "grp_consent", self.key
        elif self.source == "hr":
            name, group, internal_id = f"Welcome, {FIRST_NAMES[self.variant]}", "grp_welcome", f"person-{self.person}"
        else:
            name, group, internal_id = LMS_TITLES[self.variant], "grp_course", f"person-{self.person}"
        return {"contacts": [email], "groupIds": [group], "name": name, "internalId": internal_id}


def record_id(key: str) -> str:
    """The id of the Powertools idempotency record of ``key`` (event_key_jmespath "key", MD5 of its JSON)."""
    return RECORD_PREFIX + hashlib.md5(json.dumps(key, sort_keys=True).encode()).hexdigest()


def key_digest(key: str) -> str:
    """How the ledger names an event in its claims: the SHA-256 of its idempotency key."""
    return hashlib.sha256(key.encode()).hexdigest()


class SaveFailsWhenArmed(DynamoDBPersistenceLayer):
    """Fault injection no real DynamoDB produces on demand (like ``SaveFailsOnce`` in test_dispatcher.py):
    while armed, the success update is lost, as when Lambda times out after Humanos answered (and, for a
    shared internalId, our claim was written) but before the idempotency record was saved. The in-progress
    record then expires with the lost invocation's deadline."""

    failures_left = 0

    def _update_record(self, data_record: Any) -> None:
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("simulated crash before the idempotency record was saved")
        super()._update_record(data_record)


class OutcomeLog(logging.Handler):
    """Keeps the dispatchers' ``event <outcome>`` log lines (their structured fields), for the statistics."""

    def __init__(self) -> None:
        super().__init__()
        self.outcomes: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "outcome"):
            fields = ("outcome", "source", "eventId", "messageId", "requestId", "errorCode")
            self.outcomes.append({name: getattr(record, name, None) for name in fields})


OUTCOME_LOG = OutcomeLog()


@contextlib.contextmanager
def quiet(logger_name: str) -> Iterator[None]:
    """The functions' own JSON log lines would bury the summary under ``-s``; the model reads the table."""
    underlying = logging.getLogger(logger_name)
    previous = underlying.level
    underlying.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        underlying.setLevel(previous)


@functools.cache
def model_logger() -> Logger:
    """The dispatchers' logger. Built once: Powertools configures a service's logger only the first time."""
    return Logger(service="exactly-once-model", level="INFO", logger_handler=OUTCOME_LOG)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    ends = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= ends:
            return False
        time.sleep(interval)
    return True


class Container:
    """One dispatcher container: its own clients, persistence and connection pool, the shared table."""

    def __init__(self, name: str, bridge: BridgeEnv) -> None:
        self.name = name
        self.persistence = SaveFailsWhenArmed(table_name=bridge.table, boto3_client=bridge.moto.client("dynamodb"))
        self.dispatcher: Dispatcher = wiring.dispatcher(
            Settings.from_env(),
            persistence=self.persistence,
            pool=urllib3.PoolManager(maxsize=10),
            backoff=Backoff(0.0, 0.0),
            settle_reserve_seconds=SETTLE_RESERVE,
            logger=model_logger(),
        )
        self.source = SqsEventSource(bridge.sqs, bridge.queue_url, self.dispatcher.dispatch_batch, function_name=name)

    def receive(self, batch_size: int) -> list[dict[str, Any]]:
        self.source.batch_size = batch_size
        return self.source.receive()

    def deliver(self, messages: list[dict[str, Any]], invocation_seconds: float = 30.0) -> BatchResult:
        """Invoke with ``messages`` as Lambda would, in an invocation of ``invocation_seconds``."""
        self.source.function_timeout = invocation_seconds
        return self.source.deliver(messages)


@dataclass
class Snapshot:
    """What the idempotency table and Humanos hold right now."""

    completed: dict[str, str | None]  # event key -> requestId of its completed record
    in_progress: set[str]
    claims: dict[str, str]  # request id -> key of the event that claimed it (or the digest no event has)
    requests: dict[str, dict[str, Any]]  # request id -> stored request (with its body)
    unknown_records: list[str]


@dataclass
class World:
    """The test's real parts, shared by every example; each example gets a fresh bridge on them."""

    moto: Any
    sandbox: Sandbox
    monkeypatch: pytest.MonkeyPatch
    tmp_path: Path
    stats: Counter[str] = field(default_factory=Counter)
    max_steps: int = 0

    def fresh_bridge(self) -> BridgeEnv:
        wait_until(lambda: self.sandbox.pending == 0, 5.0)  # a late answer of the last example must not land here
        self.sandbox.reset()
        urllib3.PoolManager().request("POST", f"{self.moto.endpoint_url}/moto-api/reset")
        bridge = create_bridge(self.moto, self.sandbox, self.monkeypatch, max_receive=MAX_RECEIVE)
        bridge.with_mapping(self.monkeypatch, MAPPING, self.tmp_path)
        secrets = json.dumps({source: [secret] for source, secret in SENDER_SECRETS.items()})
        sender_arn = self.moto.client("secretsmanager").create_secret(Name="senders", SecretString=secrets)["ARN"]
        for name, value in {
            "SENDER_SECRET_ID": sender_arn,
            "HUMANOS_MAX_ATTEMPTS": "1",  # every fault reaches the dispatcher (or the sender)
            "SYNC_RATE_LIMIT_PER_MINUTE": "30000",  # pacing is not the model's subject (test_sync_rate_limit's)
            "HUMANOS_CALL_DEADLINE_SECONDS": str(CALL_DEADLINE),
            "POWERTOOLS_METRICS_DISABLED": "true",
        }.items():
            self.monkeypatch.setenv(name, value)
        self.monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
        ingest_app.service.cache_clear()
        return bridge

    def summary(self, seconds: float) -> str:
        examples, steps = self.stats["examples"], self.stats["steps"]
        groups: dict[str, list[str]] = {}
        for name, count in sorted(self.stats.items()):
            if ":" in name:
                kind, what = name.split(":", 1)
                groups.setdefault(kind, []).append(f"{what}={count}")
        details = "; ".join(f"{kind}: {', '.join(values)}" for kind, values in groups.items())
        return (
            f"exactly-once model: {examples} examples, {steps} steps (up to {self.max_steps} per example), "
            f"{seconds:.1f} s; {details}"
        )


#: Weighted towards one person and one variant: identical bodies (and shared internalIds) are the hard case.
EVENTS = st.builds(
    Event,
    source=st.sampled_from(SOURCES),
    event_id=st.sampled_from(EVENT_IDS),
    person=st.sampled_from(("p1", "p1", "p2")),
    variant=st.sampled_from((0, 0, 1)),
)

FAULTS = {
    "503": lambda: Fault.status(503),
    "429": lambda: Fault.status(429, retry_after="30"),
    "drop": Fault.drop,
    "drop_after_processing": Fault.drop_after_processing,
    "late_answer": lambda: Fault.latency(LATE_ANSWER),
}
#: (method, fault): the POST that creates, and the GET of the look-up (where "after processing" means nothing).
#: The faults that leave a request created but unanswered (the ambiguous ones) are drawn twice as often.
FAULT_TARGETS = [
    *(("POST", name) for name in FAULTS),
    ("POST", "drop_after_processing"),
    ("POST", "late_answer"),
    ("GET", "503"),
    ("GET", "drop"),
    ("GET", "late_answer"),
]
#: Faults for the next calls: none to three (each fails one call of its method).
FAULT_LISTS = st.lists(st.sampled_from(FAULT_TARGETS), max_size=3)


class ExactlyOnceModel(RuleBasedStateMachine):
    """Business events, two dispatcher containers, the synchronous route, and everything that goes wrong."""

    events = Bundle("events")

    def __init__(self, world: World, *, require_served: bool = False) -> None:
        super().__init__()
        self.world = world
        #: Stricter than the invariant: at the end no event may be left parked without a request.
        self.require_served = require_served
        self.bridge = world.fresh_bridge()
        self.sandbox = world.sandbox
        self.containers = {1: Container("container-1", self.bridge), 2: Container("container-2", self.bridge)}
        self.target = Target(
            "the model's bridge",
            world.moto.session,
            world.moto.endpoint_url,
            self.bridge.queue_url,
            self.bridge.dlq_url,
        )
        self.known: dict[str, Event] = {}
        #: Powertools record id, and ledger digest, -> idempotency key of every known event.
        self.record_keys: dict[str, str] = {}
        self.digest_keys: dict[str, str] = {}
        #: Message id -> latest receipt handle, for messages received and not acknowledged.
        self.in_flight: dict[str, str] = {}
        #: Monotonic time after which every crashed invocation's in-progress record has expired.
        self.crashes_expire_at = 0.0
        #: How many requests Humanos held each time it forgot its idempotency keys.
        self.forgotten_at: list[int] = []
        self.outcomes_seen = len(OUTCOME_LOG.outcomes)
        self.steps = 0
        self.healthy = True
        world.stats["examples"] += 1

    # -- rules ------------------------------------------------------------------------------------

    @initialize(target=events, first=st.lists(EVENTS, min_size=1, max_size=6))
    def senders_queue_events(self, first: list[Event]) -> Any:
        """A few events to start with, so ids and internalIds collide from the first step."""
        self._begin("initial_events")
        return multiple(*[e for e in (self._send_new(sent) for sent in first) if e is not None])

    @rule(target=events, sent=EVENTS)
    def new_event(self, sent: Event) -> Any:
        """A sender queues an event; an id its source already used is that same event sent again."""
        self._begin("new_event")
        fresh = self._send_new(sent)
        return multiple() if fresh is None else fresh

    @rule(sent=events)
    def send_again(self, sent: Event) -> None:
        """The sender sends the same event again: a new message."""
        self._begin("send_again")
        self._enqueue(sent)

    @rule(sent=events, faults=FAULT_LISTS)
    def send_on_the_synchronous_route(self, sent: Event, faults: list[tuple[str, str]]) -> None:
        """The same event through the ingest function's ``POST /requests/<source>`` (it answers 201/200 or fails)."""
        self._begin("sync_route")
        self._inject(faults)
        request = apigw_event(
            "post-event-crm-humanos-hmac",
            source=sent.source,
            route="requests",
            body=sent.payload(),
            secret=SENDER_SECRETS[sent.source],
            scheme="humanos-hmac",
        )
        with quiet(ingest_app.logger.service), contextlib.redirect_stdout(io.StringIO()):  # and its EMF lines
            response = ingest_app.lambda_handler(request, LocalContext(10, "ingest"))
        status = response["statusCode"]
        self.world.stats[f"sync route:{status}"] += 1
        if status in (200, 201):
            answered = response_json(response)["requestId"]
            self._check_acknowledged(sent, self._snapshot(), route="synchronous route", request_id=answered)

    @rule(container=st.sampled_from((1, 2)), batch_size=st.sampled_from((1, 1, 10)), faults=FAULT_LISTS)
    def deliver(self, container: int, batch_size: int, faults: list[tuple[str, str]]) -> None:
        """Lambda hands a batch to one of the two containers (Humanos failing the next calls of some kinds)."""
        self._begin("deliver")
        self._inject(faults)
        self._deliver(self.containers[container], batch_size)

    @rule(faults=st.lists(st.sampled_from(FAULT_TARGETS), min_size=1, max_size=3))
    def humanos_fails_next(self, faults: list[tuple[str, str]]) -> None:
        """Humanos will fail the next call of each kind, whichever step makes it."""
        self._begin("fault")
        self._inject(faults)

    @rule()
    def back_off_passes(self) -> None:
        """The back-off (or Retry-After) of every failed message has passed: visible again."""
        self._begin("back_off_passes")
        self._make_visible()

    @rule(first=st.sampled_from((1, 2)), slow=st.sampled_from((SLOW_ANSWER, LATE_ANSWER)))
    def visibility_expires_mid_call(self, first: int, slow: float) -> None:
        """A batch is slow at Humanos in one container; its visibility expires meanwhile and SQS hands the
        same messages to the other container, while the first is still calling."""
        self._begin("visibility_expires_mid_call")
        one, other = self.containers[first], self.containers[3 - first]
        messages = one.receive(10)
        if not messages:
            return
        self.sandbox.inject(Fault.latency(slow), times=1)
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["result"] = one.deliver(messages)
            except BaseException as exc:  # re-raised in the test's thread
                outcome["error"] = exc

        thread = threading.Thread(target=run, name=f"{one.name}-slow-invocation")
        thread.start()
        mid_call = wait_until(lambda: self.sandbox.pending > 0 or not thread.is_alive(), 3.0)
        self.world.stats[f"mid-call:{'overlapped' if mid_call and thread.is_alive() else 'first done'}"] += 1
        for message in messages:
            self._change_visibility(message["ReceiptHandle"], 0)
        second = other.receive(10)
        second_result = other.deliver(second)
        thread.join(10)
        assert not thread.is_alive(), f"{one.name}'s invocation did not end"
        if "error" in outcome:
            raise outcome["error"]
        self._settle(messages, outcome["result"])
        self._settle(second, second_result)

    @rule(container=st.sampled_from((1, 2)))
    def invocation_lost_after_humanos_answered(self, container: int) -> None:
        """One record's invocation ends (timeout, crash) after Humanos answered, before its record was saved."""
        self._begin("lost_invocation")
        chosen = self.containers[container]
        messages = chosen.receive(1)
        if not messages:
            return
        chosen.persistence.failures_left = 1
        self.crashes_expire_at = max(self.crashes_expire_at, time.monotonic() + CRASH_INVOCATION)
        try:
            result = chosen.deliver(messages, CRASH_INVOCATION)
        finally:
            lost = chosen.persistence.failures_left == 0
            chosen.persistence.failures_left = 0
        self.world.stats[f"lost invocation:{'save lost' if lost else 'nothing to save'}"] += 1
        self._settle(messages, result)

    @rule(container=st.sampled_from((1, 2)), seconds=st.sampled_from(ENDING_INVOCATIONS))
    def invocation_ending(self, container: int, seconds: float) -> None:
        """A batch arrives with too little of its invocation left for every call its records may make."""
        self._begin("invocation_ending")
        chosen = self.containers[container]
        messages = chosen.receive(10)
        if messages:
            self._settle(messages, chosen.deliver(messages, seconds))

    @rule()
    def operator_redrives_dead_letters(self) -> None:
        """``humanos-bridge dlq redrive --all``: parked messages go back with ``redriveCount`` raised."""
        self._begin("redrive")
        self._redrive()

    @rule()
    def humanos_forgets_idempotency_keys(self) -> None:
        """Humanos's key retention passes. Only between calls: a retention of seconds is not realistic."""
        self._begin("forget_keys")
        wait_until(lambda: self.sandbox.pending == 0, 5.0)
        self.forgotten_at.append(len(self.sandbox.created))
        self.sandbox.forget_idempotency_keys()

    # -- the invariant ----------------------------------------------------------------------------

    @invariant()
    def no_request_is_shared_or_foreign(self) -> None:
        self._check_ownership(self._snapshot())
        self.healthy = True

    def teardown(self) -> None:
        try:
            if self.healthy:
                self._quiesce()
                self._check_final()
        finally:
            self._report_example()
            self.sandbox.clear_faults()
            for container in self.containers.values():
                container.dispatcher.close()

    # -- steps' plumbing --------------------------------------------------------------------------

    def _begin(self, name: str) -> None:
        # Not healthy until the invariant has run after this step: teardown then skips the final phase.
        self.healthy = False
        self.steps += 1
        self.world.stats["steps"] += 1
        self.world.stats[f"rule:{name}"] += 1
        self.world.max_steps = max(self.world.max_steps, self.steps)

    def _inject(self, faults: list[tuple[str, str]]) -> None:
        for method, name in faults:
            self.sandbox.inject(FAULTS[name](), times=1, method=method)

    def _send_new(self, sent: Event) -> Event | None:
        """Queue ``sent``; None when its source already sent that id (then it is that event, sent again)."""
        known = self.known.get(sent.key)
        if known is not None:
            self._enqueue(known)
            return None
        self.known[sent.key] = sent
        self.record_keys[record_id(sent.key)] = sent.key
        self.digest_keys[key_digest(sent.key)] = sent.key
        self._enqueue(sent)
        return sent

    def _enqueue(self, sent: Event) -> None:
        self.bridge.enqueue(sent.payload(), source=sent.source)

    def _deliver(self, container: Container, batch_size: int, invocation_seconds: float = 30.0) -> int:
        messages = container.receive(batch_size)
        if messages:
            self._settle(messages, container.deliver(messages, invocation_seconds))
        return len(messages)

    def _settle(self, messages: list[dict[str, Any]], result: BatchResult) -> None:
        """Check every message the invocation acknowledged; remember the receipts of the rest."""
        if result.error is not None:
            self.world.stats["handler raised:" + result.error.split(":", 1)[0]] += 1
        failed = set(result.failed_ids)
        snap: Snapshot | None = None  # read once the invocation is over: records only move forward
        for message in messages:
            message_id = message["MessageId"]
            if message_id in failed:
                self.in_flight[message_id] = message["ReceiptHandle"]
                continue
            self.in_flight.pop(message_id, None)
            snap = snap or self._snapshot()
            self._check_acknowledged(self._event_of(message), snap, route="queue", message_id=message_id)

    def _event_of(self, message: dict[str, Any]) -> Event:
        source = message["MessageAttributes"]["source"]["StringValue"]
        event_id = json.loads(message["Body"])[ID_FIELDS[source]]
        return self.known[f"{source}:{event_id}:{RULES[source]}"]

    def _change_visibility(self, receipt: str, seconds: int) -> None:
        with contextlib.suppress(ClientError):  # deleted meanwhile (another container acknowledged it)
            self.bridge.sqs.change_message_visibility(
                QueueUrl=self.bridge.queue_url, ReceiptHandle=receipt, VisibilityTimeout=seconds
            )

    def _make_visible(self) -> None:
        for receipt in self.in_flight.values():
            self._change_visibility(receipt, 0)
        self.in_flight.clear()

    def _parked(self) -> dict[str, str]:
        """Original message id -> reason code of every message in the dead-letter queue."""
        with parked_messages(self.target) as parked:
            return {str(p.attribute("originalMessageId") or p.message["MessageId"]): p.code for p in parked}

    def _redrive(self) -> int:
        with parked_messages(self.target) as parked:
            for item in parked:
                self.world.stats[f"redriven:{item.code}"] += 1
                redrive_one(self.bridge.sqs, self.target, item)
            return len(parked)

    # -- reading the truth ------------------------------------------------------------------------

    def _snapshot(self) -> Snapshot:
        dynamodb = self.world.moto.client("dynamodb")
        items: list[dict[str, Any]] = []
        for page in dynamodb.get_paginator("scan").paginate(TableName=self.bridge.table, ConsistentRead=True):
            items.extend(page["Items"])
        snap = Snapshot({}, set(), {}, {r["id"]: r for r in self.sandbox.created}, [])
        for item in items:
            item_id = item["id"]["S"]
            if item_id.startswith(CLAIM_PREFIX):
                digest = item["key"]["S"]
                snap.claims[item_id.removeprefix(CLAIM_PREFIX)] = self.digest_keys.get(digest, digest)
            elif item_id.startswith((ATTEMPT_PREFIX, USES_PREFIX, DELIVERY_PREFIX, RATE_PREFIX)):
                continue
            elif item_id in self.record_keys:
                key = self.record_keys[item_id]
                if item.get("status", {}).get("S") == "COMPLETED":
                    snap.completed[key] = json.loads(item["data"]["S"]).get("requestId")
                else:
                    snap.in_progress.add(key)
            else:
                snap.unknown_records.append(item_id)
        return snap

    def _built_for(self, snap: Snapshot, request_id: str, key: str) -> str | None:
        """Why ``request_id`` is not a request built from the rule of event ``key``; None when it is."""
        stored = snap.requests.get(request_id)
        if stored is None:
            return f"request {request_id} does not exist at Humanos"
        expected = self.known[key].expected_body()
        if stored["body"] != expected:
            return f"request {request_id} was built as {stored['body']}, not from {key}'s rule ({expected})"
        return None

    def _check_ownership(self, snap: Snapshot) -> None:
        """Never shared, never foreign, never two for one event: read from the records, claims and requests."""
        assert not snap.unknown_records, f"idempotency records of no known event: {snap.unknown_records}"
        answered_for: dict[str, str] = {}
        for key, request_id in snap.completed.items():
            assert request_id, f"{key} has a completed record without a request id"
            problem = self._built_for(snap, request_id, key)
            assert problem is None, f"{key}'s completed record names a request not built for it: {problem}"
            # A request with a shared (custom) internalId is claimed by its event; one with the default
            # internalId (the key itself, which no other event looks up) is claimed only when recovered.
            shared = self.known[key].expected_body()["internalId"] != key
            claimed = snap.claims.get(request_id)
            assert claimed == key or (claimed is None and not shared), (
                f"{key}'s record names request {request_id}, but the claim says {claimed}"
            )
            assert request_id not in answered_for, (
                f"request {request_id} is the request of both {answered_for[request_id]} and {key}"
            )
            answered_for[request_id] = key
        claimed_by: dict[str, str] = {}
        for request_id, key in snap.claims.items():
            assert key in self.known, f"request {request_id} claimed by unknown key {key}"
            problem = self._built_for(snap, request_id, key)
            assert problem is None, f"{key} claimed a request not built for it: {problem}"
            assert key not in claimed_by, f"{key} claimed two requests, {claimed_by[key]} and {request_id}"
            claimed_by[key] = request_id

    def _check_acknowledged(
        self,
        sent: Event,
        snap: Snapshot,
        *,
        route: str,
        message_id: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """An acknowledgement needs this event's own request (its completed record) or a parking with a reason."""
        recorded = snap.completed.get(sent.key)
        if recorded is not None:
            problem = self._built_for(snap, recorded, sent.key)
            assert problem is None, f"{route} acknowledged {sent.key} with a foreign request: {problem}"
            assert request_id is None or request_id == recorded, (
                f"{route} answered {sent.key} with request {request_id}, its record names {recorded}"
            )
            self.world.stats[f"acknowledged:{route} with request"] += 1
            return
        assert message_id is not None, f"{route} answered {sent.key} with {request_id} but it has no completed record"
        parked = self._parked()
        assert message_id in parked, (
            f"the queue acknowledged message {message_id} of {sent.key} with neither a request nor a parking "
            f"(record: {'in progress' if sent.key in snap.in_progress else 'none'})"
        )
        self.world.stats[f"acknowledged:{route} parked ({parked[message_id]})"] += 1

    # -- the end: faults stop, everything is redelivered until quiet --------------------------------

    def _quiesce(self) -> None:
        self.sandbox.clear_faults()
        wait_until(lambda: self.sandbox.pending == 0, 5.0)
        # Lost invocations' in-progress records expire with their deadline; until then a delivery is refused.
        time.sleep(max(self.crashes_expire_at - time.monotonic(), 0.0))
        redrives_left, quiet_rounds = 3, 0
        ends = time.monotonic() + 30
        while quiet_rounds < 2:
            assert time.monotonic() < ends, "the bridge did not settle within 30 s after the faults stopped"
            self._make_visible()
            if self._deliver(self.containers[1], 10):
                quiet_rounds = 0
                continue
            if redrives_left and self._redrive():
                redrives_left -= 1
                quiet_rounds = 0
                continue
            quiet_rounds += 1  # twice quiet in a row: nothing visible, nothing redriven

    def _check_final(self) -> None:
        snap = self._snapshot()
        self._check_ownership(snap)
        attributes = self.bridge.sqs.get_queue_attributes(
            QueueUrl=self.bridge.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert sum(int(v) for v in attributes.values()) == 0, f"messages left on the queue: {attributes}"
        with parked_messages(self.target) as items:
            parked_keys = {self._event_of(item.message).key: item.code for item in items}
        unserved: dict[str, str] = {}
        for key in self.known:
            if snap.completed.get(key) is None:
                assert key in parked_keys, f"{key} has no request and is not parked: it was lost"
                unserved[key] = parked_keys[key]
                self.world.stats[f"parked at the end:{parked_keys[key]}"] += 1
        owners = {request_id: key for key, request_id in snap.completed.items()}
        for index, (request_id, stored) in enumerate(snap.requests.items()):
            if request_id in owners:
                continue
            assert self._documented_double(index, stored["body"]), (
                f"request {request_id} ({stored['body']}) belongs to no event: a duplicate was created "
                f"(claimed by {snap.claims.get(request_id)})"
            )
            self.world.stats["documented doubles:a rival, a lost answer, a forgotten key"] += 1
        if self.require_served:
            # No fault of this model is permanent: with the faults gone, nothing should need a human.
            assert not unserved, f"events without a request, still parked after the faults stopped: {unserved}"

    def _documented_double(self, index: int, body: dict[str, Any]) -> bool:
        """The README's window: an event's request whose answer was lost, with a RIVAL (another event with the
        same shared internalId, contacts and name, but another body) about, and Humanos forgetting the key
        before the redelivery. The look-up cannot tell the request from the rival's, so a second is made."""
        forgotten_after = any(index < held for held in self.forgotten_at)
        made_for = [e for e in self.known.values() if e.expected_body() == body]
        shows = (body["contacts"], body["name"], body["internalId"])
        rivals = [
            e
            for e in self.known.values()
            if e.expected_body() != body
            and (e.expected_body()["contacts"], e.expected_body()["name"], e.expected_body()["internalId"]) == shows
        ]
        return forgotten_after and bool(made_for) and bool(rivals) and body["internalId"] != made_for[0].key

    def _report_example(self) -> None:
        stats = self.world.stats
        for outcome in OUTCOME_LOG.outcomes[self.outcomes_seen :]:
            stats[f"dispatcher outcome:{outcome['outcome']}"] += 1
            if outcome.get("errorCode"):
                stats[f"retried or parked:{outcome['errorCode']}"] += 1
        for call in self.sandbox.calls:
            if call.fault:
                stats[f"faults fired:{call.method} {call.fault}"] += 1
        recoveries = sum(1 for o in OUTCOME_LOG.outcomes[self.outcomes_seen :] if o["outcome"] == "recovered")
        with contextlib.suppress(InvalidArgument):  # a fixed sequence runs outside Hypothesis
            event(f"requests at Humanos: {len(self.sandbox.created)}")
            # Steer the search towards sequences where look-ups find requests: where exactly-once is hard.
            target(float(recoveries), label="recovered by look-up")


MODEL_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    print_blob=True,
    report_multiple_bugs=False,
)


@pytest.fixture
def world(moto: Any, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[World]:
    yield World(moto, sandbox, monkeypatch, tmp_path)
    ingest_app.service.cache_clear()


@pytest.mark.timeout(max(300, EXAMPLES * STEPS))  # about a second a step, at most
def test_model_every_event_gets_exactly_one_request_of_its_own(world: World) -> None:
    """Given random sequences of events, redeliveries, both routes, two containers and every fault above,
    when each step has run, then no request is shared or foreign and nothing was acknowledged without a
    request or a parking; and once faults stop and all is redelivered, every event has exactly one request
    built from its own rule (or is parked with its reason) and Humanos holds no duplicate."""
    started = time.monotonic()
    try:
        run_state_machine_as_test(lambda: ExactlyOnceModel(world, require_served=STRICT), settings=MODEL_SETTINGS)
    finally:
        summary = world.summary(time.monotonic() - started)
        print("\n" + summary)
        run_summary.LINES.append(summary)  # shown after the run, passed or not


# -- sequences the model found, kept as plain tests ---------------------------------------------------------


def replay(world: World, steps: list[tuple[str, dict[str, Any]]], *, strict: bool = STRICT) -> ExactlyOnceModel:
    """Run one fixed sequence of the model's rules, the invariant after each, then the final phase and check
    (``strict``: no event may be left parked)."""
    machine = ExactlyOnceModel(world, require_served=strict)
    try:
        for name, arguments in steps:
            getattr(machine, name)(**arguments)
            machine.no_request_is_shared_or_foreign()
    finally:
        machine.teardown()
    return machine


def test_the_final_check_catches_a_duplicate_creation(world: World) -> None:
    """The oracle is not vacuous: a second request with an event's content, which no event took, is a duplicate.

    Given an event delivered once (its request created and taken), when a second request with the same body
    is created at Humanos behind the bridge's back, then the final check names it as a duplicate."""
    sent = Event("hr", "1", "p1", 0)
    machine = ExactlyOnceModel(world)
    try:
        machine.senders_queue_events([sent])
        machine.deliver(container=1, batch_size=10, faults=[])
        machine.no_request_is_shared_or_foreign()
        machine.containers[1].dispatcher.sender.client.create_request(sent.expected_body(), "not-the-bridge")
        with pytest.raises(AssertionError, match="belongs to no event: a duplicate was created"):
            machine._check_final()
    finally:
        machine.healthy = False  # the final phase would only find the same duplicate
        machine.teardown()


def test_the_invariant_catches_a_request_taken_by_the_wrong_event(world: World) -> None:
    """The oracle reads bodies: a claim of one event on a request built from another event's content fails.

    Given two events of one person with different names (so different content), when the second claims the
    first's request (written into the ledger by hand, as a wrong recovery would), then the invariant names it."""
    first, second = Event("hr", "1", "p1", 0), Event("hr", "2", "p1", 1)
    machine = ExactlyOnceModel(world)
    try:
        machine.senders_queue_events([first, second])
        machine.deliver(container=1, batch_size=1, faults=[])
        [taken] = world.sandbox.created
        machine.world.moto.client("dynamodb").put_item(
            TableName=machine.bridge.table,
            Item={"id": {"S": CLAIM_PREFIX + taken["id"]}, "key": {"S": key_digest(second.key)}},
        )
        with pytest.raises(AssertionError, match=r"hr:1:welcome's record names request .* but the claim says"):
            machine.no_request_is_shared_or_foreign()
    finally:
        machine.healthy = False
        machine.teardown()


def test_identical_bodies_each_event_keeps_its_own_request(world: World) -> None:
    """Found while designing the model: two hr events of one person with the same first name have IDENTICAL
    bodies (shared custom internalId ``person-p1``).

    Given A's POST creates R1 but its answer is lost, and C's first attempt (synchronous route) meets a 503,
    when C is sent again it looks ``person-p1`` up and takes R1, unclaimed and of its content (A is its twin:
    their requests are interchangeable). A, redelivered, finds no unclaimed request and POSTs with its own
    Idempotency-Key; Humanos answers R1, which C owns, so A makes its own under a second key (R2). Before
    ``_reissue``, A was parked as ``request_owned_by_another_event``; now no event is left parked (strict)."""
    a, c = Event("hr", "1", "p1", 0), Event("hr", "2", "p1", 0)
    assert a.expected_body() == c.expected_body()
    machine = replay(
        world,
        [
            ("senders_queue_events", {"first": [a, c]}),
            ("deliver", {"container": 1, "batch_size": 1, "faults": [("POST", "drop_after_processing")]}),
            ("send_on_the_synchronous_route", {"sent": c, "faults": [("POST", "503")]}),
            ("send_on_the_synchronous_route", {"sent": c, "faults": []}),
            ("deliver", {"container": 1, "batch_size": 10, "faults": []}),
        ],
        strict=True,
    )
    assert len(machine.sandbox.created) == 2
    keys = [call.headers.get("idempotency-key") for call in machine.sandbox.calls if call.status == 201]
    assert keys == [a.key, a.key + REISSUE_SUFFIX]


def test_found_identical_bodies_a_twin_takes_an_unanswered_creation_and_the_other_reissues(world: World) -> None:
    """Found by the model (strict, its event pool narrowed to one person and one name), shrunk by Hypothesis.

    Three hr events of one person, identical bodies. hr:3's POST meets a 503 (an attempt, no request);
    hr:1's POST on the synchronous route is created (R1) but its answer is lost. Then everything is
    delivered in one batch: hr:3 (an earlier attempt, so a look-up) finds R1, unclaimed and of its content,
    and may claim it before hr:1 does (a race); hr:1 then POSTs with its own key, Humanos answers R1, and
    hr:1, seeing its twin owns it, makes its own under a second key. Before ``_reissue`` hr:1 was parked on
    every redrive; now every event has its own request (strict)."""
    hr3, hr1, hr2 = Event("hr", "3", "p1", 0), Event("hr", "1", "p1", 0), Event("hr", "2", "p1", 0)
    machine = replay(
        world,
        [
            ("senders_queue_events", {"first": [hr3, hr1]}),
            ("new_event", {"sent": hr2}),
            (
                "deliver",
                {
                    "container": 1,
                    "batch_size": 1,
                    "faults": [("POST", "503"), ("POST", "drop_after_processing"), ("POST", "503")],
                },
            ),
            ("send_on_the_synchronous_route", {"sent": hr1, "faults": []}),
        ],
        strict=True,
    )
    assert len(machine.sandbox.created) == 3


def test_two_rules_sharing_an_internal_id_never_take_each_others_request(world: World) -> None:
    """The defect the model found once its lms titles could collide with hr welcomes: two RULES share the
    custom internalId ``person-p1`` and give the same contacts and name (their groupIds differ).

    Given hr:1's POST creates R1 but its answer is lost, and lms:1's first attempt (synchronous route) meets a
    503, when lms:1 is sent again it looks ``person-p1`` up and finds R1: unclaimed, created after its first
    attempt, same contacts and name. It must not take it (R1 was built from hr's rule): another event used
    ``person-p1`` at the same time, so content proves nothing, and lms:1 POSTs with its own Idempotency-Key.
    hr:1, redelivered, gets R1 back from Humanos under its own key. Each event ends with its own request."""
    hr1, lms1 = Event("hr", "1", "p1", 0), Event("lms", "1", "p1", 0)
    assert hr1.expected_body()["name"] == lms1.expected_body()["name"]
    assert hr1.expected_body()["groupIds"] != lms1.expected_body()["groupIds"]
    machine = replay(
        world,
        [
            ("senders_queue_events", {"first": [hr1]}),
            ("deliver", {"container": 1, "batch_size": 1, "faults": [("POST", "drop_after_processing")]}),
            ("new_event", {"sent": lms1}),
            ("send_on_the_synchronous_route", {"sent": lms1, "faults": [("POST", "503")]}),
            ("send_on_the_synchronous_route", {"sent": lms1, "faults": []}),
        ],
        strict=True,
    )
    assert machine.world.stats["parked at the end:request_owned_by_another_event"] == 0
