"""map_event: each rule feature, the event's identity and keys, and the permanent errors."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from humanos_bridge.core import wire
from humanos_bridge.core.errors import EventIgnored, InvalidBodyError, MappingError, UnknownSourceError
from humanos_bridge.mapping import MappedRequest, MappingConfig, bound_key, content_hash, parse_mapping

PHONE = "+351912345678"
EMAIL = "ana@example.com"


def config(rules: dict[str, Any] | None = None, api_version: str = "2026-05-17", **source: Any) -> MappingConfig:
    """A one-source (``crm``) mapping; ``rules`` replaces the single consent rule."""
    spec: dict[str, Any] = {
        "eventType": "type",
        "eventId": "id",
        "rules": rules
        or {"contact.created": [{"name": "consent", "request": {"contacts": "=as_list(phone)", "groupIds": ["g"]}}]},
    }
    spec.update(source)
    return parse_mapping({"version": 1, "apiVersion": api_version, "sources": {"crm": spec}}, file="m.json")


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"type": "contact.created", "id": "evt_1", "phone": PHONE}
    base.update(fields)
    return base


def one_rule(request: dict[str, Any], **rule: Any) -> dict[str, Any]:
    return {"contact.created": [{"name": "r", "request": request, **rule}]}


def test_typical_event_becomes_a_request() -> None:
    """Defaults: the key is source:event id:rule, and the internalId is the key (unique per event)."""
    assert config().map_event("crm", event()) == MappedRequest(
        source="crm",
        event_type="contact.created",
        event_id="evt_1",
        rule="consent",
        idempotency_key="crm:evt_1:consent",
        internal_id="crm:evt_1:consent",
        body={"contacts": [PHONE], "groupIds": ["g"], "internalId": "crm:evt_1:consent"},
    )


def test_mapped_request_is_frozen() -> None:
    """A mapped request cannot change between signing and sending."""
    mapped = config().map_event("crm", event())
    with pytest.raises(AttributeError):
        mapped.rule = "other"  # type: ignore[misc]


def test_constants_expressions_and_escapes() -> None:
    """Constants stay, '=' strings are evaluated, '==' is a literal '='; nested templates work."""
    request = {
        "contacts": [PHONE],
        "groupIds": ["=group", "g2"],
        "name": "==not an expression",
        "credentials": [{"type": "DOCUMENT", "name": "=upper(title)", "data": {"n": "=n", "k": 1.5, "f": False}}],
    }
    body = config(one_rule(request)).map_event("crm", event(group="g1", title="nda", n=3)).body
    assert body == {
        "contacts": [PHONE],
        "groupIds": ["g1", "g2"],
        "name": "=not an expression",
        "credentials": [{"type": "DOCUMENT", "name": "NDA", "data": {"n": 3, "k": 1.5, "f": False}}],
        "internalId": "crm:evt_1:r",
    }


def test_null_expressions_leave_fields_and_items_out() -> None:
    """An expression that finds nothing drops its key, or its list item."""
    request = {"contacts": ["=phone", "=email"], "groupIds": ["g"], "language": "=lang"}
    body = config(one_rule(request)).map_event("crm", event()).body
    assert body == {"contacts": [PHONE], "groupIds": ["g"], "internalId": "crm:evt_1:r"}


@pytest.mark.parametrize(
    ("expression", "fields", "expected"),
    [
        ("=default(lang, 'ENG')", {}, "ENG"),
        ("=default(lang, 'ENG')", {"lang": ""}, "ENG"),
        ("=default(lang, 'ENG')", {"lang": "POR"}, "POR"),
        ("=lower(lang)", {"lang": "ENG"}, "eng"),
        ("=upper(lang)", {"lang": "eng"}, "ENG"),
        ("=trim(lang)", {"lang": "  ENG "}, "ENG"),
        ("=concat('Order ', n, ' of ', m, missing)", {"n": 7, "m": 2.0}, "Order 7 of 2"),
        ("=concat('x', `0.1`)", {}, "x0.1"),
        ("=join('-', [a, b])", {"a": "x", "b": "y"}, "x-y"),
        ("=not_null(nick, first)", {"first": "Ana"}, "Ana"),
    ],
)
def test_string_functions(expression: str, fields: dict[str, Any], expected: str) -> None:
    """default, lower, upper, trim, concat and the standard join / not_null work in templates."""
    cfg = config(one_rule({"contacts": [PHONE], "groupIds": ["g"], "name": expression}))
    assert cfg.map_event("crm", event(**fields)).body["name"] == expected


@pytest.mark.parametrize(
    ("expression", "fields", "expected"),
    [
        ("=as_list(phone)", {}, [PHONE]),
        ("=as_list(phones)", {"phones": [PHONE, EMAIL]}, [PHONE, EMAIL]),
        ("=compact([phone, email, ''])", {"email": EMAIL}, [PHONE, EMAIL]),
        ("=[phone, email][]", {"email": EMAIL}, [PHONE, EMAIL]),
    ],
)
def test_list_functions(expression: str, fields: dict[str, Any], expected: list[str]) -> None:
    """as_list turns a single value into a list; compact drops the missing ones."""
    cfg = config(one_rule({"contacts": expression, "groupIds": ["g"]}))
    assert cfg.map_event("crm", event(**fields)).body["contacts"] == expected


def test_as_list_of_nothing_is_an_empty_list_which_the_body_refuses() -> None:
    """A missing phone gives [] and the body check names the field."""
    cfg = config(one_rule({"contacts": "=as_list(mobile)", "groupIds": ["g"]}))
    with pytest.raises(InvalidBodyError) as caught:
        cfg.map_event("crm", event())
    assert str(caught.value) == "body.contacts: is empty; give at least one of the contacts or leave the field out"
    assert caught.value.details["source"] == "crm"
    assert caught.value.details["rule"] == "r"


def test_first_rule_whose_when_holds_wins() -> None:
    """Rules are tried in order; an unconditional rule after them is the fallback."""
    rules = {
        "contact.created": [
            {"name": "vip", "when": "tier == 'vip'", "request": {"contacts": [PHONE], "groupIds": ["vip"]}},
            {"name": "zero", "when": "score", "request": {"contacts": [PHONE], "groupIds": ["score"]}},
            {"name": "rest", "request": {"contacts": [PHONE], "groupIds": ["rest"]}},
        ]
    }
    cfg = config(rules)
    assert cfg.map_event("crm", event(tier="vip", score=1)).rule == "vip"
    assert cfg.map_event("crm", event(score=0)).rule == "zero"  # 0 is true in JMESPath
    for falsy in ("", [], {}, None, False):
        assert cfg.map_event("crm", event(score=falsy)).rule == "rest"


def test_no_matching_when_is_rejected_by_default() -> None:
    """Rules exist for the type but none applies: a permanent error saying how to fix it."""
    cfg = config(one_rule({"contacts": [PHONE], "groupIds": ["g"]}, when="tier == 'vip'"))
    with pytest.raises(MappingError) as caught:
        cfg.map_event("crm", event())
    assert str(caught.value) == (
        "source crm: event type 'contact.created' has 1 rule(s) but no `when` matched; "
        'add a rule under sources.crm.rules["contact.created"] or set unmatched: "ignore"'
    )
    assert caught.value.details["reason"] == "unmatched_event_type"


def test_unknown_event_type_is_rejected_or_ignored() -> None:
    """unmatched decides: reject (a permanent error) or ignore (EventIgnored, not a failure)."""
    with pytest.raises(MappingError) as rejected:
        config().map_event("crm", event(type="contact.deleted"))
    assert str(rejected.value) == (
        "source crm: event type 'contact.deleted' has no rules; "
        'add a rule under sources.crm.rules["contact.deleted"] or set unmatched: "ignore"'
    )
    with pytest.raises(EventIgnored) as ignored:
        config(unmatched="ignore").map_event("crm", event(type="contact.deleted", id=None))
    assert str(ignored.value) == (
        "source crm ignores event type 'contact.deleted': it has no rules and unmatched is \"ignore\""
    )


def test_event_type_in_messages_is_masked() -> None:
    """A sender putting a contact in the type field does not get it into our messages."""
    with pytest.raises(MappingError) as caught:
        config().map_event("crm", event(type=EMAIL))
    assert EMAIL not in str(caught.value)
    assert "'a***@e***.com'" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "event type: `type` found nothing, not a string; send the type there or fix sources.crm.eventType"),
        (
            "",
            "event type: `type` found an empty string, not a string; send the type there or fix sources.crm.eventType",
        ),
        (3, "event type: `type` found a number, not a string; send the type there or fix sources.crm.eventType"),
    ],
)
def test_event_type_must_be_a_string(value: Any, expected: str) -> None:
    """No usable type, no mapping; the message names the expression and the setting."""
    with pytest.raises(MappingError) as caught:
        config().map_event("crm", event(type=value))
    assert str(caught.value) == expected
    assert caught.value.path == "sources.crm.eventType"


@pytest.mark.parametrize(("value", "expected"), [("evt_9", "evt_9"), (42, "42")])
def test_event_ids_may_be_strings_or_integers(value: Any, expected: str) -> None:
    """Integer ids become their decimal text."""
    assert config().event_identity("crm", event(id=value)) == ("contact.created", expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            None,
            "event id: `id` found nothing; send an id there, fix sources.crm.eventId, or set eventIdDefault: "
            '"content-hash" on the source',
        ),
        (
            "",
            "event id: `id` found nothing; send an id there, fix sources.crm.eventId, or set eventIdDefault: "
            '"content-hash" on the source',
        ),
        (True, "event id: `id` found a boolean; an event id must be a string or an integer"),
        (1.5, "event id: `id` found a number; an event id must be a string or an integer"),
        ({"a": 1}, "event id: `id` found a object; an event id must be a string or an integer"),
    ],
)
def test_bad_event_ids_are_permanent_errors(value: Any, expected: str) -> None:
    """Without a usable id there is no idempotency key, so the event cannot be sent."""
    with pytest.raises(MappingError) as caught:
        config().map_event("crm", event(id=value))
    assert str(caught.value) == expected


def test_content_hash_is_the_default_id_and_ignores_key_order() -> None:
    """Events without an id get the SHA-256 of their canonical JSON: equal events, equal ids."""
    cfg = config(eventIdDefault="content-hash")
    first = {"type": "contact.created", "phone": PHONE, "meta": {"b": 1, "a": [1, {"y": 2, "x": 1}]}}
    second = {"meta": {"a": [1, {"x": 1, "y": 2}], "b": 1}, "phone": PHONE, "type": "contact.created"}
    canonical = b'{"meta":{"a":[1,{"x":1,"y":2}],"b":1},"phone":"+351912345678","type":"contact.created"}'
    expected = hashlib.sha256(canonical).hexdigest()
    assert cfg.event_identity("crm", first) == ("contact.created", expected)
    assert cfg.event_identity("crm", second) == ("contact.created", expected)
    assert content_hash(first) == expected
    assert cfg.event_identity("crm", {**first, "phone": "+351912345679"})[1] != expected
    assert cfg.map_event("crm", first).idempotency_key == f"crm:{expected}:consent"


def test_content_hash_of_a_non_json_event_is_a_mapping_error() -> None:
    """NaN cannot be hashed canonically; that is a permanent error, not a crash."""
    cfg = config(eventIdDefault="content-hash")
    with pytest.raises(MappingError) as caught:
        cfg.map_event("crm", {"type": "contact.created", "x": float("nan")})
    assert str(caught.value) == (
        "event id: the event has no id and cannot be hashed for one "
        "($.x: NaN and Infinity are not JSON; replace them with null or a number)"
    )


def test_internal_id_can_be_an_expression_or_none() -> None:
    """internalId: an expression, null (send none), or absent when its expression finds nothing."""
    request = {"contacts": [PHONE], "groupIds": ["g"]}
    by_expression = config(one_rule(request, internalId="=customer"))
    assert by_expression.map_event("crm", event(customer="c9")).internal_id == "c9"
    assert by_expression.map_event("crm", event(customer="c9")).body["internalId"] == "c9"
    assert "internalId" not in by_expression.map_event("crm", event()).body
    assert by_expression.map_event("crm", event()).internal_id is None
    none = config(one_rule(request, internalId=None)).map_event("crm", event())
    assert (none.internal_id, "internalId" in none.body) == (None, False)


def test_idempotency_key_expression() -> None:
    """A custom key is used as given; one that finds nothing is a permanent error."""
    cfg = config(one_rule({"contacts": [PHONE], "groupIds": ["g"]}, idempotencyKey="=join(':', ['crm', customer])"))
    assert cfg.map_event("crm", event(customer="c9")).idempotency_key == "crm:c9"
    with pytest.raises(MappingError) as caught:
        cfg.map_event("crm", event(customer=None))
    assert str(caught.value) == (
        "sources.crm.rules[\"contact.created\"][0].idempotencyKey: expression `join(':', ['crm', customer])` "
        "failed: join() argument 2 expected array-string but got an array with a null item; guard it, e.g. with "
        "default() or a `when` condition"
    )
    number_key = config(one_rule({"contacts": [PHONE], "groupIds": ["g"]}, idempotencyKey="=seq"))
    assert number_key.map_event("crm", event(seq=7)).idempotency_key == "7"
    with pytest.raises(MappingError) as missing:
        number_key.map_event("crm", event())
    assert str(missing.value) == (
        'sources.crm.rules["contact.created"][0].idempotencyKey: found nothing; '
        "it must give a non-empty string (or an integer)"
    )


def test_idempotency_key_expression_giving_a_list_is_an_error() -> None:
    """Keys are text; a list is refused with the place named."""
    cfg = config(one_rule({"contacts": [PHONE], "groupIds": ["g"]}, idempotencyKey="=tags"))
    with pytest.raises(MappingError) as caught:
        cfg.map_event("crm", event(tags=["a"]))
    assert str(caught.value) == (
        'sources.crm.rules["contact.created"][0].idempotencyKey: found a array; '
        "it must give a non-empty string (or an integer)"
    )


@pytest.mark.parametrize("key", ["k" * 128, "crm:evt_1:consent", "a!~z"])
def test_short_ascii_keys_are_kept(key: str) -> None:
    """Keys that already fit are untouched."""
    assert bound_key(key) == key


@pytest.mark.parametrize("key", ["k" * 129, "crm:évènement:1", "crm:evt 1:consent", "crm:\ud800:x"])
def test_long_or_non_ascii_keys_become_prefix_plus_hash(key: str) -> None:
    """Too long or not printable ASCII: a readable prefix and the SHA-256 of the whole key, 128 chars at most."""
    bounded = bound_key(key)
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    assert bounded.endswith("~" + digest)
    assert len(bounded) <= 128
    assert bounded.isascii()
    assert bound_key(key) == bounded  # stable
    assert bound_key(key + "x") != bounded


def test_long_event_ids_give_bounded_keys() -> None:
    """The default key of a huge event id is bounded the same way."""
    mapped = config().map_event("crm", event(id="e" * 500))
    assert len(mapped.idempotency_key) == 128
    assert mapped.idempotency_key.startswith("crm:eee")


def test_unknown_source_is_distinguishable() -> None:
    """Unknown sources raise UnknownSourceError (a MappingError) with code unknown_source."""
    with pytest.raises(UnknownSourceError) as caught:
        config().map_event("billing", event())
    assert isinstance(caught.value, MappingError)
    assert caught.value.code == "unknown_source"
    assert str(caught.value) == "unknown source 'billing'; the mapping file m.json defines crm"
    with pytest.raises(UnknownSourceError):
        config().event_identity("billing", event())


def test_expression_type_errors_never_echo_the_value() -> None:
    """A function given the wrong type fails permanently; the event's value stays out of the message."""
    cfg = config(one_rule({"contacts": [PHONE], "groupIds": ["g"], "name": "=upper(phone_list)"}))
    with pytest.raises(MappingError) as caught:
        cfg.map_event("crm", event(phone_list=[PHONE]))
    assert str(caught.value) == (
        'sources.crm.rules["contact.created"][0].request.name: expression `upper(phone_list)` failed: '
        "upper() argument 1 expected string, null but got array; guard it, e.g. with default() or a `when` condition"
    )
    assert PHONE not in str(caught.value)
    assert caught.value.details["reason"] == "expression_failed"


