"""The organisation's webhook settings in the sandbox, and the decisions that make it send webhooks.

Holds what the Humanos dashboard holds (the webhook URL, its three secrets, the webhook API version) and turns
a decision on a stored request into sealed webhooks for the courier: ``decide`` on demand (the admin route,
``humanos-bridge sandbox decide``, tests), or automatically a short while after each request is created
(``auto_decide``, for the local stack and the demo).

A credential or an identity is decided once per request (a second ``accept`` is refused with 409: Humanos
seals a credential once); ``otp-fail`` may happen again. To send the very same webhook again, as Humanos does
when it retries, use ``redeliver``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from humanos_bridge.core.backoff import RetryPolicy
from humanos_bridge.core.errors import ConfigError
from humanos_bridge.core.masking import safe_id
from humanos_bridge_local.sandbox import decisions, validation, webhook_events
from humanos_bridge_local.sandbox.api import HumanosApi, object_id
from humanos_bridge_local.sandbox.decisions import DecisionError
from humanos_bridge_local.sandbox.delivery import DEFAULT_POLICY, Courier, Delivery
from humanos_bridge_local.sandbox.webhook_crypto import WebhookSecrets, seal_event

#: Seconds between a request's creation and its automatic decision: long enough for the creator to have
#: recorded the answer first, as a person takes at least that long to open the message.
DEFAULT_AUTO_DECIDE_DELAY = 1.0
NO_URL = "no webhook URL is configured; start the sandbox with --webhook-url (or call set_webhook_url)"

_log = logging.getLogger(__name__)


def check_url(url: str) -> str:
    """An absolute http(s) URL, or ConfigError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("the webhook URL must be an absolute http:// or https:// URL")
    return url


