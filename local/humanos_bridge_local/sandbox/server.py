"""The sandbox's HTTP side: a threaded HTTP/1.1 server, fault application and the call record."""

from __future__ import annotations

import bisect
import contextlib
import itertools
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from humanos_bridge.core import wire
from humanos_bridge.core.backoff import RetryPolicy
from humanos_bridge_local.sandbox import faults
from humanos_bridge_local.sandbox.admin import PREFIX as ADMIN_PREFIX
from humanos_bridge_local.sandbox.admin import AdminRoutes
from humanos_bridge_local.sandbox.api import HumanosApi, Reply, nest_error, reason_phrase
from humanos_bridge_local.sandbox.delivery import DEFAULT_POLICY, Delivery
from humanos_bridge_local.sandbox.faults import Fault, FaultPlan
from humanos_bridge_local.sandbox.webhook_crypto import WebhookSecrets
from humanos_bridge_local.sandbox.webhook_events import DEFAULT_OTP_ERROR, TEST_MESSAGE
from humanos_bridge_local.sandbox.webhooks import DEFAULT_AUTO_DECIDE_DELAY, Webhooks

#: Bodies above this size are refused with 413 (Humanos bodies are a few kilobytes).
MAX_BODY_BYTES = 1_048_576
#: How long ``start()`` waits for the serving thread.
READY_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class RecordedCall:
    """One HTTP call the sandbox received, and what it did with it."""

    method: str
    path: str
    #: The query parameters; a repeated one holds its last value.
    query: dict[str, str]
    #: Header names lower-cased. Holds the credentials as sent: this is a test double's record.
    headers: dict[str, str]
    body: bytes
    #: Status answered, or 0 when the connection was dropped without an answer (recorded just before sending).
    status: int
    #: The JSON answered (parsed), or None.
    response: Any = None
    #: The fault kind applied (``faults.STATUS``, ``faults.DROP``, ...), or None.
    fault: str | None = None
    #: Receipt order, used to keep ``Sandbox.calls`` in the order calls arrived.
    sequence: int = field(default=0, compare=False, repr=False)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() must not wait for handlers that hang on purpose
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients with connection pools expect
    # Headers and body go out in two writes; with Nagle on, loopback adds a ~40 ms delayed-ACK stall.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.open_connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: calls are observed through ``Sandbox.calls`` and ``on_call``, never logged."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def _serve(self) -> None:
        sandbox = self.server.sandbox
        url = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        body, refusal = self._read_body()
        sequence = sandbox._next_sequence()
        # Pairs, not a dict: the list filters take a parameter several times (securityLevel=A&securityLevel=B).
        pairs = parse_qsl(url.query, keep_blank_values=True)
        call = RecordedCall(
            method=self.command,
            path=url.path,
            query=dict(pairs),
            headers=headers,
            body=body,
            status=0,
            sequence=sequence,
        )
        # Faults stand for Humanos's unreliability; the sandbox's own control routes are never subject to them.
        fault = None if url.path.startswith(ADMIN_PREFIX) else sandbox._faults.pick(self.command, url.path, body)
        label = fault.kind if fault else None
        if refusal is not None:
            self._answer(call, refusal, label)
        elif fault is not None and fault.kind == faults.DROP:
            self._drop(call, label)
        elif fault is not None and fault.kind == faults.STATUS:
            assert fault.code is not None
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self._answer(call, nest_error(fault.code, reason_phrase(fault.code), extra), label)
        else:
            if fault is not None and fault.kind in (faults.LATENCY, faults.HANG) and sandbox._pause(fault.seconds):
                self._drop(call, label)  # the sandbox stopped while this call was waiting
                return
            reply = sandbox._api.handle(self.command, url.path, pairs, headers, body)
            if fault is not None and fault.kind == faults.DROP_AFTER_PROCESSING:
                self._drop(call, label)
            else:
                self._answer(call, reply, label)

    def _read_body(self) -> tuple[bytes, Reply | None]:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            return b"", nest_error(400, "chunked bodies are not supported; send Content-Length")
        text = self.headers.get("Content-Length", "0").strip() or "0"
        if not text.isdigit():
            self.close_connection = True
            return b"", nest_error(400, "Content-Length must be a number")
        length = int(text)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return b"", nest_error(413, "request entity too large")
        return self.rfile.read(length), None

    def _answer(self, call: RecordedCall, reply: Reply, fault: str | None) -> None:
        data = b"" if reply.payload is None else wire.dump_bytes(reply.payload)
        # Record before answering, so a client that got its answer always finds its call recorded.
        self.server.sandbox._record(replace(call, status=reply.status, response=reply.payload, fault=fault))
        try:
            self.send_response(reply.status)
            if data:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client went away first; nothing more to do

    def _drop(self, call: RecordedCall, fault: str | None) -> None:
        """Close the connection without a byte of answer: the client sees a connection/protocol error."""
        self.server.sandbox._record(replace(call, status=0, response=None, fault=fault))
        self.close_connection = True
        with contextlib.suppress(OSError):  # already gone
            self.connection.shutdown(socket.SHUT_RDWR)


