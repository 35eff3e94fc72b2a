"""The event on the bus: one ``PutEvents`` entry per webhook, ``source`` ``humanos.bridge``.

``detail-type`` says what happened (``Credential Accepted``, ``Credential Rejected``, ``Identity Verified``,
``Identity Failed``, ``OTP Failed``, ``Test``); ``detail`` is what a consumer routes on without decrypting
anything::

    {"webhookKey": "<dedup key>", "eventType": "credential", "apiVersion": "2026-05-17",
     "requestId": "<Humanos request id>", "internalId": "<our internalId>",
     "business": {"source": "crm", "eventId": "evt_1", "rule": "contact.created"},
     "credentialId": "urn:via:credential:...", "decision": {"action": "accept", "accepted": true, "date": "..."},
     "payload": {<the decrypted webhook, as Humanos sent it>}}

``business`` is there only when the internalId shows it (``origin``). PutEvents answers 200 even when an
entry failed: ``FailedEntryCount`` is checked, and a failed entry is a failure like an exception (503, so
Humanos retries).
"""

from __future__ import annotations

import json
import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from humanos_bridge.core.errors import BridgeError
from humanos_bridge.core.masking import safe_text
from humanos_bridge.receive.events import WebhookEvent
from humanos_bridge.receive.origin import Origin

SOURCE = "humanos.bridge"
#: EventBridge's limit on one entry (detail, detail-type, source, resources), with room for the envelope.
MAX_ENTRY_BYTES = 256 * 1024 - 1024
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class PublishError(BridgeError):
    """EventBridge did not take the event: Humanos gets a 5xx and retries."""

    code = "publish_failed"
    retryable = True


def detail_of(event: WebhookEvent, key: str, origin: Origin | None) -> dict[str, Any]:
    """The ``detail`` of the published event (``None`` fields left out)."""
    detail: dict[str, Any] = {
        "webhookKey": key,
        "eventType": event.event_type,
        "apiVersion": event.api_version,
        "requestId": event.request_id,
        "internalId": event.internal_id,
        "business": origin.as_detail() if origin is not None else None,
        "credentialId": event.credential_id,
        "decision": event.decision,
        "payload": event.payload,
    }
    return {name: value for name, value in detail.items() if value is not None}


def detail_json(detail: dict[str, Any]) -> str:
    """``detail`` as compact JSON with non-ASCII kept as is (size), lone surrogates escaped (no UTF-8 form).

    A detail over EventBridge's entry limit loses its payload (``payloadOmitted``): the decision still arrives.
    """
    text = _dumps(detail)
    if len(text.encode("utf-8")) > MAX_ENTRY_BYTES:
        text = _dumps({**{k: v for k, v in detail.items() if k != "payload"}, "payloadOmitted": True})
    return text


def _dumps(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


class Publisher:
    """Puts webhook events on one EventBridge bus.

    Parameters
    ----------
    events
        An ``events`` (EventBridge) client.
    bus
        The bus's name or ARN (``WEBHOOK_EVENT_BUS_NAME``).
    """

    def __init__(self, events: Any, bus: str) -> None:
        self.events = events
        self.bus = bus

    def publish_event(self, event: WebhookEvent, key: str, origin: Origin | None) -> str:
        """Put the event; its EventBridge id. PublishError (retryable) when the call or the entry failed."""
        entry = {
            "Source": SOURCE,
            "DetailType": event.detail_type,
            "Detail": detail_json(detail_of(event, key, origin)),
            "EventBusName": self.bus,
        }
        try:
            answer = self.events.put_events(Entries=[entry])
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "Unknown"))
            raise PublishError(f"EventBridge PutEvents answered {code} for bus {self.bus}") from exc
        except BotoCoreError as exc:
            raise PublishError(f"EventBridge PutEvents failed: {type(exc).__name__}") from exc
        entries = answer.get("Entries") or [{}]
        if answer.get("FailedEntryCount", 0) or not entries[0].get("EventId"):
            failed = entries[0]
            # EventBridge's own message names the problem (a throttle, a bus policy), never the detail's content.
            message = safe_text(str(failed.get("ErrorMessage", "")), limit=200)
            raise PublishError(
                f"EventBridge refused the entry on bus {self.bus}: {failed.get('ErrorCode', 'no EventId')} {message}"
            )
        return str(entries[0]["EventId"])
