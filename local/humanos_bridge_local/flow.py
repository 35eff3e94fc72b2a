"""One line per business event as it flows through the local stack, taken from the functions' own logs.

Every function already writes one structured JSON line per event (``"event accepted"``, ``"event
created"``, ...) with its source, type, id, outcome and Humanos request id, and the receiver one per webhook
(``"webhook published"``, ``"webhook replayed"``, ``"webhook rejected"``, ``"webhook failed"``) with its
detail-type, Humanos request id and internalId. ``FlowRecorder`` reads
the lines the packaged functions print (what CloudWatch Logs would receive), turns those into
``FlowEvent`` values (kept for ``demo`` and ``status``) and hands each to a printer. So what the local
stack shows is what the functions log in AWS, not a second account of it. Every value is kept and printed
in its safe form (``masking.safe_id``): masked, bounded, and with no character a terminal would obey.
"""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from humanos_bridge.core.masking import safe_id, safe_text

INGEST, DISPATCH, WEBHOOK = "ingest", "dispatch", "webhook"
#: The receiver's route field: its lines are webhooks, not business events.
WEBHOOK_ROUTE = "webhooks"
#: What follows a published webhook's line: where it went.
PUBLISHED_TO = "-> EventBridge"
#: Events kept in memory (the demo's summary and ``status``'s recent outcomes).
KEEP_EVENTS = 1000
#: The source column's width when the sources are not known, and its bounds (names may have 64 characters).
SOURCE_WIDTH = 8
MAX_SOURCE_WIDTH = 24
#: The type column: a business event's type, or a webhook's kind (``credential.rejected``, 19 characters).
TYPE_WIDTH = 20
#: What Python prints for a Powertools warning that no metric was published (an invocation that added none):
#: the functions silence it themselves; a build or a function that does not must not put it in the table.
_NO_METRICS_WARNING = "UserWarning: No application metrics to publish"


@dataclass(frozen=True)
class FlowEvent:
    """What happened to one event at one step."""

    at: float
    stage: str
    outcome: str
    source: str | None = None
    event_type: str | None = None
    event_id: str | None = None
    request_id: str | None = None
    #: Milliseconds: the ingest call's own time, or for the dispatcher the time since the event was accepted.
    latency_ms: float | None = None
    #: HTTP status answered (ingest) or Humanos's status (dispatcher failures).
    status: int | None = None
    code: str | None = None
    reason: str | None = None
    route: str | None = None
    #: A ``forEach`` event's requests, counted (its log line lists their ids): shown where one request id goes.
    requests: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def flow_event(entry: Mapping[str, Any], accepted_at: dict[str, float], now: float) -> FlowEvent | None:
    """The FlowEvent a function's log entry describes, or None for other entries."""
    outcome = entry.get("outcome")
    if not isinstance(outcome, str):
        return None
    if entry.get("route") == WEBHOOK_ROUTE and str(entry.get("message", "")).startswith("webhook "):
        return webhook_event(entry, outcome, now)
    if not str(entry.get("message", "")).startswith("event "):
        return None
    stage = INGEST if entry.get("route") else DISPATCH
    event_id = _text(entry.get("eventId"))
    if stage == INGEST:
        latency = entry.get("latencyMs")
        if outcome == "accepted" and event_id:
            accepted_at[str(event_id)] = now
    else:
        since = accepted_at.get(str(event_id)) if event_id else None
        latency = (now - since) * 1000 if since is not None else entry.get("humanosMs")
    status = entry.get("status")
    reason = entry.get("reason")
    requests = entry.get("requests")
    return FlowEvent(
        at=now,
        stage=stage,
        outcome=safe_id(outcome),
        source=_text(entry.get("source")),
        event_type=_text(entry.get("eventType")),
        event_id=event_id,
        request_id=_text(entry.get("requestId"), mask=False),
        latency_ms=float(latency) if isinstance(latency, int | float) else None,
        status=status if isinstance(status, int) else None,
        code=_text(entry.get("cause") or entry.get("errorCode")),
        reason=None if reason is None else safe_text(str(reason)),
        route=_text(entry.get("route")),
        requests=requests if isinstance(requests, int) and not isinstance(requests, bool) else None,
    )


