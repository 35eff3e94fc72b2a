"""Delivering webhooks: POST to the organisation's URL on a background thread, retrying until a 2xx.

Humanos retries failed deliveries on a schedule it does not document; the sandbox retries any non-2xx answer
and any connection failure, with exponential backoff and full jitter, for a bounded number of attempts
(``DEFAULT_POLICY``). Each attempt is signed again with a fresh ``x-timestamp`` over the same sealed body, so
a retry is the same webhook and never a stale one. Deliveries run one after another on one thread, in the
order they were sent, so the sandbox's HTTP answers never wait for them.

Every delivery is recorded (``Delivery``): event type, request id, attempts, the status each attempt got and
its final state. Attempts are logged with the delivery's id, event type, request id and status only: never
the URL's query, the body, a contact or a secret.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import urllib3

from humanos_bridge.core.backoff import RetryPolicy
from humanos_bridge.core.masking import safe_id
from humanos_bridge_local.sandbox.webhook_crypto import signed_headers

#: Five attempts, waits drawn up to 0.5, 1, 2 and 4 s: a receiver restarting within seconds still gets it.
DEFAULT_POLICY = RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=8.0, deadline=60.0)
CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 10.0
#: How long ``stop()`` waits for the delivery thread to notice.
STOP_TIMEOUT_SECONDS = 5.0
USER_AGENT = "humanos-sandbox-webhooks/1"

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
#: ``Delivery.statuses`` holds this for an attempt that got no HTTP answer (refused, reset, timed out).
NO_ANSWER = 0

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One webhook sent (or being sent) to the organisation's URL, and what became of it."""

    id: int
    event_type: str
    request_id: str
    #: The decision that caused it (``accept``, ..., ``test``), or ``redeliver`` for a copy sent again.
    outcome: str
    url: str
    #: The status each attempt got, in order; ``NO_ANSWER`` when the attempt got none.
    statuses: tuple[int, ...] = ()
    state: str = PENDING
    #: Why the last attempt failed without a status (the exception's class), or why delivery stopped.
    error: str | None = None
    #: The plaintext event. Holds contacts: this is a test double's record, never logged or served.
    event: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: The sealed envelope every attempt sends.
    body: bytes = field(default=b"", repr=False, compare=False)

    @property
    def attempts(self) -> int:
        return len(self.statuses)

    @property
    def status(self) -> int | None:
        """The last attempt's status (None before the first attempt or when it got no answer)."""
        return self.statuses[-1] if self.statuses and self.statuses[-1] != NO_ANSWER else None

    @property
    def finished(self) -> bool:
        return self.state != PENDING

    def summary(self) -> dict[str, Any]:
        """What may be shown of it (the admin route, the CLI): no event, body or contact."""
        return {
            "id": self.id,
            "eventType": self.event_type,
            "requestId": self.request_id,
            "outcome": self.outcome,
            "url": _without_query(self.url),
            "attempts": self.attempts,
            "statuses": list(self.statuses),
            "status": self.status,
            "state": self.state,
            "error": self.error,
        }


