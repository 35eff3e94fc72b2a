"""The Humanos HTTP client: signed calls over one pooled urllib3 connection pool, with retries.

Every attempt sends ``API-Version``, ``User-Agent`` and, when given, ``Idempotency-Key``; the body
is serialised once (``wire.dump_bytes``) and those exact bytes are signed (fresh timestamp per
attempt) and sent. Failures become the taxonomy in ``errors.py`` through ``classify.classify``.
A call is repeated only when repeating cannot message a person twice: it is safe (GET/HEAD) or it
carries an Idempotency-Key.
"""

from __future__ import annotations

import functools
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlencode

import urllib3
import urllib3.exceptions
from aws_lambda_powertools import Logger

from humanos_bridge import USER_AGENT
from humanos_bridge.core import signing, wire
from humanos_bridge.core.backoff import RetryPolicy
from humanos_bridge.core.classify import classify, malformed_success, parse_success
from humanos_bridge.core.errors import AuthenticationError, BridgeError, ConfigError, MappingError, RetryableError
from humanos_bridge.core.masking import safe_id
from humanos_bridge.settings import MAX_BATCH_SIZE

if TYPE_CHECKING:
    from humanos_bridge.core.credentials import Credentials, CredentialsSource
    from humanos_bridge.core.ratelimit import CreationLimiter
    from humanos_bridge.settings import Settings

#: Pages of ``GET /request?internalId=`` read at most by ``find_requests`` (100 requests each).
MAX_LOOKUP_PAGES = 10
#: Methods that never change anything on Humanos, so they may always be repeated.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Below this, a read timeout cannot even receive a small answer; the deadline cap never goes under it.
_MIN_READ_TIMEOUT = 0.05
_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")

_pool: urllib3.PoolManager | None = None
_pool_lock = threading.Lock()