def webhook_event(entry: Mapping[str, Any], outcome: str, now: float) -> FlowEvent:
    """A receiver's line: the webhook's kind (``credential.accepted``, from its detail-type), the business event
    it answers when the receiver recovered it, the Humanos request id, and for a refusal its status and reason."""
    detail_type = entry.get("detailType")
    kind = str(detail_type).lower().replace(" ", ".") if isinstance(detail_type, str) else entry.get("eventType")
    source, event_id = _answered(entry)
    status = entry.get("status")
    latency = entry.get("latencyMs")
    reason = entry.get("reason")
    return FlowEvent(
        at=now,
        stage=WEBHOOK,
        outcome=safe_id(outcome),
        source=source,
        event_type=_text(kind),
        event_id=event_id,
        request_id=_text(entry.get("requestId"), mask=False),
        latency_ms=float(latency) if isinstance(latency, int | float) else None,
        status=status if isinstance(status, int) else None,
        code=_text(entry.get("cause")),
        reason=None if reason is None else safe_text(str(reason)),
        route=_text(entry.get("route")),
    )


def _answered(entry: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The business source and event id a webhook answers, as the receiver logged them.

    When it recovers the business event from the internalId (``<source>:<event id>:<rule>``), the receiver makes
    that event's id its correlation id, so the webhook's line joins the event's ingest and dispatch lines.
    Otherwise the correlation id is API Gateway's request id, which the internalId does not hold.
    """
    internal_id, correlation = entry.get("internalId"), entry.get("correlation_id")
    if not isinstance(internal_id, str) or not isinstance(correlation, str) or not correlation:
        return None, None
    source, _, rest = internal_id.partition(":")
    if source and rest.startswith(f"{correlation}:"):
        return _text(source), _text(correlation)
    return None, None


def _text(value: Any, *, mask: bool = True) -> str | None:
    """A logged value as it is kept (and written to ``outcomes.json``): the functions log safe forms, but a
    function of another version, or any other line that looks like theirs, may not."""
    if value is None:
        return None
    return safe_id(str(value), mask=mask)


def source_width(sources: Iterable[str]) -> int:
    """The source column's width for these source names: the longest, within ``SOURCE_WIDTH..MAX_SOURCE_WIDTH``."""
    return min(max([SOURCE_WIDTH, *(len(name) for name in sources)]), MAX_SOURCE_WIDTH)


def format_event(event: FlowEvent, *, source_width: int = SOURCE_WIDTH) -> str:
    """``12:00:01.250  dispatch  crm  contact.created  evt_1  created  req_9  41 ms``; event fields masked."""
    clock = time.strftime("%H:%M:%S", time.localtime(event.at)) + f".{int(event.at * 1000) % 1000:03d}"
    latency = f"{event.latency_ms:.0f} ms" if event.latency_ms is not None else "-"
    outcome = safe_id(event.outcome)
    if event.status is not None and event.stage in (INGEST, WEBHOOK) and outcome in ("rejected", "failed"):
        outcome = f"{outcome} {event.status}"
    parts = [
        clock,
        f"{event.stage:<8}",
        f"{_shown(event.source, source_width):<{source_width}}",
        f"{_shown(event.event_type, TYPE_WIDTH):<{TYPE_WIDTH}}",
        f"{_shown(event.event_id, 22):<22}",
        f"{outcome:<12}",
        f"{_shown(event.request_id or _counted(event.requests), 26, mask=False):<26}",
        f"{latency:>8}",
    ]
    line = "  ".join(parts)
    if event.stage == WEBHOOK and outcome == "published":
        line += f"  {PUBLISHED_TO}"
    elif event.stage == WEBHOOK and outcome == "replayed":
        line += "  nothing published: on the bus already"
    if event.code or event.reason:
        line += f"  {safe_id(event.code or '')}: {safe_text(event.reason or '')}"
    return line


def _counted(requests: int | None) -> str | None:
    return f"{requests} requests" if requests else None


def _shown(value: str | None, width: int, *, mask: bool = True) -> str:
    """Safe (event values may quote a contact; Humanos's ids do not) and cut to the column's width.

    Again here: ``status`` prints events read back from ``outcomes.json``, a file anyone may have edited.
    """
    if not value:
        return "-"
    text = safe_id(str(value), mask=mask)
    return text if len(text) <= width else text[: width - 1] + "…"


def header(*, source_width: int = SOURCE_WIDTH) -> str:
    """The column titles above ``format_event``'s rows of the same ``source_width``."""
    return "  ".join(
        [
            "time        ",
            f"{'step':<8}",
            f"{'source':<{source_width}}",
            f"{'type':<{TYPE_WIDTH}}",
            f"{'event id':<22}",
            f"{'outcome':<12}",
            f"{'Humanos request':<26}",
            f"{'latency':>8}",
        ]
    )


HEADER = header()


class FlowRecorder:
    """Reads the functions' log lines; collects FlowEvents and passes each to ``on_event``.

    Lines that are not per-event entries go to ``on_other``, masked, when they matter to a developer:
    log entries at WARNING or above (a Humanos retry, a failed visibility change), and what the
    platform or the runtime says about failures (an init error, a timeout, an unhandled exception).
    Metric lines (EMF), the per-invocation START/END/REPORT lines and Powertools' warning that an
    invocation published no metric (nothing to act on: a health check publishes none) are left out.
    """

    def __init__(
        self,
        on_event: Callable[[FlowEvent], None] | None = None,
        on_other: Callable[[str], None] | None = None,
    ) -> None:
        self._on_event = on_event
        self._on_other = on_other
        self._accepted_at: dict[str, float] = {}
        self._events: collections.deque[FlowEvent] = collections.deque(maxlen=KEEP_EVENTS)
        self._changed = threading.Condition()
        #: Functions whose last line was a silenced warning: Python follows it with the warning's source line.
        self._warned: set[str] = set()

    def feed(self, function: str, line: str) -> None:
        """One line a function (or Lambda, about it) wrote to its log stream."""
        after_warning = function in self._warned
        self._warned.discard(function)
        entry = _json_object(line)
        if entry is None:
            self._other(function, line, after_warning=after_warning)
            return
        if "_aws" in entry:
            return  # an EMF metric line: CloudWatch turns it into metrics
        event = flow_event(entry, self._accepted_at, time.time())
        if event is None:
            if str(entry.get("level", "")).upper() in ("WARNING", "ERROR", "CRITICAL"):
                level, message = safe_id(str(entry["level"]).lower()), safe_text(str(entry.get("message")))
                self._say(f"{function}: {level}: {message}")
            return
        with self._changed:
            self._events.append(event)
            self._changed.notify_all()
        if self._on_event is not None:
            self._on_event(event)

    def _other(self, function: str, line: str, *, after_warning: bool = False) -> None:
        if _NO_METRICS_WARNING in line:
            self._warned.add(function)
            return
        if after_warning and line.startswith(" "):
            return  # the source line Python prints under a warning: ``  warnings.warn(``
        if not line.strip() or line.startswith(("START RequestId", "END RequestId")):
            return
        if line.startswith("REPORT RequestId"):
            if "Init Duration:" in line:  # the first invocation of a new execution environment
                init = _output_line(line.split("Init Duration:", 1)[1].strip())
                self._say(f"{function}: cold start, init {init}")
            return
        self._say(f"{function}: {_output_line(line)}")

    def _say(self, text: str) -> None:
        """``text`` is already safe: every value in it went through ``safe_id`` or ``safe_text``."""
        if self._on_other is not None:
            self._on_other(text)

    @property
    def events(self) -> list[FlowEvent]:
        with self._changed:
            return list(self._events)

    def wait_for(self, predicate: Callable[[list[FlowEvent]], bool], timeout: float) -> bool:
        """Wait until ``predicate(events)`` holds; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self._events)):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True


def _output_line(line: str) -> str:
    """A line the runtime or Lambda printed, safe to show: the runtime writes an error's traceback as one
    line with frames separated by carriage returns (shown one per line), and Lambda separates the fields of
    its report lines with tabs (kept); every other character safe_text would escape is escaped."""
    frames = ("\t".join(safe_text(cell) for cell in frame.split("\t")) for frame in line.split("\r"))
    return "\n    ".join(frames)


def _json_object(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
