"""Loading a mapping file: every mistake is reported at once, with file, path, what and how to fix."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from humanos_bridge.core.errors import ConfigError
from humanos_bridge.mapping import load_mapping, load_mapping_cached, parse_mapping

RULE = 'sources.crm.rules["contact.created"][0]'
#: Every sender authentication scheme, as an unknown one's message lists them.
AUTH_SCHEMES = (
    "humanos-hmac, standard-webhooks, hmac, stripe, shopify, github, hubspot-v3, typeform, basic-auth, api-key"
)


def document(**top: Any) -> dict[str, Any]:
    """A valid one-source mapping document; tests change one thing each."""
    doc: dict[str, Any] = {
        "version": 1,
        "apiVersion": "2026-05-17",
        "sources": {
            "crm": {
                "eventType": "type",
                "eventId": "id",
                "auth": {"scheme": "humanos-hmac"},
                "rules": {
                    "contact.created": [
                        {"name": "consent", "request": {"contacts": "=as_list(phone)", "groupIds": ["grp_1"]}}
                    ]
                },
            }
        },
    }
    doc.update(top)
    return doc


def with_source(**changes: Any) -> dict[str, Any]:
    doc = document()
    doc["sources"]["crm"].update(changes)
    return {k: v for k, v in doc.items()}


def with_rule(**changes: Any) -> dict[str, Any]:
    doc = document()
    rule = doc["sources"]["crm"]["rules"]["contact.created"][0]
    rule.update(changes)
    for key in [k for k, v in rule.items() if v is _DROP]:
        del rule[key]
    return doc


def with_request(**changes: Any) -> dict[str, Any]:
    doc = document()
    request = doc["sources"]["crm"]["rules"]["contact.created"][0]["request"]
    request.update(changes)
    for key in [k for k, v in request.items() if v is _DROP]:
        del request[key]
    return doc


_DROP = object()


def errors_of(doc: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_mapping(doc, file="m.json")
    errors = caught.value.details["errors"]
    assert str(caught.value) == "\n".join(errors)
    return list(errors)


def test_valid_document_compiles() -> None:
    """The builder's document is valid: sources, auth defaults and rule names come through."""
    cfg = parse_mapping(document(), file="m.json")
    assert cfg.api_version == "2026-05-17"
    assert cfg.sources == ("crm",)
    source = cfg.source("crm")
    assert source.auth is not None
    assert (source.auth.scheme, source.auth.secret_key) == ("humanos-hmac", "crm")
    assert source.unmatched == "reject"
    assert [r.name for r in source.rules["contact.created"]] == ["consent"]


def test_secret_key_and_default_rule_name() -> None:
    """secretKey overrides the source name; unnamed rules are called <type>#<index>."""
    doc = with_source(auth={"scheme": "standard-webhooks", "secretKey": "crm-prod"})
    del doc["sources"]["crm"]["rules"]["contact.created"][0]["name"]
    source = parse_mapping(doc).source("crm")
    assert source.auth is not None
    assert (source.auth.scheme, source.auth.secret_key) == ("standard-webhooks", "crm-prod")
    assert source.rules["contact.created"][0].name == "contact.created#0"


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (document(verison=1), ["m.json: verison: unknown key; did you mean 'version'?"]),
        (document(version=2), ["m.json: version: unsupported mapping file version 2; this bridge reads version 1"]),
        (
            document(version=True),
            ["m.json: version: unsupported mapping file version True; this bridge reads version 1"],
        ),
        (
            document(apiVersion="2025-01-01"),
            [
                "m.json: apiVersion: unsupported Humanos API version '2025-01-01'; "
                "use one of 2026-05-17, 2026-07-07, 2026-09-01"
            ],
        ),
        (
            document(apiVersion=20260517),
            [
                "m.json: apiVersion: unsupported Humanos API version a number; "
                "use one of 2026-05-17, 2026-07-07, 2026-09-01"
            ],
        ),
        (
            document(sources={}),
            ["m.json: sources: must be an object of sources by name, got empty; add at least one source"],
        ),
        (
            document(sources=[]),
            ["m.json: sources: must be an object of sources by name, got a array; add at least one source"],
        ),
        ([], ["m.json: (top level): must be an object with version, apiVersion and sources, got array"]),
    ],
)
def test_top_level_errors(doc: Any, expected: list[str]) -> None:
    """Version, API version and sources are checked with a fix in each message."""
    assert errors_of(doc) == expected


