"""The sandbox's own rules for ``API-Version`` and the ``POST /request`` body.

Written independently of the bridge's validator on purpose: this is the oracle that validator is
tested against. Messages follow class-validator (what NestJS's ValidationPipe answers) and never
contain the value that failed, so no contact or secret is echoed back.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

#: Versions the sandbox knows, oldest first. A date in between means the latest one not after it.
SUPPORTED_VERSIONS = ("2026-05-17", "2026-07-07", "2026-09-01")
#: What a new API key is pinned to when nothing else is said: Humanos gives new keys the latest version.
LATEST_VERSION = SUPPORTED_VERSIONS[-1]
#: From this version on, ``users: [{contact, ...}]`` replaces ``contacts``.
USERS_SINCE = "2026-07-07"
SECURITY_LEVELS = ("CONTACT", "ORGANIZATION_KYC", "HUMANOS_KYC", "HUMANOS_REVALIDATION")
MAX_CONTACTS = 20
MAX_CREDENTIALS = 10
#: Top-level fields that must be strings when present.
STRING_FIELDS = ("name", "language", "redirectUrl", "internalId", "pubKey")
#: Optional string fields of one ``users[]`` entry.
USER_STRING_FIELDS = ("docId", "language", "signerQuality")

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_PHONE = re.compile(r"^\+\d{8,15}$")
_CONTACT_RULE = "must be a valid e-mail or international phone number"


class VersionError(ValueError):
    """The ``API-Version`` header (or a key's pinned version) is malformed, in the future or too old."""


def resolve_version(header: str | None, today: date, pinned: str) -> str:
    """Map an ``API-Version`` header to the supported version it selects.

    Without the header the version pinned to the API key applies, as on Humanos (``pinned`` was
    resolved when the key was made, so it is one of ``SUPPORTED_VERSIONS``).
    """
    if header is None or not header.strip():
        return pinned
    text = header.strip()
    try:
        if not _DATE.match(text):
            raise ValueError(text)
        asked = date.fromisoformat(text)
    except ValueError:
        raise VersionError("API-Version must be a date in YYYY-MM-DD format") from None
    if asked > today:
        raise VersionError(f"API-Version {text} is in the future")
    chosen = [v for v in SUPPORTED_VERSIONS if date.fromisoformat(v) <= asked]
    if not chosen:
        raise VersionError(f"API-Version {text} is not supported; the earliest is {SUPPORTED_VERSIONS[0]}")
    return chosen[-1]


def resolve_pinned(version: str, today: date) -> str:
    """The supported version a key pinned to ``version`` gets (the rules of the header, but never absent)."""
    if not version.strip():
        raise VersionError(f"a pinned API version must be a date such as {LATEST_VERSION}")
    return resolve_version(version, today, LATEST_VERSION)


def is_object_id(value: str) -> bool:
    """A MongoDB ObjectId as Humanos writes request ids: 24 lower-case hex digits."""
    return bool(_OBJECT_ID.match(value))


def uses_users(version: str) -> bool:
    return version >= USERS_SINCE  # ISO dates compare correctly as text


def is_contact(value: Any) -> bool:
    """An e-mail address or ``+`` followed by 8 to 15 digits."""
    return isinstance(value, str) and bool(_EMAIL.match(value) or _PHONE.match(value))


def users_of(body: dict[str, Any], version: str) -> list[dict[str, Any]]:
    """The people named by a valid body, in order, each as a ``users[]`` entry (``contacts`` hold only contacts)."""
    if uses_users(version):
        return [dict(user) for user in body["users"]]
    return [{"contact": contact} for contact in body["contacts"]]


def validate_create(body: Any, version: str) -> list[str]:
    """All the class-validator messages for a ``POST /request`` body (empty when valid)."""
    if not isinstance(body, dict):
        return ["request body must be a JSON object"]
    errors: list[str] = []
    if uses_users(version):
        if "contacts" in body:
            errors.append("property contacts should not exist")
        errors += _check_users(body.get("users"))
    else:
        if "users" in body:
            errors.append("property users should not exist")
        errors += _check_contacts(body.get("contacts"))
    errors += _check_string_list("groupIds", body.get("groupIds"))
    errors += _check_string_list("resourcesIds", body.get("resourcesIds"))
    errors += _check_credentials(body.get("credentials"))
    if not any(isinstance(body.get(key), list) and body[key] for key in ("groupIds", "resourcesIds", "credentials")):
        errors.append("at least one of groupIds, resourcesIds or credentials must be provided")
    level = body.get("securityLevel")
    if level is not None and level not in SECURITY_LEVELS:
        errors.append(f"securityLevel must be one of the following values: {', '.join(SECURITY_LEVELS)}")
    errors += [f"{key} must be a string" for key in STRING_FIELDS if key in body and not isinstance(body[key], str)]
    return errors


def _check_array(name: str, value: Any, maximum: int) -> list[str]:
    if not isinstance(value, list):
        return [f"{name} must be an array"]
    if not value:
        return [f"{name} must contain at least 1 elements"]
    if len(value) > maximum:
        return [f"{name} must contain no more than {maximum} elements"]
    return []


def _check_contacts(value: Any) -> list[str]:
    errors = _check_array("contacts", value, MAX_CONTACTS)
    if not errors and not all(is_contact(item) for item in value):
        errors.append(f"each value in contacts {_CONTACT_RULE}")
    return errors


def _check_users(value: Any) -> list[str]:
    errors = _check_array("users", value, MAX_CONTACTS)
    if errors:
        return errors
    for index, user in enumerate(value):
        where = f"users.{index}"
        if not isinstance(user, dict):
            errors.append(f"{where} must be an object")
            continue
        if not is_contact(user.get("contact")):
            errors.append(f"{where}.contact {_CONTACT_RULE}")
        if "secondaryContact" in user and not is_contact(user["secondaryContact"]):
            errors.append(f"{where}.secondaryContact {_CONTACT_RULE}")
        errors += [
            f"{where}.{key} must be a string"
            for key in USER_STRING_FIELDS
            if key in user and not isinstance(user[key], str)
        ]
    return errors


def _check_string_list(name: str, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        return [f"{name} must be an array"]
    if not all(isinstance(item, str) and item for item in value):
        return [f"each value in {name} must be a non-empty string"]
    return []


def _check_credentials(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        return ["credentials must be an array"]
    if len(value) > MAX_CREDENTIALS:
        return [f"credentials must contain no more than {MAX_CREDENTIALS} elements"]
    errors: list[str] = []
    for index, credential in enumerate(value):
        where = f"credentials.{index}"
        if not isinstance(credential, dict):
            errors.append(f"{where} must be an object")
            continue
        for key in ("type", "name"):
            field = credential.get(key)
            if field is None or field == "":
                errors.append(f"{where}.{key} should not be empty")
            elif not isinstance(field, str):
                errors.append(f"{where}.{key} must be a string")
        errors += _check_max_executions(where, credential.get("maxExecutions"))
    return errors


def _check_max_executions(where: str, value: Any) -> list[str]:
    # Answers count executions down from this bound, so it must be a whole number the answer can repeat.
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        return [f"{where}.maxExecutions must be an integer number"]
    if value < 1:
        return [f"{where}.maxExecutions must not be less than 1"]
    return []
