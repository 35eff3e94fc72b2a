"""``preview --explain``: each rule's `when`, the rule chosen, and what every expression found (or did not)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jmespath.parser import ParsedResult

from humanos_bridge.core.errors import MappingError
from humanos_bridge.mapping import MappingConfig, parse_mapping
from humanos_bridge.mapping.explain import (
    IF_NULL_IDEMPOTENCY_KEY,
    IF_NULL_INTERNAL_ID,
    IF_NULL_REQUEST,
    Evaluation,
    RuleExplanation,
    explain_event,
    missing_parts,
)
from humanos_bridge.mapping.expressions import Expression, compile_expression
from humanos_bridge_local.cli import main
from tests.support.mappings import one_source

ROOT = Path(__file__).resolve().parents[2]
BRIDGE = str(ROOT / "mappings" / "bridge.json")
EVENTS = ROOT / "events" / "business"
PHONE = "+351912345678"
EMAIL = "ana@example.com"

#: Ask by SMS when the contact opted in...
CONSENT_SMS = {
    "name": "consent-sms",
    "when": "data.optIn",
    "request": {
        "contacts": "=as_list(data.contact.phone)",
        "groupIds": ["grp_consent"],
        "name": "=concat('Hi ', data.contact.firstName)",
        "language": "=upper(data.contact.language)",
    },
}
#: ... else by e-mail.
CONSENT_EMAIL = {"name": "consent-email", "request": {"contacts": "=as_list(data.contact.email)", "groupIds": ["g"]}}


def document(*rules: dict[str, Any]) -> dict[str, Any]:
    source = {"eventType": "type", "eventId": "id", "rules": {"contact.created": list(rules)}}
    return {"version": 1, "apiVersion": "2026-05-17", "sources": {"crm": source}}


def mapping(*rules: dict[str, Any]) -> MappingConfig:
    return parse_mapping(document(*rules), file="m.json")


def event(**data: Any) -> dict[str, Any]:
    return {"type": "contact.created", "id": "evt_1", "data": data}


def values(rule: RuleExplanation) -> dict[str, Evaluation]:
    """The rule's evaluations by their path under the rule (``request.name``, ``internalId``)."""
    return {value.where.removeprefix(f"{rule.path}."): value for value in rule.values}


def test_a_null_value_names_the_first_step_that_found_nothing() -> None:
    """`data.contact.language` is null: because the event has no contact, or because the contact has no language."""
    cfg = mapping(CONSENT_SMS)

    (rule,) = explain_event(cfg, "crm", event(optIn=True)).rules
    language = values(rule)["request.language"]
    assert (language.value, language.missing, language.if_null) == (None, ("data.contact",), IF_NULL_REQUEST)

    (rule,) = explain_event(cfg, "crm", event(optIn=True, contact={"phone": PHONE})).rules
    assert values(rule)["request.language"].missing == ("data.contact.language",)


def test_function_arguments_are_explained_even_when_the_call_gives_a_value() -> None:
    """concat() skips a null argument and as_list() turns null into []: the missing argument is still named."""
    (rule,) = explain_event(mapping(CONSENT_SMS), "crm", event(optIn=True, contact={"language": "por"})).rules
    found = values(rule)
    assert (found["request.name"].value, found["request.name"].missing) == ("Hi ", ("data.contact.firstName",))
    assert (found["request.contacts"].value, found["request.contacts"].missing) == ([], ("data.contact.phone",))
    assert (found["request.language"].value, found["request.language"].missing) == ("POR", ())


def test_every_argument_that_found_nothing_is_named_once() -> None:
    expression = compile_expression("compact([data.contact.phone, data.contact.email, data.contact.phone])")
    assert missing_parts(expression, event(contact={})) == ("data.contact.phone", "data.contact.email")
    assert missing_parts(expression, event(contact={"phone": PHONE, "email": EMAIL})) == ()
    assert missing_parts(compile_expression("data.items[1].id"), event(items=[{"id": 1}])) == ("data.items[1]",)


