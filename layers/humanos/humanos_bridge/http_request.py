"""One inbound HTTP request, as the ingest function sees it, and the checks on its shape.

API Gateway (HTTP API, payload format 2.0) hands the body as text, or as base64 when it
considers the content binary (``isBase64Encoded``). Signatures are over the bytes the sender
sent, so :func:`raw_body` recovers exactly those. The checks here are cheap and bounded:
a size limit, the media type, and a nesting-depth limit counted on the bytes before parsing,
so no input can push the JSON parser into its recursion limit.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from humanos_bridge import wire
from humanos_bridge.errors import BridgeError, SerialisationError
from humanos_bridge.masking import mask_text

#: SQS refuses messages (body plus attributes) above 256 KiB, so a larger event can never be queued.
MAX_BODY_BYTES = 256 * 1024
#: Deeper JSON is refused: business events are shallow, and a bound keeps parsing and mapping cheap.
MAX_JSON_DEPTH = 32
JSON_MEDIA_TYPE = "application/json"

# A JSON string (escapes included), skipped as one token so that brackets inside strings do not count.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# The only characters valid UTF-8 JSON may hold that SQS refuses in a message body.
_NOT_QUEUEABLE = re.compile("[\ufffe\uffff]")


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

    @classmethod
    def from_apigw_v2(cls, event: Mapping[str, Any]) -> InboundRequest:
        """Build from an HTTP API payload format 2.0 event (never raises on its content)."""
        raw_headers = event.get("headers") or {}
        headers = {str(k).lower(): str(v) for k, v in raw_headers.items()} if isinstance(raw_headers, dict) else {}
        context = event.get("requestContext") or {}
        request_id = str(context.get("requestId", "")) if isinstance(context, dict) else ""
        try:
            body = raw_body(event.get("body"), bool(event.get("isBase64Encoded")))
        except InvalidJsonError as exc:
            return cls(b"", headers, request_id, exc)
        return cls(body, headers, request_id)

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


def json_depth(body: bytes) -> int:
    """Deepest nesting of arrays and objects in ``body``, counted without parsing (linear, no recursion)."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def parse_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse ``body`` as JSON after checking its depth; InvalidJsonError says what is wrong and where."""
    if not body.strip():
        raise InvalidJsonError("request body is empty; send the event as a JSON object")
    # Shallow bodies have few brackets: only count depth when there are enough to matter.
    if body.count(b"[") + body.count(b"{") > max_depth and json_depth(body) > max_depth:
        raise InvalidJsonError(
            f"request body is nested deeper than {max_depth} levels; flatten the event",
            details={"maxDepth": max_depth},
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidJsonError(
            f"request body is not UTF-8 (invalid byte at offset {exc.start}); send UTF-8 JSON"
        ) from None
    if _NOT_QUEUEABLE.search(text):
        raise InvalidJsonError(
            "request body contains U+FFFE or U+FFFF, which a queue message cannot carry; remove them"
        )
    try:
        return wire.loads(text)
    except SerialisationError as exc:
        text = exc.message if exc.message.startswith("body ") else f"body: {exc.message}"
        raise InvalidJsonError(f"request {text}") from exc
    except RecursionError:  # unreachable after the depth check; kept so no input can escape as a crash
        raise InvalidJsonError(f"request body is nested deeper than {max_depth} levels; flatten the event") from None