@pytest.mark.parametrize(
    ("expression", "fields", "argument", "got"),
    [
        pytest.param("=concat(who, ' joined')", {"who": {"first": "Ana"}}, 1, "object", id="first-object"),
        pytest.param("=concat('Welcome ', who)", {"who": {"first": "Ana"}}, 2, "object", id="second-object"),
        pytest.param("=concat('a', 'b', who)", {"who": [PHONE]}, 3, "array", id="third-array"),
        pytest.param("=concat('Consent: ', flag)", {"flag": True}, 2, "boolean", id="second-boolean"),
    ],
)
def test_concat_checks_the_type_of_every_argument(
    expression: str, fields: dict[str, Any], argument: int, got: str
) -> None:
    """Every argument of concat() must be a string, a number or null; the error names which one was not and
    what it was, rather than writing an object's Python text (or a phone number inside it) into the name."""
    cfg = config(one_rule({"contacts": [PHONE], "groupIds": ["g"], "name": expression}))
    with pytest.raises(MappingError) as caught:
        cfg.map_event("crm", event(**fields))
    assert str(caught.value) == (
        f'sources.crm.rules["contact.created"][0].request.name: expression `{expression[1:]}` failed: '
        f"concat() argument {argument} expected string, number, null but got {got}; guard it, e.g. with "
        "default() or a `when` condition"
    )
    assert PHONE not in str(caught.value) and "Ana" not in str(caught.value)