def test_missing_top_level_keys_are_all_reported() -> None:
    """An empty object lists all three required keys at once."""
    assert errors_of({}) == [
        'm.json: version: required; add "version": 1',
        'm.json: apiVersion: required; add "apiVersion": "2026-05-17" (the Humanos API version)',
        'm.json: sources: required; add the sending systems, e.g. "sources": {"crm": {...}}',
    ]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (with_source(evntType="type"), ["m.json: sources.crm.evntType: unknown key; did you mean 'eventType'?"]),
        (
            with_source(colour="red"),
            [
                "m.json: sources.crm.colour: unknown key; valid keys: eventType, eventId, eventIdDefault, unmatched, "
                "unmappable, auth, headers, match, messageGroupId, onOtpFailed, rules, description"
            ],
        ),
        (
            with_source(eventType="=type"),
            [
                "m.json: sources.crm.eventType: invalid JMESPath at character 0: Unknown token '='; "
                "eventType is always JMESPath, so drop the leading '='"
            ],
        ),
        (
            with_source(eventId="data.["),
            [
                "m.json: sources.crm.eventId: invalid JMESPath at character 6: the expression ends too early; "
                "fix the expression (syntax: https://jmespath.org/specification.html)"
            ],
        ),
        (with_source(eventType=3), ["m.json: sources.crm.eventType: must be a JMESPath string, got number"]),
        (
            with_source(eventId="lowr(id)"),
            ["m.json: sources.crm.eventId: unknown function lowr(); did you mean lower()?"],
        ),
        (
            with_source(eventId="lower(id, type)"),
            [
                "m.json: sources.crm.eventId: lower() takes 1 argument, got 2; "
                "fix the expression (syntax: https://jmespath.org/specification.html)"
            ],
        ),
        (with_source(unmatched="drop"), ['m.json: sources.crm.unmatched: must be "reject" or "ignore", got \'drop\'']),
        (
            with_source(eventIdDefault="uuid"),
            ["m.json: sources.crm.eventIdDefault: must be \"content-hash\" or null, got 'uuid'"],
        ),
        (
            with_source(auth={"scheme": "jwt"}),
            [f"m.json: sources.crm.auth.scheme: must be one of {AUTH_SCHEMES}, got 'jwt'"],
        ),
        (
            with_source(auth={"scheme": "standard-webhook"}),
            [
                f"m.json: sources.crm.auth.scheme: must be one of {AUTH_SCHEMES}, "
                "got 'standard-webhook'; did you mean 'standard-webhooks'?"
            ],
        ),
        (
            with_source(auth={}),
            [f"m.json: sources.crm.auth.scheme: must be one of {AUTH_SCHEMES}, got nothing"],
        ),
        (
            with_source(auth={"scheme": "humanos-hmac", "secret": "x"}),
            ["m.json: sources.crm.auth.secret: unknown key; did you mean 'secretKey'?"],
        ),
        (
            with_source(auth={"scheme": "humanos-hmac", "secretKey": ""}),
            ["m.json: sources.crm.auth.secretKey: must be a non-empty string: the key in the sender-secrets JSON"],
        ),
        (
            with_source(auth="hmac"),
            ['m.json: sources.crm.auth: must be an object such as {"scheme": "humanos-hmac"}, got string'],
        ),
        (
            with_source(rules={}),
            [
                "m.json: sources.crm.rules: must be an object of rule lists by event type, got empty; "
                "add at least one event type"
            ],
        ),
        (
            with_source(rules={"contact.created": {"request": {}}}),
            [
                'm.json: sources.crm.rules["contact.created"]: must be a non-empty list of rules, got a object; '
                "wrap a single rule in [...]"
            ],
        ),
        (
            with_source(rules={"contact.created": ["x"]}),
            [f"m.json: {RULE}: must be a rule object with a request, got string"],
        ),
    ],
)
def test_source_errors(doc: Any, expected: list[str]) -> None:
    """Source keys, expressions, choices and auth are checked, each message with the way out."""
    assert errors_of(doc) == expected


