"""A mapping written from the docs, without guessing (issue 19, points 8 and 9).

`mappings check` lists every problem in one run (a wrong securityLevel beside a broken expression or a wrong
apiVersion), refuses credential types and languages Humanos would refuse, says when an expression lacks its '=',
and warns about a `when` that compares with an unquoted word. `480.00` goes out as `480`, and `fixed()` sends
the text `"480.00"`, as mappings/README.md says.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from humanos_bridge.core import wire
from humanos_bridge.core.errors import ConfigError, InvalidBodyError
from humanos_bridge.mapping import parse_mapping
from humanos_bridge.mapping.lint import warnings
from humanos_bridge_local.cli import main

RULE = 'sources.billing.rules["invoice.issued"][0]'
EVENT = {
    "id": "inv_evt_1",
    "type": "invoice.issued",
    "customer": {"email": "ana@example.com", "phone": "+351 912 345 678", "locale": "pt-PT"},
    "invoice": {"number": "INV-2026-0043", "total": 480.00, "kind": "payment-plan"},
}


def mapping(request: dict[str, Any], *, api_version: str = "2026-05-17", **rule: Any) -> dict[str, Any]:
    """A one-source, one-rule mapping document whose rule has ``request`` (and the ``rule`` keys given)."""
    return {
        "version": 1,
        "apiVersion": api_version,
        "sources": {
            "billing": {
                "eventType": "type",
                "eventId": "id",
                "auth": {"scheme": "humanos-hmac"},
                "rules": {"invoice.issued": [{"name": "plan", **rule, "request": request}]},
            }
        },
    }


def valid_request(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {"contacts": "=as_list(customer.email)", "groupIds": ["grp_plans"]}
    request.update(changes)
    return request


def errors_of(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_mapping(document, file="m.json")
    return list(caught.value.details["errors"])


def write(tmp_path: Path, document: dict[str, Any]) -> str:
    path = tmp_path / "billing.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


# -- every problem at once ---------------------------------------------------------------------------


def test_a_wrong_security_level_is_listed_beside_a_broken_expression() -> None:
    """Given a request with a broken expression in one field and a wrong securityLevel in another,
    then one load lists both (the securityLevel used to appear only once the expression was fixed)."""
    errors = errors_of(mapping(valid_request(contacts="=as_list(customer.email", securityLevel="KYC")))

    assert [line.split(": ")[1] for line in errors] == [f"{RULE}.request.contacts", f"{RULE}.request.securityLevel"]
    assert errors[1].endswith("must be one of CONTACT, ORGANIZATION_KYC, HUMANOS_KYC, HUMANOS_REVALIDATION")


def test_constant_values_are_checked_even_when_the_api_version_is_wrong() -> None:
    """Given a wrong apiVersion, then the request's wrong values and unknown fields are listed with it."""
    document = mapping(valid_request(securityLevel="KYC", language="pt-PT", nmae="x"), api_version="2026-05-01")

    where = [line.split(": ")[1] for line in errors_of(document)]

    assert where == [
        "apiVersion",
        f"{RULE}.request.securityLevel",
        f"{RULE}.request.language",
        f"{RULE}.request.nmae",
    ]


