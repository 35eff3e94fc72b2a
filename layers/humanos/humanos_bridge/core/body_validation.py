"""Validation and normalisation of a ``POST /request`` body for a given Humanos API version.

Every body a mapping produces passes through :func:`validate_body` before it is signed: Humanos
answers a bad body with a 400 only after it has been sent, and some mistakes (a wrong contact)
would message the wrong person. Problems name the field and index, and never quote a contact.
The same field checks run on the constant parts of a mapping file when it loads.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any, NamedTuple

from humanos_bridge.core import wire
from humanos_bridge.core.errors import ConfigError, InvalidBodyError, SerialisationError

#: API versions whose request body we know. Later SDK versions pin 2026-07-07 and 2026-09-01.
KNOWN_API_VERSIONS: tuple[str, ...] = ("2026-05-17", "2026-07-07", "2026-09-01")
#: From this version ``contacts`` is replaced by ``users[]``.
USERS_SINCE = "2026-07-07"
#: Per-request limits (undocumented; the figures Humanos's own material uses).
MAX_RECIPIENTS = 20
MAX_CREDENTIALS = 10
SECURITY_LEVELS: tuple[str, ...] = ("CONTACT", "ORGANIZATION_KYC", "HUMANOS_KYC", "HUMANOS_REVALIDATION")
#: ``users[].language`` values Humanos takes (API 2026-07-07 on): the enum of ``GenerateRequestUserDto.language`` in
#: its OpenAPI document (SDK 1.2.0). Portuguese is PRT there, not ISO 639-2's POR. The documentation of the older
#: top-level ``language`` (2026-05-17) gives only an example (ENG), so there only the shape is checked.
USER_LANGUAGES: tuple[str, ...] = ("ENG", "PRT", "SPA", "FRA")
#: Inline credential types Humanos takes: the enum of ``CredentialDto.type`` in its OpenAPI document (as the
#: official SDK 1.2.0 ships it). Written in any case in a mapping, sent in capitals, as the enum spells them.
CREDENTIAL_TYPES: tuple[str, ...] = ("DOCUMENT", "JSON", "POLICY")
#: A request must name what is asked for through at least one of these.
RESOURCE_FIELDS: tuple[str, ...] = ("groupIds", "resourcesIds", "credentials")

_COMMON_FIELDS = ("securityLevel", "groupIds", "resourcesIds", "credentials", "name", "redirectUrl", "internalId")
_FIELDS_CONTACTS = ("contacts", *_COMMON_FIELDS, "language", "authorizedDIDs", "expectedDocIds", "pubKey")
_FIELDS_USERS = ("users", *_COMMON_FIELDS, "authorizedDIDs", "iframe")
_USER_FIELDS = ("contact", "secondaryContact", "docId", "language", "signerQuality")
_CREDENTIAL_FIELDS = (
    "type",
    "name",
    "scope",
    "validFrom",
    "validUntil",
    "description",
    "internalId",
    "data",
    "placements",
)
_DOC_ID_FIELDS = ("contact", "docId")

#: Object lists inside a body: their item fields and the required ones (checked in templates too).
NESTED_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "users": (_USER_FIELDS, ("contact",)),
    "credentials": (_CREDENTIAL_FIELDS, ("type", "name")),
    "expectedDocIds": (_DOC_ID_FIELDS, _DOC_ID_FIELDS),
}

#: Fields that moved when ``users[]`` arrived, with where they went.
_MOVED_IN_USERS = {
    "contacts": "was replaced by users[] in API 2026-07-07; write users: [{contact: ...}]",
    "language": "moved into users[].language in API 2026-07-07; set it per user",
    "pubKey": "moved into iframe in API 2026-07-07; write iframe: {pubKey: ...}",
    "expectedDocIds": "moved into users[].docId in API 2026-07-07; set docId per user",
}
_NEEDS_USERS = {
    "users": "needs API 2026-07-07 or later; write contacts: [...] or raise apiVersion",
    "iframe": "needs API 2026-07-07 or later; use pubKey or raise apiVersion",
}

_EMAIL = re.compile(
    r"(?P<local>[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)
# Separators people type inside phone numbers; removed before checking the E.164 shape.
_PHONE_SEPARATORS = re.compile(r"[\s\-.()\[\]]")
_PHONE = re.compile(r"\+[1-9][0-9]{7,14}")
_BAD_CONTACT = "not an e-mail address or a +international phone number (8 to 15 digits after the +)"
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class Problem(NamedTuple):
    """One thing wrong with a body: ``where`` inside it (``contacts[2]``) and ``what`` (with the fix)."""

    where: str
    what: str

    def at(self, prefix: str) -> str:
        """Render under ``prefix`` (``body`` or a mapping-file path)."""
        joint = "" if not self.where or self.where.startswith("[") else "."
        return f"{prefix}{joint}{self.where}: {self.what}"


def uses_users(api_version: str) -> bool:
    """True when ``api_version`` takes ``users[]`` instead of ``contacts``."""
    return api_version >= USERS_SINCE


def recipients_field(api_version: str) -> str:
    return "users" if uses_users(api_version) else "contacts"


def body_fields(api_version: str) -> tuple[str, ...]:
    """Top-level fields of the body for ``api_version``."""
    return _FIELDS_USERS if uses_users(api_version) else _FIELDS_CONTACTS


def check_api_version(api_version: str) -> None:
    if api_version not in KNOWN_API_VERSIONS:
        raise ConfigError(
            f"unsupported Humanos API version {api_version!r}; use one of {', '.join(KNOWN_API_VERSIONS)}"
        )


def json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, for messages that must not show the value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def normalise_contact(value: str) -> str | None:
    """The contact as Humanos should get it, or None when it cannot be one.

    E-mails are trimmed and their domain lower-cased; phones lose spaces, dashes, dots and
    brackets and must then be ``+`` and 8 to 15 digits.
    """
    text = value.strip()
    if "@" in text:
        match = _EMAIL.fullmatch(text)
        if match is None or len(text) > 254 or len(match["local"]) > 64:
            return None
        return f"{match['local']}@{match['domain'].lower()}"
    phone = _PHONE_SEPARATORS.sub("", text)
    return phone if _PHONE.fullmatch(phone) else None


def unknown_field_problem(where: str, key: str, valid: tuple[str, ...]) -> Problem:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"valid fields: {', '.join(valid)}"
    return Problem(where, f"unknown field; {hint}")


def required_problems(present: set[str], api_version: str) -> list[Problem]:
    """What is missing from a body (or a template) with top-level keys ``present``."""
    problems = []
    recipients = recipients_field(api_version)
    if recipients not in present:
        example = "users: [{contact: ...}]" if recipients == "users" else "contacts: [...]"
        problems.append(Problem(recipients, f"required for API {api_version}; add {example}"))
    if not present.intersection(RESOURCE_FIELDS):
        problems.append(
            Problem("groupIds", "one of groupIds, resourcesIds or credentials is required; say what to ask for")
        )
    return problems


def field_name_problems(name: str, api_version: str) -> list[Problem]:
    """Problems with a top-level field's name alone: unknown, or moved in ``api_version``."""
    if uses_users(api_version) and name in _MOVED_IN_USERS:
        return [Problem(name, _MOVED_IN_USERS[name])]
    if not uses_users(api_version) and name in _NEEDS_USERS:
        return [Problem(name, _NEEDS_USERS[name])]
    if name not in _CHECKERS:
        return [unknown_field_problem(name, name, body_fields(api_version))]
    return []