class Webhooks:
    """Webhook settings, decisions and deliveries of one sandbox. Every public method is thread-safe.

    Parameters
    ----------
    api
        The sandbox's stored requests.
    base_url
        The sandbox's own base URL (for ``otp.resendEndpoint``), read when a decision is made.
    url
        Where webhooks go; None until ``set_url``.
    secrets
        The three webhook secrets; generated when None.
    version
        The webhook API version; None follows the version pinned to the API key, as Humanos pins the
        webhook version at the first delivery and the notes advise keeping both equal.
    auto_decide, auto_decide_delay
        An outcome to decide every new request with, that many seconds after its creation; None for none.
    policy, on_delivery
        The courier's retry policy, and a callback after each delivery attempt.
    """

    def __init__(
        self,
        api: HumanosApi,
        base_url: Callable[[], str],
        *,
        url: str | None = None,
        secrets: WebhookSecrets | None = None,
        version: str | None = None,
        auto_decide: str | None = None,
        auto_decide_delay: float = DEFAULT_AUTO_DECIDE_DELAY,
        policy: RetryPolicy = DEFAULT_POLICY,
        on_delivery: Callable[[Delivery], None] | None = None,
    ) -> None:
        self._api = api
        self._base_url = base_url
        self._lock = threading.RLock()  # decide() reads the version while holding it
        self._url = None if url is None else check_url(url)
        self._secrets = secrets or WebhookSecrets.generate()
        self._version = None if version is None else self._resolve(version)
        self._auto: tuple[str, float] | None = None
        self.set_auto_decide(auto_decide, auto_decide_delay)
        self._decided: dict[str, set[str]] = {}  # request id -> event types decided for good
        self._timers: set[threading.Timer] = set()
        self.courier = Courier(lambda: self.secrets.signature_secret, policy=policy, on_attempt=on_delivery)

    # ----------------------------------------------------------------- settings
    @property
    def url(self) -> str | None:
        with self._lock:
            return self._url

    def set_url(self, url: str | None) -> None:
        checked = None if url is None else check_url(url)
        with self._lock:
            self._url = checked

    @property
    def secrets(self) -> WebhookSecrets:
        with self._lock:
            return self._secrets

    def set_secrets(self, secrets: WebhookSecrets) -> None:
        """Use new secrets from now on: the next attempt, even of a queued webhook, is signed with them."""
        with self._lock:
            self._secrets = secrets

    @property
    def version(self) -> str:
        """The webhook API version events are shaped in."""
        with self._lock:
            pinned = self._version
        return pinned or self._resolve(self._api.pinned_api_version)

    def set_version(self, version: str | None) -> str:
        """Pin the webhook API version (None: follow the API key's); returns the shape it selects."""
        resolved = None if version is None else self._resolve(version)
        with self._lock:
            self._version = resolved
        return self.version

    @property
    def auto_decide(self) -> tuple[str, float] | None:
        """(outcome, delay in seconds) applied to every new request, or None."""
        with self._lock:
            return self._auto

    def set_auto_decide(self, outcome: str | None, delay: float = DEFAULT_AUTO_DECIDE_DELAY) -> None:
        if outcome is not None:
            decisions.check_outcome(outcome)
        if delay < 0:
            raise ConfigError(f"the auto-decide delay must not be negative, got {delay}")
        with self._lock:
            self._auto = None if outcome is None else (outcome, delay)

    # ----------------------------------------------------------------- sending
    def decide(
        self, request_id: str, outcome: str, *, otp_error: str = webhook_events.DEFAULT_OTP_ERROR
    ) -> list[Delivery]:
        """Decide a stored request and queue its webhooks (DecisionError when it cannot be decided so)."""
        decisions.check_outcome(outcome)
        if not validation.is_object_id(request_id):
            raise DecisionError(400, "requestId must be a mongodb id")
        record = self._api.record(request_id)
        if record is None:
            raise DecisionError(404, "Request not found")
        kind = decisions.EVENT_TYPE_OF[outcome]
        with self._lock:
            url, secrets = self._url, self._secrets
            if url is None:
                raise DecisionError(409, NO_URL)
            if kind in decisions.FINAL_KINDS and kind in self._decided.get(request_id, set()):
                raise DecisionError(409, f"Request's {kind} is already decided")
            events = decisions.events_for(record, outcome, self.version, base_url=self._base_url(), otp_error=otp_error)
            if kind in decisions.FINAL_KINDS:
                self._decided.setdefault(request_id, set()).add(kind)
        return [self.courier.send(event, seal_event(event, secrets), url=url, outcome=outcome) for event in events]

    def send_test(self, message: str = webhook_events.TEST_MESSAGE) -> Delivery:
        """Send a ``test`` event, as the dashboard's test button does."""
        with self._lock:
            url, secrets = self._url, self._secrets
        if url is None:
            raise DecisionError(409, NO_URL)
        at = webhook_events.iso(datetime.now(UTC))
        event = webhook_events.dashboard_test_event(object_id(), self.version, at, message)
        return self.courier.send(event, seal_event(event, secrets), url=url, outcome=webhook_events.TEST)

    def redeliver(self, delivery_id: int) -> Delivery:
        """Send delivery ``delivery_id``'s webhook again, the same bytes signed afresh (a Humanos retry)."""
        try:
            return self.courier.resend(delivery_id)
        except KeyError:
            raise DecisionError(404, "Delivery not found") from None

    # ----------------------------------------------------------------- automatic decisions
    def request_created(self, request_id: str) -> None:
        """Called by the API after each creation (not a replay): schedule its automatic decision, if any."""
        auto = self.auto_decide
        if auto is None:
            return
        outcome, delay = auto
        timer = threading.Timer(delay, self._decide_later, args=(request_id, outcome))
        timer.daemon = True
        with self._lock:
            self._timers.add(timer)
        timer.start()

    def _decide_later(self, request_id: str, outcome: str) -> None:
        with self._lock:
            self._timers = {t for t in self._timers if t is not threading.current_thread()}
        try:
            self.decide(request_id, outcome)
        except DecisionError as exc:
            # The messages name no contact; the request id is the sandbox's own.
            _log.warning("auto-decide %s of request %s refused: %s", outcome, safe_id(request_id, mask=False), exc)

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.courier.start()

    def stop(self) -> None:
        with self._lock:
            timers, self._timers = self._timers, set()
        for timer in timers:
            timer.cancel()
        self.courier.stop()

    def reset(self) -> None:
        """Forget decisions and finished deliveries; keep the settings."""
        with self._lock:
            self._decided.clear()
        self.courier.forget()

    @staticmethod
    def _resolve(version: str) -> str:
        return webhook_events.resolve_webhook_version(version, datetime.now(UTC).date())
