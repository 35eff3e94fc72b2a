"""One inbound HTTP request, as the ingest function sees it, and the checks on its shape.

API Gateway (HTTP API, payload format 2.0) hands the body as text, or as base64 when it
considers the content binary (``isBase64Encoded``). Signatures are over the bytes the sender
sent, so :func:`raw_body` recovers exactly those. The checks here are cheap and bounded:
a size limit, the media type, and a nesting-depth limit counted in linear time before parsing
(by :func:`wire.loads`, the one place that decides it), so no input can push the JSON parser
into its recursion limit.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from humanos_bridge.core import wire
from humanos_bridge.core.errors import BridgeError, SerialisationError
from humanos_bridge.core.masking import mask_text

#: SQS refuses messages (body plus attributes) above 256 KiB, so a larger event can never be queued.
MAX_BODY_BYTES = 256 * 1024
#: Deeper JSON is refused: business events are shallow, and a bound keeps parsing and mapping cheap.
MAX_JSON_DEPTH = 32
JSON_MEDIA_TYPE = "application/json"

# The only characters valid UTF-8 JSON may hold that SQS refuses in a message body. Looked for with
# ``in``: at memory speed, and at once in text whose widest character is narrower (the usual case).
_NOT_QUEUEABLE = ("\ufffe", "\uffff")


class PayloadTooLargeError(BridgeError):
    """The body is larger than a queue message may be."""

    code = "payload_too_large"


class UnsupportedMediaTypeError(BridgeError):
    """The body is not declared as JSON."""

    code = "unsupported_media_type"


class InvalidJsonError(BridgeError):
    """The body is not JSON we accept (syntax, NaN, nesting depth)."""

    code = "invalid_json"


@dataclass(frozen=True)
class InboundRequest:
    """The parts of an API Gateway request the ingest service needs. Headers have lower-case names."""

    body: bytes
    headers: Mapping[str, str]
    #: API Gateway's request id (``requestContext.requestId``).
    request_id: str = ""
    #: Set when API Gateway's payload was malformed (e.g. bad base64): reported after the source check.
    problem: BridgeError | None = field(default=None, compare=False)
    #: The request line, for schemes that sign it (``requestContext.http.method``, ``requestContext.domainName``,
    #: ``rawPath`` and ``rawQueryString``: the path and query as the sender wrote them, escapes kept).
    method: str = ""
    domain: str = ""
    path: str = ""
    query: str = ""

    @classmethod
    def from_apigw_v2(cls, event: Mapping[str, Any]) -> InboundRequest:
        """Build from an HTTP API payload format 2.0 event (never raises on its content)."""
        raw_headers = event.get("headers") or {}
        headers = {str(k).lower(): str(v) for k, v in raw_headers.items()} if isinstance(raw_headers, dict) else {}
        context = event.get("requestContext")
        context = context if isinstance(context, dict) else {}
        request_id = str(context.get("requestId", ""))
        http = context.get("http")
        http = http if isinstance(http, dict) else {}
        request = cls(
            b"",
            headers,
            request_id,
            method=str(http.get("method", "")),
            domain=str(context.get("domainName", "")),
            path=str(event.get("rawPath") or http.get("path", "")),
            query=str(event.get("rawQueryString") or ""),
        )
        try:
            body = raw_body(event.get("body"), bool(event.get("isBase64Encoded")))
        except InvalidJsonError as exc:
            return replace(request, problem=exc)
        return replace(request, body=body)

    @property
    def url(self) -> str:
        """The URL the sender called, as API Gateway saw it; "" when the event names no domain.

        ``https://<domainName><rawPath>[?<rawQueryString>]``. The scheme is ``X-Forwarded-Proto`` when it says
        http (a local gateway; API Gateway serves only HTTPS). Whatever rewrites the request on its way in (a
        proxy or CDN in front, a custom domain's API mapping key, a named stage in the path) makes this differ
        from the URL the sender signed.
        """
        if not self.domain:
            return ""
        proto = self.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        scheme = "http" if proto == "http" else "https"
        return f"{scheme}://{self.domain}{self.path}" + (f"?{self.query}" if self.query else "")

    @property
    def trace_id(self) -> str:
        """X-Ray's trace header when tracing is on (Lambda sets it per invocation), else the request id."""
        return os.environ.get("_X_AMZN_TRACE_ID") or self.request_id


def raw_body(body: str | None, is_base64: bool) -> bytes:
    """The bytes the sender sent: base64-decoded when API Gateway encoded them, else the text as UTF-8."""
    if not body:
        return b""
    if not is_base64:
        # API Gateway passes text bodies through unchanged; UTF-8 gives back the sender's bytes.
        return body.encode("utf-8", "surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidJsonError("the request body could not be decoded (isBase64Encoded but not base64)") from None


def check_size(body: bytes, limit: int = MAX_BODY_BYTES) -> None:
    """PayloadTooLargeError when ``body`` is over ``limit`` bytes."""
    if len(body) > limit:
        raise PayloadTooLargeError(
            f"request body is {len(body)} bytes; the limit is {limit} bytes (a queue message's size)",
            details={"limit": limit},
        )


def check_json_media_type(headers: Mapping[str, str]) -> None:
    """UnsupportedMediaTypeError unless ``Content-Type`` is ``application/json`` (parameters allowed)."""
    declared = headers.get("content-type", "")
    media_type = declared.split(";", 1)[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        shown = repr(mask_text(media_type[:64])) if media_type else "nothing"
        raise UnsupportedMediaTypeError(
            f"Content-Type must be {JSON_MEDIA_TYPE}, got {shown}; send the event as JSON",
            details={"expected": JSON_MEDIA_TYPE},
        )


def parse_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse ``body`` as JSON nested at most ``max_depth`` levels; InvalidJsonError says what is wrong and where.

    Every step is linear in the body's length: no body, however it is built, makes the check slow.
    """
    if not body.strip():
        raise InvalidJsonError("request body is empty; send the event as a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJsonError(
            f"request body is not UTF-8 (invalid byte at offset {exc.start}); send UTF-8 JSON"
        ) from None
    if any(character in text for character in _NOT_QUEUEABLE):
        raise InvalidJsonError(
            "request body contains U+FFFE or U+FFFF, which a queue message cannot carry; remove them"
        )
    try:
        return wire.loads(text, max_depth=max_depth)
    except SerialisationError as exc:
        text = exc.message if exc.message.startswith("body ") else f"body: {exc.message}"
        raise InvalidJsonError(f"request {text}", details=exc.details) from exc
