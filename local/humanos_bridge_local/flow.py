"""One line per business event as it flows through the local stack, taken from the functions' own logs.

Both functions already write one structured record per event (``"event accepted"``, ``"event
created"``, ...) with its source, type, id, outcome and Humanos request id. ``FlowRecorder`` is a
``logging.Handler`` on the Powertools logger they share: it turns those records into ``FlowEvent``
values (kept for ``demo`` and ``status``) and hands each to a printer. So what the local stack shows
is what the functions log in AWS, not a second account of it. Every printed value is masked.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from humanos_bridge.masking import mask_text

INGEST, DISPATCH = "ingest", "dispatch"
#: Events kept in memory (the demo's summary and ``status``'s recent outcomes).
KEEP_EVENTS = 1000


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

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def flow_event(record: logging.LogRecord, accepted_at: dict[str, float]) -> FlowEvent | None:
    """The FlowEvent a function's log record describes, or None for other records."""
    outcome = getattr(record, "outcome", None)
    if not isinstance(outcome, str) or not str(record.msg).startswith("event "):
        return None
    stage = INGEST if getattr(record, "route", None) else DISPATCH
    event_id = getattr(record, "eventId", None)
    now = record.created
    if stage == INGEST:
        latency = getattr(record, "latencyMs", None)
        if outcome == "accepted" and event_id:
            accepted_at[str(event_id)] = now
    else:
        since = accepted_at.get(str(event_id)) if event_id else None
        latency = (now - since) * 1000 if since is not None else getattr(record, "humanosMs", None)
    return FlowEvent(
        at=now,
        stage=stage,
        outcome=outcome,
        source=getattr(record, "source", None),
        event_type=getattr(record, "eventType", None),
        event_id=event_id,
        request_id=getattr(record, "requestId", None),
        latency_ms=float(latency) if isinstance(latency, int | float) else None,
        status=getattr(record, "status", None),
        code=getattr(record, "cause", None) or getattr(record, "errorCode", None),
        reason=getattr(record, "reason", None),
        route=getattr(record, "route", None),
    )


def format_event(event: FlowEvent) -> str:
    """``12:00:01.250  dispatch  crm  contact.created  evt_1  created  req_9  41 ms``; event fields masked."""
    clock = time.strftime("%H:%M:%S", time.localtime(event.at)) + f".{int(event.at * 1000) % 1000:03d}"
    latency = f"{event.latency_ms:.0f} ms" if event.latency_ms is not None else "-"
    outcome = event.outcome
    if event.status is not None and event.stage == INGEST and outcome in ("rejected", "failed"):
        outcome = f"{outcome} {event.status}"
    parts = [
        clock,
        f"{event.stage:<8}",
        f"{_shown(event.source, 6):<6}",
        f"{_shown(event.event_type, 18):<18}",
        f"{_shown(event.event_id, 22):<22}",
        f"{outcome:<12}",
        f"{_shown(event.request_id, 26, mask=False):<26}",
        f"{latency:>8}",
    ]
    line = "  ".join(parts)
    if event.code or event.reason:
        line += f"  {event.code or ''}: {mask_text(event.reason or '')}"
    return line


def _shown(value: str | None, width: int, *, mask: bool = True) -> str:
    """Masked (event values may quote a contact; Humanos's ids do not) and cut to the column's width."""
    if not value:
        return "-"
    text = mask_text(str(value)) if mask else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


HEADER = "  ".join(
    [
        "time        ",
        f"{'step':<8}",
        f"{'source':<6}",
        f"{'type':<18}",
        f"{'event id':<22}",
        f"{'outcome':<12}",
        f"{'Humanos request':<26}",
        f"{'latency':>8}",
    ]
)


class FlowRecorder(logging.Handler):
    """Collects FlowEvents from the functions' log records and passes each to ``on_event``.

    Records that are not per-event lines are passed to ``on_other`` when at WARNING or above
    (a Humanos retry, a failed visibility change), masked.
    """

    def __init__(
        self,
        on_event: Callable[[FlowEvent], None] | None = None,
        on_other: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(level=logging.INFO)
        self._on_event = on_event
        self._on_other = on_other
        self._accepted_at: dict[str, float] = {}
        self._events: collections.deque[FlowEvent] = collections.deque(maxlen=KEEP_EVENTS)
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = flow_event(record, self._accepted_at)
            if event is None:
                if record.levelno >= logging.WARNING and self._on_other is not None:
                    self._on_other(mask_text(f"{record.levelname.lower()}: {record.getMessage()}"))
                return
            with self._changed:
                self._events.append(event)
                self._changed.notify_all()
            if self._on_event is not None:
                self._on_event(event)
        except Exception:  # a printing problem must never fail an invocation
            self.handleError(record)

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