def check_field(name: str, value: Any, api_version: str) -> tuple[Any, list[Problem]]:
    """Check one top-level field; return its normalised value and the problems found."""
    problems = field_name_problems(name, api_version)
    if problems:
        return value, problems
    return _CHECKERS[name](value, name, problems), problems


def check_body(body: Any, api_version: str) -> tuple[dict[str, Any], list[Problem]]:
    """Normalise ``body`` and list every problem with it for ``api_version``."""
    check_api_version(api_version)
    if not isinstance(body, dict):
        return {}, [Problem("", f"must be an object, got {json_type(body)}")]
    problems = required_problems(set(body), api_version)
    normalised: dict[str, Any] = {}
    for name, value in body.items():
        normalised[name], found = check_field(name, value, api_version)
        problems.extend(found)
    if not problems:
        try:
            wire.check_writable(normalised)  # dumps's checks without writing the text (a Stripe body: 9 -> 3 µs)
        except SerialisationError as exc:
            # wire names the place as "$.a.b"; its messages never quote values.
            where, _, what = exc.message.partition(": ")
            problems.append(Problem(where.removeprefix("$").removeprefix("."), what))
    return normalised, problems


def validate_body(body: Any, api_version: str) -> dict[str, Any]:
    """Return the normalised body, or raise InvalidBodyError listing every problem.

    Raises
    ------
    InvalidBodyError
        ``.path`` is the first problem's place (``body.contacts[2]``), ``.details["errors"]`` all of them.
    """
    normalised, problems = check_body(body, api_version)
    if problems:
        lines = [p.at("body") for p in problems]
        raise InvalidBodyError(
            "; ".join(lines),
            path=problems[0].at("body").partition(": ")[0],
            details={"reason": "invalid_body", "errors": lines},
        )
    return normalised


