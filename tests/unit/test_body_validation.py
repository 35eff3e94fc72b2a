"""Body validation: what Humanos would refuse is refused before signing, naming the field, never the contact."""

from __future__ import annotations

from typing import Any

import pytest

from humanos_bridge.core.body_validation import normalise_contact, validate_body
from humanos_bridge.core.errors import ConfigError, InvalidBodyError, MappingError

V1 = "2026-05-17"
V2 = "2026-07-07"
BAD_CONTACT = "not an e-mail address or a +international phone number (8 to 15 digits after the +)"


def body(**overrides: Any) -> dict[str, Any]:
    """A valid 2026-05-17 body; each test changes one thing."""
    base: dict[str, Any] = {"contacts": ["+351912345678"], "groupIds": ["grp_1"]}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def users_body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"users": [{"contact": "+351912345678"}], "groupIds": ["grp_1"]}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def problems_of(candidate: Any, version: str = V1) -> list[str]:
    with pytest.raises(InvalidBodyError) as caught:
        validate_body(candidate, version)
    assert isinstance(caught.value, MappingError)
    assert caught.value.code == "invalid_body"
    return list(caught.value.details["errors"])


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("+351 912 345 678", "+351912345678"),
        ("+351-912-345-678", "+351912345678"),
        ("+1 (415) 555.0100", "+14155550100"),
        ("  +351912345678\t", "+351912345678"),
        ("+12345678", "+12345678"),
        ("+123456789012345", "+123456789012345"),
        (" Ana@Example.COM ", "Ana@example.com"),
        ("first.last+tag@sub.example.co.uk", "first.last+tag@sub.example.co.uk"),
    ],
)
def test_valid_contacts_are_normalised(raw: str, normalised: str) -> None:
    """Spaces, dashes, dots and brackets leave phones; e-mails are trimmed with a lower-case domain."""
    assert normalise_contact(raw) == normalised
    assert validate_body(body(contacts=[raw]), V1)["contacts"] == [normalised]


@pytest.mark.parametrize(
    "raw",
    [
        "912345678",  # no country code
        "00351912345678",  # 00 instead of +
        "+1234567",  # 7 digits
        "+1234567890123456",  # 16 digits
        "+0351912345678",  # country codes do not start with 0
        "+351 912 345 678 ext 2",
        "+\uff13\uff15\uff11\uff19\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",  # full-width digits
        "ana@",
        "@example.com",
        "ana@example",
        "ana@@example.com",
        "ana smith@example.com",
        "ana..smith@example.com",
        "",
    ],
)
def test_what_cannot_be_a_contact_is_refused_without_echoing_it(raw: str) -> None:
    """The message names the field and index; the contact itself never appears."""
    errors = problems_of(body(contacts=["ana@example.com", raw]))
    assert errors == [
        "body.contacts[1]: not an e-mail address or a +international phone number (8 to 15 digits after the +)"
    ]
    if raw.strip():
        assert all(raw not in line for line in errors)


def test_error_message_never_contains_any_contact() -> None:
    """Even with several bad fields, the exception text and details carry no contact."""
    bad = body(contacts=["912 345 678", "rui@example", "+351912345678", "+351912345678"])
    with pytest.raises(InvalidBodyError) as caught:
        validate_body(bad, V1)
    text = str(caught.value) + repr(caught.value.details)
    for contact in ("912 345 678", "rui@example", "+351912345678", "912345678"):
        assert contact not in text
    assert caught.value.path == "body.contacts[0]"
    assert caught.value.details["errors"] == [
        "body.contacts[0]: not an e-mail address or a +international phone number (8 to 15 digits after the +)",
        "body.contacts[1]: not an e-mail address or a +international phone number (8 to 15 digits after the +)",
        "body.contacts[3]: repeats contacts[2]; give each person once",
    ]


