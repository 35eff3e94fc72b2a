"""The presets in mappings/presets/: each loads, and maps its real-shaped sample event to exactly this body.

The expected bodies are written out by hand (they are what Humanos would receive, byte for byte), so a change
in a preset, in its sample event or in a function of the language shows up here as a different body.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from humanos_bridge.core import wire
from humanos_bridge.core.errors import EventIgnored, InvalidBodyError, MappingError
from humanos_bridge.mapping import MappedRequest, MappingConfig, content_hash, load_mapping
from humanos_bridge.mapping.lint import warnings

ROOT = Path(__file__).resolve().parents[2]
PRESETS = ROOT / "mappings" / "presets"
SAMPLES = ROOT / "events" / "business" / "presets"

#: preset file -> (its one source, its sample event)
CASES = {
    "stripe-checkout.json": ("stripe", "stripe-checkout-session-completed.json"),
    "shopify-orders-paid.json": ("shopify", "shopify-orders-paid.json"),
    "typeform-consent.json": ("typeform", "typeform-form-response.json"),
    "hr-employee-hired.json": ("hr", "hr-employee-hired.json"),
    "hubspot-contacts.json": ("hubspot", "hubspot-contact-batch.json"),
}


def preset(name: str) -> MappingConfig:
    return load_mapping(PRESETS / name)


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
    return event


#: The request headers each provider sends with its sample (lower-case names, as the ingest route keeps them).
HEADERS = {
    "shopify-orders-paid.json": {
        "x-shopify-topic": "orders/paid",
        "x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
    },
}


def mapped(
    preset_name: str, event: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> MappedRequest:
    source, sample_name = CASES[preset_name]
    given = HEADERS.get(preset_name, {}) if headers is None else headers
    return preset(preset_name).map_event(source, sample(sample_name) if event is None else event, given)


def body(preset_name: str, event: dict[str, Any] | None = None) -> str:
    return wire.dumps(mapped(preset_name, event).body)


# -- every preset ------------------------------------------------------------------------------------


def test_every_preset_file_is_listed_here() -> None:
    """A new preset needs its sample and its expected body in this file."""
    assert sorted(p.name for p in PRESETS.glob("*.json")) == sorted(CASES)
    assert sorted(p.name for p in SAMPLES.glob("*.json")) == sorted(sample_name for _, sample_name in CASES.values())


@pytest.mark.parametrize("preset_name", sorted(CASES))
def test_preset_loads_with_one_source_named_for_the_provider(preset_name: str) -> None:
    config = preset(preset_name)
    assert config.api_version == "2026-05-17"
    assert config.sources == (CASES[preset_name][0],)


@pytest.mark.parametrize("preset_name", sorted(CASES))
def test_the_readme_lists_each_preset_with_its_preview_command(preset_name: str) -> None:
    source, sample_name = CASES[preset_name]
    readme = (PRESETS / "README.md").read_text(encoding="utf-8")
    command = (
        f"humanos-bridge mappings preview mappings/presets/{preset_name} "
        f"events/business/presets/{sample_name} --source {source}"
        + "".join(f" --header '{name}: {value}'" for name, value in HEADERS.get(preset_name, {}).items())
    )
    assert command in readme


def test_every_preset_verifies_its_providers_own_signature() -> None:
    schemes = {name: preset(name).source(source).auth for name, (source, _) in CASES.items()}
    assert {name: auth.scheme if auth else None for name, auth in schemes.items()} == {
        "stripe-checkout.json": "stripe",
        "shopify-orders-paid.json": "shopify",
        "typeform-consent.json": "typeform",
        "hr-employee-hired.json": "humanos-hmac",
        "hubspot-contacts.json": "hubspot-v3",
    }


def test_the_presets_have_no_traps_and_check_names_the_providers_that_sign_no_timestamp() -> None:
    untimed = []
    for name in CASES:
        found = warnings(preset(name))
        assert [w for w in found if ".auth: " not in w] == [], name
        untimed += [name for w in found if "signs no timestamp" in w]
    assert untimed == ["shopify-orders-paid.json", "typeform-consent.json"]


# -- Stripe checkout.session.completed ----------------------------------------------------------------

STRIPE_SESSION = "cs_test_a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ0123456789AbCdEf"


def test_stripe_checkout_becomes_order_terms_by_email() -> None:
    request = mapped("stripe-checkout.json")
    assert (request.event_type, request.event_id, request.rule) == (
        "checkout.session.completed",
        "evt_1QfXkP2eZvKYlo2C8mN3xR7t",
        "order-terms",
    )
    assert request.idempotency_key == f"stripe:{STRIPE_SESSION}:order-terms"
    assert body("stripe-checkout.json") == (
        '{"contacts":["ana.silva@example.com"],'
        '"credentials":[{"type":"DOCUMENT","name":"Order terms","data":{'
        '"checkoutSession":"cs_test_a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ0123456789AbCdEf",'
        '"order":"order-1042","customer":"Ana Silva","amount":"12.50","currency":"EUR","termsVersion":"2026-01"}}],'
        '"securityLevel":"CONTACT","name":"Order terms for 12.50 EUR","language":"PRT",'
        '"internalId":"stripe:cs_test_a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ0123456789AbCdEf:order-terms"}'
    )


@pytest.mark.parametrize(("cents", "text"), [(1999, "19.99"), (1200, "12.00"), (5, "0.05"), (100000, "1000.00")])
def test_stripe_amount_in_cents_becomes_money_text(cents: int, text: str) -> None:
    event = sample("stripe-checkout-session-completed.json")
    event["data"]["object"]["amount_total"] = cents
    request_body = mapped("stripe-checkout.json", event).body
    assert request_body["name"] == f"Order terms for {text} EUR"
    assert request_body["credentials"][0]["data"]["amount"] == text


def test_stripe_unknown_locale_and_no_metadata_fall_back() -> None:
    event = sample("stripe-checkout-session-completed.json")
    session = event["data"]["object"]
    session.update(locale="auto", metadata={}, client_reference_id=None, currency="gbp", amount_total=1999)
    assert body("stripe-checkout.json", event) == (
        '{"contacts":["ana.silva@example.com"],'
        '"credentials":[{"type":"DOCUMENT","name":"Order terms","data":{'
        '"checkoutSession":"cs_test_a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ0123456789AbCdEf",'
        '"customer":"Ana Silva","amount":"19.99","currency":"GBP"}}],'
        '"securityLevel":"CONTACT","name":"Order terms for 19.99 GBP","language":"ENG",'
        '"internalId":"stripe:cs_test_a1B2c3D4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ0123456789AbCdEf:order-terms"}'
    )


def test_stripe_unpaid_session_is_ignored_and_the_later_payment_maps_with_the_same_key() -> None:
    """Delayed methods complete unpaid; async_payment_succeeded pays: one request per session."""
    unpaid = sample("stripe-checkout-session-completed.json")
    unpaid["data"]["object"]["payment_status"] = "unpaid"
    with pytest.raises(EventIgnored):
        mapped("stripe-checkout.json", unpaid)

    paid_later = copy.deepcopy(unpaid)
    paid_later.update(id="evt_1QfZ0a2eZvKYlo2C9pQ4yS8u", type="checkout.session.async_payment_succeeded")
    paid_later["data"]["object"]["payment_status"] = "paid"
    later = mapped("stripe-checkout.json", paid_later)
    assert later.rule == "order-terms-async"
    assert later.idempotency_key == mapped("stripe-checkout.json").idempotency_key
    assert later.body == mapped("stripe-checkout.json").body


def test_stripe_other_event_types_are_ignored() -> None:
    event = sample("stripe-checkout-session-completed.json")
    event["type"] = "payment_intent.succeeded"
    with pytest.raises(EventIgnored):
        mapped("stripe-checkout.json", event)


# -- Shopify orders/paid ------------------------------------------------------------------------------


def test_shopify_paid_order_becomes_a_purchase_agreement_with_its_lines() -> None:
    request = mapped("shopify-orders-paid.json")
    assert (request.event_type, request.event_id) == ("orders/paid", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
    assert body("shopify-orders-paid.json") == (
        '{"contacts":["ana.silva@example.com"],'
        '"credentials":[{"type":"DOCUMENT","name":"Purchase agreement for order #1042","data":{'
        '"order":"#1042","orderId":"gid://shopify/Order/5871203254375",'
        '"lineItems":[{"title":"Linen shirt","quantity":2,"total":"39.98"},'
        '{"title":"Canvas tote","quantity":1,"total":"12.50"}],'
        '"total":"57.47","currency":"EUR"}}],'
        '"securityLevel":"CONTACT","name":"Purchase agreement for order #1042","language":"PRT",'
        '"internalId":"shopify:order:5871203254375:purchase-agreement"}'
    )


def test_shopify_topic_comes_from_its_header_and_other_topics_are_ignored() -> None:
    refunded = {**HEADERS["shopify-orders-paid.json"], "x-shopify-topic": "refunds/create"}
    with pytest.raises(EventIgnored, match="ignores event type 'refunds/create'"):
        mapped("shopify-orders-paid.json", headers=refunded)
    with pytest.raises(MappingError, match=r"event type: `header\('X-Shopify-Topic'\)` found nothing"):
        mapped("shopify-orders-paid.json", headers={})  # put on the queue directly: no headers


def test_shopify_line_totals_are_decimal() -> None:
    """3 x 19.99 is 59.97 and 3 x 0.10 is 0.30 (in floats: 59.97000000000001 and 0.30000000000000004)."""
    event = sample("shopify-orders-paid.json")
    event["line_items"][0].update(quantity=3, price="19.99")
    event["line_items"][1].update(quantity=3, price="0.10")
    lines = mapped("shopify-orders-paid.json", event).body["credentials"][0]["data"]["lineItems"]
    assert lines == [
        {"title": "Linen shirt", "quantity": 3, "total": "59.97"},
        {"title": "Canvas tote", "quantity": 3, "total": "0.30"},
    ]


def test_shopify_contact_falls_back_to_the_customer_then_the_phone() -> None:
    """Shopify sends "" for a missing e-mail."""
    event = sample("shopify-orders-paid.json")
    event.update(email="", contact_email=None)
    event["customer"]["email"] = "ana.customer@example.com"
    assert mapped("shopify-orders-paid.json", event).body["contacts"] == ["ana.customer@example.com"]
    event["customer"]["email"] = None
    assert mapped("shopify-orders-paid.json", event).body["contacts"] == ["+351912345678"]


def test_shopify_order_without_a_contact_is_refused_by_the_mapping_and_parked_by_its_source() -> None:
    """events/business/shopify-order-paid-no-contact.json (the demo's parked step): no e-mail or phone where the
    preset looks, so no body; the source parks it (the shopify preset's default) instead of answering 422."""
    event = json.loads((SAMPLES.parent / "shopify-order-paid-no-contact.json").read_text(encoding="utf-8"))
    with pytest.raises(InvalidBodyError, match=r"^body\.contacts: is empty"):
        mapped("shopify-orders-paid.json", event)
    assert preset("shopify-orders-paid.json").source("shopify").unmappable == "park"


def test_shopify_event_id_is_the_delivery_and_the_key_is_the_order() -> None:
    """The topic and the event id come from their headers (the shopify preset's); the request is the order's,
    whichever delivery brings it (a second subscription delivers it under another X-Shopify-Webhook-Id)."""
    other_delivery = {**HEADERS["shopify-orders-paid.json"], "x-shopify-webhook-id": "0f6e2d1c-delivery-2"}
    first, second = mapped("shopify-orders-paid.json"), mapped("shopify-orders-paid.json", headers=other_delivery)
    assert (second.event_type, second.event_id) == ("orders/paid", "0f6e2d1c-delivery-2")
    assert first.idempotency_key == second.idempotency_key == "shopify:order:5871203254375:purchase-agreement"
    event = sample("shopify-orders-paid.json")
    event.update(id=5871203254376, customer_locale="de-DE")
    another_order = mapped("shopify-orders-paid.json", event)
    assert another_order.idempotency_key == "shopify:order:5871203254376:purchase-agreement"
    assert another_order.body["language"] == "ENG"


# -- Typeform form_response ---------------------------------------------------------------------------


def answer(event: dict[str, Any], ref: str) -> dict[str, Any]:
    found: dict[str, Any] = next(a for a in event["form_response"]["answers"] if a["field"]["ref"] == ref)
    return found


def test_typeform_consent_becomes_a_consent_request() -> None:
    request = mapped("typeform-consent.json")
    assert (request.event_type, request.event_id) == ("form_response", "01JNB3Q8Z4XK7W2M5R9T6V1Y3C")
    assert body("typeform-consent.json") == (
        '{"contacts":["ana.silva@example.com"],"groupIds":["grp_marketing_consent"],"securityLevel":"CONTACT",'
        '"name":"Marketing consent for Ana Silva","language":"PRT",'
        '"internalId":"typeform:a3a12ec67a1365927098a606107fac15:marketing-consent"}'
    )


def test_typeform_without_consent_is_ignored() -> None:
    """The preset's unmatched is "ignore": a response that refuses consent is no error."""
    event = sample("typeform-form-response.json")
    answer(event, "consent")["boolean"] = False
    with pytest.raises(EventIgnored):
        mapped("typeform-consent.json", event)


def test_typeform_answers_are_found_by_ref_not_position() -> None:
    event = sample("typeform-form-response.json")
    event["form_response"]["answers"].reverse()
    assert mapped("typeform-consent.json", event).body == mapped("typeform-consent.json").body


def test_typeform_other_forms_and_missing_consent_are_ignored() -> None:
    other_form = sample("typeform-form-response.json")
    other_form["form_response"]["form_id"] = "Xy9AbC"
    no_answer = sample("typeform-form-response.json")
    no_answer["form_response"]["answers"] = [
        a for a in no_answer["form_response"]["answers"] if a["field"]["ref"] != "consent"
    ]
    for event in (other_form, no_answer):
        with pytest.raises(EventIgnored):
            mapped("typeform-consent.json", event)


def test_typeform_without_email_uses_the_phone_and_english() -> None:
    event = sample("typeform-form-response.json")
    event["form_response"]["answers"] = [a for a in event["form_response"]["answers"] if a["field"]["ref"] != "email"]
    event["form_response"]["hidden"] = {}
    assert body("typeform-consent.json", event) == (
        '{"contacts":["+351912345678"],"groupIds":["grp_marketing_consent"],"securityLevel":"CONTACT",'
        '"name":"Marketing consent for Ana Silva","language":"ENG",'
        '"internalId":"typeform:a3a12ec67a1365927098a606107fac15:marketing-consent"}'
    )


# -- HR employee.hired --------------------------------------------------------------------------------


def test_hr_hire_becomes_an_identity_check_on_the_mobile() -> None:
    """The mobile is sent without its spaces (the body check normalises phones)."""
    assert body("hr-employee-hired.json") == (
        '{"contacts":["+351912345678"],"securityLevel":"HUMANOS_KYC","groupIds":["grp_employee_onboarding"],'
        '"name":"Welcome! You start on 01/03/2026","language":"PRT",'
        '"internalId":"hr:evt_01JNB4T2R8M6K3W9Q5X1Z7V4HD:identity-check"}'
    )


@pytest.mark.parametrize("mobile", [None, ""])
def test_hr_without_a_mobile_uses_the_personal_email(mobile: str | None) -> None:
    event = sample("hr-employee-hired.json")
    event["employee"]["mobile"] = mobile
    assert body("hr-employee-hired.json", event) == (
        '{"contacts":["ana.silva@example.com"],"securityLevel":"HUMANOS_KYC","groupIds":["grp_employee_onboarding"],'
        '"name":"Welcome! You start on 01/03/2026","language":"PRT",'
        '"internalId":"hr:evt_01JNB4T2R8M6K3W9Q5X1Z7V4HD:identity-check"}'
    )


@pytest.mark.parametrize("locale", ["fr-FR", None, "pt_PT"])
def test_hr_unknown_locale_gives_english(locale: str | None) -> None:
    event = sample("hr-employee-hired.json")
    event["employee"]["locale"] = locale
    assert mapped("hr-employee-hired.json", event).body["language"] == "ENG"


def test_hr_start_date_as_date_time_and_other_event_types() -> None:
    event = sample("hr-employee-hired.json")
    event["employee"]["startDate"] = "2026-12-31T09:00:00Z"
    assert mapped("hr-employee-hired.json", event).body["name"] == "Welcome! You start on 31/12/2026"
    event["type"] = "employee.updated"
    with pytest.raises(EventIgnored):
        mapped("hr-employee-hired.json", event)


# -- HubSpot contact batches (forEach) -------------------------------------------------------------------


def test_hubspot_batch_becomes_one_consent_request_per_phone_set() -> None:
    """Four events in one POST: three phone changes become three requests, the contact.creation none."""
    source, sample_name = CASES["hubspot-contacts.json"]
    requests = preset("hubspot-contacts.json").map_requests(source, sample(sample_name))
    assert [r.idempotency_key for r in requests] == [
        f"hubspot:62515:2407:{event_id}:marketing-consent-sms" for event_id in (1001, 1002, 1004)
    ]
    assert {(r.event_type, r.event_id) for r in requests} == {("batch", content_hash(sample(sample_name)))}
    assert wire.dumps(requests[1].body) == (
        '{"contacts":["+351912000102"],"groupIds":["grp_marketing_consent"],"securityLevel":"CONTACT",'
        '"name":"Marketing consent for HubSpot contact 5102","language":"ENG",'
        '"internalId":"hubspot:62515:2407:1002:marketing-consent-sms"}'
    )


def test_hubspot_event_sent_again_in_another_batch_has_the_same_key() -> None:
    """HubSpot retries events, not batches, and counts the attempt in the event: its key is its own ids',
    whatever else its batch holds and whichever attempt it is (the hubspot-v3 preset's item id)."""
    source, sample_name = CASES["hubspot-contacts.json"]
    batch = sample(sample_name)
    retried = {**batch[1], "attemptNumber": 3}
    alone = preset("hubspot-contacts.json").map_requests(source, [retried])
    assert [r.idempotency_key for r in alone] == ["hubspot:62515:2407:1002:marketing-consent-sms"]


def test_hubspot_event_without_its_id_is_keyed_by_its_content() -> None:
    """An item without eventId (not HubSpot's shape) still gets a stable key: the batch's and the item's hashes."""
    source, sample_name = CASES["hubspot-contacts.json"]
    item = {key: value for key, value in sample(sample_name)[1].items() if key != "eventId"}
    [first] = preset("hubspot-contacts.json").map_requests(source, [item])
    [again] = preset("hubspot-contacts.json").map_requests(source, [copy.deepcopy(item)])
    assert first.idempotency_key == again.idempotency_key
    assert re.fullmatch(r"hubspot:[0-9a-f]{64}:marketing-consent-sms:[0-9a-f]{16}", first.idempotency_key)
