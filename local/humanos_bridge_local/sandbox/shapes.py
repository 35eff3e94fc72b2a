"""What the sandbox answers, per API version: the entities of Humanos's OpenAPI document, built from a stored request.

For 2026-09-01 every answer parses into the official SDK's models (``humanos`` 1.2.0 on PyPI, generated from
that document): ``GenerateRequestEntity`` for a creation, ``RequestsEntity`` of ``RequestEntity`` for the list,
``RequestDetailEntity`` for one request and ``SuccessEntity`` for cancel and resend. Earlier versions differ
where the Humanos notes say they do: credential statuses (``CANCELED`` instead of ``INACTIVE`` with
``inactiveAt``), no ``executionsRemaining``, the plural ``evidences``/``proofs`` in the W3C credential, and a
``code`` beside each subject's ``link``.

Two fields follow Humanos's own field descriptions where the SDK's generated types cannot hold them:
``executionsRemaining`` is null for an unlimited credential ("``null`` means the mandate is unlimited"; SDK 1.2.0
types it as a required number) and ``inactiveAt`` is a time (SDK 1.2.0 types it as an object). A sandbox that
answered what the SDK can read there would teach the bridge answers Humanos says it does not give.

A stored request (``HumanosApi``'s record) holds what no answer shows as such: the body as sent, the version
it was created under, its Idempotency-Key and the resends. Each function here picks the public part.
"""

from __future__ import annotations

from typing import Any

#: From this version credentials end as ``INACTIVE`` with ``inactiveAt``, carry ``executionsRemaining`` and
#: singular ``evidence``/``proof``, and a creation answers a subject's ``link`` without its ``code``.
INACTIVE_SINCE = "2026-09-01"
#: A subject's standing with the issuer until a KYC says otherwise (``NONE | KYC | HUMANOS``).
IDENTITY_STATUS = "NONE"
#: ``kyc`` of a subject whose request asks for an identity check: no check has finished in the sandbox.
KYC_PENDING = "PENDING"
#: Credentials made from group or resource ids: the sandbox has no catalogue to say which type each holds.
CATALOGUE_RESOURCE_TYPE = "DOCUMENT"
#: The issuer named in the (unsigned, draft) W3C credentials: a DID that can never resolve.
ISSUER_DID = "did:web:sandbox.humanos.invalid"
W3C_CONTEXT = "https://www.w3.org/ns/credentials/v2"
#: The signed ``specVersion`` marker of the credentials 2026-09-01 clients receive.
SPEC_VERSION = "0.2"


def success() -> dict[str, Any]:
    """``SuccessEntity``: what cancel and resend answer."""
    return {"success": True}


def created(record: dict[str, Any], version: str) -> dict[str, Any]:
    """``GenerateRequestEntity``: the answer to ``POST /request`` (and to its replays)."""
    return {
        "id": record["id"],
        "credentials": [
            {"id": c["id"], "name": c["name"], "internalId": c["internalId"]} for c in record["credentials"]
        ],
        "subjects": [_created_subject(s, version) for s in record["subjects"]],
    }


def _created_subject(subject: dict[str, Any], version: str) -> dict[str, Any]:
    shown: dict[str, Any] = {"contact": subject["contact"], "id": subject["id"]}
    if subject.get("secondaryContact") is not None:
        shown["secondaryContact"] = subject["secondaryContact"]
    if "link" in subject:
        if version < INACTIVE_SINCE:  # ISO dates compare correctly as text
            shown["code"] = subject["code"]
        shown["link"] = subject["link"]
    return shown


def listed(record: dict[str, Any], version: str) -> dict[str, Any]:
    """``RequestEntity``: one item of ``GET /request``'s ``data``."""
    return {
        **_request_fields(record),
        "subjects": [_listed_subject(s, record) for s in record["subjects"]],
        "credentials": [_listed_credential(c, record, version) for c in record["credentials"]],
        "createdAt": record["createdAt"],
        "canceledAt": record["canceledAt"],
    }


def detail(record: dict[str, Any], version: str) -> dict[str, Any]:
    """``RequestDetailEntity``: the answer to ``GET /request/{id}``."""
    return {
        **_request_fields(record),
        "createdAt": record["createdAt"],
        "canceledAt": record["canceledAt"],
        "subjects": [_detail_subject(s, record) for s in record["subjects"]],
        "credentials": [_detail_credential(c, record, version) for c in record["credentials"]],
    }


def _request_fields(record: dict[str, Any]) -> dict[str, Any]:
    body = record["body"]
    return {
        "id": record["id"],
        "name": record["name"],
        "securityLevel": record["securityLevel"],
        # Up to 2026-05-17 a request-wide field; later versions set it per user, so the request shows none.
        "language": body.get("language"),
        "redirectUrl": body.get("redirectUrl"),
        "internalId": record["internalId"],
    }


def _listed_subject(subject: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {"id": subject["id"], "contact": subject["contact"], "identityStatus": IDENTITY_STATUS}
    if record["securityLevel"] != "CONTACT":
        # Humanos leaves kyc out when the request started no identity verification.
        shown["kyc"] = KYC_PENDING
    if subject.get("secondaryContact") is not None:
        shown["secondaryContact"] = subject["secondaryContact"]
    return shown


def _detail_subject(subject: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    submitted = [subject["contact"], *([subject["secondaryContact"]] if subject.get("secondaryContact") else [])]
    return {
        "contacts": [{"id": subject["contactId"], "contact": subject["contact"]}],
        "organization": {"contacts": submitted},
        "createdAt": subject["registeredAt"],
        **_listed_subject(subject, record),
    }


def _status(record: dict[str, Any], version: str) -> str:
    if record["canceledAt"] is None:
        return "DRAFT"  # nobody decides in the sandbox, so no credential becomes ACTIVE
    return "INACTIVE" if version >= INACTIVE_SINCE else "CANCELED"


def _listed_credential(credential: dict[str, Any], record: dict[str, Any], version: str) -> dict[str, Any]:
    return {
        "id": credential["id"],
        "name": credential["name"],
        "description": credential["description"],
        "internalId": credential["internalId"],
        "resourceType": credential["resourceType"],
        "status": _status(record, version),
    }


def _detail_credential(credential: dict[str, Any], record: dict[str, Any], version: str) -> dict[str, Any]:
    shown = _listed_credential(credential, record, version)
    shown |= {"tags": [], "w3cCredential": _w3c(credential, record, version), "decisions": []}
    if version >= INACTIVE_SINCE:
        shown["inactiveAt"] = record["canceledAt"]
        # No verification ever runs in the sandbox, so every use of a bounded mandate is left.
        shown["executionsRemaining"] = credential["maxExecutions"]
    return shown


def _w3c(credential: dict[str, Any], record: dict[str, Any], version: str) -> dict[str, Any]:
    """The credential while in DRAFT: unsigned, without evidence yet, subjects still to decide."""
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
        shown |= {"specVersion": SPEC_VERSION, "evidence": []}
    else:
        shown |= {"evidences": [], "proofs": []}
    return shown
