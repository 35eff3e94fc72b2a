"""The plaintext of Humanos's webhooks, in the shape of the organisation's webhook API version.

Four event types (``credential``, ``identity``, ``otp.failed``, ``test``) and three shapes, from the table in
the Humanos notes and, for 2026-09-01, the official SDK's generated models (``CredentialEvent``,
``IdentityEvent``, ``OtpFailedEvent``, ``TestEvent`` in ``humanos`` 1.2.0):

- up to 2026-04-14: ``user{contact, did}``, a top-level ``decisionDate`` on every event, a credential event's
  top-level ``action`` and ``credential{..., proofs[], data[]}``, ``identity`` with ``decision{success, isFraud,
  riskScore, message?}``;
- from 2026-05-17: ``user{contact, id}`` (the DID moved to ``id``), no ``decisionDate`` (a decision's date is
  ``decision.date``), ``credential{..., w3cCredential, description, tags[], decisions[]}`` with the statuses
  DRAFT, ACTIVE, REJECTED; ``identity`` optional, ``decision{success, isFraud, date, riskScore?, message?}``;
- from 2026-09-01: credential statuses DRAFT, ACTIVE, INACTIVE (with ``inactiveAt``), ``executionsRemaining``,
  the W3C credential's singular ``evidence``/``proof``; ``decision{success, message?, date}`` and more identity
  fields.

Where the notes are silent the sandbox picks one answer and says so here: ``otp.failed`` and ``test`` carry no
``decision`` from 2026-05-17 (the SDK's models have none), an event always carries ``api_version`` (the notes:
"each payload carries api_version"), ``internalId`` is left out when the request has none, and a rejected
credential is sealed without a proof. Identity data is made up and fixed: nothing of a person is derived.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, NamedTuple

from humanos_bridge_local.sandbox.shapes import INACTIVE_SINCE, ISSUER_DID, SPEC_VERSION, W3C_CONTEXT
from humanos_bridge_local.sandbox.validation import VersionError

#: Webhook API versions the sandbox can shape, oldest first; a date in between selects the latest not after it.
WEBHOOK_VERSIONS = ("2026-04-14", "2026-05-17", "2026-07-07", "2026-09-01")
#: From this version ``user.id`` replaces ``user.did`` and ``decision.date`` replaces ``decisionDate``.
DECISION_OBJECT_SINCE = "2026-05-17"
CREDENTIAL = "credential"
IDENTITY = "identity"
OTP_FAILED = "otp.failed"
TEST = "test"
EVENT_TYPES = (CREDENTIAL, IDENTITY, OTP_FAILED, TEST)
#: Codes Humanos has been seen to send in ``otp.error.code``, with the message the sandbox sends beside each.
OTP_ERRORS = {
    "UNDELIVERABLE": "The SMS could not be delivered to this number",
    "INVALID_PHONE_NUMBER": "The phone number is not valid",
    "CARRIER_REJECTED": "The carrier rejected the SMS",
    "RATE_LIMITED": "Too many SMS were sent to this number",
    "BLOCKED_DESTINATION": "SMS to this destination are blocked",
}
DEFAULT_OTP_ERROR = "UNDELIVERABLE"
TEST_MESSAGE = "This is a test webhook from the Humanos sandbox"
#: The person of a ``test`` event: the dashboard's test button names nobody real.
TEST_SUBJECT = {"contact": "test@sandbox.humanos.invalid", "id": "test"}
#: A made-up identity document, the same for everyone (identity data is personal data: the sandbox invents it).
SAMPLE_IDENTITY = {
    "fullName": "Sandbox Test Person",
    "gender": "X",
    "birth": "1990-01-01T00:00:00.000Z",
    "docId": "SBX000001",
    "fullDocId": "SBX000001 0 ZZ0",
    "expiresAt": "2035-01-01T00:00:00.000Z",
    "issueDate": "2025-01-01T00:00:00.000Z",
    "placeOfBirth": "Sandbox",
    "documentType": "ID_CARD",
    "countryAlpha3": "PRT",
}
#: What 2026-09-01 adds to the identity.
SAMPLE_IDENTITY_2026_09_01 = {
    "nationality": "PRT",
    "addresses": ["1 Sandbox Street, Lisbon"],
    "height": 1.75,
    "weight": 70,
    "placeOfIssue": "Lisbon",
}


class Grant(NamedTuple):
    """One person's decision on one credential."""

    subject: dict[str, Any]
    accepted: bool
    at: str


