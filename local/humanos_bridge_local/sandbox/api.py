"""What the sandbox answers: authentication, signatures, versions, routes and stored requests.

Transport-free: :meth:`HumanosApi.handle` takes a parsed HTTP call and returns a :class:`Reply`,
so the HTTP server (``server.py``) only moves bytes and applies faults.

Checks run in this order, like guards before pipes in NestJS: unknown route (404), API key (401
``Unauthorized``), JSON body (400), timestamp (401 ``Invalid timestamp`` when missing or malformed,
401 ``Timestamp outside the allowed window`` when stale or in the future), signature (401
``Invalid signature``), ``API-Version`` (400; without the header the version pinned to the key
applies), then the route: rate limit (429, ``POST /request`` only), idempotency (replay or 409),
body validation (400) and creation (201).

Answers take the shapes of the version the call selects (``shapes``); a stored request keeps the
body it was created with, so a later call under another version reads it in that version's shapes.
Cancelling keeps the request (with ``canceledAt``), as Humanos does.
"""

from __future__ import annotations

import copy
import hmac
import itertools
import math
import os
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from humanos_bridge.core import signing, wire
from humanos_bridge.core.errors import SerialisationError, SignatureError
from humanos_bridge_local.sandbox import listing, shapes, validation

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
IDEMPOTENCY_CONFLICT = "Idempotency-Key already used with a different body"
RESEND_CONFLICT = "Idempotency-Key already used to resend to another subject"
#: Resend names its subject by exactly one of these query parameters.
RESEND_SELECTORS = ("contact", "id", "internalId")
THROTTLED = "ThrottlerException: Too Many Requests"
#: The first path segment of the sandbox's own routes (``admin.py``), which no Humanos route has.
ADMIN_SEGMENT = "_sandbox"
_STAMP_REASONS = {"timestamp_missing", "timestamp_malformed"}
_WINDOW_REASONS = {"timestamp_stale", "timestamp_future"}


class Reply(NamedTuple):
    """One answer: status, JSON payload (None for an empty body) and extra headers."""

    status: int
    payload: Any
    headers: Mapping[str, str] = {}


def reason_phrase(status: int) -> str:
    return _REASONS.get(status, "Error")


def nest_error(status: int, message: str | list[str], headers: Mapping[str, str] | None = None) -> Reply:
    """An error in the NestJS shape ``{statusCode, message, error}``."""
    return Reply(status, {"statusCode": status, "message": message, "error": reason_phrase(status)}, headers or {})


_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))


def object_id() -> str:
    """A 24-hex id shaped like a MongoDB ObjectId: seconds, random, counter."""
    return f"{int(time.time()):08x}{secrets.token_hex(5)}{next(_counter) % 0xFFFFFF:06x}"


class RateLimiter:
    """Sliding-window log: at most ``limit`` admissions in any ``window`` seconds (None = unlimited)."""

    def __init__(self, limit: int | None, window: float = 60.0) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"rate limit must be at least 1 call per window, got {limit}")
        if window <= 0:
            raise ValueError(f"rate limit window must be positive, got {window}")
        self.limit = limit
        self.window = window
        self._admitted: deque[float] = deque()

    def acquire(self, now: float) -> int | None:
        """Admit one call (None), or return whole seconds until a slot frees (``Retry-After``)."""
        if self.limit is None:
            return None
        while self._admitted and self._admitted[0] <= now - self.window:
            self._admitted.popleft()
        if len(self._admitted) < self.limit:
            self._admitted.append(now)
            return None
        return max(1, math.ceil(self._admitted[0] + self.window - now))


class AdminHandler(Protocol):
    """The sandbox's own ``/_sandbox/`` routes (``admin.AdminRoutes``), reached once a call is authenticated."""

    def handle(self, method: str, path: str, query: Sequence[tuple[str, str]], body: Any) -> Reply: ...


class _Replay(NamedTuple):
    body: bytes
    reply: Reply


class _Person(NamedTuple):
    """Someone Humanos has met by a contact: one identifier across every request that names them."""

    id: str
    contact_id: str
    registered_at: str