def test_source_without_event_id_needs_the_content_hash_default() -> None:
    """Leaving eventId out is fine only when ids default to a content hash."""
    doc = document()
    del doc["sources"]["crm"]["eventId"]
    assert errors_of(doc) == [
        'm.json: sources.crm.eventId: required unless eventIdDefault is "content-hash"; '
        'give the JMESPath of the event\'s id, e.g. "id"'
    ]
    doc["sources"]["crm"]["eventIdDefault"] = "content-hash"
    assert parse_mapping(doc).source("crm").event_id is None


def test_bad_source_name_is_refused() -> None:
    """Source names end up in URLs, so they are plain."""
    doc = document()
    doc["sources"] = {"my crm": doc["sources"]["crm"]}
    assert errors_of(doc) == [
        "m.json: sources[\"my crm\"]: source names are 1 to 64 letters, digits, '-' or '_' (they appear in URLs); "
        "rename it"
    ]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (with_rule(nmae="x"), [f"m.json: {RULE}.nmae: unknown key; did you mean 'name'?"]),
        (
            with_rule(name="has space"),
            [
                f"m.json: {RULE}.name: rule names are 1 to 64 letters, digits, '.', '_', '#' or '-' "
                "(they are part of idempotency keys); rename it"
            ],
        ),
        (
            with_rule(when="type =="),
            [
                f"m.json: {RULE}.when: invalid JMESPath at character 7: the expression ends too early; "
                "fix the expression (syntax: https://jmespath.org/specification.html)"
            ],
        ),
        (with_rule(request=_DROP), [f"m.json: {RULE}.request: required; add the Humanos request body template"]),
        (
            with_rule(request=["x"]),
            [f"m.json: {RULE}.request: must be an object (the request body template), got array"],
        ),
        (
            with_rule(idempotencyKey="fixed-key"),
            [
                f'm.json: {RULE}.idempotencyKey: must be an "=expression": a constant gives every event the same key, '
                "so all but the first would be dropped as duplicates; e.g. \"=concat('crm:', id)\", "
                "or leave it out for the default"
            ],
        ),
        (
            with_rule(idempotencyKey="=concat('a', "),
            [
                f"m.json: {RULE}.idempotencyKey: invalid JMESPath at character 12: the expression ends too early; "
                "fix the expression after '=' (write '==' for a literal '=')"
            ],
        ),
        (
            with_rule(internalId=5),
            [f'm.json: {RULE}.internalId: must be a string, an "=expression" or null (send none)'],
        ),
    ],
)
def test_rule_errors(doc: Any, expected: list[str]) -> None:
    """Rule keys, names, conditions, requests and keys are checked."""
    assert errors_of(doc) == expected


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            with_request(contacts=_DROP),
            [f"m.json: {RULE}.request.contacts: required for API 2026-05-17; add contacts: [...]"],
        ),
        (
            with_request(groupIds=_DROP),
            [
                f"m.json: {RULE}.request.groupIds: one of groupIds, resourcesIds or credentials is required; "
                "say what to ask for"
            ],
        ),
        (
            with_request(groupIdz=["g"]),
            [f"m.json: {RULE}.request.groupIdz: unknown field; did you mean 'groupIds'?"],
        ),
        (
            with_request(language="=lang", langauge="=lang"),
            [f"m.json: {RULE}.request.langauge: unknown field; did you mean 'language'?"],
        ),
        (
            with_request(securityLevel="KYC"),
            [
                f"m.json: {RULE}.request.securityLevel: must be one of CONTACT, ORGANIZATION_KYC, HUMANOS_KYC, "
                "HUMANOS_REVALIDATION"
            ],
        ),
        (
            with_request(groupIds=[]),
            [f"m.json: {RULE}.request.groupIds: is empty; give at least one of the ids or leave the field out"],
        ),
        (
            with_request(contacts=["0912 345 678"]),
            [
                f"m.json: {RULE}.request.contacts[0]: not an e-mail address or a +international phone number "
                "(8 to 15 digits after the +)"
            ],
        ),
        (
            with_request(internalId="=id"),
            [
                f"m.json: {RULE}.request.internalId: set internalId on the rule, not inside request; "
                "move it up one level (it defaults to the idempotency key)"
            ],
        ),
        (
            with_request(name="=upper(name"),
            [
                f"m.json: {RULE}.request.name: invalid JMESPath at character 10: the expression ends too early; "
                "fix the expression after '=' (write '==' for a literal '=')"
            ],
        ),
        (
            with_request(credentials=[{"type": "document", "nmae": "=title"}]),
            [
                f"m.json: {RULE}.request.credentials[0].name: required; add it",
                f"m.json: {RULE}.request.credentials[0].nmae: unknown field; did you mean 'name'?",
            ],
        ),
        (
            with_request(users=[{"contact": "=phone"}]),
            [f"m.json: {RULE}.request.users: needs API 2026-07-07 or later; write contacts: [...] or raise apiVersion"],
        ),
    ],
)
def test_request_template_errors(doc: Any, expected: list[str]) -> None:
    """What can be known about the body before any event is checked at load."""
    assert errors_of(doc) == expected


