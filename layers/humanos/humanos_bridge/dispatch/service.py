"""The dispatcher: a batch of queued business events becomes Humanos requests, exactly once.

Per record: parse the body, find the source, map, send once. Records that must run in sequence
(a FIFO message group, duplicates of one idempotency key) share a lane; every lane of a batch is
in flight at once, so a batch takes as long as its slowest lane, not a sum of waves. The
container's share of the Humanos rate limit (``ratelimit.TokenBucket``), not a worker count, is
what paces the calls. On FIFO queues records of one message group run in order, and a failure
holds back the rest of its group only. Outcomes are then settled for the whole batch:

- created / duplicate / ignored: acknowledged;
- permanent failure: parked in the dead-letter queue with its reason, then acknowledged;
- retryable failure (Humanos down or rate limiting, a wrong secret, AWS unavailable): reported as a
  batch item failure, its visibility set to a jittered exponential back-off from its receive count
  (at least Retry-After: ``Backoff``), so SQS redelivers it later and, after ``maxReceiveCount``
  (at least a day), moves it to the dead-letter queue itself.

Logs and metrics are written from the outcomes in the invoking thread.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from humanos_bridge.core import wire
from humanos_bridge.core.backoff import equal_jitter
from humanos_bridge.core.envelopes import Envelope, open_envelope
from humanos_bridge.core.errors import EventIgnored, MappingError
from humanos_bridge.core.exactly_once import ExactlyOnce
from humanos_bridge.core.masking import safe_id
from humanos_bridge.core.outcomes import Failure, classify_failure
from humanos_bridge.core.queue_messages import ATTR_SOURCE, QueuedEvent, parse_batch, unwrap_event
from humanos_bridge.dispatch.dead_letters import Parcel, park
from humanos_bridge.logs import bridge_logger
from humanos_bridge.mapping import MappedRequest, MappingConfig
from humanos_bridge.settings import MAX_BATCH_SIZE

#: SQS refuses visibility timeouts above 12 hours.
MAX_VISIBILITY_SECONDS = 43_200
#: Time kept back from the invocation's deadline for settling the batch (DLQ, visibility, metrics).
SETTLE_RESERVE_SECONDS = 3.0

CREATED, DUPLICATE, RECOVERED, IGNORED, PARKED, RETRY = (
    "created",
    "duplicate",
    "recovered",
    "ignored",
    "parked",
    "retry",
)


class MissingSource(MappingError):
    """The message names no source and no DEFAULT_SOURCE is configured."""

    code = "missing_source"


class Backoff(NamedTuple):
    """How long a failed message stays invisible before SQS hands it out again.

    10 s doubling up to 15 minutes, each wait drawn from the upper half of its interval, at least
    ``Retry-After``, at most SQS's 12 hours. So a message that keeps failing is received at most
    about four times an hour once the waits reach the cap, and the template's ``MaxReceiveCount``
    (200) is at least a day of failures (``min_seconds_until``) before SQS parks it: a Humanos outage
    or a wrong secret fixed within a day parks nothing. A short outage still costs at most a quarter
    of an hour of delay after Humanos is back.
    """

    base_seconds: float = 10.0
    max_seconds: float = 900.0

    def visibility_for(self, receive_count: int, retry_after: float | None, rng: Any = None) -> int:
        wait = equal_jitter(max(receive_count, 1), self.base_seconds, self.max_seconds, rng)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return int(min(max(wait, 0), MAX_VISIBILITY_SECONDS))

    def min_seconds_until(self, receives: int) -> float:
        """The least time a message failing on every receive spends before its ``receives``-th receive."""
        return sum(min(self.max_seconds, self.base_seconds * 2.0 ** min(n - 1, 64)) / 2 for n in range(1, receives))


@dataclass
class Outcome:
    """What became of one record."""

    message: QueuedEvent
    kind: str = RETRY
    source: str | None = None
    event_type: str | None = None
    event_id: str | None = None
    #: The Humanos request ids, one per request the event maps to (several with forEach).
    request_ids: list[str] = field(default_factory=list)
    #: How many of them this delivery created (or recovered); the rest existed already.
    created: int = 0
    failure: Failure | None = None
    #: Seconds spent talking to Humanos for this record (rate-limit wait excluded).
    humanos_seconds: float | None = None
    #: What the event maps to: one request, or one per item of a forEach rule.
    requests: tuple[MappedRequest, ...] = field(default=(), repr=False)
    #: Requests recovered after an ambiguous attempt that were canceled at Humanos by then (``Delivery``).
    canceled_request_ids: list[str] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return self.kind != RETRY


class Dispatcher:
    """Dispatches SQS batches of business events. Build once per container, reuse per invocation."""

    def __init__(
        self,
        mapping: MappingConfig,
        sender: ExactlyOnce,
        sqs: Callable[[], Any],
        *,
        request_queue_url: str,
        dead_letter_queue_url: str,
        default_source: str = "",
        backoff: Backoff | None = None,
        settle_reserve_seconds: float = SETTLE_RESERVE_SECONDS,
        logger: Logger | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.mapping = mapping
        self.sender = sender
        self._sqs_factory = sqs
        self.request_queue_url = request_queue_url
        self.dead_letter_queue_url = dead_letter_queue_url
        self.default_source = default_source
        self.backoff = backoff or Backoff()
        self.settle_reserve_seconds = settle_reserve_seconds
        # A child logger needs its parent built first; without one given, own a full Logger.
        self.logger = logger or bridge_logger()
        self.metrics = metrics
        self._clock = clock
        # One pool per container, a thread per lane: the executor starts threads only as lanes need them
        # and reuses idle ones, so it grows to the largest batch seen. Its bound is the largest batch the
        # event source may hand us, the same figure the HTTP and DynamoDB connection pools are sized to.
        self._pool = ThreadPoolExecutor(max_workers=MAX_BATCH_SIZE, thread_name_prefix="dispatch")

    @functools.cached_property
    def sqs(self) -> Any:
        """The SQS client, built the first time a record is parked or held back: not on a cold start's happy path."""
        return self._sqs_factory()

    # -- the batch --------------------------------------------------------------------------------

    def dispatch_batch(self, event: Any, context: LambdaContext | None = None) -> dict[str, Any]:
        """Handle one Lambda SQS event; return the partial batch response."""
        messages = parse_batch(event)
        self.sender.register_context(context)
        deadline = self._deadline(context)
        outcomes = {m.message_id: Outcome(message=m) for m in messages}
        for outcome in outcomes.values():
            self._prepare(outcome)
        lanes = self._lanes(list(outcomes.values()))
        # Every lane at once; list() waits for them all (and re-raises a bug in one rather than dropping it).
        list(self._pool.map(lambda lane: self._run_lane(lane, deadline), lanes))
        self._settle(list(outcomes.values()))
        self._report(list(outcomes.values()))

        def record_handler(record: SQSRecord) -> None:
            outcome = outcomes[record.message_id]
            if not outcome.acknowledged:
                raise _Retry(outcome.failure.code if outcome.failure else "retry")

        # Powertools shapes the partial response; every record was already handled above. An entire
        # failed batch is reported as failures too, not raised: Lambda errors stay for real faults.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return dict(process_partial_response(event=event, record_handler=record_handler, processor=processor))

    # -- per record -------------------------------------------------------------------------------

    def _prepare(self, outcome: Outcome) -> None:
        """Parse and map in the invoking thread: cheap, and needed to group duplicates."""
        message = outcome.message
        try:
            body = wire.loads(message.body)
            envelope = open_envelope(body)
            event = envelope.event if envelope is not None else body
            outcome.source = self._source(message, envelope, event)
            event, headers = self._headers(outcome.source, event) if envelope is None else (event, {})
            fields = envelope.fields if envelope is not None else None
            outcome.event_type, outcome.event_id = self._identity(outcome.source, event, headers, fields)
            outcome.requests = self.mapping.map_requests(outcome.source, event, headers, fields)
        except EventIgnored:
            outcome.kind = IGNORED
        except Exception as exc:  # classified: permanent ones are parked, the rest retried
            self._fail(outcome, exc)

    def _source(self, message: QueuedEvent, envelope: Envelope | None, event: Any) -> str:
        """Message attribute, then the envelope, then a source's ``match.when``, then DEFAULT_SOURCE."""
        found = self.mapping.resolve_source(message.attributes.get(ATTR_SOURCE), envelope, event)
        if found or self.default_source:
            return found or self.default_source
        raise MissingSource(
            "nothing names the message's source: no 'source' attribute, no mapping source whose match takes it "
            "(its EventBridge source, SNS topic or match.when) and DEFAULT_SOURCE is not set; send the source as "
            "a message attribute, add a match to the source, or configure DEFAULT_SOURCE"
        )

    def _headers(self, source: str, body: Any) -> tuple[Any, dict[str, str]]:
        """The event and the request headers queued with it (a source that keeps headers is enveloped)."""
        if not self.mapping.source(source).headers:
            return body, {}
        wrapped = unwrap_event(body)
        if wrapped is None:  # sent to the queue directly: no request, so no headers
            return body, {}
        return wrapped

    def _identity(
        self, source: str, body: Any, headers: dict[str, str], envelope: dict[str, Any] | None
    ) -> tuple[str | None, str | None]:
        try:
            return self.mapping.event_identity(source, body, headers, envelope)
        except MappingError:
            return None, None  # map_event will raise the precise error

    def _lanes(self, outcomes: list[Outcome]) -> list[list[Outcome]]:
        """Records that must run one after another: a FIFO message group, or one idempotency key."""
        lanes: dict[str, list[Outcome]] = {}
        for outcome in outcomes:
            if outcome.message.group_id is not None:
                lane = f"group:{outcome.message.group_id}"
            elif outcome.requests:
                # Duplicates in one batch run in sequence: the second finds the first's record.
                lane = f"key:{outcome.requests[0].idempotency_key}"
            else:
                lane = f"message:{outcome.message.message_id}"
            lanes.setdefault(lane, []).append(outcome)
        return list(lanes.values())

    def _run_lane(self, lane: Sequence[Outcome], deadline: float | None) -> None:
        fifo = lane[0].message.group_id is not None
        blocked: Failure | None = None
        for outcome in lane:
            if blocked is not None:
                # FIFO: later messages of a failed group must wait for it, in order.
                outcome.kind, outcome.failure = RETRY, blocked
                continue
            if outcome.requests and outcome.kind == RETRY and outcome.failure is None:
                self._send(outcome, deadline)
            if fifo and outcome.kind == RETRY:
                blocked = Failure(
                    True,
                    "held_behind_failure",
                    "an earlier message of its FIFO group failed",
                    None,
                    outcome.failure.retry_after if outcome.failure else None,
                )

    def _send(self, outcome: Outcome, deadline: float | None) -> None:
        """Every request of the event, one after another; each is exactly once by its own key, so a retry
        after a failure part-way re-sends the event and finds the requests already made."""
        # Every Humanos call must be over before the batch is settled; ExactlyOnce counts the calls it may make.
        calls_end_by = deadline - self.settle_reserve_seconds if deadline is not None else None
        started = time.perf_counter()
        deliveries = []
        try:
            with_log_keys = {"correlation_id": safe_id(outcome.event_id), "source": safe_id(outcome.source)}
            self.logger.thread_safe_append_keys(**with_log_keys)
            try:
                for mapped in outcome.requests:
                    deliveries.append(self.sender.send(mapped, calls_end_by=calls_end_by))
            finally:
                self.logger.thread_safe_remove_keys(list(with_log_keys))
        except Exception as exc:  # classified below; nothing escapes a worker thread
            self._fail(outcome, exc)
            return
        outcome.humanos_seconds = time.perf_counter() - started
        outcome.request_ids = [d.request_id for d in deliveries if d.request_id]
        outcome.created = sum(not d.duplicate for d in deliveries)
        outcome.canceled_request_ids = [d.request_id for d in deliveries if d.canceled_at and d.request_id]
        if any(not (d.duplicate or d.recovered) for d in deliveries):
            outcome.kind = CREATED
        else:
            outcome.kind = RECOVERED if any(d.recovered for d in deliveries) else DUPLICATE

    def _fail(self, outcome: Outcome, exc: BaseException) -> None:
        outcome.failure = classify_failure(exc)
        outcome.kind = RETRY if outcome.failure.retryable else PARKED

    # -- settling the batch -----------------------------------------------------------------------

    def _settle(self, outcomes: list[Outcome]) -> None:
        parcels = [
            Parcel(o.message, o.failure, o.source, o.event_id) for o in outcomes if o.kind == PARKED and o.failure
        ]
        if parcels:
            not_parked = park(self.sqs, self.dead_letter_queue_url, parcels)
            for outcome in outcomes:
                if outcome.message.message_id in not_parked:
                    # Never acknowledge what could not be parked: it is retried instead.
                    outcome.kind = RETRY
        retries = [o for o in outcomes if o.kind == RETRY]
        if retries:
            self._back_off(retries)

    def _back_off(self, retries: list[Outcome]) -> None:
        entries = [
            {
                "Id": str(index),
                "ReceiptHandle": o.message.receipt_handle,
                "VisibilityTimeout": self.backoff.visibility_for(
                    o.message.receive_count, o.failure.retry_after if o.failure else None
                ),
            }
            for index, o in enumerate(retries)
        ]
        for start in range(0, len(entries), 10):
            try:
                self.sqs.change_message_visibility_batch(
                    QueueUrl=self.request_queue_url, Entries=entries[start : start + 10]
                )
            except Exception as exc:  # the message is still retried, only sooner: log and go on
                self.logger.warning("could not set back-off visibility", extra={"error": type(exc).__name__})

    def _report(self, outcomes: list[Outcome]) -> None:
        counts: dict[str, int] = {}
        for outcome in outcomes:
            counts[outcome.kind] = counts.get(outcome.kind, 0) + 1
            self._log(outcome)
        if self.metrics is not None:
            self._emit_metrics(outcomes, counts)

    def _log(self, outcome: Outcome) -> None:
        event_id = safe_id(outcome.event_id)
        fields: dict[str, Any] = {
            "correlation_id": event_id,
            "outcome": outcome.kind,
            "source": safe_id(outcome.source),
            "eventType": safe_id(outcome.event_type),
            "eventId": event_id,
            "messageId": outcome.message.message_id,
            "receiveCount": outcome.message.receive_count,
        }
        if len(outcome.request_ids) == 1:
            fields["requestId"] = outcome.request_ids[0]
        elif outcome.request_ids:
            fields.update(
                requestIds=outcome.request_ids, requests=len(outcome.request_ids), requestsCreated=outcome.created
            )
        if outcome.humanos_seconds is not None:
            fields["humanosMs"] = round(outcome.humanos_seconds * 1000, 1)
        if outcome.failure is not None:
            fields.update(errorCode=outcome.failure.code, reason=outcome.failure.reason, status=outcome.failure.status)
        if outcome.canceled_request_ids:
            # Nobody will be asked for a code: whoever canceled it (or the operator) decides what follows.
            fields["canceledRequestIds"] = outcome.canceled_request_ids
        level = "warning" if outcome.kind in (RETRY, PARKED) or outcome.canceled_request_ids else "info"
        getattr(self.logger, level)(f"event {outcome.kind}", extra=fields)

    def _emit_metrics(self, outcomes: list[Outcome], counts: dict[str, int]) -> None:
        assert self.metrics is not None
        add = self.metrics.add_metric
        add(name="EventsReceived", unit=MetricUnit.Count, value=len(outcomes))
        add(name="RequestsCreated", unit=MetricUnit.Count, value=sum(o.created for o in outcomes))
        add(name="Duplicates", unit=MetricUnit.Count, value=counts.get(DUPLICATE, 0))
        add(name="EventsIgnored", unit=MetricUnit.Count, value=counts.get(IGNORED, 0))
        add(name="RetryableFailures", unit=MetricUnit.Count, value=counts.get(RETRY, 0))
        add(name="PermanentFailures", unit=MetricUnit.Count, value=counts.get(PARKED, 0))
        now_ms = self._clock() * 1000
        for outcome in outcomes:
            if outcome.kind == CREATED and outcome.humanos_seconds is not None:
                add(name="HumanosLatency", unit=MetricUnit.Milliseconds, value=outcome.humanos_seconds * 1000)
                if outcome.message.sent_at_ms:
                    add(
                        name="EventToRequestLatency",
                        unit=MetricUnit.Milliseconds,
                        value=max(now_ms - outcome.message.sent_at_ms, 0),
                    )

    def _deadline(self, context: LambdaContext | None) -> float | None:
        if context is None:
            return None
        return self._clock() + context.get_remaining_time_in_millis() / 1000

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class _Retry(Exception):
    """Raised to Powertools for a record that must be retried (its reason was already logged)."""