class HumanosApi:
    """The sandbox's state and behaviour. Every public method is thread-safe."""

    def __init__(
        self,
        api_key: str,
        signature_secret: str,
        *,
        tolerance_seconds: float,
        rate_limit_per_minute: int | None,
        delivers_codes: bool = False,
        pinned_api_version: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key
        self.signature_secret = signature_secret
        self.tolerance_seconds = tolerance_seconds
        self.delivers_codes = delivers_codes
        #: The version calls without ``API-Version`` get: Humanos pins one to each key when it is made.
        self.pinned_api_version = validation.resolve_pinned(
            pinned_api_version or validation.LATEST_VERSION, datetime.now(UTC).date()
        )
        # Times the rate-limit window and the rotation grace period; tests pass a fake one to move time at will.
        self._clock = clock
        self._lock = threading.RLock()
        self._retired: list[tuple[str, float]] = []  # (old secret, deadline on self._clock)
        self._limiter = RateLimiter(rate_limit_per_minute)
        self._requests: dict[str, dict[str, Any]] = {}
        self._idempotency: dict[str, _Replay] = {}
        self._resend_keys: dict[str, tuple[str, str]] = {}  # Idempotency-Key -> (request id, subject id)
        self._people: dict[str, _Person] = {}
        #: Answers the ``/_sandbox/`` routes; without one they are 404 like any unknown route.
        self.admin: AdminHandler | None = None
        #: Called with the id of each request created (not replayed), e.g. to decide it automatically later.
        self.on_created: Callable[[str], None] | None = None

    # ----------------------------------------------------------------- controls
    def rotate_secret(self, new_secret: str | None, grace_seconds: float) -> str:
        secret = new_secret or secrets.token_urlsafe(32)
        with self._lock:
            if grace_seconds > 0:
                self._retired.append((self.signature_secret, self._clock() + grace_seconds))
            self.signature_secret = secret
        return secret

    def set_rate_limit(self, per_window: int | None, window_seconds: float) -> None:
        limiter = RateLimiter(per_window, window_seconds)
        with self._lock:
            self._limiter = limiter

    def pin_api_version(self, version: str) -> str:
        """Serve calls without ``API-Version`` under ``version``, as Humanos does under the key's pinned one."""
        resolved = validation.resolve_pinned(version, datetime.now(UTC).date())
        with self._lock:
            self.pinned_api_version = resolved
        return resolved

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._idempotency.clear()
            self._resend_keys.clear()
            self._people.clear()

    def forget_idempotency_keys(self) -> None:
        """As Humanos does after its (undocumented) retention: the requests stay, their keys are forgotten."""
        with self._lock:
            self._idempotency.clear()
            self._resend_keys.clear()

    def created(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._requests.values()))

    def record(self, request_id: str) -> dict[str, Any] | None:
        """A copy of one stored request, or None."""
        with self._lock:
            found = self._requests.get(request_id)
            return None if found is None else copy.deepcopy(found)

    # ------------------------------------------------------------------ calls
    def handle(
        self, method: str, path: str, query: Sequence[tuple[str, str]], headers: Mapping[str, str], body: bytes
    ) -> Reply:
        """Answer one call. ``query`` is the (name, value) pairs in order; ``headers`` have lower-cased names."""
        route = _route(method, path)
        if route is None:
            return nest_error(404, f"Cannot {method} {path}")
        if not self._key_matches(headers.get("authorization", "")):
            return nest_error(401, "Unauthorized")
        parsed: Any = None
        canonical: bytes | None = None
        if body:
            if "application/json" not in headers.get("content-type", "").lower():
                return nest_error(400, "Content-Type must be application/json when there is a body")
            try:
                parsed = wire.loads(body)
                # The signature is checked against the re-serialised body, as JSON.stringify would write it.
                canonical = wire.dump_bytes(parsed)
            except SerialisationError:
                return nest_error(400, "Unexpected token in JSON body")
        refusal = self._check_signature(headers, canonical)
        if refusal is not None:
            return refusal
        try:
            version = validation.resolve_version(
                headers.get("api-version"), datetime.now(UTC).date(), self.pinned_api_version
            )
        except validation.VersionError as exc:
            return nest_error(400, str(exc))
        if route[0] == "admin":
            if self.admin is None:
                return nest_error(404, f"Cannot {method} {path}")
            return self.admin.handle(method, path, query, parsed)
        return self._dispatch(route, version, query, headers.get("idempotency-key"), parsed, canonical)

    def _dispatch(
        self,
        route: tuple[str, str],
        version: str,
        query: Sequence[tuple[str, str]],
        key: str | None,
        parsed: Any,
        canonical: bytes | None,
    ) -> Reply:
        name, request_id = route
        if name == "create":
            return self._create(parsed, canonical, version, key)
        if name == "list":
            return self._list(query, version)
        if not validation.is_object_id(request_id):
            return nest_error(400, ["requestId must be a mongodb id"])
        if name == "get":
            return self._get(request_id, version)
        if name == "delete":
            return self._delete(request_id)
        return self._resend(request_id, query, key)

    def _key_matches(self, authorization: str) -> bool:
        expected = f"Bearer {self.api_key}".encode()
        return hmac.compare_digest(expected, authorization.encode("utf-8", "replace"))

    def _accepted_secrets(self) -> list[str]:
        now = self._clock()
        with self._lock:
            self._retired = [(s, deadline) for s, deadline in self._retired if deadline > now]
            return [self.signature_secret, *(s for s, _ in self._retired)]

    def _check_signature(self, headers: Mapping[str, str], canonical: bytes | None) -> Reply | None:
        try:
            signing.verify(
                self._accepted_secrets(),
                headers.get("x-timestamp"),
                headers.get("x-signature"),
                canonical,
                tolerance=self.tolerance_seconds,
            )
        except SignatureError as exc:
            if exc.reason in _STAMP_REASONS:
                return nest_error(401, "Invalid timestamp")
            if exc.reason in _WINDOW_REASONS:
                return nest_error(401, "Timestamp outside the allowed window")
            return nest_error(401, "Invalid signature")
        return None

    # ----------------------------------------------------------------- routes
    def _create(self, body: Any, canonical: bytes | None, version: str, key: str | None) -> Reply:
        with self._lock:
            wait = self._limiter.acquire(self._clock())
            if wait is not None:
                return nest_error(429, THROTTLED, {"Retry-After": str(wait)})
            sent = canonical or b""
            if key is not None and key in self._idempotency:
                replay = self._idempotency[key]
                if not hmac.compare_digest(replay.body, sent):
                    return nest_error(409, IDEMPOTENCY_CONFLICT)
                return Reply(replay.reply.status, copy.deepcopy(replay.reply.payload), replay.reply.headers)
            errors = validation.validate_create(body, version)
            if errors:
                return nest_error(400, errors)  # a refused body does not consume the key
            record = self._new_record(body, version, key)
            self._requests[record["id"]] = record
            reply = Reply(201, shapes.created(record, version))
            if key is not None:
                self._idempotency[key] = _Replay(sent, reply)
            if self.on_created is not None:
                self.on_created(record["id"])
            return Reply(reply.status, copy.deepcopy(reply.payload))

    def _list(self, query: Sequence[tuple[str, str]], version: str) -> Reply:
        try:
            wanted = listing.parse(query)
        except listing.QueryError as exc:
            return nest_error(400, exc.messages)
        start = wanted.page_index * wanted.page_size
        with self._lock:
            found = [r for r in self._requests.values() if wanted.matches(r)]
            page = [shapes.listed(r, version) for r in found[start : start + wanted.page_size]]
        return Reply(200, {"data": copy.deepcopy(page), "totalPages": math.ceil(len(found) / wanted.page_size)})

    def _get(self, request_id: str, version: str) -> Reply:
        with self._lock:
            record = self._requests.get(request_id)
            if record is None:
                return nest_error(404, "Request not found")
            return Reply(200, copy.deepcopy(shapes.detail(record, version)))

    def _delete(self, request_id: str) -> Reply:
        with self._lock:
            record = self._requests.get(request_id)
            if record is None:
                return nest_error(404, "Request not found")
            if record["canceledAt"] is not None:
                return nest_error(400, "Request is already canceled")
            record["canceledAt"] = _iso_now()
        return Reply(201, shapes.success())

    def _resend(self, request_id: str, query: Sequence[tuple[str, str]], key: str | None) -> Reply:
        given = [(name, value) for name, value in query if name in RESEND_SELECTORS and value]
        if len(given) != 1:
            return nest_error(400, [f"exactly one of {', '.join(RESEND_SELECTORS)} must be given"])
        [(selector, value)] = given
        with self._lock:
            record = self._requests.get(request_id)
            if record is None:
                return nest_error(404, "Request not found")
            if record["canceledAt"] is not None:
                return nest_error(400, "Request is canceled")
            subject = next((s for s in record["subjects"] if s.get(selector) == value), None)
            if subject is None:
                return nest_error(404, "Subject not found in this request")
            target = (request_id, subject["id"])
            if key is not None and key in self._resend_keys:
                # The code went out once for this key: a retry must not message the person again.
                return (
                    Reply(201, shapes.success())
                    if self._resend_keys[key] == target
                    else nest_error(409, RESEND_CONFLICT)
                )
            record["resends"].append({"contact": subject["contact"], "at": _iso_now()})
            if key is not None:
                self._resend_keys[key] = target
        return Reply(201, shapes.success())

    def _new_record(self, body: dict[str, Any], version: str, key: str | None) -> dict[str, Any]:
        request_id = object_id()
        created_at = _iso_now()
        subjects = [self._subject(user, created_at) for user in validation.users_of(body, version)]
        if self.delivers_codes:
            # The organisation delivers the codes itself: Humanos hands each subject's code and link to the caller.
            for subject in subjects:
                subject["code"] = f"{secrets.randbelow(10**6):06d}"
                subject["link"] = f"https://sandbox.humanos.invalid/r/{request_id}/{subject['id']}"
        return {
            "id": request_id,
            "internalId": body.get("internalId"),
            "name": body.get("name"),
            "securityLevel": body.get("securityLevel", "CONTACT"),
            "apiVersion": version,
            "idempotencyKey": key,
            "createdAt": created_at,
            "canceledAt": None,
            "credentials": _credentials(body),
            "subjects": subjects,
            "resends": [],
            "body": copy.deepcopy(body),
        }

    def _subject(self, user: dict[str, Any], now: str) -> dict[str, Any]:
        """A subject of a new request: the person already met by this contact, or a new one."""
        contact = str(user["contact"])
        person = self._people.setdefault(contact, _Person(object_id(), object_id(), now))
        subject: dict[str, Any] = {
            "contact": contact,
            "id": person.id,
            "contactId": person.contact_id,
            "registeredAt": person.registered_at,
        }
        if isinstance(user.get("secondaryContact"), str):
            subject["secondaryContact"] = user["secondaryContact"]
        return subject