def resolve_webhook_version(text: str, today: date) -> str:
    """The webhook shape a pinned version date selects (VersionError when malformed, future or too old)."""
    try:
        asked = date.fromisoformat(text.strip())
    except ValueError:
        raise VersionError("a webhook API version must be a date in YYYY-MM-DD format") from None
    if asked > today:
        raise VersionError(f"webhook API version {text.strip()} is in the future")
    chosen = [v for v in WEBHOOK_VERSIONS if date.fromisoformat(v) <= asked]
    if not chosen:
        raise VersionError(
            f"webhook API version {text.strip()} is not supported; the earliest is {WEBHOOK_VERSIONS[0]}"
        )
    return chosen[-1]


def iso(moment: datetime) -> str:
    """A UTC time as Humanos writes it: milliseconds and ``Z``."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def user_did(subject_id: str) -> str:
    """A person's DID, in Humanos's ``did:web:<host>:user:<id>`` form on a host that can never resolve."""
    return f"{ISSUER_DID}:user:{subject_id}"


# ------------------------------------------------------------------------------------------- events


def credential_event(
    record: dict[str, Any], credential: dict[str, Any], grants: Sequence[Grant], version: str
) -> dict[str, Any]:
    """A ``credential`` event for the last of ``grants`` (the decisions on this credential so far, in order)."""
    last = grants[-1]
    action = "accept" if last.accepted else "reject"
    event = _common(CREDENTIAL, record["id"], record["internalId"], last.subject, version, last.at)
    if version < DECISION_OBJECT_SINCE:  # ISO dates compare correctly as text
        event["action"] = action
    else:
        event["decision"] = {"action": action, "date": last.at}
    event["credential"] = _credential(record, credential, grants, version)
    return event


def identity_event(
    record: dict[str, Any], subject: dict[str, Any], success: bool, version: str, at: str
) -> dict[str, Any]:
    """An ``identity`` event: the KYC of ``subject`` passed (``success``) or failed."""
    event = _common(IDENTITY, record["id"], record["internalId"], subject, version, at)
    message = None if success else "The document could not be verified against the selfie"
    decision: dict[str, Any] = {"success": success}
    if version < INACTIVE_SINCE:
        # Until 2026-09-01 the decision says whether fraud is suspected, with a score.
        decision |= {"isFraud": not success, "riskScore": 0.02 if success else 0.93}
    if version >= DECISION_OBJECT_SINCE:
        decision["date"] = at
    if message is not None:
        decision["message"] = message
    # Up to 2026-04-14 the identity read from the document always comes; later only when the check passed.
    if success or version < DECISION_OBJECT_SINCE:
        event["identity"] = dict(SAMPLE_IDENTITY) | (SAMPLE_IDENTITY_2026_09_01 if version >= INACTIVE_SINCE else {})
    event["decision"] = decision
    return event


def otp_failed_event(
    record: dict[str, Any], subject: dict[str, Any], resend_endpoint: str, code: str, version: str, at: str
) -> dict[str, Any]:
    """An ``otp.failed`` event: every SMS provider failed for ``subject``; ``resend_endpoint`` sends a fresh code."""
    event = _common(OTP_FAILED, record["id"], record["internalId"], subject, version, at)
    event["otp"] = {"resendEndpoint": resend_endpoint, "error": {"code": code, "message": OTP_ERRORS[code]}}
    return event


def dashboard_test_event(request_id: str, version: str, at: str, message: str = TEST_MESSAGE) -> dict[str, Any]:
    """A ``test`` event, as the dashboard's test button sends: the common fields and ``message``."""
    event = _common(TEST, request_id, None, TEST_SUBJECT, version, at)
    event["message"] = message
    return event


