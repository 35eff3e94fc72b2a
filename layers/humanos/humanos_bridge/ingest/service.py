"""The ingest service: webhooks in, verified and mapped, then queued (202) or sent to Humanos now (201).

Each inbound request passes the same checks, cheapest first, and the first that fails answers:

1. the source exists (404). Checked before authentication because without a source there is no
   secret to verify against. This tells a caller which source names exist; they are not secrets
   (senders are configured with URLs that contain them), the signature secrets are;
2. the body fits in a queue message (413), so no HMAC runs over oversized input;
3. the sender's signature verifies over the raw body bytes (401, one message for every cause;
   the log says which check failed), and the delivery is not a copy of one received before, within the
   tolerance window (``replays``: a copy of a queued delivery gets its 202 again, nothing queued; any other
   copy 409, or 503 while the first is still being handled);
4. the body is declared JSON (415), is JSON, and nests at most ``MAX_JSON_DEPTH`` levels (400);
5. the mapping turns it into a request (422 with the precise reason). Event types the source
   ignores answer 202 ``"ignored"`` on both routes and are neither queued nor sent. On ``/events``, a source
   that parks what its mapping refuses (``unmappable: "park"``) is only routed here (type, id, rule); the
   dispatcher builds its bodies, once, and parks what it refuses.

Then ``POST /events/{source}`` queues the raw body with its attributes (202 ``"accepted"``; a failed
send answers 503, so the sender retries and nothing is half-accepted). A source whose ``unmappable`` is
``"park"`` (a provider's preset: a provider cannot act on a 422, see ``providers.default_unmappable``) has an
event it cannot route (no type or id, no rule for its type) put in the dead-letter queue with the reason
instead, as the dispatcher parks one (202 ``"parked"``), to be redriven once the mapping is fixed.
``POST /requests/{source}``
sends it through :class:`ExactlyOnce` at once: 201 when this call created the request, 200 with
the same request when the event already has one (a retry, or the dispatcher got there first).

Every failure becomes its answer through ``outcomes.http_outcome``, the one table.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.typing import LambdaContext

from humanos_bridge import __version__
from humanos_bridge.core.errors import (
    BridgeError,
    ConfigError,
    EventIgnored,
    MappingError,
    ReplayOfAnswered,
    SignatureError,
    UnknownSourceError,
)
from humanos_bridge.core.http_request import (
    MAX_BODY_BYTES,
    MAX_JSON_DEPTH,
    InboundRequest,
    PayloadTooLargeError,
    check_json_media_type,
    check_size,
    parse_json,
)
from humanos_bridge.core.masking import mask_text, safe_id
from humanos_bridge.core.outcomes import HttpOutcome, Reply, classify_failure, http_outcome
from humanos_bridge.core.queue_messages import (
    ATTR_EVENT_ID,
    ATTR_RECEIVED_AT,
    ATTR_SOURCE,
    ATTR_TRACE_ID,
    QueuedEvent,
    is_fifo,
    string_attributes,
    wrap_event,
)
from humanos_bridge.core.replays import EVENTS, REQUESTS, Claim, ReplayGuard
from humanos_bridge.core.sender_auth import DEFAULT_TOLERANCE_SECONDS, RequestTarget, SenderVerifier, verifier_for
from humanos_bridge.ingest.sender_secrets import SenderSecrets
from humanos_bridge.mapping import AuthConfig, MappedRequest, MappingConfig, SourceConfig, bound_key
from humanos_bridge.mapping.model import PARK

if TYPE_CHECKING:
    from humanos_bridge.core.exactly_once import ExactlyOnce

#: SQS's limit on one message: body and attributes (names, types and values) together.
MAX_MESSAGE_BYTES = 256 * 1024
#: Distinct secret sets whose verifiers are kept; rotations add one each, so this is never reached.
_MAX_VERIFIERS = 64

ACCEPTED, IGNORED, PARKED, CREATED, EXISTING, REJECTED, FAILED, REPLAYED = (
    "accepted",
    "ignored",
    "parked",
    "created",
    "existing",
    "rejected",
    "failed",
    "replayed",
)
#: Outcomes that answered the sender 2xx: a copy of the delivery gets the same answer (``replays``).
_ANSWERED = (ACCEPTED, IGNORED, PARKED, CREATED, EXISTING)


class DeadLetterUnavailable(BridgeError):
    """An event to park could not be put in the dead-letter queue: 503, the sender retries, nothing is kept."""

    code = "dead_letter_unavailable"
    retryable = True


class _Trail:
    """What one request did, gathered as it goes, for its log line and metrics.

    A plain class with ``__slots__``, not a dataclass: one is made per request, and building a dataclass's
    generated methods costs ~0.4 ms of cold start.
    """

    __slots__ = ("claim", "event_id", "event_type", "failure", "outcome", "request_id", "route", "source", "started")

    def __init__(self, route: str, source: str, started: float) -> None:
        self.route = route
        self.source = source
        self.started = started
        self.event_type: str | None = None
        self.event_id: str | None = None
        self.request_id: str | None = None
        self.outcome: str = FAILED
        self.failure: HttpOutcome | None = None
        #: This request's hold on its delivery (``replays``), settled when it is answered.
        self.claim: Claim | None = None


class IngestService:
    """Verifies, maps and queues (or sends) inbound business events. Build once per container.

    Parameters
    ----------
    mapping
        The loaded mapping. Every source must name a sender authentication scheme (ConfigError otherwise).
    sqs
        An SQS client; ``queue_url`` is where accepted events go, ``dead_letter_queue_url`` where the events of an
        ``unmappable: "park"`` source go that its mapping refuses (required when a source parks).
    sender_secrets
        The sender secrets per ``auth.secretKey``.
    sender, build_sender
        Sends mapped requests to Humanos exactly once (the synchronous route), or builds that sender on the
        route's first request; neither disables the route.
    tolerance
        Accepted clock skew of sender timestamps, seconds, both directions.
    replays
        Handles each signed delivery once (``wiring`` always gives one); None only where no table exists (benchmarks).
    """

    def __init__(
        self,
        mapping: MappingConfig,
        sqs: Any,
        *,
        queue_url: str,
        dead_letter_queue_url: str | None = None,
        sender_secrets: SenderSecrets,
        sender: ExactlyOnce | None = None,
        build_sender: Callable[[], ExactlyOnce] | None = None,
        tolerance: float = DEFAULT_TOLERANCE_SECONDS,
        replays: ReplayGuard | None = None,
        logger: Logger | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_depth: int = MAX_JSON_DEPTH,
    ) -> None:
        refuse_unauthenticated_sources(mapping)
        if not queue_url:
            raise ConfigError("missing configuration: set REQUEST_QUEUE_URL (the template sets it on deploy)")
        parking = [name for name in mapping.sources if mapping.source(name).unmappable == PARK]
        if parking and not dead_letter_queue_url:
            raise ConfigError(
                f"missing configuration: source(s) {', '.join(parking)} park the events their mapping refuses "
                '(unmappable: "park"); set DEAD_LETTER_QUEUE_URL (the template sets it on deploy)'
            )
        self.mapping = mapping
        self.sqs = sqs
        self.queue_url = queue_url
        self.dead_letter_queue_url = dead_letter_queue_url
        self.sender_secrets = sender_secrets
        self.sender = sender
        self._build_sender = build_sender
        self.tolerance = tolerance
        self.replays = replays
        self.logger = logger or Logger(child=True)
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.max_depth = max_depth
        self._clock = clock
        self._verifiers: dict[tuple[AuthConfig, tuple[str, ...]], SenderVerifier] = {}

    # -- routes -----------------------------------------------------------------------------------

    def accept_event(self, source: str, request: InboundRequest) -> Reply:
        """``POST /events/{source}``: verify, map (dry run) and queue; 202 ``accepted``, ``ignored`` or ``parked``."""
        trail = _Trail(EVENTS, source, time.perf_counter())
        try:
            try:
                admitted = self._admit_and_map(source, request, trail)
            except MappingError as refused:
                if isinstance(refused, UnknownSourceError) or self.mapping.source(source).unmappable != PARK:
                    raise
                return self._park(source, request, trail, refused)
            if admitted is None:
                return self._ignored(trail)
            self._enqueue(source, request, admitted)
            trail.outcome = ACCEPTED
            answer: dict[str, Any] = {"eventId": safe_id(admitted.event_id), "status": ACCEPTED}
            if len(admitted.requests) > 1:
                answer["requests"] = len(admitted.requests)  # forEach: the dispatcher makes them all, each once
            return Reply(202, answer)
        except ReplayOfAnswered as first:  # a copy (a sender's retry after a lost answer): the first answer again
            trail.event_id, trail.outcome = first.event_id, REPLAYED
            return Reply(202, {"eventId": first.event_id, "status": first.status})
        except Exception as exc:  # every failure is answered through the one table
            return self._refuse(trail, exc)
        finally:
            self._settle(trail)
            self._report(trail)

    def create_request(self, source: str, request: InboundRequest, context: LambdaContext | None = None) -> Reply:
        """``POST /requests/{source}``: verify, map and send to Humanos now; 201 created, 200 existing."""
        trail = _Trail(REQUESTS, source, time.perf_counter())
        try:
            sender = self._synchronous_sender()
            admitted = self._admit_and_map(source, request, trail)
            if admitted is None:
                return self._ignored(trail)
            requests = admitted.requests
            if len(requests) > 1:
                raise MappingError(
                    f"this event makes {len(requests)} requests (rule {requests[0].rule} has forEach) and this "
                    f"route answers with one; POST it to /events/{source}, which queues it and makes them all",
                    details={"reason": "fan_out_on_sync_route"},
                )
            mapped = requests[0]
            sender.register_context(context)
            delivery = sender.send(mapped, calls_end_by=_calls_end_by(context))
            trail.request_id = delivery.request_id
            created = not (delivery.duplicate or delivery.recovered) and delivery.status == 201
            trail.outcome = CREATED if created else EXISTING
            answer = {
                "requestId": delivery.request_id,
                "eventId": safe_id(mapped.event_id),
                "subjects": delivery.response.get("subjects", []),
                "credentials": delivery.response.get("credentials", []),
            }
            if delivery.canceled_at:
                answer["canceledAt"] = delivery.canceled_at  # found canceled at Humanos: nobody is asked for a code
            return Reply(201 if created else 200, answer)
        except Exception as exc:  # every failure is answered through the one table
            return self._refuse(trail, exc)
        finally:
            self._settle(trail)
            self._report(trail)

    def _synchronous_sender(self) -> ExactlyOnce:
        """The Humanos sender, built by the first synchronous request: a container that only queues never
        imports it or builds its clients (cold start: ``make bench``, footprint)."""
        if self.sender is None and self._build_sender is not None:
            self.sender = self._build_sender()
        if self.sender is None:
            raise ConfigError("the synchronous route is not configured (no Humanos sender was built)")
        return self.sender

    def health(self) -> Reply:
        """``GET /health``: liveness. Touches neither Humanos nor Secrets Manager."""
        return Reply(200, {"status": "ok", "version": __version__})

    # -- the checks, in order ---------------------------------------------------------------------

    def _admit_and_map(self, source: str, request: InboundRequest, trail: _Trail) -> _Admitted | None:
        """Run checks 1-5; the event as admitted (mapped, or routed only), or None when the source ignores it."""
        if source not in self.mapping.sources:
            raise UnknownSourceError(
                f"unknown source {mask_text(source[:64])!r}; POST to /events/<source> with a configured source"
            )
        if request.problem is not None:
            raise request.problem
        check_size(request.body, self.max_body_bytes)
        self._authenticate(source, request, trail)
        check_json_media_type(request.headers)
        event = parse_json(request.body, max_depth=self.max_depth)
        config = self.mapping.source(source)
        headers = kept_headers(config, request)
        requests: tuple[MappedRequest, ...] = ()
        try:
            if config.unmappable == PARK and trail.route == EVENTS:
                # Where a refusal is parked anyway, a dry run answers the sender nothing new: the dispatcher maps
                # the event, once, and parks what it refuses. Here only what decides the answer: type, id, rule.
                event_type, event_id, _ = self.mapping.route(source, event, headers)
            else:
                requests = self.mapping.map_requests(source, event, headers)
                event_type, event_id = requests[0].event_type, requests[0].event_id
        except (EventIgnored, MappingError) as exc:
            # Read apart from the mapping, so that an ignored or refused event's log line says which it was.
            trail.event_type, trail.event_id = self._identity(source, event, headers)
            if isinstance(exc, MappingError):
                raise
            self._correlate(trail.event_id)
            return None
        trail.event_type, trail.event_id = event_type, event_id
        self._correlate(event_id)
        group = dedup_id = None
        if is_fifo(self.queue_url):
            group = self.mapping.message_group(source, event, headers)
            # A sender's retry within 5 minutes is one message (the idempotency table covers the rest of time).
            dedup_id = requests[0].idempotency_key if requests else bound_key(f"{source}:{event_id}")
        return _Admitted(event_id, requests, group, dedup_id, headers)

    def _authenticate(self, source: str, request: InboundRequest, trail: _Trail) -> None:
        auth = self.mapping.source(source).auth
        assert auth is not None  # refused at construction
        secrets = self.sender_secrets.secrets_for(auth.secret_key)
        if not secrets:
            raise SignatureError(
                f"the sender secret has no entry {auth.secret_key!r} for source {source!r}; add its secrets "
                "to SENDER_SECRET_ID",
                reason="secret_not_configured",
            )
        # URL-signing schemes (hubspot-v3, an hmac template with {method} or {url}) sign the request line too.
        target = RequestTarget(request.method, request.url)
        verifier = self._verifier(auth, secrets)
        delivery = verifier.verify(request.headers, request.body, now=self._clock(), target=target)
        if self.replays is not None:  # before any other work: a copy is neither parsed, queued nor sent
            trail.claim = self.replays.admit(delivery, sender=auth.secret_key, route=trail.route)

    def _verifier(self, auth: AuthConfig, secrets: tuple[str, ...]) -> SenderVerifier:
        # Built once per source settings and secret set: Standard Webhooks secrets are base64-decoded and the
        # hmac settings checked on construction.
        key = (auth, secrets)
        found = self._verifiers.get(key)
        if found is None:
            if len(self._verifiers) >= _MAX_VERIFIERS:
                self._verifiers.clear()
            tolerance = self.tolerance if auth.tolerance is None else auth.tolerance
            found = self._verifiers[key] = verifier_for(
                auth.scheme, secrets, tolerance=tolerance, settings=auth.settings
            )
        return found

    def _identity(self, source: str, event: Any, headers: dict[str, str]) -> tuple[str | None, str | None]:
        try:
            return self.mapping.event_identity(source, event, headers)
        except MappingError:
            return None, None  # an ignored event without an id is still ignored

    # -- effects ----------------------------------------------------------------------------------

    def _message(
        self, source: str, request: InboundRequest, event_id: str | None, headers: dict[str, str]
    ) -> tuple[str, dict[str, dict[str, str]]]:
        """The queue message of an event: its body (in an envelope with ``headers`` when the source keeps
        headers) and its attributes."""
        attributes = string_attributes(
            {
                ATTR_SOURCE: source,
                # Shown by `dlq list`, never a key: SQS refuses some characters a sender's id could hold.
                ATTR_EVENT_ID: safe_id(event_id),
                ATTR_RECEIVED_AT: datetime.fromtimestamp(self._clock(), UTC)
                .isoformat(timespec="milliseconds")
                .replace("+00:00", "Z"),
                ATTR_TRACE_ID: request.trace_id[:256],
            }
        )
        body = wrap_event(request.body, headers) if self.mapping.source(source).headers else request.body.decode()
        return body, attributes

    def _enqueue(self, source: str, request: InboundRequest, admitted: _Admitted) -> None:
        body, attributes = self._message(source, request, admitted.event_id, admitted.headers)
        size = len(body.encode()) + sum(
            len(name.encode()) + len(value["DataType"]) + len(value["StringValue"].encode())
            for name, value in attributes.items()
        )
        if size > MAX_MESSAGE_BYTES:
            raise PayloadTooLargeError(
                f"request body and its queue attributes are {size} bytes; a queue message holds at most "
                f"{MAX_MESSAGE_BYTES} bytes",
                details={"limit": MAX_MESSAGE_BYTES},
            )
        fifo: dict[str, str] = {}
        if admitted.group is not None and admitted.dedup_id is not None:
            # The group keeps order; the idempotency key makes a sender's retry within 5 minutes one message (and
            # the idempotency table covers the rest of time).
            fifo = {"MessageGroupId": admitted.group, "MessageDeduplicationId": admitted.dedup_id}
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body, MessageAttributes=attributes, **fifo)

    def _park(self, source: str, request: InboundRequest, trail: _Trail, refused: MappingError) -> Reply:
        """Put an event its mapping refuses in the dead-letter queue, as the dispatcher parks one: 202 ``parked``.

        The message is the one the event would have been queued as, with the reason added; ``dlq redrive`` sends
        it to the request queue once the mapping is fixed. A failure to park answers 503 (the sender retries).
        """
        from humanos_bridge.dispatch.dead_letters import Parcel, park  # only on this path: not at cold start

        assert self.dead_letter_queue_url is not None  # checked at construction
        body, attributes = self._message(
            source, request, trail.event_id, kept_headers(self.mapping.source(source), request)
        )
        message = QueuedEvent(
            # Its originalMessageId, and a FIFO dead-letter queue's deduplication id: unique per request.
            message_id=f"ingest-{request.request_id or uuid.uuid4()}",
            receipt_handle="",
            body=body,
            attributes={name: value["StringValue"] for name, value in attributes.items()},
            receive_count=0,
            sent_at_ms=int(self._clock() * 1000),
            group_id=None,
            queue_arn="",
        )
        parcel = Parcel(message, classify_failure(refused), source, trail.event_id)
        if park(self.sqs, self.dead_letter_queue_url, [parcel]):
            raise DeadLetterUnavailable(
                "the event could not be put in the dead-letter queue; the sender should retry"
            ) from refused
        outcome = http_outcome(refused)
        trail.outcome, trail.failure = PARKED, outcome
        return Reply(202, {"eventId": safe_id(trail.event_id), "status": PARKED, **outcome.body})

    def _ignored(self, trail: _Trail) -> Reply:
        trail.outcome = IGNORED
        return Reply(202, {"eventId": safe_id(trail.event_id), "status": IGNORED})

    def _refuse(self, trail: _Trail, exc: BaseException) -> Reply:
        outcome = http_outcome(exc)
        trail.failure = outcome
        trail.outcome = REJECTED if outcome.status < 500 else FAILED
        return Reply(outcome.status, outcome.body, outcome.headers)

    def _settle(self, trail: _Trail) -> None:
        if self.replays is not None and trail.claim is not None:
            succeeded = trail.outcome in _ANSWERED
            shown_id = safe_id(trail.event_id)  # what the answer showed: a replay gets the same
            self.replays.settle(trail.claim, succeeded=succeeded, event_id=shown_id, status=trail.outcome)

    def _correlate(self, event_id: str | None) -> None:
        if event_id:
            self.logger.set_correlation_id(safe_id(event_id))

    # -- logs and metrics -------------------------------------------------------------------------

    def _report(self, trail: _Trail) -> None:
        elapsed_ms = (time.perf_counter() - trail.started) * 1000
        fields: dict[str, Any] = {
            "route": trail.route,
            "outcome": trail.outcome,
            "source": safe_id(trail.source),
            "eventType": safe_id(trail.event_type),
            "eventId": safe_id(trail.event_id),
            "latencyMs": round(elapsed_ms, 2),
        }
        if trail.request_id:
            fields["requestId"] = trail.request_id
        failure = trail.failure
        if failure is not None:  # refused; or parked (answered 202), with why the mapping refused it
            fields.update(cause=failure.code, reason=failure.reason)
            if trail.outcome != PARKED:
                fields["status"] = failure.status
            level = "error" if failure.status >= 500 else "warning"
        else:
            level = "info"
        # The outcome as an argument, not in the text: Powertools tries to parse a message without arguments as
        # JSON (a raised and caught error for every plain one), and formats one with arguments as logging does.
        # The line's "message" is the same "event <outcome>".
        getattr(self.logger, level)("event %s", trail.outcome, extra=fields)
        if self.metrics is not None:
            self._emit_metrics(trail, elapsed_ms)

    def _emit_metrics(self, trail: _Trail, elapsed_ms: float) -> None:
        assert self.metrics is not None
        add = self.metrics.add_metric
        add(name="IngestLatency", unit=MetricUnit.Milliseconds, value=elapsed_ms)
        if trail.outcome in (ACCEPTED, CREATED, EXISTING):
            add(name="EventsAccepted", unit=MetricUnit.Count, value=1)
            if trail.outcome == CREATED:
                add(name="RequestsCreated", unit=MetricUnit.Count, value=1)
        elif trail.outcome == IGNORED:
            add(name="EventsIgnored", unit=MetricUnit.Count, value=1)
        elif trail.outcome == REPLAYED:
            add(name="EventsReplayed", unit=MetricUnit.Count, value=1)
        elif trail.outcome == PARKED:  # the dead-letter queue's own alarms see the message
            add(name="EventsParked", unit=MetricUnit.Count, value=1)
        elif trail.failure is not None:
            # The total (service dimension only) feeds the template's alarm; the cause goes on a
            # separate metric so its dimension stays a small fixed set of codes.
            name = "EventsRejected" if trail.outcome == REJECTED else "EventsFailed"
            add(name=name, unit=MetricUnit.Count, value=1)
            with single_metric(
                name=name,
                unit=MetricUnit.Count,
                value=1,
                namespace=self.metrics.namespace,
                default_dimensions=self.metrics.default_dimensions,
            ) as metric:
                metric.add_dimension(name="cause", value=trail.failure.code)


def refuse_unauthenticated_sources(mapping: MappingConfig) -> None:
    """ConfigError naming every source without sender authentication: the service never starts open."""
    missing = [name for name in mapping.sources if mapping.source(name).auth is None]
    if missing:
        names = ", ".join(repr(name) for name in missing)
        first = missing[0]
        raise ConfigError(
            f"source(s) {names} in {mapping.file} have no sender authentication, so the ingest function would "
            f'accept unsigned events; add "auth" (e.g. {{"scheme": "humanos-hmac"}}, or the sender\'s preset such as '
            f'{{"scheme": "stripe"}}: mappings/README.md) to sources.{first} (and each other one listed), or remove '
            "them from the mapping the ingest function loads"
        )


#: Kept back from the invocation's deadline for answering the sender and writing logs and metrics.
ANSWER_RESERVE_SECONDS = 1.0


def _calls_end_by(context: LambdaContext | None) -> float | None:
    """When the synchronous route's Humanos calls must be over: before Lambda's deadline, with room to answer."""
    if context is None:
        return None
    return time.time() + context.get_remaining_time_in_millis() / 1000 - ANSWER_RESERVE_SECONDS


class _Admitted(NamedTuple):
    """An event that passed the checks: its id; what it maps to (nothing yet when its source parks what its mapping
    refuses: the dispatcher maps it); its FIFO message group (None: a standard queue) and deduplication id; and the
    request headers its source keeps (queued with it)."""

    event_id: str
    requests: tuple[MappedRequest, ...]
    group: str | None
    dedup_id: str | None
    headers: dict[str, str]


def kept_headers(config: SourceConfig, request: InboundRequest) -> dict[str, str]:
    """The request headers the source keeps for its mapping (``headers`` in the file), by lower-case name."""
    return {name: request.headers[name] for name in config.headers if name in request.headers}