def test_users_version_names_moved_fields() -> None:
    """A 2026-05-17 template under a users[] version says what replaced each old field."""
    doc = with_request(language="ENG")
    doc["apiVersion"] = "2026-07-07"
    assert errors_of(doc) == [
        f"m.json: {RULE}.request.users: required for API 2026-07-07; add users: [{{contact: ...}}]",
        f"m.json: {RULE}.request.contacts: was replaced by users[] in API 2026-07-07; write users: [{{contact: ...}}]",
        f"m.json: {RULE}.request.language: moved into users[].language in API 2026-07-07; set it per user",
    ]


def test_users_template_item_keys_are_checked() -> None:
    """Inside users[] items, typos and a missing contact are load errors."""
    doc = with_request(contacts=_DROP, users=[{"contcat": "=phone"}])
    doc["apiVersion"] = "2026-09-01"
    assert errors_of(doc) == [
        f"m.json: {RULE}.request.users[0].contact: required; add it",
        f"m.json: {RULE}.request.users[0].contcat: unknown field; did you mean 'contact'?",
    ]


def test_duplicate_rule_names_are_refused() -> None:
    """Rule names key idempotency, so two rules of one source cannot share one."""
    doc = document()
    rules = doc["sources"]["crm"]["rules"]
    rules["contact.updated"] = copy.deepcopy(rules["contact.created"])
    assert errors_of(doc) == [
        "m.json: sources.crm.rules[\"contact.updated\"][0].name: rule name 'consent' is also used at "
        f"{RULE}; names are part of the idempotency key, so make them unique within the source"
    ]


def test_every_problem_is_reported_at_once() -> None:
    """Several mistakes in several places come back together, in file order."""
    doc = document(apiVersion="2026-13-01")
    doc["sources"]["crm"]["unmatched"] = "skip"
    doc["sources"]["crm"]["rules"]["contact.created"][0]["when"] = "lowr(type)"
    doc["sources"]["crm"]["rules"]["contact.created"][0]["request"]["groupIds"] = "=upper("
    assert errors_of(doc) == [
        "m.json: apiVersion: unsupported Humanos API version '2026-13-01'; use one of 2026-05-17, 2026-07-07, "
        "2026-09-01",
        'm.json: sources.crm.unmatched: must be "reject" or "ignore", got \'skip\'',
        f"m.json: {RULE}.when: unknown function lowr(); did you mean lower()?",
        f"m.json: {RULE}.request.groupIds: invalid JMESPath at character 6: the expression ends too early; "
        "fix the expression after '=' (write '==' for a literal '=')",
    ]


def test_toml_date_is_not_a_json_value(tmp_path: Path) -> None:
    """TOML dates and times have no JSON form; the template must quote them."""
    path = tmp_path / "m.toml"
    path.write_text(
        'version = 1\napiVersion = "2026-05-17"\n[sources.crm]\neventType = "type"\neventId = "id"\n'
        '[[sources.crm.rules."contact.created"]]\nrequest = { contacts = "=as_list(phone)", groupIds = ["g"], '
        "name = 2026-05-20 }\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    assert caught.value.details["errors"] == [
        f"{path}: {RULE}.request.name: a date is not a JSON value; write it as a string"
    ]


