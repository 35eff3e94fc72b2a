"""API Gateway HTTP API events for the ingest function: valid by default, one change per test.

``apigw_event`` loads a sample from ``events/apigw/`` and signs it afresh (timestamp computed at
call time) with the example sender secret of its source. Each keyword changes one thing:
the body, the secret, the clock skew, a header, the encoding.
"""

from __future__ import annotations

import base64
import copy
import json
import time
import uuid
from typing import Any

from humanos_bridge.core.sender_auth import HumanosHmacVerifier, StandardWebhooksVerifier
from tests.support.bridge import ROOT

APIGW = ROOT / "events" / "apigw"
#: The example secrets the sample events are signed with (see events/apigw/README.md).
CRM_SECRET = "crm-sender-secret-example"
SHOP_SECRET = "whsec_ZXhhbXBsZS1zaG9wLXdlYmhvb2stc2lnbmluZy1rZXk="
HR_SECRET = "hr-sender-secret-example"
#: Which scheme each source of the test mapping uses.
SCHEMES = {"crm": "humanos-hmac", "shop": "standard-webhooks", "hr": "humanos-hmac"}
DEFAULT_SECRETS = {"crm": CRM_SECRET, "shop": SHOP_SECRET, "hr": HR_SECRET}
_SIGNATURE_HEADERS = ("x-timestamp", "x-signature", "webhook-id", "webhook-timestamp", "webhook-signature")
_UNSET: Any = object()


def load_apigw(name: str) -> dict[str, Any]:
    return json.loads((APIGW / f"{name}.json").read_text(encoding="utf-8"))


def apigw_event(
    name: str = "post-event-crm-humanos-hmac",
    *,
    source: str | None = None,
    route: str | None = None,
    body: Any = _UNSET,
    secret: str | None = None,
    scheme: str | None = None,
    skew_seconds: float = 0,
    signed: bool = True,
    tamper: bytes | None = None,
    base64_body: bool | None = None,
    headers: dict[str, str | None] | None = None,
    webhook_id: str | None = None,
) -> dict[str, Any]:
    """An event from ``events/apigw/<name>.json``, re-signed now.

    Parameters
    ----------
    source, route
        Send to another source or route (``"events"`` / ``"requests"``).
    body
        A new body: bytes/str as is, anything else as compact JSON.
    secret, scheme
        Sign with another secret or scheme (default: the source's example secret and scheme).
    skew_seconds
        Sign with a timestamp this far from now (negative: in the past).
    signed
        False: no signature headers at all.
    tamper
        Replace the body with these bytes *after* signing.
    base64_body
        Deliver the body base64-encoded (``isBase64Encoded``); default as in the file.
    headers
        Set (or with None, remove) headers after signing.
    """
    event = copy.deepcopy(load_apigw(name))
    if source is not None or route is not None:
        source = source or event["pathParameters"]["source"]
        route = route or event["rawPath"].split("/")[1]
        path = f"/{route}/{source}"
        event["rawPath"] = event["requestContext"]["http"]["path"] = path
        event["pathParameters"] = {"source": source}
        event["routeKey"] = event["requestContext"]["routeKey"] = f"POST /{route}/{{source}}"
    source = event.get("pathParameters", {}).get("source", "crm")
    raw = _raw_body(event) if body is _UNSET else _encode(body)
    headers_now = {k: v for k, v in event["headers"].items() if k not in _SIGNATURE_HEADERS}
    if signed:
        headers_now.update(
            sign(
                raw,
                scheme or SCHEMES.get(source, "humanos-hmac"),
                secret or DEFAULT_SECRETS.get(source, CRM_SECRET),
                skew_seconds,
                webhook_id,
            )
        )
    if tamper is not None:
        raw = tamper
    encode = event["isBase64Encoded"] if base64_body is None else base64_body
    if base64_body is None and not _is_text(raw):
        encode = True  # API Gateway base64-encodes what is not text
    event["body"] = base64.b64encode(raw).decode("ascii") if encode else raw.decode("utf-8", "surrogatepass")
    event["isBase64Encoded"] = encode
    headers_now["content-length"] = str(len(raw))
    for key, value in (headers or {}).items():
        if value is None:
            headers_now.pop(key, None)
        else:
            headers_now[key] = value
    event["headers"] = headers_now
    now = time.time()
    event["requestContext"]["requestId"] = uuid.uuid4().hex[:16]
    event["requestContext"]["timeEpoch"] = int(now * 1000)
    return event


def sign(
    raw: bytes, scheme: str, secret: str, skew_seconds: float = 0, webhook_id: str | None = None
) -> dict[str, str]:
    """Signature headers (lower-case names, as API Gateway delivers them) for ``raw``."""
    now = time.time() + skew_seconds
    if scheme == "standard-webhooks":
        msg_id = webhook_id or f"msg_{uuid.uuid4().hex[:20]}"
        return StandardWebhooksVerifier([secret]).sign_headers(msg_id, raw, timestamp=int(now))
    signed = HumanosHmacVerifier([secret]).sign(raw, timestamp_ms=int(now * 1000))
    return {k.lower(): v for k, v in signed.items()}


def _raw_body(event: dict[str, Any]) -> bytes:
    text = event.get("body") or ""
    return base64.b64decode(text) if event.get("isBase64Encoded") else text.encode("utf-8")


def _is_text(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _encode(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8", "surrogatepass")
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def response_json(response: dict[str, Any]) -> Any:
    """The JSON body of a handler response."""
    return json.loads(response["body"])
