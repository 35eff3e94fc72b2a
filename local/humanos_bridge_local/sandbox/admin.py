"""The sandbox's own routes, under ``/_sandbox/``: what Humanos's people and dashboard do, over HTTP.

Humanos has no route to decide a request (a person does, in Humanos's app), so the sandbox adds these,
under a prefix no Humanos route has. They are signed like every call (``Authorization``, ``X-Timestamp``,
``X-Signature`` with the sandbox's credentials; ``HumanosApi.handle`` checks them before routing here), so a
sandbox listening beyond loopback does not let anyone make it post webhooks:

- ``POST /_sandbox/requests/{id}/decide`` with ``{"outcome": "accept" | "reject" | "kyc-pass" | "kyc-fail" |
  "otp-fail", "otpError"?: "UNDELIVERABLE" | ...}``: 202 ``{"requestId", "outcome", "deliveries": [...]}``;
- ``POST /_sandbox/webhooks/test`` with ``{"message"?}`` or no body: 202 ``{"deliveries": [...]}``;
- ``POST /_sandbox/deliveries/{id}/redeliver``: the same webhook again, 202 ``{"deliveries": [...]}``;
- ``GET /_sandbox/deliveries[?ids=1,2]``: 200 ``{"data": [...]}``.

A delivery is shown by ``Delivery.summary()``: ids, event type, outcome, attempts, statuses, state; never
the event, its contacts or the body. Errors take the NestJS shape, as the rest of the sandbox answers them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from humanos_bridge_local.sandbox import webhook_events
from humanos_bridge_local.sandbox.api import Reply, nest_error
from humanos_bridge_local.sandbox.decisions import DecisionError
from humanos_bridge_local.sandbox.delivery import Delivery
from humanos_bridge_local.sandbox.webhooks import Webhooks

#: Every admin path starts so; ``HumanosApi`` routes these here once the call is authenticated.
PREFIX = "/_sandbox/"


class AdminRoutes:
    """Answers the ``/_sandbox/`` routes from a sandbox's ``Webhooks``."""

    def __init__(self, webhooks: Webhooks) -> None:
        self._webhooks = webhooks

    def handle(self, method: str, path: str, query: Sequence[tuple[str, str]], body: Any) -> Reply:
        """Answer one authenticated admin call; ``body`` is the parsed JSON (None without one)."""
        parts = [part for part in path.removeprefix(PREFIX).split("/") if part]
        try:
            if method == "POST" and len(parts) == 3 and parts[0] == "requests" and parts[2] == "decide":
                return self._decide(parts[1], body)
            if method == "POST" and parts == ["webhooks", "test"]:
                return self._test(body)
            if method == "POST" and len(parts) == 3 and parts[0] == "deliveries" and parts[2] == "redeliver":
                return _accepted(None, [self._webhooks.redeliver(_delivery_id(parts[1]))])
            if method == "GET" and parts == ["deliveries"]:
                return self._list(query)
        except DecisionError as exc:
            return nest_error(exc.status, exc.message)
        return nest_error(404, f"Cannot {method} {path}")

    def _decide(self, request_id: str, body: Any) -> Reply:
        if not isinstance(body, dict) or not isinstance(body.get("outcome"), str):
            raise DecisionError(400, 'body must be {"outcome": ...}, the outcome a string')
        otp_error = body.get("otpError", webhook_events.DEFAULT_OTP_ERROR)
        if not isinstance(otp_error, str):
            raise DecisionError(400, "otpError must be a string")
        outcome = body["outcome"]
        sent = self._webhooks.decide(request_id, outcome, otp_error=otp_error)
        return _accepted({"requestId": request_id, "outcome": outcome}, sent)

    def _test(self, body: Any) -> Reply:
        message = webhook_events.TEST_MESSAGE
        if isinstance(body, dict) and "message" in body:
            if not isinstance(body["message"], str):
                raise DecisionError(400, "message must be a string")
            message = body["message"]
        elif body is not None and not isinstance(body, dict):
            raise DecisionError(400, "body must be a JSON object")
        return _accepted(None, [self._webhooks.send_test(message)])

    def _list(self, query: Sequence[tuple[str, str]]) -> Reply:
        given = [value for name, value in query if name == "ids"]
        if not given:
            return Reply(200, {"data": [d.summary() for d in self._webhooks.courier.deliveries]})
        ids = [_delivery_id(text) for value in given for text in value.split(",") if text]
        found = [self._webhooks.courier.get(key) for key in ids]
        return Reply(200, {"data": [d.summary() for d in found if d is not None]})


def _accepted(fields: dict[str, Any] | None, deliveries: list[Delivery]) -> Reply:
    return Reply(202, {**(fields or {}), "deliveries": [d.summary() for d in deliveries]})


def _delivery_id(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise DecisionError(400, "a delivery id is a whole number")
    return int(text)