def test_when_type_errors_are_mapping_errors() -> None:
    """Conditions fail the same way, naming the when."""
    cfg = config(one_rule({"contacts": [PHONE], "groupIds": ["g"]}, when="length(score) > `1`"))
    with pytest.raises(MappingError) as caught:
        cfg.map_event("crm", event(score=5))
    assert str(caught.value).startswith('sources.crm.rules["contact.created"][0].when: expression `length(score)')


def test_non_json_values_from_the_event_are_mapping_errors() -> None:
    """A NaN copied into the body is refused by the body check, not by a crash."""
    cfg = config(
        one_rule({"contacts": [PHONE], "groupIds": ["g"], "credentials": [{"type": "JSON", "name": "n", "data": "=x"}]})
    )
    with pytest.raises(InvalidBodyError) as caught:
        cfg.map_event("crm", event(x=float("inf")))
    assert str(caught.value) == (
        "body.credentials[0].data: NaN and Infinity are not JSON; replace them with null or a number"
    )


def test_users_version_body() -> None:
    """With a users[] API version the template builds users and contacts inside are normalised."""
    request = {"users": [{"contact": "=phone", "secondaryContact": "=email", "language": "PRT"}], "groupIds": ["g"]}
    mapped = config(one_rule(request), api_version="2026-09-01").map_event(
        "crm", event(phone="+351 912 345 678", email=EMAIL)
    )
    assert wire.dumps(mapped.body) == (
        '{"users":[{"contact":"+351912345678","secondaryContact":"ana@example.com","language":"PRT"}],'
        '"groupIds":["g"],"internalId":"crm:evt_1:r"}'
    )


def test_event_identity_does_not_need_a_rule() -> None:
    """Identity works for any event type, even ones no rule takes (for logs)."""
    assert config().event_identity("crm", event(type="other")) == ("other", "evt_1")


def test_non_object_events_fail_cleanly() -> None:
    """A string, a number or null as the event has no type: a MappingError."""
    for bad in ("text", 5, None):
        with pytest.raises(MappingError, match=r"^event type: `type` found nothing"):
            config().map_event("crm", bad)


def test_an_array_event_is_named_as_such() -> None:
    """A batching sender (HubSpot posts a JSON array) is told so, not that a field is missing."""
    with pytest.raises(MappingError, match=r"^event type: the event is a JSON array of 2 item\(s\), not an object"):
        config().map_event("crm", [{"type": "contact.created"}, {"type": "contact.created"}])