def default_pool() -> urllib3.PoolManager:
    """The container's shared PoolManager, created on first use (connections survive between invocations)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            # A connection per host for each record of the largest batch, which the dispatcher sends all at
            # once; with fewer, urllib3 opens extra connections and discards them after each call.
            _pool = urllib3.PoolManager(maxsize=MAX_BATCH_SIZE)
        return _pool


def reset_default_pool() -> None:
    """Close and forget the shared pool (tests, or after forking)."""
    global _pool
    with _pool_lock:
        if _pool is not None:
            _pool.clear()
        _pool = None


@functools.cache
def _logger() -> Logger:
    # Built on first use, not at import: Logger reads the environment (service name, level).
    return Logger(child=True)


class HumanosResponse(NamedTuple):
    """A successful answer: HTTP status, parsed JSON (None when empty), HTTP attempts made, seconds spent."""

    status: int
    data: Any
    attempts: int
    elapsed: float

    @property
    def request_id(self) -> str | None:
        """The Humanos request id (``data["id"]``), when the answer has one."""
        if isinstance(self.data, dict):
            value = self.data.get("id")
            if isinstance(value, str):
                return value
        return None


# Checks a 2xx answer's parsed JSON; raises (through ``malformed_success``) when its shape is wrong.
_Validator = Callable[[int, Any, bool], None]


class ForeignEndpointError(BridgeError):
    """A URL handed to the client (a webhook's ``otp.resendEndpoint``) is not on the Humanos API root.

    Every signed call carries the API key (``Authorization``) and, when bodyless, a signature over a timestamp
    alone, which any other bodyless call could reuse for minutes: sent to another host, both would be theirs.
    """

    code = "foreign_endpoint"


class HumanosClient:
    """Signed calls to the Humanos API.

    Parameters
    ----------
    base_url
        API root, e.g. ``https://api.humanos.id`` (``HUMANOS_BASE_URL``).
    api_version
        Sent as ``API-Version`` on every call, a date like ``2026-05-17``.
    credentials
        Where the API key and signature secret come from.
    policy
        Retry policy; ``RetryPolicy()`` when None.
    pool
        urllib3 PoolManager; the container's shared ``default_pool()`` when None.
    connect_timeout, read_timeout
        Seconds per attempt; the read timeout is also cut to what remains of ``policy.deadline``.
    sleep, clock, rng
        Injected for tests: how to wait, a monotonic clock, the jitter's random source.
    creation_limiter
        The container's share of Humanos's rate limit on request creations; none when None.
    """

    def __init__(
        self,
        base_url: str,
        api_version: str,
        credentials: CredentialsSource,
        *,
        policy: RetryPolicy | None = None,
        pool: urllib3.PoolManager | None = None,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        creation_limiter: CreationLimiter | None = None,
    ) -> None:
        self.base_url = _check_base_url(base_url)
        if not _API_VERSION.fullmatch(api_version or ""):
            raise ConfigError(f"HUMANOS_API_VERSION must be a date like 2026-05-17 (got {api_version!r})")
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ConfigError("HUMANOS_CONNECT_TIMEOUT and HUMANOS_READ_TIMEOUT must be greater than 0")
        self.api_version = api_version
        self.credentials = credentials
        self.policy = policy if policy is not None else RetryPolicy()
        self._pool = pool
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        #: Taken before every attempt of ``POST /request``, retries included: Humanos counts them all.
        self.creation_limiter = creation_limiter

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        credentials: CredentialsSource,
        api_version: str,
        pool: urllib3.PoolManager | None = None,
        creation_limiter: CreationLimiter | None = None,
    ) -> HumanosClient:
        """A client configured from ``Settings`` (base URL, timeouts, attempts, deadline)."""
        return cls(
            settings.humanos_base_url,
            api_version,
            credentials,
            policy=RetryPolicy.from_settings(settings),
            pool=pool,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            creation_limiter=creation_limiter,
        )

    def __repr__(self) -> str:
        return f"HumanosClient({self.base_url!r}, api_version={self.api_version!r}, policy={self.policy!r})"

    @property
    def pool(self) -> urllib3.PoolManager:
        return self._pool if self._pool is not None else default_pool()

    # -- endpoints -------------------------------------------------------------------------------

    def create_request(self, body: Mapping[str, Any], idempotency_key: str | None) -> HumanosResponse:
        """``POST /request``: create credentials and send people their one-time codes.

        Pass the Idempotency-Key derived from the business event: without one, a failed call is
        never repeated (a repeat could message a person twice).
        """
        return self._call("POST", "/request", body, None, idempotency_key, safe=False, validate=_has_request_id)

    def find_requests(self, internal_id: str, *, page_size: int = 100) -> list[dict[str, Any]]:
        """``GET /request?internalId=``, every page: the requests created with our own reference (to reconcile)."""
        if not internal_id:
            raise MappingError("internalId is empty; pass the reference the request was created with")
        if not _has_utf8_form(internal_id):
            # A query string is UTF-8, and a lone surrogate has none. Sent any other way (U+FFFD, WTF-8 bytes)
            # it would ask for another value than the one the request holds: a look-up that proves nothing.
            raise MappingError(
                f"internalId '{safe_id(internal_id)}' holds a lone surrogate, which has no UTF-8 form, so Humanos "
                "cannot be asked for the requests that carry it; give the rule an internalId of valid text (the "
                "default, the idempotency key, always is)",
                details={"reason": "internal_id_not_text"},
            )
        found: list[dict[str, Any]] = []
        page, pages = 0, 1
        while page < min(pages, MAX_LOOKUP_PAGES):
            query = {"internalId": internal_id, "pageIndex": str(page), "pageSize": str(page_size)}
            response = self._call("GET", "/request", None, query, None, safe=True, validate=_has_data_list)
            found.extend(item for item in response.data["data"] if isinstance(item, dict))
            total = response.data.get("totalPages")
            pages = total if isinstance(total, int) and not isinstance(total, bool) else page + 1
            page += 1
        if pages > MAX_LOOKUP_PAGES:
            raise MappingError(
                f"more than {MAX_LOOKUP_PAGES * page_size} Humanos requests share internalId "
                f"'{safe_id(internal_id)}', too many to look through; give the rule an internalId unique to "
                "each event (the default, the idempotency key, is)"
            )
        return found

    def resend_code(self, endpoint: str) -> HumanosResponse:
        """``PATCH`` an ``otp.failed`` webhook's ``otp.resendEndpoint``, exactly as Humanos delivered it: a fresh
        one-time code for one person of a request (``/request/resend/{id}?contact=...``).

        Signed as bodyless, with ``API-Version``. Sent once: a failure that may have reached Humanos (a 5xx, a
        timeout) may have texted the person already, and the caller counts every call (``receive.otp_resend``).
        (A 401 is retried once with the secret read again, as every call is: a refused call sent nothing.)
        ForeignEndpointError, before anything is sent, when ``endpoint`` is not on ``base_url``'s scheme, host and
        port (and under its path).
        """
        path = same_origin_path(self.base_url, endpoint)
        return self._call("PATCH", path, None, None, None, safe=False, url=endpoint)

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any | None = None,
        query: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        safe: bool | None = None,
    ) -> HumanosResponse:
        """Any signed call. ``safe`` defaults to True for GET/HEAD/OPTIONS; a bodyless call sends no body."""
        verb = method.upper()
        return self._call(verb, path, body, query, idempotency_key, safe=verb in SAFE_METHODS if safe is None else safe)

    # -- the retry loop ----------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: Any | None,
        query: Mapping[str, str] | None,
        idempotency_key: str | None,
        *,
        safe: bool,
        validate: _Validator | None = None,
        url: str | None = None,
    ) -> HumanosResponse:
        # ``url``: a whole URL to send as given (``path`` then only names it in logs); checked by the caller.
        url = url if url is not None else self._url(path, query)
        _check_idempotency_key(idempotency_key)
        # Serialised once: every attempt signs and sends these same bytes.
        payload = wire.dump_bytes(body) if body is not None else None
        repeatable = safe or idempotency_key is not None
        start = self._clock()
        credentials = self.credentials.get()
        attempts = 0  # HTTP requests sent
        failures = 0  # retryable failures, counted against policy.max_attempts
        refreshed = False
        while True:
            attempts += 1
            if self.creation_limiter is not None and method == "POST" and path == "/request":
                # Outside the try: when the wait would pass the deadline, waiting again cannot help.
                self.creation_limiter.acquire(max_wait=max(self.policy.deadline - (self._clock() - start), 0.0))
            try:
                status, data = self._attempt(method, url, payload, credentials, idempotency_key, start, safe)
                if validate is not None:
                    validate(status, data, not safe)
                return HumanosResponse(status, data, attempts, self._clock() - start)
            except AuthenticationError as exc:
                exc.details["attempts"] = attempts
                if refreshed:
                    raise _final_auth_error(exc, "still refused after fetching the secret again") from exc
                if exc.status != 401:
                    raise
                refreshed = True
                fresh = self.credentials.get(force_refresh=True, stale=credentials)
                if fresh == credentials:
                    # The same credentials would be refused again: do not spend a call (and rate limit) on it.
                    raise _final_auth_error(exc, "the secret is unchanged after fetching it again") from exc
                _logger().warning(
                    "Humanos refused the credentials; retrying once with the secret fetched again",
                    extra={"status": 401, "attempt": attempts, "method": method, "path": path},
                )
                credentials = fresh
            except RetryableError as exc:
                exc.details["attempts"] = attempts
                failures += 1
                wait = self._wait_before_retry(exc, failures, repeatable, start)
                if wait is None:
                    raise
                _logger().warning(
                    "Humanos call failed; retrying",
                    extra={
                        "status": exc.status,
                        "error": exc.code,
                        "attempt": attempts,
                        "wait_seconds": round(wait, 3),
                        "method": method,
                        "path": path,
                    },
                )
                self._sleep(wait)

    def _wait_before_retry(self, exc: RetryableError, failures: int, repeatable: bool, start: float) -> float | None:
        """Seconds to wait before the next attempt, or None when this failure is final."""
        if not repeatable or failures >= self.policy.max_attempts:
            return None
        wait = self.policy.backoff_for(failures, exc.retry_after, self._rng)
        if self._clock() - start + wait >= self.policy.deadline:
            return None
        return wait

    def _attempt(
        self,
        method: str,
        url: str,
        payload: bytes | None,
        credentials: Credentials,
        idempotency_key: str | None,
        start: float,
        safe: bool,
    ) -> tuple[int, Any]:
        headers = {
            "API-Version": self.api_version,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            # A fresh timestamp on every attempt: a retry must not look like a replay.
            **signing.signed_headers(credentials.api_key, credentials.signature_secret, payload),
        }
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        remaining = self.policy.deadline - (self._clock() - start)
        timeout = urllib3.Timeout(
            connect=self.connect_timeout, read=max(min(self.read_timeout, remaining), _MIN_READ_TIMEOUT)
        )
        try:
            # retries=False: the loop above owns retrying; urllib3 raises the underlying error unwrapped.
            response = self.pool.request(
                method, url, body=payload, headers=headers, timeout=timeout, retries=False, redirect=False
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise classify(exc) from exc
        if not 200 <= response.status <= 299:
            raise classify(response.status, body=response.data, retry_after=response.headers.get("Retry-After"))
        return response.status, parse_success(response.status, response.data, may_have_taken_effect=not safe)

    def _url(self, path: str, query: Mapping[str, str] | None) -> str:
        if not path.startswith("/"):
            raise ConfigError(f"Humanos path must start with '/' (got {path!r})")
        return self.base_url + path + (f"?{urlencode(dict(query))}" if query else "")


def _has_utf8_form(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _final_auth_error(exc: AuthenticationError, why: str) -> AuthenticationError:
    error = AuthenticationError(
        f"{exc.message} ({why})", status=exc.status, humanos_message=exc.humanos_message, details=exc.details
    )
    return error


def _has_request_id(status: int, data: Any, may_have_taken_effect: bool) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        raise malformed_success(status, "no request id in the body", may_have_taken_effect)


def _has_data_list(status: int, data: Any, may_have_taken_effect: bool) -> None:
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise malformed_success(status, "no 'data' list in the body", may_have_taken_effect)


def _check_base_url(base_url: str) -> str:
    url = (base_url or "").rstrip("/")
    try:
        parsed = urllib3.util.parse_url(url)
    except urllib3.exceptions.LocationParseError as exc:
        raise ConfigError(f"HUMANOS_BASE_URL is not a URL (got {base_url!r})") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.query or parsed.fragment:
        raise ConfigError(f"HUMANOS_BASE_URL must be an http(s) URL such as https://api.humanos.id (got {base_url!r})")
    return url


def same_origin_path(base_url: str, url: str) -> str:
    """The path of ``url`` (for logs: never the query, which names a contact), when ``url`` is on the API root
    ``base_url``: the same scheme, host and port (default ports filled in), under its path, with no user
    information. ForeignEndpointError otherwise; its message quotes the origin only.

    Parsed with urllib3's own parser, the one the pool uses to choose where to connect, so what is checked is
    where the request goes.
    """
    base = urllib3.util.parse_url(base_url)
    try:
        given = urllib3.util.parse_url(url)
    except urllib3.exceptions.LocationParseError:
        raise ForeignEndpointError("the endpoint is not a URL; nothing was sent") from None
    origin = _origin(given)
    if given.auth is not None or origin != _origin(base):
        shown = "://".join(str(part) for part in origin[:2]) + f":{origin[2]}"
        raise ForeignEndpointError(
            f"the endpoint is on {safe_id(shown)}{' with user information' if given.auth else ''}, not on "
            f"HUMANOS_BASE_URL's {base.scheme}://{base.host}:{_origin(base)[2]}; nothing was sent (a signed call "
            "carries the API key)"
        )
    root = (base.path or "").rstrip("/")
    path = given.path or "/"
    if root and not (path == root or path.startswith(root + "/")):
        raise ForeignEndpointError(f"the endpoint is not under HUMANOS_BASE_URL's path {root}; nothing was sent")
    return path


def _origin(url: urllib3.util.Url) -> tuple[str, str, int | None]:
    scheme = (url.scheme or "").lower()
    return scheme, (url.host or "").lower(), url.port if url.port is not None else _DEFAULT_PORTS.get(scheme)


def _check_idempotency_key(key: str | None) -> None:
    # A header value must be printable ASCII; anything else would fail deep inside http.client.
    if key is not None and (not key or not key.isascii() or not key.isprintable()):
        raise MappingError("Idempotency-Key must be non-empty printable ASCII; derive it from the event's id")