def test_duplicates_are_found_after_normalisation() -> None:
    """Two spellings of one phone number are one person."""
    assert problems_of(body(contacts=["+351 912 345 678", "+351-912-345-678"])) == [
        "body.contacts[1]: repeats contacts[0]; give each person once"
    ]


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        (body(contacts=None), ["body.contacts: required for API 2026-05-17; add contacts: [...]"]),
        (
            body(groupIds=None),
            ["body.groupIds: one of groupIds, resourcesIds or credentials is required; say what to ask for"],
        ),
        (body(contacts=[]), ["body.contacts: is empty; give at least one of the contacts or leave the field out"]),
        (body(groupIds=[]), ["body.groupIds: is empty; give at least one of the ids or leave the field out"]),
        (body(contacts="+351912345678"), ["body.contacts: must be a list of contacts, got string"]),
        (
            body(contacts=[f"+3519123456{i:02d}" for i in range(21)]),
            ["body.contacts: 21 contacts, at most 20 per request; split the request"],
        ),
        (
            body(contacts=[351912345678]),
            [
                "body.contacts[0]: must be a string (an e-mail address or a +international phone number "
                "(8 to 15 digits after the +)), got number"
            ],
        ),
        (
            body(securityLevel="KYC"),
            ["body.securityLevel: must be one of CONTACT, ORGANIZATION_KYC, HUMANOS_KYC, HUMANOS_REVALIDATION"],
        ),
        (body(groupIds=["grp_1", ""]), ["body.groupIds[1]: must be a non-empty string, got an empty string"]),
        (body(resourcesIds=[3]), ["body.resourcesIds[0]: must be a non-empty string, got number"]),
        (body(name=None, language=7), ["body.language: must be a non-empty string, got number"]),
        (
            body(redirectUrl="example.com/done"),
            ["body.redirectUrl: must be an http(s) URL such as https://example.com/done"],
        ),
        (body(groupIdz=["g"]), ["body.groupIdz: unknown field; did you mean 'groupIds'?"]),
        (
            body(groupIds=None, credentials=[{"type": "document"}]),
            ["body.credentials[0].name: required; add it"],
        ),
        (
            body(groupIds=None, credentials=[{"type": "document", "name": "NDA", "nmae": "x"}]),
            ["body.credentials[0].nmae: unknown field; did you mean 'name'?"],
        ),
        (
            body(groupIds=None, credentials=[{"type": "document", "name": "x"}] * 11),
            ["body.credentials: 11 credentials, at most 10 per request; split the request"],
        ),
        (body(groupIds=None, credentials=["NDA"]), ["body.credentials[0]: must be an object, got string"]),
        (
            body(expectedDocIds=[{"contact": "bad", "docId": "123"}]),
            ["body.expectedDocIds[0].contact: " + BAD_CONTACT],
        ),
        (
            body(users=[{"contact": "+351912345678"}]),
            ["body.users: needs API 2026-07-07 or later; write contacts: [...] or raise apiVersion"],
        ),
        (
            body(extra={"x": float("nan")}),
            [
                "body.extra: unknown field; valid fields: contacts, securityLevel, groupIds, resourcesIds, "
                "credentials, name, redirectUrl, internalId, language, authorizedDIDs, expectedDocIds, pubKey"
            ],
        ),
        (
            body(groupIds=None, credentials=[{"type": "document", "name": "x", "data": {"total": float("nan")}}]),
            ["body.credentials[0].data.total: NaN and Infinity are not JSON; replace them with null or a number"],
        ),
        ([], ["body: must be an object, got array"]),
    ],
)
def test_each_invalid_body_names_the_field(candidate: Any, expected: list[str]) -> None:
    """One problem per body, asserted word for word."""
    assert problems_of(candidate) == expected


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        (users_body(users=None), ["body.users: required for API 2026-07-07; add users: [{contact: ...}]"]),
        (
            users_body(contacts=["+351912345678"]),
            ["body.contacts: was replaced by users[] in API 2026-07-07; write users: [{contact: ...}]"],
        ),
        (users_body(language="ENG"), ["body.language: moved into users[].language in API 2026-07-07; set it per user"]),
        (users_body(pubKey="k"), ["body.pubKey: moved into iframe in API 2026-07-07; write iframe: {pubKey: ...}"]),
        (users_body(users=[{"docId": "1"}]), ["body.users[0].contact: required; add it"]),
        (
            users_body(users=[{"contact": "+351912345678", "secondaryContact": "nope"}]),
            ["body.users[0].secondaryContact: " + BAD_CONTACT],
        ),
        (
            users_body(users=[{"contact": "+351912345678", "lang": "ENG"}]),
            ["body.users[0].lang: unknown field; did you mean 'language'?"],
        ),
        (
            users_body(users=[{"contact": "+351 912 345 678"}, {"contact": "+351912345678"}]),
            ["body.users[1].contact: repeats users[0].contact; give each person once"],
        ),
        (users_body(iframe="x"), ["body.iframe: must be an object, got string"]),
    ],
)
def test_users_versions_check_users(candidate: Any, expected: list[str]) -> None:
    """From 2026-07-07 the body names people in users[]; the old fields say where they moved."""
    assert problems_of(candidate, V2) == expected