# -- field checkers: (value, where, problems) -> normalised value --------------------------------

Checker = Callable[[Any, str, list[Problem]], Any]


def _list(value: Any, where: str, problems: list[Problem], *, noun: str, limit: int | None = None) -> bool:
    if not isinstance(value, list):
        problems.append(Problem(where, f"must be a list of {noun}, got {json_type(value)}"))
        return False
    if not value:
        problems.append(Problem(where, f"is empty; give at least one of the {noun} or leave the field out"))
        return False
    if limit is not None and len(value) > limit:
        problems.append(Problem(where, f"{len(value)} {noun}, at most {limit} per request; split the request"))
        return False
    return True


def _string(value: Any, where: str, problems: list[Problem]) -> Any:
    if not isinstance(value, str) or not value.strip():
        got = "an empty string" if isinstance(value, str) else json_type(value)
        problems.append(Problem(where, f"must be a non-empty string, got {got}"))
    return value


_LANGUAGE = re.compile(r"[A-Z]{3}")
_SHOWABLE_LANGUAGE = re.compile(r"[A-Za-z_-]{1,12}")


def _language(value: Any, where: str, problems: list[Problem]) -> Any:
    """API 2026-05-17 names languages with three capital letters (its documentation's example: ENG)."""
    if isinstance(value, str) and not _LANGUAGE.fullmatch(value):
        # Shown only when it cannot be a contact: a locale such as pt-PT, the usual mistake.
        shown = f" {value!r}" if _SHOWABLE_LANGUAGE.fullmatch(value) else ""
        problems.append(
            Problem(
                where,
                f"must be a three-letter language code in capitals such as ENG or PRT, got{shown or ' another text'}; "
                f"map locales with lookup(), e.g. {_LOOKUP_EXAMPLE}",
            )
        )
        return value
    return _string(value, where, problems)


def _user_language(value: Any, where: str, problems: list[Problem]) -> Any:
    """``users[].language`` (API 2026-07-07 on): one of Humanos's enum, which is not ISO 639-2 throughout."""
    if isinstance(value, str) and value in USER_LANGUAGES:
        return value
    if not isinstance(value, str) or not value.strip():
        return _string(value, where, problems)
    shown = f" {value!r}" if _SHOWABLE_LANGUAGE.fullmatch(value) else " another text"
    # POR is ISO 639-2's Portuguese, and the code people reach for; Humanos spells it PRT.
    portuguese = "; Portuguese is PRT for Humanos, not ISO 639-2's POR" if value.upper() == "POR" else ""
    problems.append(
        Problem(
            where,
            f"must be one of {', '.join(USER_LANGUAGES)} (the languages Humanos takes), got{shown}{portuguese}; "
            f"map locales with lookup(), e.g. {_LOOKUP_EXAMPLE}",
        )
    )
    return value