def test_whens_are_shown_and_the_first_that_holds_wins() -> None:
    """Each rule's `when` value and truthiness; the first rule that holds is chosen, later ones are not."""
    cfg = mapping(CONSENT_SMS, CONSENT_EMAIL)

    sms, email = explain_event(cfg, "crm", event(optIn=False)).rules
    assert sms.when is not None
    assert (sms.name, sms.when.value, sms.holds, sms.chosen) == ("consent-sms", False, False, False)
    assert (email.name, email.when, email.holds, email.chosen) == ("consent-email", None, True, True)

    sms, email = explain_event(cfg, "crm", event()).rules
    assert sms.when is not None
    assert (sms.when.value, sms.when.missing, sms.holds) == (None, ("data.optIn",), False)

    sms, email = explain_event(cfg, "crm", event(optIn="yes")).rules
    assert (sms.holds, sms.chosen, email.holds, email.chosen) == (True, True, True, False)
    assert cfg.map_event("crm", event(optIn="yes", contact={"phone": PHONE})).rule == "consent-sms"


def test_a_failing_expression_is_reported_not_raised() -> None:
    """What map_event raises is the field's explanation; a failing `when` leaves no rule chosen, as in map_event."""
    cfg = mapping({**CONSENT_SMS, "when": "length(data.optIn)"}, CONSENT_EMAIL)
    bad = event(optIn=7, contact={"language": 7})
    with pytest.raises(MappingError):
        cfg.map_event("crm", bad)

    sms, email = explain_event(cfg, "crm", bad).rules
    assert sms.when is not None and sms.when.error is not None
    assert "length() argument 1 expected" in sms.when.error
    assert (sms.chosen, email.holds, email.chosen) == (False, True, False)
    language = values(sms)["request.language"]
    assert language.value is None
    assert language.error is not None and "upper() argument 1 expected" in language.error


def test_keys_say_what_their_null_means() -> None:
    rule = {**CONSENT_EMAIL, "internalId": "=data.ref", "idempotencyKey": "=concat('k:', data.ref)"}
    (explained,) = explain_event(mapping({**rule, "idempotencyKey": "=data.ref"}), "crm", event()).rules
    found = values(explained)
    assert (found["internalId"].missing, found["internalId"].if_null) == (("data.ref",), IF_NULL_INTERNAL_ID)
    assert found["idempotencyKey"].if_null == IF_NULL_IDEMPOTENCY_KEY
    assert list(found) == ["request.contacts", "internalId", "idempotencyKey"]


@pytest.mark.parametrize(
    "ast",
    [
        {"type": "mystery", "children": [{"type": "field", "value": "a"}]},
        {"children": []},
        {"type": "subexpression", "children": [{"type": "field", "value": "data"}, {"type": "odd"}]},
    ],
)
def test_an_unknown_ast_names_nothing_and_never_raises(ast: dict[str, Any]) -> None:
    assert missing_parts(Expression("x", ParsedResult("x", ast)), event()) == ()


def test_an_event_without_a_type_is_refused_as_map_event_refuses_it() -> None:
    with pytest.raises(MappingError, match="event type"):
        explain_event(mapping(CONSENT_EMAIL), "crm", {"id": "evt_1"})


# ---- the CLI ----


def write(tmp_path: Path, name: str, value: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(value), encoding="utf-8")
    return str(path)