def test_toml_file_loads_like_json(tmp_path: Path) -> None:
    """The same mapping in TOML gives the same result; internalId = false sends none (TOML has no null)."""
    path = tmp_path / "m.toml"
    path.write_text(
        'version = 1\napiVersion = "2026-05-17"\n[sources.crm]\neventType = "type"\neventId = "id"\n'
        '[[sources.crm.rules."contact.created"]]\nname = "consent"\ninternalId = false\n'
        'request = { contacts = "=as_list(phone)", groupIds = ["grp_1"] }\n',
        encoding="utf-8",
    )
    mapped = load_mapping(path).map_event("crm", {"type": "contact.created", "id": "e1", "phone": "+351912345678"})
    assert mapped.internal_id is None
    assert mapped.body == {"contacts": ["+351912345678"], "groupIds": ["grp_1"]}


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "m.json",
            '{"version": 1,,}',
            "line 1 column 15: not valid JSON (Expecting property name enclosed in double quotes); "
            "fix the syntax there",
        ),
        ("m.json", '{"version": NaN}', "NaN is not JSON; write null or a number"),
        (
            "m.json",
            '{"version": 1, "version": 1}',
            "key 'version' appears twice in one object; merge the two entries (JSON keeps only the last)",
        ),
        ("m.toml", "version = ", "not valid TOML (Invalid value (at end of document)); fix the syntax there"),
        ("m.yaml", "version: 1", "unsupported file type '.yaml'; write the mapping as .json or .toml"),
    ],
)
def test_unparseable_files_say_where(tmp_path: Path, name: str, text: str, expected: str) -> None:
    """Syntax errors name the file and the place; other formats are refused by name."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    assert str(caught.value) == f"{path}: {expected}"


def test_missing_file_says_to_check_the_path(tmp_path: Path) -> None:
    """A wrong path is a ConfigError naming it and the setting."""
    path = tmp_path / "nope.json"
    with pytest.raises(ConfigError) as caught:
        load_mapping(path)
    assert str(caught.value) == f"{path}: no such file; check the path (MAPPING_FILE in the functions)"


def test_cached_load_parses_once_per_path(tmp_path: Path) -> None:
    """The cached loader returns the same compiled object until the cache is cleared."""
    path = tmp_path / "m.json"
    path.write_text(json.dumps(document()), encoding="utf-8")
    load_mapping_cached.cache_clear()
    first = load_mapping_cached(str(path))
    path.write_text("{broken", encoding="utf-8")  # not read again while cached
    assert load_mapping_cached(str(path)) is first
    load_mapping_cached.cache_clear()
    with pytest.raises(ConfigError):
        load_mapping_cached(str(path))
    load_mapping_cached.cache_clear()


@pytest.mark.parametrize(
    ("auth", "unmappable", "expected"),
    [
        ({"scheme": "humanos-hmac"}, None, "refuse"),  # a sender the user controls reads the 422
        ({"scheme": "hmac", "signatureHeader": "X-Sig"}, None, "refuse"),
        ({"scheme": "stripe"}, None, "park"),  # a provider retries, then drops the event (or the subscription)
        ({"scheme": "shopify"}, None, "park"),
        ({"scheme": "hubspot-v3"}, None, "park"),
        ({"scheme": "shopify"}, "refuse", "refuse"),
        ({"scheme": "humanos-hmac"}, "park", "park"),
    ],
)
def test_unmappable_defaults_to_park_for_a_provider_and_to_refuse_for_any_other_sender(
    auth: dict[str, Any], unmappable: str | None, expected: str
) -> None:
    changes: dict[str, Any] = {"auth": auth} if unmappable is None else {"auth": auth, "unmappable": unmappable}
    assert parse_mapping(with_source(**changes), file="m.json").source("crm").unmappable == expected


def test_unmappable_takes_refuse_or_park() -> None:
    assert errors_of(with_source(unmappable="drop")) == [
        """m.json: sources.crm.unmappable: must be "refuse" or "park", got 'drop'"""
    ]