def test_valid_users_body_is_normalised_and_keeps_key_order() -> None:
    """Contacts inside users[] are normalised like contacts[]; nothing else changes."""
    given = {
        "users": [{"contact": "+351 912 345 678", "secondaryContact": " Ana@EXAMPLE.com", "language": "PRT"}],
        "securityLevel": "HUMANOS_KYC",
        "resourcesIds": ["res_1"],
        "iframe": {"pubKey": "abc"},
    }
    assert validate_body(given, "2026-09-01") == {
        "users": [{"contact": "+351912345678", "secondaryContact": "Ana@example.com", "language": "PRT"}],
        "securityLevel": "HUMANOS_KYC",
        "resourcesIds": ["res_1"],
        "iframe": {"pubKey": "abc"},
    }
    assert given["users"][0]["contact"] == "+351 912 345 678"  # the input is left alone


def test_full_valid_body_passes_unchanged() -> None:
    """Every documented 2026-05-17 field is accepted."""
    full = body(
        securityLevel="CONTACT",
        resourcesIds=["res_1"],
        credentials=[{"type": "DOCUMENT", "name": "NDA", "scope": "s", "data": {"a": [1, 2.5]}, "placements": []}],
        name="Consent",
        language="ENG",
        redirectUrl="https://example.com/done",
        internalId="evt_1",
        authorizedDIDs=["did:example:1"],
        expectedDocIds=[{"contact": "+351912345678", "docId": "123"}],
        pubKey="key",
    )
    assert validate_body(full, V1) == full


def test_unknown_api_version_is_a_config_error() -> None:
    """Validating for a version whose body we do not know is a configuration mistake."""
    with pytest.raises(
        ConfigError,
        match=r"^unsupported Humanos API version '2025-01-01'; use one of 2026-05-17, 2026-07-07, 2026-09-01$",
    ):
        validate_body(body(), "2025-01-01")


def test_an_internal_id_with_a_lone_surrogate_is_refused_before_the_request_exists() -> None:
    """The look-up after a lost answer sends the internalId as UTF-8, which a lone surrogate does not have:
    such a request could never be found again, so it is not made (a surrogate pair is text, and passes)."""
    assert problems_of(body(internalId="employee-\ud800-1")) == [
        "body.internalId: holds a lone surrogate (a \\ud800-\\udfff escape without its pair), which is not text: "
        "the request could not be looked up by it after a lost answer; send valid Unicode, or remove the rule's "
        "internalId (the idempotency key is then used)"
    ]
    assert validate_body(body(internalId="employee-\U0001f600"), V1)["internalId"] == "employee-\U0001f600"


@pytest.mark.parametrize(
    ("language", "shown"),
    [("pt-PT", " 'pt-PT'"), ("eng", " 'eng'"), ("+351912345678", " another text"), ("EN", " 'EN'")],
)
def test_language_is_three_capital_letters_and_a_contact_is_never_echoed(language: str, shown: str) -> None:
    """2026-05-17's language is checked for its shape; users[].language (2026-07-07 on) against Humanos's enum."""
    expected = {
        "2026-05-17": f"must be a three-letter language code in capitals such as ENG or PRT, got{shown};",
        "2026-09-01": "must be one of ENG, PRT, SPA, FRA (the languages Humanos takes), "
        f"got{shown or ' another text'};",
    }
    for api_version, body in (
        ("2026-05-17", {"contacts": ["+351912345678"], "groupIds": ["g"], "language": language}),
        ("2026-09-01", {"users": [{"contact": "+351912345678", "language": language}], "groupIds": ["g"]}),
    ):
        with pytest.raises(InvalidBodyError) as raised:
            validate_body(body, api_version)
        assert expected[api_version] in str(raised.value)
        assert "351912345678" not in str(raised.value)
    assert validate_body({"contacts": ["+351912345678"], "groupIds": ["g"], "language": "POR"}, "2026-05-17")