def _common(
    event_type: str, request_id: str, internal_id: str | None, subject: dict[str, Any], version: str, at: str
) -> dict[str, Any]:
    did = user_did(subject["id"])
    event: dict[str, Any] = {"eventType": event_type, "requestId": request_id}
    if internal_id is not None:
        event["internalId"] = internal_id
    event["issuerDid"] = ISSUER_DID
    if version < DECISION_OBJECT_SINCE:
        event["user"] = {"contact": subject["contact"], "did": did}
        event["decisionDate"] = at
    else:
        event["user"] = {"contact": subject["contact"], "id": did}
    event["api_version"] = version
    return event


# ------------------------------------------------------------------------------------------- credential


def _status(record: dict[str, Any], grants: Sequence[Grant], version: str) -> str:
    if any(not grant.accepted for grant in grants):
        return "INACTIVE" if version >= INACTIVE_SINCE else "REJECTED"
    # Sealed once every person asked has accepted; until then it stays a draft.
    return "ACTIVE" if len(grants) >= len(record["subjects"]) else "DRAFT"


def _credential(
    record: dict[str, Any], credential: dict[str, Any], grants: Sequence[Grant], version: str
) -> dict[str, Any]:
    status = _status(record, grants, version)
    proofs = [_proof(grants[-1].at)] if status == "ACTIVE" else []
    if version < DECISION_OBJECT_SINCE:
        return {
            "id": credential["id"],
            "resourceType": credential["resourceType"],
            "status": status,
            "proofs": proofs,
            "data": [],
            "name": credential["name"],
            "internalId": credential["internalId"],
        }
    shown: dict[str, Any] = {
        "id": credential["id"],
        "resourceType": credential["resourceType"],
        "status": status,
        "w3cCredential": _w3c(record, credential, grants, proofs, version),
        "name": credential["name"],
        "description": credential["description"],
        "internalId": credential["internalId"],
        "tags": [],
        "decisions": [
            {
                "id": user_did(g.subject["id"]),
                "contact": g.subject["contact"],
                "accepted": g.accepted,
                "decidedAt": g.at,
            }
            for g in grants
        ],
    }
    if version >= INACTIVE_SINCE:
        shown["inactiveAt"] = grants[-1].at if status == "INACTIVE" else None
        # A mandate's uses are spent by verifications, and none has run yet.
        shown["executionsRemaining"] = credential.get("maxExecutions")
    return shown


def _w3c(
    record: dict[str, Any],
    credential: dict[str, Any],
    grants: Sequence[Grant],
    proofs: list[dict[str, Any]],
    version: str,
) -> dict[str, Any]:
    evidence = [
        {"type": "Decision", "mediaType": "application/json", "id": f"urn:via:evidence:{uuid.uuid4()}"}
        for grant in grants
        if grant.accepted
    ]
    shown: dict[str, Any] = {
        "@context": [W3C_CONTEXT],
        "id": credential["id"],
        "type": ["VerifiableCredential"],
        "issuer": ISSUER_DID,
        "validFrom": credential.get("validFrom") or record["createdAt"],
        "credentialSubject": {},
    }
    if credential.get("validUntil"):
        shown["validUntil"] = credential["validUntil"]
    if version >= INACTIVE_SINCE:
        shown |= {"specVersion": SPEC_VERSION, "evidence": evidence}
        if proofs:
            shown["proof"] = proofs[0]
    else:
        shown |= {"evidences": evidence, "proofs": proofs}
    return shown


def _proof(at: str) -> dict[str, Any]:
    """The securing STAMP of a sealed credential: the sandbox's proof value is random, and verifies nothing."""
    return {
        "type": "DataIntegrityProof",
        "cryptosuite": "eddsa-jcs-2022",
        "event": "STAMP",
        "created": at,
        "proofPurpose": "assertionMethod",
        "verificationMethod": f"{ISSUER_DID}#key-1",
        "proofValue": f"z{secrets.token_hex(32)}",
    }