class Courier:
    """Sends webhooks in order on one background thread and records each delivery.

    Parameters
    ----------
    signature_secret
        Called at every attempt for the Webhook Signature Secret to sign with (Humanos signs when it sends, so
        a secret rotated between attempts signs the next one).
    policy
        Attempts and backoff (``max_attempts``, ``backoff_for``; ``deadline`` bounds one delivery's total time).
    pool
        The urllib3 pool to post with; a new one when None.
    on_attempt
        Called with the delivery after each attempt (the CLI prints a line).
    rng
        The jitter's random source.
    """

    def __init__(
        self,
        signature_secret: Callable[[], str],
        *,
        policy: RetryPolicy = DEFAULT_POLICY,
        pool: urllib3.PoolManager | None = None,
        on_attempt: Callable[[Delivery], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._signature_secret = signature_secret
        self.policy = policy
        self._pool = pool or urllib3.PoolManager(headers={"User-Agent": USER_AGENT})
        self._on_attempt = on_attempt
        self._rng = rng
        self._ids = itertools.count(1)
        self._deliveries: dict[int, Delivery] = {}
        self._changed = threading.Condition()
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="humanos-sandbox-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current attempt; deliveries not finished are marked failed. Safe to call twice."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._queue.put(None)
        thread.join(STOP_TIMEOUT_SECONDS)
        with self._changed:
            for delivery in self._deliveries.values():
                if not delivery.finished:
                    self._deliveries[delivery.id] = replace(delivery, state=FAILED, error="sandbox stopped")
            self._changed.notify_all()

    # ----------------------------------------------------------------- sending
    def send(self, event: dict[str, Any], body: bytes, *, url: str, outcome: str) -> Delivery:
        """Queue one sealed webhook for ``url``; returns its record (pending)."""
        with self._changed:
            delivery = Delivery(
                id=next(self._ids),
                event_type=str(event.get("eventType")),
                request_id=str(event.get("requestId")),
                outcome=outcome,
                url=url,
                event=event,
                body=body,
            )
            self._deliveries[delivery.id] = delivery
        self._queue.put(delivery.id)
        return delivery

    def resend(self, delivery_id: int) -> Delivery:
        """Send a delivered webhook again, byte for byte (re-signed): what a Humanos retry looks like to a receiver."""
        original = self.get(delivery_id)
        if original is None:
            raise KeyError(delivery_id)
        return self.send(original.event, original.body, url=original.url, outcome="redeliver")

    # ----------------------------------------------------------------- the record
    def get(self, delivery_id: int) -> Delivery | None:
        with self._changed:
            return self._deliveries.get(delivery_id)

    @property
    def deliveries(self) -> list[Delivery]:
        """Every delivery so far, in the order sent (a snapshot)."""
        with self._changed:
            return [self._deliveries[key] for key in sorted(self._deliveries)]

    def wait(self, ids: Iterable[int] | None = None, *, timeout: float) -> list[Delivery]:
        """The deliveries ``ids`` (default: all so far) once finished, or as they stand when ``timeout`` passes."""
        with self._changed:
            wanted = sorted(self._deliveries) if ids is None else list(ids)
            self._changed.wait_for(
                lambda: all(key not in self._deliveries or self._deliveries[key].finished for key in wanted), timeout
            )
            return [self._deliveries[key] for key in wanted if key in self._deliveries]

    def forget(self) -> None:
        """Forget every finished delivery (``Sandbox.reset``); one still under way stays."""
        with self._changed:
            self._deliveries = {key: d for key, d in self._deliveries.items() if not d.finished}

    # ----------------------------------------------------------------- the thread
    def _run(self) -> None:
        while not self._stopping.is_set():
            delivery_id = self._queue.get()
            if delivery_id is None:
                return
            delivery = self.get(delivery_id)
            if delivery is not None and not delivery.finished:
                self._deliver(delivery)

    def _deliver(self, delivery: Delivery) -> None:
        start = time.monotonic()
        for attempt in range(1, self.policy.max_attempts + 1):
            status, error = self._post(delivery)
            delivered = 200 <= status <= 299
            last = attempt == self.policy.max_attempts
            wait = 0.0 if delivered or last else self.policy.backoff_for(attempt, rng=self._rng)
            if not delivered and time.monotonic() - start + wait > self.policy.deadline:
                last = True
            state = DELIVERED if delivered else FAILED if last else PENDING
            delivery = self._update(delivery, status, error, state)
            _log.info(
                "webhook %d (%s, request %s): attempt %d of %d got %s%s",
                delivery.id,
                safe_id(delivery.event_type),
                safe_id(delivery.request_id, mask=False),
                attempt,
                self.policy.max_attempts,
                status or f"no answer ({error})",
                f"; retrying in {wait:.2f} s" if state == PENDING else f"; {state}",
            )
            if state != PENDING or self._stopping.wait(wait):
                return

    def _post(self, delivery: Delivery) -> tuple[int, str | None]:
        """One attempt: the status answered, or ``NO_ANSWER`` and the failure's class name."""
        headers = signed_headers(delivery.body, self._signature_secret())
        timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS)
        try:
            # retries=False: this loop owns retrying, and a redirect is a failed delivery, as for any webhook.
            response = self._pool.request(
                "POST",
                delivery.url,
                body=delivery.body,
                headers=headers,
                timeout=timeout,
                retries=False,
                redirect=False,
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return NO_ANSWER, type(exc).__name__
        return response.status, None

    def _update(self, delivery: Delivery, status: int, error: str | None, state: str) -> Delivery:
        with self._changed:
            updated = replace(delivery, statuses=(*delivery.statuses, status), state=state, error=error)
            self._deliveries[delivery.id] = updated
            self._changed.notify_all()
        if self._on_attempt is not None:
            with contextlib.suppress(Exception):  # a printing callback must not stop deliveries
                self._on_attempt(updated)
        return updated


def _without_query(url: str) -> str:
    """A URL as it may be shown: a query or fragment can hold a token."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]  # and user:password@ is a credential
    return f"{parts.scheme}://{host}{parts.path}"
