"""Deciding a stored request as its people would: which webhooks Humanos sends for each outcome.

- ``accept`` / ``reject``: each person decides every credential of the request, one ``credential`` event per
  person and credential, in that order. A credential stays DRAFT until everyone asked has accepted, then
  becomes ACTIVE; one rejection makes it REJECTED (INACTIVE from 2026-09-01).
- ``kyc-pass`` / ``kyc-fail``: one ``identity`` event per person. Humanos checks identities only for requests
  that ask for it, so a request at security level ``CONTACT`` is refused.
- ``otp-fail``: one ``otp.failed`` event per person reached by SMS (Humanos sends none for e-mail), whose
  ``otp.resendEndpoint`` is the sandbox's own ``PATCH /request/resend/{id}?contact=...``.

Pure: the caller passes the stored request, the webhook version and a clock, and gets the events back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from humanos_bridge_local.sandbox.webhook_events import (
    CREDENTIAL,
    IDENTITY,
    OTP_ERRORS,
    OTP_FAILED,
    Grant,
    credential_event,
    identity_event,
    iso,
    otp_failed_event,
)

ACCEPT = "accept"
REJECT = "reject"
KYC_PASS = "kyc-pass"
KYC_FAIL = "kyc-fail"
OTP_FAIL = "otp-fail"
OUTCOMES = (ACCEPT, REJECT, KYC_PASS, KYC_FAIL, OTP_FAIL)
#: The event type each outcome produces.
EVENT_TYPE_OF = {ACCEPT: CREDENTIAL, REJECT: CREDENTIAL, KYC_PASS: IDENTITY, KYC_FAIL: IDENTITY, OTP_FAIL: OTP_FAILED}
#: Outcomes a request can receive once: a credential or an identity is decided for good (an SMS can fail again).
FINAL_KINDS = (CREDENTIAL, IDENTITY)


class DecisionError(Exception):
    """The request cannot be decided this way. ``status`` is the HTTP status the admin route answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def check_outcome(outcome: str) -> str:
    if outcome not in OUTCOMES:
        raise DecisionError(400, f"outcome must be one of {', '.join(OUTCOMES)}")
    return outcome


def check_otp_error(code: str) -> str:
    if code not in OTP_ERRORS:
        raise DecisionError(400, f"otp error code must be one of {', '.join(OTP_ERRORS)}")
    return code


def events_for(
    record: dict[str, Any],
    outcome: str,
    version: str,
    *,
    base_url: str,
    otp_error: str,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[dict[str, Any]]:
    """The webhooks Humanos sends when ``record``'s people decide ``outcome`` (DecisionError when it cannot)."""
    check_outcome(outcome)
    if record["canceledAt"] is not None:
        raise DecisionError(409, "Request is canceled: nobody can decide it any more")
    if outcome in (ACCEPT, REJECT):
        return _credential_events(record, outcome == ACCEPT, version, now)
    if outcome in (KYC_PASS, KYC_FAIL):
        if record["securityLevel"] == "CONTACT":
            raise DecisionError(
                409, "Request asks for no identity check (securityLevel CONTACT); create it with a KYC security level"
            )
        return [identity_event(record, s, outcome == KYC_PASS, version, iso(now())) for s in record["subjects"]]
    check_otp_error(otp_error)
    phones = [s for s in record["subjects"] if str(s["contact"]).startswith("+")]
    if not phones:
        raise DecisionError(409, "Request reaches nobody by SMS: otp.failed is sent for phone numbers only")
    return [
        otp_failed_event(
            record, s, resend_endpoint(base_url, record["id"], s["contact"]), otp_error, version, iso(now())
        )
        for s in phones
    ]


def resend_endpoint(base_url: str, request_id: str, contact: str) -> str:
    """The sandbox's ``PATCH /request/resend/{id}?contact=...`` as a URL (``+`` encoded, or it reads as a space)."""
    return f"{base_url}/request/resend/{request_id}?contact={quote(contact, safe='')}"


def _credential_events(
    record: dict[str, Any], accepted: bool, version: str, now: Callable[[], datetime]
) -> list[dict[str, Any]]:
    grants: dict[str, list[Grant]] = {c["id"]: [] for c in record["credentials"]}
    events = []
    # Person by person, as each one decides every credential of the request in one visit.
    for subject in record["subjects"]:
        for credential in record["credentials"]:
            decided = grants[credential["id"]]
            decided.append(Grant(subject, accepted, iso(now())))
            events.append(credential_event(record, credential, decided, version))
    return events