def _route(method: str, path: str) -> tuple[str, str] | None:
    parts = [part for part in path.split("/") if part]
    if parts[:1] == [ADMIN_SEGMENT]:
        return ("admin", path)
    if parts[:1] != ["request"]:
        return None
    if len(parts) == 1:
        return {"POST": ("create", ""), "GET": ("list", "")}.get(method)
    if len(parts) == 2 and method in ("GET", "DELETE"):
        return ("get" if method == "GET" else "delete", parts[1])
    if len(parts) == 3 and parts[1] == "resend" and method == "PATCH":
        return ("resend", parts[2])
    return None


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _credentials(body: dict[str, Any]) -> list[dict[str, Any]]:
    """One credential per group id, resource id and inline credential, in that order."""
    unnamed = {"internalId": None, "description": None, "resourceType": shapes.CATALOGUE_RESOURCE_TYPE}
    made: list[dict[str, Any]] = [
        *({**unnamed, "name": f"Group {group}"} for group in body.get("groupIds") or []),
        *({**unnamed, "name": f"Resource {resource}"} for resource in body.get("resourcesIds") or []),
        *(
            {
                "name": inline["name"],
                "internalId": inline.get("internalId"),
                "description": inline.get("description"),
                "resourceType": inline["type"],
                "validFrom": inline.get("validFrom"),
                "validUntil": inline.get("validUntil"),
                "maxExecutions": None if inline.get("maxExecutions") is None else int(inline["maxExecutions"]),
            }
            for inline in body.get("credentials") or []
        ),
    ]
    # Credentials are named by URN, unlike requests (ObjectIds).
    return [{"id": f"urn:via:credential:{uuid.uuid4()}", "maxExecutions": None, **credential} for credential in made]