def test_the_issues_mapping_gets_every_problem_in_one_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The mapping from the issue: a path without '=', a wrong securityLevel, a locale for a language and a
    credential type Humanos refuses (beside an expression in the same credential): one run, four lines."""
    request = {
        "contacts": "data.contact.phone",
        "securityLevel": "KYC",
        "language": "pt-PT",
        "credentials": [{"type": "payment-plan", "name": "Plan", "data": {"total": "=invoice.total"}}],
    }

    assert main(["mappings", "check", write(tmp_path, mapping(request))]) == 1

    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("4 problem(s) in " + str(tmp_path / "billing.json") + ":")
    problems = {line.split(": ")[1]: line.split(": ", 2)[2] for line in lines[1:]}
    assert problems == {
        f"{RULE}.request.contacts": 'must be a list of contacts, got string; "data.contact.phone" is sent as this '
        "very text: to read it from the event, start it with '=': \"=as_list(data.contact.phone)\"",
        f"{RULE}.request.securityLevel": "must be one of CONTACT, ORGANIZATION_KYC, HUMANOS_KYC, HUMANOS_REVALIDATION",
        f"{RULE}.request.language": "must be a three-letter language code in capitals such as ENG or PRT, got "
        "'pt-PT'; map locales with lookup(), e.g. default(lookup(`{\"pt-PT\": \"PRT\"}`, locale), 'ENG')",
        f"{RULE}.request.credentials[0].type": "must be one of DOCUMENT, JSON, POLICY (the credential types Humanos "
        "takes), got 'payment-plan'; JSON is for general use, DOCUMENT for a document, POLICY for a mandate bound "
        "to an action",
    }


# -- the missing '=' -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "where", "fix"),
    [
        ({"contacts": "data.contact.phone"}, "request.contacts", '"=as_list(data.contact.phone)"'),
        ({"contacts": ["data.contact.phone"]}, "request.contacts[0]", '"=data.contact.phone"'),
        ({"groupIds": "as_list(data.group)"}, "request.groupIds", '"=as_list(as_list(data.group))"'),
        ({"redirectUrl": "data.links.done"}, "request.redirectUrl", '"=data.links.done"'),
    ],
)
def test_an_expression_written_without_its_equals_sign_gets_the_hint(
    changes: dict[str, Any], where: str, fix: str
) -> None:
    """A constant that reads like a path or a call, and fails the body check, says to start it with '='."""
    [error] = errors_of(mapping(valid_request(**changes)))

    assert error.startswith(f"m.json: {RULE}.{where}: ")
    assert error.endswith(f"to read it from the event, start it with '=': {fix}")


def test_the_hint_inside_users_names_the_item_field() -> None:
    """From 2026-07-07 a user's contact written as a path gets the hint at users[0].contact."""
    request = {"users": [{"contact": "data.contact.phone"}], "groupIds": ["g"]}

    [error] = errors_of(mapping(request, api_version="2026-09-01"))

    assert f"{RULE}.request.users[0].contact: not an e-mail address" in error
    assert error.endswith("start it with '=': \"=data.contact.phone\"")


@pytest.mark.parametrize(
    "changes",
    [{"securityLevel": "KYC"}, {"contacts": ["ana@example"]}, {"language": "eng"}, {"redirectUrl": "done page"}],
)
def test_words_contacts_and_sentences_get_no_expression_hint(changes: dict[str, Any]) -> None:
    """A bare word, a contact or a sentence is meant as text: the problem is shown without the '=' hint."""
    [error] = errors_of(mapping(valid_request(**changes)))

    assert "start it with '='" not in error


# -- what Humanos refuses -------------------------------------------------------------------------------


def test_a_credential_type_from_the_event_is_refused_at_run_time() -> None:
    """A type read from the event is checked when the event is mapped, as a constant one is at load."""
    credentials = [{"type": "=invoice.kind", "name": "Plan"}]
    config = parse_mapping(mapping(valid_request(credentials=credentials)), file="m.json")

    with pytest.raises(InvalidBodyError) as caught:
        config.map_event("billing", EVENT)

    assert str(caught.value).startswith("body.credentials[0].type: must be one of DOCUMENT, JSON, POLICY")


def test_a_credential_type_in_lower_case_is_sent_as_humanos_spells_it() -> None:
    """`document` (as older mappings write it) is accepted and sent as DOCUMENT, the value of Humanos's enum."""
    credentials = [{"type": "document", "name": "Plan"}, {"type": "=lower('JSON')", "name": "Terms"}]
    config = parse_mapping(mapping(valid_request(credentials=credentials)), file="m.json")

    body = config.map_event("billing", EVENT).body

    assert [credential["type"] for credential in body["credentials"]] == ["DOCUMENT", "JSON"]


