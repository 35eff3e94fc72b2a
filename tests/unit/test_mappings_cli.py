"""``humanos-bridge mappings check|preview`` on the shipped examples and on broken input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from humanos_bridge_local.cli import main

ROOT = Path(__file__).resolve().parents[2]
BRIDGE = str(ROOT / "mappings" / "bridge.json")
USERS = str(ROOT / "mappings" / "users-2026-09-01.json")
EVENTS = ROOT / "events" / "business"
SHOP_HASH = "68bd4a747be58dbe0e0f9dc3a987dc65d3834af9392d4f38c0f4fec2c6fad9b9"


def event_path(name: str) -> str:
    return str(EVENTS / f"{name}.json")


@pytest.mark.parametrize(
    ("file", "summary"),
    [
        (BRIDGE, "6 source(s) (crm, shop, hubspot, hr, stripe, shopify), 7 rule(s), API version 2026-05-17"),
        (USERS, "1 source(s) (crm), 1 rule(s), API version 2026-09-01"),
    ],
)
def test_examples_pass_check(file: str, summary: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Every shipped example is valid: exit 0 and a one-line summary."""
    assert main(["mappings", "check", file]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"OK {file}: {summary}"


def test_check_notes_what_each_internal_id_means_for_recovery(capsys: pytest.CaptureFixture[str]) -> None:
    """Custom internalIds (which several events may share) are noted; the default ones need no note."""
    assert main(["mappings", "check", BRIDGE]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  note: ")]
    assert [note.split(":")[1].strip() for note in notes] == [
        'sources.shop.rules["order.paid"][0]',
        'sources.hr.rules["employee.hired"][1]',
    ]
    assert all("custom internalId" in note for note in notes)


def test_check_warns_about_traps_and_still_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A valid file with a trap (double quotes make a field name): exit 0, one warning naming where and why."""
    doc = json.loads(Path(BRIDGE).read_text(encoding="utf-8"))
    doc["sources"]["hr"]["rules"]["employee.hired"][0]["when"] = 'employee.contract == "contractor"'
    path = tmp_path / "trap.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["mappings", "check", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    # (bridge.json's shopify source is warned about too: Shopify signs no timestamp; test_mapping_presets has that.)
    warnings = [line for line in lines if line.startswith("  warning: ") and ".auth: " not in line]
    assert warnings == [
        '  warning: sources.hr.rules["employee.hired"][0].when: `employee.contract == "contractor"`: a '
        '"double-quoted" word beside a comparison is a field name, not text; write text in single quotes: '
        "status == 'paid'"
    ]


def test_check_says_which_template_parameters_bring_the_matched_events(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mappings", "check", BRIDGE]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "deploy with:" in line]
    assert lines == [
        "  deploy with: EventBridgeSources=com.example.hr (a rule sends these events to the queue)",
        "  deploy with: SnsTopicArn=arn:aws:sns:eu-west-1:123456789012:crm-events (the queue subscribes to this topic)",
    ]


def test_check_lists_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A broken file: exit 1 and one line per problem on stderr."""
    doc = json.loads(Path(BRIDGE).read_text(encoding="utf-8"))
    doc["sources"]["crm"]["unmatched"] = "drop"
    doc["sources"]["hr"]["rules"]["employee.hired"][1]["request"]["securityLevel"] = "KYC"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert main(["mappings", "check", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"humanos-bridge: 2 problem(s) in {path}:\n"
        f'  {path}: sources.crm.unmatched: must be "reject" or "ignore", got \'drop\'\n'
        f'  {path}: sources.hr.rules["employee.hired"][1].request.securityLevel: must be one of CONTACT, '
        "ORGANIZATION_KYC, HUMANOS_KYC, HUMANOS_REVALIDATION\n"
    )


PREVIEWS = {
    ("crm", "crm-contact-created"): (
        "source:          crm\n"
        "event type:      contact.created\n"
        "event id:        evt_crm_0001\n"
        "rule:            marketing-consent-sms\n"
        "idempotency key: crm:evt_crm_0001:marketing-consent-sms\n"
        "internalId:      crm:evt_crm_0001:marketing-consent-sms\n"
        "API-Version:     2026-05-17\n"
        "body (199 bytes, signed and sent exactly as below):\n"
        '{"contacts":["+351912345678"],"groupIds":["grp_marketing_consent"],"securityLevel":"CONTACT",'
        '"name":"Marketing consent for Ana","language":"POR","internalId":"crm:evt_crm_0001:marketing-consent-sms"}\n'
    ),
    ("shop", "shop-order-paid"): (
        "source:          shop\n"
        "event type:      order.paid\n"
        f"event id:        {SHOP_HASH}\n"
        "rule:            purchase-agreement\n"
        "idempotency key: shop:order:ord_5001:agreement\n"
        "internalId:      order-ord_5001\n"
        "API-Version:     2026-05-17\n"
        "body (302 bytes, signed and sent exactly as below):\n"
        '{"contacts":["Ana@example.com"],"credentials":[{"type":"DOCUMENT",'
        '"name":"Purchase agreement for order ord_5001","internalId":"ord_5001",'
        '"data":{"orderId":"ord_5001","total":129.9,"currency":"EUR"}}],"language":"ENG",'
        '"redirectUrl":"https://shop.example.com/orders/thanks","internalId":"order-ord_5001"}\n'
    ),
    ("hr", "hr-employee-hired"): (
        "source:          hr\n"
        "event type:      employee.hired\n"
        "event id:        hr-7f3a9c\n"
        "rule:            employee-kyc\n"
        "idempotency key: hr:hr-7f3a9c:employee-kyc\n"
        "internalId:      employee-E-2041\n"
        "API-Version:     2026-05-17\n"
        "body (213 bytes, signed and sent exactly as below):\n"
        '{"contacts":["ana@example.com"],"securityLevel":"ORGANIZATION_KYC","groupIds":["grp_employee_onboarding"],'
        '"resourcesIds":["res_handbook_2026"],"name":"Welcome, Ana","language":"PRT","internalId":"employee-E-2041"}\n'
    ),
    ("hr", "hr-contractor-hired"): (
        "source:          hr\n"
        "event type:      employee.hired\n"
        "event id:        hr-8b21d0\n"
        "rule:            contractor-kyc\n"
        "idempotency key: hr:hr-8b21d0:contractor-kyc\n"
        "internalId:      hr:hr-8b21d0:contractor-kyc\n"
        "API-Version:     2026-05-17\n"
        "body (194 bytes, signed and sent exactly as below):\n"
        '{"contacts":["joao@example.com","+351913000111"],"securityLevel":"HUMANOS_KYC",'
        '"groupIds":["grp_contractor_onboarding"],"name":"Contractor onboarding",'
        '"internalId":"hr:hr-8b21d0:contractor-kyc"}\n'
    ),
}


@pytest.mark.parametrize(("source", "sample"), list(PREVIEWS))
def test_preview_prints_the_exact_body(source: str, sample: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Each sample event previews as the rule, keys and the exact bytes to sign."""
    assert main(["mappings", "preview", BRIDGE, event_path(sample), "--source", source]) == 0
    out = capsys.readouterr().out
    assert out == PREVIEWS[(source, sample)]
    body = out.splitlines()[-1].encode("utf-8")
    assert f"body ({len(body)} bytes" in out


def test_preview_single_source_file_needs_no_source(capsys: pytest.CaptureFixture[str]) -> None:
    """With one source in the file, --source may be left out; the users[] body is shown."""
    assert main(["mappings", "preview", USERS, event_path("crm-contact-created")]) == 0
    assert capsys.readouterr().out == (
        "source:          crm\n"
        "event type:      contact.created\n"
        "event id:        evt_crm_0001\n"
        "rule:            marketing-consent\n"
        "idempotency key: crm:evt_crm_0001:marketing-consent\n"
        "internalId:      crm:evt_crm_0001:marketing-consent\n"
        "API-Version:     2026-09-01\n"
        "body (241 bytes, signed and sent exactly as below):\n"
        '{"users":[{"contact":"+351912345678","secondaryContact":"ana@example.com","language":"PRT"}],'
        '"groupIds":["grp_marketing_consent"],"securityLevel":"CONTACT","name":"Marketing consent for Ana",'
        '"internalId":"crm:evt_crm_0001:marketing-consent"}\n'
    )


def test_preview_mask_hides_contacts(capsys: pytest.CaptureFixture[str]) -> None:
    """--mask masks every contact field and says the bytes shown are not the signed ones."""
    assert main(["mappings", "preview", USERS, event_path("crm-contact-created"), "--mask"]) == 0
    out = capsys.readouterr().out
    assert "+351912345678" not in out
    assert "ana@example.com" not in out
    assert out.splitlines()[-2:] == [
        "body (241 bytes signed; contacts masked below, so these are not those bytes):",
        '{"users":[{"contact":"+35********78","secondaryContact":"a***@e***.com","language":"PRT"}],'
        '"groupIds":["grp_marketing_consent"],"securityLevel":"CONTACT","name":"Marketing consent for Ana",'
        '"internalId":"crm:evt_crm_0001:marketing-consent"}',
    ]


def test_preview_invalid_event_fails_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    """An unmappable event: exit 1 and the precise reason, without the contact."""
    path = event_path("crm-contact-created-invalid")
    assert main(["mappings", "preview", BRIDGE, path, "--source", "crm"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"humanos-bridge: cannot map {path}: body.contacts[0]: not an e-mail address or a +international phone "
        "number (8 to 15 digits after the +)\n"
    )


def test_preview_ignored_event_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    """An ignored event type is not an error: exit 0 and why it is ignored."""
    assert main(["mappings", "preview", BRIDGE, event_path("hr-employee-updated"), "--source", "hr"]) == 0
    assert capsys.readouterr().out == (
        "ignored: source hr ignores event type 'employee.updated': it has no rules and unmatched is \"ignore\"\n"
    )


def test_preview_source_must_be_known(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mappings", "preview", BRIDGE, event_path("crm-contact-created"), "--source", "billing"]) == 1
    assert capsys.readouterr().err == (
        "humanos-bridge: --source billing: not in the file; its sources are crm, shop, hubspot, hr, stripe, shopify\n"
    )


def test_preview_without_source_takes_the_only_one_with_a_rule_for_the_type(capsys: pytest.CaptureFixture[str]) -> None:
    """stripe reads `type` and has a rule for checkout.session.completed; no other source does."""
    sample = str(ROOT / "events" / "business" / "presets" / "stripe-checkout-session-completed.json")
    assert main(["mappings", "preview", BRIDGE, sample, "--source", "stripe"]) == 0
    named = capsys.readouterr()

    assert main(["mappings", "preview", BRIDGE, sample]) == 0

    inferred = capsys.readouterr()
    assert inferred.out == named.out and named.out.startswith("source:          stripe\n")
    assert (
        inferred.err
        == "humanos-bridge: no --source: stripe, the only source with a rule for 'checkout.session.completed'\n"
    )


def test_preview_opens_an_eventbridge_event_and_takes_the_source_its_match_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As the dispatcher does: hr's match names the EventBridge source com.example.hr, and the rules read the
    event inside (detail)."""
    event = json.loads(Path(event_path("hr-employee-hired")).read_text(encoding="utf-8"))
    wrapped = tmp_path / "eventbridge.json"
    wrapped.write_text(
        json.dumps(
            {
                "version": "0",
                "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
                "detail-type": "employee.hired",
                "source": "com.example.hr",
                "account": "123456789012",
                "time": "2026-05-20T09:15:00Z",
                "region": "eu-west-1",
                "resources": [],
                "detail": event,
            }
        ),
        encoding="utf-8",
    )
    assert main(["mappings", "preview", BRIDGE, event_path("hr-employee-hired"), "--source", "hr"]) == 0
    bare = capsys.readouterr().out

    assert main(["mappings", "preview", BRIDGE, str(wrapped)]) == 0

    opened = capsys.readouterr()
    assert opened.out == bare and bare.startswith("source:          hr\n")
    assert opened.err == "humanos-bridge: no --source: hr, whose match takes this event\n"


@pytest.mark.parametrize(
    ("event", "found"),
    [
        ('{"type": "invoice.paid", "id": "evt_1"}', "none has a rule for its type as it reads it"),
        (
            '{"type": "contact.created", "event": "employee.hired"}',
            "several have a rule for it: crm ('contact.created'), hr ('employee.hired')",
        ),
    ],
)
def test_preview_without_source_names_the_candidates_and_never_guesses_a_catch_all(
    tmp_path: Path, event: str, found: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """hubspot's type is always 'contact.batch': it would take any event, so it is named, never chosen."""
    path = tmp_path / "event.json"
    path.write_text(event, encoding="utf-8")
    assert main(["mappings", "preview", BRIDGE, str(path)]) == 1
    assert capsys.readouterr().err == (
        f"humanos-bridge: the file has 6 sources (crm, shop, hubspot, hr, stripe, shopify) and {found}; hubspot "
        "takes every event (its type is always 'contact.batch'); pass --source NAME\n"
    )


def test_preview_bad_event_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An event file that is not JSON is reported with its position."""
    path = tmp_path / "event.json"
    path.write_text("{nope", encoding="utf-8")
    assert main(["mappings", "preview", BRIDGE, str(path), "--source", "crm"]) == 1
    assert capsys.readouterr().err == (
        f"humanos-bridge: {path}: body is not valid JSON: Expecting property name enclosed in double quotes "
        "at line 1 column 2\n"
    )


def test_preview_with_broken_mapping_lists_its_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """preview checks the file first, like check."""
    path = tmp_path / "m.json"
    path.write_text('{"version": 1}', encoding="utf-8")
    assert main(["mappings", "preview", str(path), event_path("crm-contact-created")]) == 1
    assert capsys.readouterr().err.splitlines()[0] == f"humanos-bridge: 2 problem(s) in {path}:"


def test_preview_names_a_malformed_header_once_whatever_the_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The options are read before the source is looked for: one message, not one per source tried."""
    path = tmp_path / "event.json"
    path.write_text('{"type": "checkout.session.completed", "id": "evt_1"}', encoding="utf-8")
    assert main(["mappings", "preview", BRIDGE, str(path), "--header", "broken"]) == 1
    assert capsys.readouterr().err == "humanos-bridge: --header 'broken': write it as 'Name: value'\n"