_LOOKUP_EXAMPLE = """default(lookup(`{"pt-PT": "PRT"}`, locale), 'ENG')"""


def _internal_id(value: Any, where: str, problems: list[Problem]) -> Any:
    # The look-up after a lost answer sends the internalId in a URL, as UTF-8, and a lone surrogate has no
    # UTF-8 form: refused before the request exists, so that no request is made that could not be found again.
    _string(value, where, problems)
    if isinstance(value, str) and _LONE_SURROGATE.search(value):
        problems.append(
            Problem(
                where,
                "holds a lone surrogate (a \\ud800-\\udfff escape without its pair), which is not text: the request "
                "could not be looked up by it after a lost answer; send valid Unicode, or remove the rule's internalId "
                "(the idempotency key is then used)",
            )
        )
    return value


def _contact(value: Any, where: str, problems: list[Problem]) -> Any:
    if not isinstance(value, str):
        problems.append(
            Problem(where, f"must be a string ({_BAD_CONTACT.removeprefix('not ')}), got {json_type(value)}")
        )
        return value
    normalised = normalise_contact(value)
    if normalised is None:
        problems.append(Problem(where, _BAD_CONTACT))
        return value
    return normalised


def _no_duplicates(contacts: list[Any], where: Callable[[int], str], problems: list[Problem]) -> None:
    first: dict[str, int] = {}
    for index, contact in enumerate(contacts):
        if not isinstance(contact, str):
            continue
        if contact in first:
            problems.append(Problem(where(index), f"repeats {where(first[contact])}; give each person once"))
        else:
            first[contact] = index


def _contacts(value: Any, where: str, problems: list[Problem]) -> Any:
    if not _list(value, where, problems, noun="contacts", limit=MAX_RECIPIENTS):
        return value
    out = [_contact(item, f"{where}[{i}]", problems) for i, item in enumerate(value)]
    _no_duplicates(out, lambda i: f"{where}[{i}]", problems)
    return out


def _object(
    value: Any, where: str, problems: list[Problem], fields: dict[str, Checker], required: tuple[str, ...]
) -> Any:
    if not isinstance(value, dict):
        problems.append(Problem(where, f"must be an object, got {json_type(value)}"))
        return value
    out: dict[str, Any] = {}
    for key in required:
        if key not in value:
            problems.append(Problem(f"{where}.{key}", "required; add it"))
    for key, item in value.items():
        checker = fields.get(key)
        if checker is None:
            problems.append(unknown_field_problem(f"{where}.{key}", key, tuple(fields)))
            out[key] = item
        else:
            out[key] = checker(item, f"{where}.{key}", problems)
    return out


def _objects(
    value: Any, where: str, problems: list[Problem], *, noun: str, limit: int | None, fields: dict[str, Checker],
    required: tuple[str, ...],
) -> Any:  # fmt: skip
    if not _list(value, where, problems, noun=noun, limit=limit):
        return value
    return [_object(item, f"{where}[{i}]", problems, fields, required) for i, item in enumerate(value)]


def _any(value: Any, where: str, problems: list[Problem]) -> Any:
    return value


_SHOWABLE_WORD = re.compile(r"[A-Za-z_-]{1,40}")


def _credential_type(value: Any, where: str, problems: list[Problem]) -> Any:
    if isinstance(value, str) and value.strip().upper() in CREDENTIAL_TYPES:
        return value.strip().upper()
    if not isinstance(value, str) or not value.strip():
        return _string(value, where, problems)
    # Shown only when it cannot be a contact (a word such as payment-plan), as for languages.
    shown = f" {value!r}" if _SHOWABLE_WORD.fullmatch(value) else " another text"
    problems.append(
        Problem(
            where,
            f"must be one of {', '.join(CREDENTIAL_TYPES)} (the credential types Humanos takes), got{shown}; "
            "JSON is for general use, DOCUMENT for a document, POLICY for a mandate bound to an action",
        )
    )
    return value


