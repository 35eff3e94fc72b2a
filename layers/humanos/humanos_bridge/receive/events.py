"""The decrypted webhook: validated for its ``api_version``, normalised into one model.

Humanos's event shapes by API version (``../shared/humanos-api.md``, "Event types and fields"):

==================  ===============================  ===============================  ======================
field               up to 2026-04-14                 2026-05-17                       2026-09-01 and later
==================  ===============================  ===============================  ======================
``api_version``     optional (absent: this shape)    required                         required
``user``            ``{contact, did, internalId?}``  ``{contact, id, internalId?}``   same
decision date       ``decisionDate`` (every type)    ``decision.date``                same
credential          ``action`` + ``credential.id``   ``decision.action`` + ``id``     statuses DRAFT, ACTIVE,
                                                     (statuses DRAFT, ACTIVE,         INACTIVE
                                                     REJECTED, CANCELED, REVOKED,
                                                     EXPIRED)
identity            ``identity`` required,           ``decision{success, isFraud,     ``decision{success,
                    ``decision{success, isFraud}``   date}``, ``identity`` optional   date}``
otp.failed          ``otp{resendEndpoint, error{code, message}}`` in every version
test                ``message``; nothing else is documented, so only ``eventType`` is required
==================  ===============================  ===============================  ======================

``eventType``, ``requestId``, ``issuerDid`` and ``user`` are required for the other types. An
``api_version`` between two listed ones reads as the earlier shape; a later one as the latest. Fields
not listed are kept in the payload and not checked (Humanos may add some). Nothing here quotes a value
from the event in a message: contacts and identity data are personal data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from humanos_bridge.core import wire
from humanos_bridge.core.errors import BridgeError, SerialisationError
from humanos_bridge.core.masking import safe_id

SHAPE_2026_04_14, SHAPE_2026_05_17, SHAPE_2026_09_01 = "2026-04-14", "2026-05-17", "2026-09-01"
CREDENTIAL, IDENTITY, OTP_FAILED, TEST = "credential", "identity", "otp.failed", "test"
EVENT_TYPES = (CREDENTIAL, IDENTITY, OTP_FAILED, TEST)
#: Credential statuses each shape allows (the first shape's are undocumented: not checked).
CREDENTIAL_STATUSES: dict[str, frozenset[str] | None] = {
    SHAPE_2026_04_14: None,
    SHAPE_2026_05_17: frozenset({"DRAFT", "ACTIVE", "REJECTED", "CANCELED", "REVOKED", "EXPIRED"}),
    SHAPE_2026_09_01: frozenset({"DRAFT", "ACTIVE", "INACTIVE"}),
}
ACTIONS = ("accept", "reject")
#: Decrypted webhooks nest shallowly; deeper ones are refused before parsing.
MAX_DEPTH = 32
_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")


class WebhookEventError(BridgeError):
    """The decrypted event is not one of the documented shapes for its ``api_version``.

    It came from Humanos (signed and decrypted), so the receiver's model is what disagrees: 422, and the
    log names the field.
    """

    code = "invalid_webhook_event"


@dataclass(frozen=True)
class WebhookEvent:
    """One Humanos webhook event, normalised across API versions."""

    event_type: str
    #: Which documented shape it was read as (``SHAPE_*``).
    shape: str
    #: As the payload says (None: absent, the first shape).
    api_version: str | None
    request_id: str | None
    #: Our request's ``internalId``, as Humanos echoes it.
    internal_id: str | None
    contact: str | None
    #: The user's DID (``user.did`` up to 2026-04-14, ``user.id`` after).
    user_id: str | None
    credential_id: str | None
    #: The decision, the same fields in every version: ``{"action", "accepted", "date"}`` (credential),
    #: ``{"success", "isFraud", "date"}`` (identity), ``{"errorCode"}`` (otp.failed), ``{}`` (test).
    decision: dict[str, Any]
    #: ``decisionDate`` or ``decision.date``; None for otp.failed and test after 2026-04-14.
    decision_date: str | None
    #: EventBridge's ``detail-type``: ``Credential Accepted``, ``Identity Failed``, ``OTP Failed``...
    detail_type: str
    #: The whole decrypted event, as Humanos sent it.
    payload: dict[str, Any]


def shape_for(api_version: str | None) -> str:
    """The documented shape an ``api_version`` reads as; WebhookEventError for a malformed version."""
    if api_version is None:
        return SHAPE_2026_04_14
    if not _VERSION.fullmatch(api_version) or not _is_date(api_version):
        raise WebhookEventError("api_version must be a date YYYY-MM-DD such as 2026-05-17")
    if api_version < SHAPE_2026_05_17:
        return SHAPE_2026_04_14
    return SHAPE_2026_05_17 if api_version < SHAPE_2026_09_01 else SHAPE_2026_09_01


def parse_event(plaintext: bytes) -> WebhookEvent:
    """Validate a decrypted webhook for its ``api_version`` and normalise it; WebhookEventError names the field."""
    try:
        payload = wire.loads(plaintext.decode("utf-8"), max_depth=MAX_DEPTH)
    except (UnicodeDecodeError, SerialisationError):
        raise WebhookEventError("the decrypted webhook is not UTF-8 JSON") from None
    if not isinstance(payload, dict):
        raise WebhookEventError("the decrypted webhook is JSON but not an object")
    event = _Reader(payload, "")
    event_type = event.text("eventType")
    assert event_type is not None  # required
    if event_type not in EVENT_TYPES:
        raise WebhookEventError(
            f"eventType {safe_id(event_type[:64])!r} is not one the receiver knows ({', '.join(EVENT_TYPES)})"
        )
    api_version = event.text("api_version", required=False)
    shape = shape_for(api_version)
    needed = event_type != TEST  # a test event's other fields are undocumented
    request_id = event.text("requestId", required=needed)
    event.text("issuerDid", required=needed)
    internal_id = event.text("internalId", required=False)
    user = event.child("user", required=needed)
    contact = user_id = None
    if user is not None:
        contact = user.text("contact")
        user_id = user.text("did" if shape == SHAPE_2026_04_14 else "id")
        user.text("internalId", required=False)
    # Up to 2026-04-14 every event carries decisionDate; later the date is inside ``decision``.
    legacy_date = event.date("decisionDate") if shape == SHAPE_2026_04_14 else None
    body = _BY_TYPE[event_type](event, shape, legacy_date)
    return WebhookEvent(
        event_type=event_type,
        shape=shape,
        api_version=api_version,
        request_id=request_id,
        internal_id=internal_id,
        contact=contact,
        user_id=user_id,
        credential_id=body.credential_id,
        decision=body.decision,
        decision_date=body.decision.get("date"),
        detail_type=body.detail_type,
        payload=payload,
    )


@dataclass(frozen=True)
class _Body:
    detail_type: str
    decision: dict[str, Any]
    credential_id: str | None = None


def _credential(event: _Reader, shape: str, legacy_date: str | None) -> _Body:
    if shape == SHAPE_2026_04_14:
        action, when = event.choice("action", ACTIONS), legacy_date
    else:
        decision = event.child("decision")
        assert decision is not None
        action, when = decision.choice("action", ACTIONS), decision.date("date")
    credential = event.child("credential")
    assert credential is not None
    credential_id = credential.text("id")
    allowed = CREDENTIAL_STATUSES[shape]
    status = credential.text("status", required=False)
    if allowed is not None and status is not None and status not in allowed:
        raise WebhookEventError(f"credential.status must be one of {', '.join(sorted(allowed))} (shape {shape})")
    accepted = action == "accept"
    return _Body(
        "Credential Accepted" if accepted else "Credential Rejected",
        {"action": action, "accepted": accepted, "date": when},
        credential_id,
    )


def _identity(event: _Reader, shape: str, legacy_date: str | None) -> _Body:
    event.child("identity", required=shape == SHAPE_2026_04_14)
    decision = event.child("decision")
    assert decision is not None
    success = decision.boolean("success")
    is_fraud = decision.boolean("isFraud", required=shape != SHAPE_2026_09_01)
    when = legacy_date if shape == SHAPE_2026_04_14 else decision.date("date")
    decision.text("message", required=False)
    return _Body(
        "Identity Verified" if success else "Identity Failed",
        {"success": success, "isFraud": is_fraud, "date": when},
    )


def _otp_failed(event: _Reader, shape: str, legacy_date: str | None) -> _Body:
    otp = event.child("otp")
    assert otp is not None
    otp.text("resendEndpoint")
    error = otp.child("error")
    assert error is not None
    code = error.text("code")
    error.text("message", required=False)
    decision: dict[str, Any] = {"errorCode": code}
    if legacy_date is not None:
        decision["date"] = legacy_date
    return _Body("OTP Failed", decision)


def _test(event: _Reader, shape: str, legacy_date: str | None) -> _Body:
    event.text("message", required=False)
    return _Body("Test", {"date": legacy_date} if legacy_date is not None else {})


_BY_TYPE = {CREDENTIAL: _credential, IDENTITY: _identity, OTP_FAILED: _otp_failed, TEST: _test}


class _Reader:
    """Typed reads of one JSON object's fields; errors name the field's path, never its value."""

    def __init__(self, data: dict[str, Any], path: str) -> None:
        self.data = data
        self.path = path

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str, required: bool, kind: str) -> Any:
        value = self.data.get(key)
        if value is None and required:
            raise WebhookEventError(f"{self._where(key)} is missing; Humanos sends {kind} there")
        return value

    def text(self, key: str, *, required: bool = True) -> str | None:
        value = self._get(key, required, "a string")
        if value is not None and (not isinstance(value, str) or not value):
            raise WebhookEventError(f"{self._where(key)} must be a non-empty string")
        return value

    def choice(self, key: str, choices: tuple[str, ...]) -> str:
        value = self.text(key)
        if value not in choices:
            raise WebhookEventError(f"{self._where(key)} must be one of {', '.join(choices)}")
        return value

    def boolean(self, key: str, *, required: bool = True) -> bool | None:
        value = self._get(key, required, "true or false")
        if value is not None and not isinstance(value, bool):
            raise WebhookEventError(f"{self._where(key)} must be true or false")
        return value

    def date(self, key: str) -> str:
        value = self.text(key)
        assert value is not None
        try:
            datetime.fromisoformat(value)
        except ValueError:
            raise WebhookEventError(f"{self._where(key)} must be an ISO 8601 date-time") from None
        return value

    def child(self, key: str, *, required: bool = True) -> _Reader | None:
        value = self._get(key, required, "an object")
        if value is None:
            return None
        if not isinstance(value, dict):
            raise WebhookEventError(f"{self._where(key)} must be an object")
        return _Reader(value, self._where(key))


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True
