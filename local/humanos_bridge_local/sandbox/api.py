"""What the sandbox answers: authentication, signatures, versions, routes and stored requests.

Transport-free: :meth:`HumanosApi.handle` takes a parsed HTTP call and returns a :class:`Reply`,
so the HTTP server (``server.py``) only moves bytes and applies faults.

Checks run in this order, like guards before pipes in NestJS: unknown route (404), API key (401
``Unauthorized``), JSON body (400), timestamp (401 ``Invalid timestamp`` when missing or malformed,
401 ``Timestamp outside the allowed window`` when stale or in the future), signature (401
``Invalid signature``), ``API-Version`` (400), then the route: rate limit (429, ``POST /request``
only), idempotency (replay or 409), body validation (400) and creation (201).
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
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from humanos_bridge import signing, wire
from humanos_bridge.errors import SerialisationError, SignatureError
from humanos_bridge_local.sandbox import validation

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
THROTTLED = "ThrottlerException: Too Many Requests"
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


class _Replay(NamedTuple):
    body: bytes
    reply: Reply


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
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api_key = api_key
        self.signature_secret = signature_secret
        self.tolerance_seconds = tolerance_seconds
        self.delivers_codes = delivers_codes
        # Times the rate-limit window and the rotation grace period; tests pass a fake one to move time at will.
        self._clock = clock
        self._lock = threading.RLock()
        self._retired: list[tuple[str, float]] = []  # (old secret, deadline on self._clock)
        self._limiter = RateLimiter(rate_limit_per_minute)
        self._requests: dict[str, dict[str, Any]] = {}
        self._idempotency: dict[str, _Replay] = {}

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

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._idempotency.clear()

    def forget_idempotency_keys(self) -> None:
        """As Humanos does after its (undocumented) retention: the requests stay, their keys are forgotten."""
        with self._lock:
            self._idempotency.clear()

    def created(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(list(self._requests.values()))

    # ------------------------------------------------------------------ calls
    def handle(
        self, method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> Reply:
        """Answer one call. ``headers`` have lower-cased names."""
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
            version = validation.resolve_version(headers.get("api-version"), datetime.now(UTC).date())
        except validation.VersionError as exc:
            return nest_error(400, str(exc))
        name, request_id = route
        if name == "create":
            return self._create(parsed, canonical, version, headers.get("idempotency-key"))
        if name == "list":
            return self._list(query)
        if name == "get":
            return self._get(request_id)
        if name == "delete":
            return self._delete(request_id)
        return self._resend(request_id, query)

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
            record = _new_record(body, version, key, with_codes=self.delivers_codes)
            self._requests[record["id"]] = record
            reply = Reply(201, {key_: copy.deepcopy(record[key_]) for key_ in ("id", "credentials", "subjects")})
            if key is not None:
                self._idempotency[key] = _Replay(sent, reply)
            return Reply(reply.status, copy.deepcopy(reply.payload))

    def _list(self, query: Mapping[str, str]) -> Reply:
        errors: list[str] = []
        page_index = _int_param(query, "pageIndex", 0, minimum=0, errors=errors)
        page_size = _int_param(query, "pageSize", 10, minimum=1, errors=errors, maximum=100)
        if errors:
            return nest_error(400, errors)
        internal_id = query.get("internalId")
        with self._lock:
            found = [r for r in self._requests.values() if internal_id is None or r["internalId"] == internal_id]
            page = copy.deepcopy(found[page_index * page_size : (page_index + 1) * page_size])
        return Reply(200, {"data": page, "totalPages": math.ceil(len(found) / page_size)})

    def _get(self, request_id: str) -> Reply:
        with self._lock:
            record = self._requests.get(request_id)
            return Reply(200, copy.deepcopy(record)) if record else nest_error(404, "Request not found")

    def _delete(self, request_id: str) -> Reply:
        with self._lock:
            record = self._requests.pop(request_id, None)
        return Reply(200, record) if record else nest_error(404, "Request not found")

    def _resend(self, request_id: str, query: Mapping[str, str]) -> Reply:
        contact = query.get("contact")
        if not contact:
            return nest_error(400, ["contact should not be empty"])
        with self._lock:
            record = self._requests.get(request_id)
            if record is None:
                return nest_error(404, "Request not found")
            if all(subject["contact"] != contact for subject in record["subjects"]):
                return nest_error(404, "Contact not found in this request")
            record["resends"].append({"contact": contact, "at": _iso_now()})
        return Reply(200, {"id": request_id, "resent": True})


def _route(method: str, path: str) -> tuple[str, str] | None:
    parts = [part for part in path.split("/") if part]
    if parts[:1] != ["request"]:
        return None
    if len(parts) == 1:
        return {"POST": ("create", ""), "GET": ("list", "")}.get(method)
    if len(parts) == 2 and method in ("GET", "DELETE"):
        return ("get" if method == "GET" else "delete", parts[1])
    if len(parts) == 3 and parts[1] == "resend" and method == "PATCH":
        return ("resend", parts[2])
    return None


def _int_param(
    query: Mapping[str, str], name: str, default: int, *, minimum: int, errors: list[str], maximum: int | None = None
) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    if not text.isascii() or not text.isdigit():
        errors.append(f"{name} must be an integer number")
        return default
    value = int(text)
    if value < minimum:
        errors.append(f"{name} must not be less than {minimum}")
    if maximum is not None and value > maximum:
        errors.append(f"{name} must not be greater than {maximum}")
    return value


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _new_record(body: dict[str, Any], version: str, key: str | None, *, with_codes: bool) -> dict[str, Any]:
    credentials = [
        *({"id": object_id(), "name": f"Group {group}", "internalId": None} for group in body.get("groupIds") or []),
        *({"id": object_id(), "name": f"Resource {res}", "internalId": None} for res in body.get("resourcesIds") or []),
        *(
            {"id": object_id(), "name": cred["name"], "internalId": cred.get("internalId")}
            for cred in body.get("credentials") or []
        ),
    ]
    request_id = object_id()
    subjects = [{"contact": c, "id": object_id()} for c in validation.contacts_of(body, version)]
    if with_codes:
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
        "createdAt": _iso_now(),
        "credentials": credentials,
        "subjects": subjects,
        "resends": [],
        "body": copy.deepcopy(body),
    }