_USER_CHECKERS: dict[str, Checker] = {
    "contact": _contact,
    "secondaryContact": _contact,
    "docId": _string,
    "language": _user_language,
    "signerQuality": _string,
}
_CREDENTIAL_CHECKERS: dict[str, Checker] = {
    **{key: _string for key in _CREDENTIAL_FIELDS},
    "type": _credential_type,
    "data": _any,
    "placements": _any,
}
_DOC_ID_CHECKERS: dict[str, Checker] = {"contact": _contact, "docId": _string}


#: The checkers of the fields inside each item of an object list, by the list's field.
_ITEM_CHECKERS: dict[str, dict[str, Checker]] = {
    "users": _USER_CHECKERS,
    "credentials": _CREDENTIAL_CHECKERS,
    "expectedDocIds": _DOC_ID_CHECKERS,
}


def item_field_problems(field: str, key: str, value: Any, where: str) -> list[Problem]:
    """Problems with one field ``key`` of an item of the object list ``field`` (``credentials[0].type``).

    For templates whose items hold expressions beside constants: the constants can still be checked at load.
    """
    checker = _ITEM_CHECKERS.get(field, {}).get(key)
    problems: list[Problem] = []
    if checker is not None:
        checker(value, where, problems)
    return problems


def _users(value: Any, where: str, problems: list[Problem]) -> Any:
    out = _objects(
        value, where, problems, noun="users", limit=MAX_RECIPIENTS, fields=_USER_CHECKERS, required=("contact",)
    )
    if isinstance(out, list) and out is not value:
        contacts = [u.get("contact") if isinstance(u, dict) else None for u in out]
        _no_duplicates(contacts, lambda i: f"{where}[{i}].contact", problems)
    return out


def _credentials(value: Any, where: str, problems: list[Problem]) -> Any:
    return _objects(
        value,
        where,
        problems,
        noun="credentials",
        limit=MAX_CREDENTIALS,
        fields=_CREDENTIAL_CHECKERS,
        required=("type", "name"),
    )


def _expected_doc_ids(value: Any, where: str, problems: list[Problem]) -> Any:
    return _objects(
        value, where, problems, noun="documents", limit=MAX_RECIPIENTS, fields=_DOC_ID_CHECKERS, required=_DOC_ID_FIELDS
    )


def _ids(value: Any, where: str, problems: list[Problem]) -> Any:
    if _list(value, where, problems, noun="ids"):
        for index, item in enumerate(value):
            _string(item, f"{where}[{index}]", problems)
    return value


def _security_level(value: Any, where: str, problems: list[Problem]) -> Any:
    if value not in SECURITY_LEVELS or not isinstance(value, str):
        problems.append(Problem(where, f"must be one of {', '.join(SECURITY_LEVELS)}"))
    return value


def _url(value: Any, where: str, problems: list[Problem]) -> Any:
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        problems.append(Problem(where, "must be an http(s) URL such as https://example.com/done"))
    return value


def _iframe(value: Any, where: str, problems: list[Problem]) -> Any:
    if not isinstance(value, dict):
        problems.append(Problem(where, f"must be an object, got {json_type(value)}"))
    return value


_CHECKERS: dict[str, Checker] = {
    "contacts": _contacts,
    "users": _users,
    "securityLevel": _security_level,
    "groupIds": _ids,
    "resourcesIds": _ids,
    "credentials": _credentials,
    "name": _string,
    "language": _language,
    "redirectUrl": _url,
    "internalId": _internal_id,
    "authorizedDIDs": _ids,
    "expectedDocIds": _expected_doc_ids,
    "pubKey": _string,
    "iframe": _iframe,
}