def test_cli_explains_why_no_when_matched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No rule matches: still exit 1 with the reason on stderr, and the explanation on stdout."""
    file = write(tmp_path, "m.json", document(CONSENT_SMS))
    sample = write(tmp_path, "e.json", event(optIn=False, contact={"phone": PHONE}))
    assert main(["mappings", "preview", file, sample, "--explain"]) == 1
    captured = capsys.readouterr()
    assert "event type 'contact.created' has 1 rule(s) but no `when` matched" in captured.err
    assert captured.out == (
        'explain (event type "contact.created", 1 rule(s)):\n'
        "  rule consent-sms  when `data.optIn` = false (false)  -> skipped\n"
        f'    request.contacts  `as_list(data.contact.phone)` = ["{PHONE}"]\n'
        "    request.name      `concat('Hi ', data.contact.firstName)` = \"Hi \": "
        "`data.contact.firstName` found nothing\n"
        "    request.language  `upper(data.contact.language)` = null: `data.contact.language` found nothing; "
        "the field is left out\n"
    )


@pytest.mark.parametrize("mask", [False, True])
def test_cli_explain_masks_contacts_with_mask(mask: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --mask values are shown as they are (like the body); with it no phone or e-mail is printed."""
    file = write(tmp_path, "m.json", document(CONSENT_SMS, CONSENT_EMAIL))
    sample = write(tmp_path, "e.json", event(optIn=True, contact={"phone": PHONE, "email": EMAIL}))
    assert main(["mappings", "preview", file, sample, "--explain", *(["--mask"] if mask else [])]) == 0
    out = capsys.readouterr().out
    explanation = out[out.index("explain (") :]
    assert (PHONE in explanation, EMAIL in explanation) == (not mask, not mask)
    assert (PHONE in out, EMAIL in out) == (not mask, not mask)
    assert ("+35********78" in explanation, "a***@e***.com" in explanation) == (mask, mask)


def test_cli_explain_follows_the_normal_preview(capsys: pytest.CaptureFixture[str]) -> None:
    """A mapped event: the usual preview, then the explanation, exit 0."""
    sample = str(EVENTS / "hr-contractor-hired.json")
    assert main(["mappings", "preview", BRIDGE, sample, "--source", "hr", "--explain", "--mask"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("source:          hr\n")
    assert out[out.index("explain (") :] == (
        'explain (event type "employee.hired", 2 rule(s)):\n'
        "  rule contractor-kyc  when `employee.contract == 'contractor'` = true (true)  -> chosen\n"
        "    request.contacts  `compact([employee.personalEmail, employee.mobile])` = "
        '["j***@e***.com","+35********11"]\n'
        "  rule employee-kyc    when `employee.contract == 'employee'` = false (false)  -> skipped\n"
        '    request.contacts      `as_list(employee.personalEmail)` = ["j***@e***.com"]\n'
        "    request.resourcesIds  `as_list(employee.handbookResourceId)` = []: "
        "`employee.handbookResourceId` found nothing\n"
        "    request.name          `concat('Welcome, ', employee.firstName)` = \"Welcome, Joao\"\n"
        "    request.language      `default(employee.language, 'ENG')` = \"ENG\": `employee.language` found nothing\n"
        "    internalId            `concat('employee-', employee.id)` = \"employee-C-0107\"\n"
    )


def test_cli_explain_on_an_ignored_event_type(capsys: pytest.CaptureFixture[str]) -> None:
    sample = str(EVENTS / "hr-employee-updated.json")
    assert main(["mappings", "preview", BRIDGE, sample, "--source", "hr", "--explain"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        'explain (event type "employee.updated", 0 rule(s)):',
        "  (the file has no rules for this event type)",
    ]


def test_cli_without_explain_prints_no_explanation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mappings", "preview", BRIDGE, str(EVENTS / "hr-contractor-hired.json"), "--source", "hr"]) == 0
    assert "explain (" not in capsys.readouterr().out


def test_root_is_the_event_while_explaining() -> None:
    """Expressions that reach the whole event from inside a filter explain as the engine maps them."""
    rule = {"name": "r", "request": {"contacts": ["+351912345678"], "groupIds": "=groups[?on == root().wanted].id"}}
    document = one_source([rule])
    event = {"type": "x", "id": "1", "wanted": "b", "groups": [{"on": "a", "id": "g1"}, {"on": "b", "id": "g2"}]}
    (rule,) = explain_event(parse_mapping(document, file="m.json"), "crm", event).rules
    assert [(v.where, v.value, v.error) for v in rule.values] == [
        ("sources.crm.rules.x[0].request.groupIds", ["g2"], None)
    ]