class Sandbox:
    """A local HTTP server that behaves like Humanos (see ``/work/shared/humanos-api.md``).

    Parameters
    ----------
    api_key, signature_secret
        Credentials the sandbox accepts; generated with ``secrets.token_urlsafe`` when None.
    host, port
        Where to listen; port 0 picks a free port (read ``base_url`` after ``start()``).
    tolerance_seconds
        Accepted ``X-Timestamp`` skew, both directions.
    rate_limit_per_minute
        Request creations admitted per 60 s (429 with ``Retry-After`` beyond); None for no limit.
    seed
        Seeds the random generator behind probability faults.
    on_call
        Called with every ``RecordedCall`` as it is recorded (the CLI prints one line per call).
    delivers_codes
        Answer each created request's subjects with a ``code`` and ``link``, as Humanos does for an
        organisation that delivers the codes itself (from 2026-09-01 the ``link`` only).
    pinned_api_version
        The version pinned to the API key, which calls without an ``API-Version`` header get (a date;
        one between versions selects the latest not after it). Default: the latest version, as Humanos
        gives new keys.
    clock
        Seconds, for the rate-limit window and the rotation grace period; a test passes a fake clock
        and moves it instead of waiting. ``X-Timestamp`` is checked against the wall clock, as on Humanos.
    webhook_url
        Where webhooks go (the organisation's webhook URL); None until :meth:`set_webhook_url`.
    webhook_secrets
        The Webhook Signature Secret, Encryption Secret and Encryption Salt; generated when None.
    webhook_api_version
        The shape of the webhooks (a date; ``2026-04-14`` and later). Default: follow the API key's pinned
        version, as the Humanos notes advise keeping both equal.
    auto_decide, auto_decide_delay
        An outcome (``accept``, ``reject``, ``kyc-pass``, ``kyc-fail``, ``otp-fail``) to decide every new
        request with, ``auto_decide_delay`` seconds after its creation; None decides only on demand.
    delivery_policy
        Attempts and backoff of webhook deliveries.
    on_delivery
        Called with the ``Delivery`` after each delivery attempt (the CLI prints one line).
    """

    def __init__(
        self,
        api_key: str | None = None,
        signature_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tolerance_seconds: float = 300,
        rate_limit_per_minute: int | None = None,
        seed: int | None = None,
        *,
        on_call: Callable[[RecordedCall], None] | None = None,
        delivers_codes: bool = False,
        pinned_api_version: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        webhook_url: str | None = None,
        webhook_secrets: WebhookSecrets | None = None,
        webhook_api_version: str | None = None,
        auto_decide: str | None = None,
        auto_decide_delay: float = DEFAULT_AUTO_DECIDE_DELAY,
        delivery_policy: RetryPolicy = DEFAULT_POLICY,
        on_delivery: Callable[[Delivery], None] | None = None,
    ) -> None:
        self._api = HumanosApi(
            api_key or secrets.token_urlsafe(24),
            signature_secret or secrets.token_urlsafe(32),
            tolerance_seconds=tolerance_seconds,
            rate_limit_per_minute=rate_limit_per_minute,
            delivers_codes=delivers_codes,
            pinned_api_version=pinned_api_version,
            clock=clock,
        )
        self._webhooks = Webhooks(
            self._api,
            lambda: self.base_url,
            url=webhook_url,
            secrets=webhook_secrets,
            version=webhook_api_version,
            auto_decide=auto_decide,
            auto_decide_delay=auto_decide_delay,
            policy=delivery_policy,
            on_delivery=on_delivery,
        )
        self._api.admin = AdminRoutes(self._webhooks)
        self._api.on_created = self._webhooks.request_created
        self._faults = FaultPlan(seed)
        self._host = host
        self._port = port
        self._on_call = on_call
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._calls: list[RecordedCall] = []
        self._calls_lock = threading.Lock()
        self._sequence = itertools.count(1)
        self._pending = 0

    # ------------------------------------------------------------- lifecycle
    def start(self) -> Sandbox:
        """Bind, serve in a daemon thread and return once ready."""
        if self._server is not None:
            raise RuntimeError("sandbox already started")
        self._stopping.clear()
        server = _Server((self._host, self._port), self)
        ready = threading.Event()

        def serve() -> None:
            ready.set()  # the socket already listens; connections wait in the backlog until the loop runs
            server.serve_forever(poll_interval=0.05)

        self._thread = threading.Thread(target=serve, name="humanos-sandbox", daemon=True)
        self._server = server
        self._thread.start()
        self._webhooks.start()
        if not ready.wait(READY_TIMEOUT_SECONDS):
            self.stop()
            raise RuntimeError(f"sandbox did not start within {READY_TIMEOUT_SECONDS} s")
        return self

    def stop(self) -> None:
        """Stop serving, close every open connection and wake hanging handlers. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        self._webhooks.stop()
        server.shutdown()
        with server.connections_lock:
            connections = list(server.open_connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(READY_TIMEOUT_SECONDS)
            self._thread = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------ properties
    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("sandbox not started; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_key(self) -> str:
        return self._api.api_key

    @property
    def signature_secret(self) -> str:
        return self._api.signature_secret

    @property
    def calls(self) -> list[RecordedCall]:
        """Every call received so far, in the order received (a snapshot)."""
        with self._calls_lock:
            return list(self._calls)

    @property
    def pending(self) -> int:
        """Calls fully received but not yet answered (e.g. held by a latency or hang fault)."""
        with self._calls_lock:
            return self._pending

    @property
    def pinned_api_version(self) -> str:
        """The version calls without ``API-Version`` are served under."""
        return self._api.pinned_api_version

    @property
    def created(self) -> list[dict[str, Any]]:
        """Stored requests in creation order, canceled ones included (``canceledAt`` set).

        The sandbox's own record, not an answer: it holds ``body`` as sent, ``apiVersion`` (the version
        it was created under), ``idempotencyKey`` and ``resends`` beside what the answers show.
        """
        return self._api.created()

    # -------------------------------------------------------------- controls
    def inject(
        self,
        fault: Fault,
        *,
        times: int | None = None,
        probability: float | None = None,
        method: str | None = "POST",
        path_prefix: str = "/request",
        body_contains: bytes | None = None,
    ) -> None:
        """Apply ``fault`` to matching calls (``method`` None = any): the next ``times``, each with
        ``probability``, or every one until :meth:`clear_faults`. Rules are tried in injection order.
        ``body_contains`` narrows the rule to calls whose body holds those bytes."""
        self._faults.add(
            fault,
            times=times,
            probability=probability,
            method=method,
            path_prefix=path_prefix,
            body_contains=body_contains,
        )

    def clear_faults(self) -> None:
        self._faults.clear()

    def rotate_secret(self, new_secret: str | None = None, *, grace_seconds: float = 0.0) -> str:
        """Change the signature secret (the API key stays); the old one is accepted for ``grace_seconds``."""
        return self._api.rotate_secret(new_secret, grace_seconds)

    def set_rate_limit(self, per_minute: int | None, *, window_seconds: float = 60.0) -> None:
        """Admit at most ``per_minute`` creations per ``window_seconds`` (None = unlimited); history restarts."""
        self._api.set_rate_limit(per_minute, window_seconds)

    def forget_idempotency_keys(self) -> None:
        """Humanos no longer remembers any Idempotency-Key: a repeated key creates a new request."""
        self._api.forget_idempotency_keys()

    def pin_api_version(self, version: str) -> str:
        """Serve calls without ``API-Version`` under ``version`` from now on; returns the version it selects."""
        return self._api.pin_api_version(version)

    def reset(self) -> None:
        """Forget calls, stored requests, the people met, idempotency records, faults, decisions and finished
        deliveries; keep the credentials, rate limit, pinned version and webhook settings."""
        self._faults.clear()
        self._api.reset()
        self._webhooks.reset()
        with self._calls_lock:
            self._calls.clear()

    # -------------------------------------------------------------- webhooks
    @property
    def webhook_url(self) -> str | None:
        return self._webhooks.url

    def set_webhook_url(self, url: str | None) -> None:
        """Send webhooks to ``url`` from now on (None: nowhere; a decision is then refused)."""
        self._webhooks.set_url(url)

    @property
    def webhook_secrets(self) -> WebhookSecrets:
        return self._webhooks.secrets

    def set_webhook_secrets(self, secrets: WebhookSecrets) -> None:
        """Seal new webhooks and sign every next attempt with ``secrets`` (a rotation in the dashboard)."""
        self._webhooks.set_secrets(secrets)

    @property
    def webhook_api_version(self) -> str:
        """The version webhooks are shaped in."""
        return self._webhooks.version

    def pin_webhook_api_version(self, version: str | None) -> str:
        """Shape webhooks in ``version`` (None: follow the API key's); returns the version it selects."""
        return self._webhooks.set_version(version)

    @property
    def auto_decide(self) -> tuple[str, float] | None:
        """(outcome, delay in seconds) every new request is decided with, or None."""
        return self._webhooks.auto_decide

    def set_auto_decide(self, outcome: str | None, *, delay: float = DEFAULT_AUTO_DECIDE_DELAY) -> None:
        """Decide every request created from now on with ``outcome`` after ``delay`` seconds (None: stop)."""
        self._webhooks.set_auto_decide(outcome, delay)

    def decide(self, request_id: str, outcome: str, *, otp_error: str = DEFAULT_OTP_ERROR) -> list[Delivery]:
        """Decide a stored request and send its webhooks in the background; returns their (pending) records.

        Raises ``decisions.DecisionError`` (with the HTTP ``status`` the admin route answers) when the request
        is unknown, canceled, already decided that way, or no webhook URL is set.
        """
        return self._webhooks.decide(request_id, outcome, otp_error=otp_error)

    def send_test_webhook(self, message: str = TEST_MESSAGE) -> Delivery:
        """Send a ``test`` event, as the dashboard's test button does."""
        return self._webhooks.send_test(message)

    def redeliver(self, delivery_id: int) -> Delivery:
        """Send a webhook again, the same sealed bytes signed afresh: how a Humanos retry reaches a receiver."""
        return self._webhooks.redeliver(delivery_id)

    @property
    def deliveries(self) -> list[Delivery]:
        """Every webhook delivery so far, in the order sent (a snapshot)."""
        return self._webhooks.courier.deliveries

    def wait_for_deliveries(self, deliveries: list[Delivery] | None = None, *, timeout: float = 10.0) -> list[Delivery]:
        """``deliveries`` (default: all so far) once each is delivered or has failed for good, or as they stand
        after ``timeout`` seconds."""
        ids = None if deliveries is None else [d.id for d in deliveries]
        return self._webhooks.courier.wait(ids, timeout=timeout)

    # ------------------------------------------------------- handler helpers
    def _next_sequence(self) -> int:
        with self._calls_lock:
            self._pending += 1
            return next(self._sequence)

    def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` unless the sandbox stops first; True when it stopped."""
        return self._stopping.wait(seconds)

    def _record(self, call: RecordedCall) -> None:
        with self._calls_lock:
            keys = [c.sequence for c in self._calls]
            self._calls.insert(bisect.bisect(keys, call.sequence), call)
            self._pending -= 1
        if self._on_call is not None:
            self._on_call(call)