@pytest.mark.parametrize(("language", "portuguese"), [("POR", True), ("DEU", False), ("pt-PT", False)])
def test_a_user_language_outside_humanos_list_is_refused(language: str, portuguese: bool) -> None:
    """users[].language takes ENG, PRT, SPA, FRA; POR (ISO 639-2's Portuguese) says that Humanos writes PRT."""
    request = {"users": [{"contact": "=customer.email", "language": language}], "groupIds": ["g"]}

    [error] = errors_of(mapping(request, api_version="2026-09-01"))

    assert f"users[0].language: must be one of ENG, PRT, SPA, FRA (the languages Humanos takes), got {language!r}" in (
        error
    )
    assert ("Portuguese is PRT for Humanos" in error) is portuguese


def test_a_user_language_looked_up_from_a_locale_is_accepted() -> None:
    """The documented way: a sender's locale mapped with lookup() to one of Humanos's values."""
    language = '=default(lookup(`{"pt-PT": "PRT", "en": "ENG"}`, customer.locale), \'ENG\')'
    request = {"users": [{"contact": "=customer.email", "language": language}], "groupIds": ["g"]}
    config = parse_mapping(mapping(request, api_version="2026-09-01"), file="m.json")

    assert config.map_event("billing", EVENT).body["users"] == [{"contact": "ana@example.com", "language": "PRT"}]


# -- traps ------------------------------------------------------------------------------------------------


def test_a_when_comparing_with_an_unquoted_word_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`employee.contract == contractor` loads (comparing two fields is legitimate) but check warns: exit 0."""
    document = mapping(valid_request(), when="invoice.kind == paymentplan")

    assert main(["mappings", "check", write(tmp_path, document)]) == 0

    warned = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  warning: ")]
    assert warned == [
        f"  warning: {RULE}.when: `invoice.kind == paymentplan`: paymentplan after == is a field of the event, not "
        "text: an event without that field compares with null, so the result is false (or true when the other side "
        "is missing too); for text, quote it: == 'paymentplan' (comparing two fields is fine as it is)"
    ]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ("employee.contract == contractor", ["contractor after =="]),
        ("status != paid && amount", ["paid after !="]),
        ("items[?kind == gold]", ["gold after =="]),
        ("flag == true", ["true after == is a field named 'true'"]),
        ("employee.contract == 'contractor'", []),
        ("amount == `100`", []),
        ("billing.country == shipping.country", []),
        ("lower(a) == lower(b)", []),
        ("a == b[0]", []),
        ("a > limit", []),
    ],
)
def test_only_a_lone_unquoted_word_after_an_equality_is_a_trap(when: str, expected: list[str]) -> None:
    """Paths, calls, literals and order comparisons are left alone; the JSON constants get their own fix."""
    found = warnings(parse_mapping(mapping(valid_request(), when=when), file="m.json"))

    assert [any(part in line for line in found) for part in expected] == [True] * len(expected)
    assert len(found) == len(expected)


# -- 480.00 goes out as 480 --------------------------------------------------------------------------------


def test_a_total_of_480_00_goes_out_as_480_and_fixed_sends_the_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As mappings/README.md documents: a JSON number loses its trailing zeros (480.00 is 480), and
    ``fixed(x, `2`)`` sends the text "480.00". preview prints the exact bytes that are signed and sent."""
    data = {
        "total": "=invoice.total",
        "shown": "=fixed(invoice.total, `2`)",
        "label": "=concat(fixed(invoice.total, `2`), ' EUR')",
    }
    request = valid_request(credentials=[{"type": "JSON", "name": "Payment plan", "data": data}])
    event = tmp_path / "invoice.json"
    # Written as text: the event must say 480.00, which no Python float would keep.
    event.write_text(
        '{"id": "inv_evt_1", "type": "invoice.issued", "customer": {"email": "ana@example.com"}, '
        '"invoice": {"total": 480.00}}',
        encoding="utf-8",
    )

    assert main(["mappings", "preview", write(tmp_path, mapping(request)), str(event)]) == 0

    sent = capsys.readouterr().out.splitlines()[-1]
    assert '"data":{"total":480,"shown":"480.00","label":"480.00 EUR"}' in sent
    config = parse_mapping(mapping(request), file="m.json")
    signed = wire.dump_bytes(config.map_event("billing", wire.loads(event.read_bytes())).body)
    assert signed.decode() == sent
