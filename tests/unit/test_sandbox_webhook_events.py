"""What the sandbox's webhooks say, per outcome and webhook API version: the Humanos notes' table, and for
2026-09-01 the official SDK's generated event models (``humanos`` 1.2.0). Pure functions, no sockets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pydantic
import pytest
from humanos_sdk_generated.models.credential_event import CredentialEvent as SdkCredentialEvent
from humanos_sdk_generated.models.identity_event import IdentityEvent as SdkIdentityEvent
from humanos_sdk_generated.models.otp_failed_event import OtpFailedEvent as SdkOtpFailedEvent
from humanos_sdk_generated.models.test_event import TestEvent as SdkTestEvent

from humanos_bridge_local.sandbox import decisions
from humanos_bridge_local.sandbox.decisions import DecisionError, events_for
from humanos_bridge_local.sandbox.validation import VersionError
from humanos_bridge_local.sandbox.webhook_events import dashboard_test_event, resolve_webhook_version

PHONE = "+351912345678"
EMAIL = "ana@example.com"
BASE_URL = "http://127.0.0.1:8081"


def record(**changes: Any) -> dict[str, Any]:
    """A stored request as ``HumanosApi`` keeps it: a phone and an e-mail asked for one bounded mandate."""
    stored: dict[str, Any] = {
        "id": "6650f0c2a1b2c3d4e5f60718",
        "internalId": "order-1",
        "securityLevel": "HUMANOS_KYC",
        "createdAt": "2026-05-20T10:00:00.000Z",
        "canceledAt": None,
        "subjects": [
            {"contact": PHONE, "id": "6650f0c2a1b2c3d4e5f60719"},
            {"contact": EMAIL, "id": "6650f0c2a1b2c3d4e5f6071a"},
        ],
        "credentials": [
            {
                "id": "urn:via:credential:0b6c1d0e-4b8e-4c52-9a8e-0f6d7a1b2c3d",
                "name": "Spend up to 50 EUR",
                "description": None,
                "internalId": "cred-1",
                "resourceType": "POLICY",
                "maxExecutions": 3,
            }
        ],
    }
    stored.update(changes)
    return stored


def ticking() -> Iterator[datetime]:
    moment = datetime(2026, 5, 20, 10, 0, tzinfo=UTC)
    while True:
        moment += timedelta(milliseconds=1)
        yield moment


def events(outcome: str, version: str, **changes: Any) -> list[dict[str, Any]]:
    clock = ticking()
    return events_for(
        record(**changes), outcome, version, base_url=BASE_URL, otp_error="UNDELIVERABLE", now=lambda: next(clock)
    )


@pytest.mark.parametrize(
    ("version", "user_keys", "top_date"),
    [("2026-04-14", {"contact", "did"}, True), ("2026-05-17", {"contact", "id"}, False)],
)
@pytest.mark.parametrize("outcome", decisions.OUTCOMES)
def test_user_and_decision_date_move_in_2026_05_17(
    outcome: str, version: str, user_keys: set[str], top_date: bool
) -> None:
    """``user.did`` becomes ``user.id`` and ``decisionDate`` goes (the date is ``decision.date``)."""
    for event in events(outcome, version):
        assert set(event["user"]) == user_keys
        assert ("decisionDate" in event) is top_date
        assert event["eventType"] == decisions.EVENT_TYPE_OF[outcome]
        assert (event["api_version"], event["requestId"], event["internalId"]) == (version, record()["id"], "order-1")


def test_accepting_seals_the_credential_once_every_person_has_accepted() -> None:
    """Person by person: DRAFT with one decision, then ACTIVE with both, a STAMP proof and evidence."""
    first, second = events("accept", "2026-09-01")

    assert [e["user"]["contact"] for e in (first, second)] == [PHONE, EMAIL]
    assert [e["credential"]["status"] for e in (first, second)] == ["DRAFT", "ACTIVE"]
    assert [len(e["credential"]["decisions"]) for e in (first, second)] == [1, 2]
    sealed = second["credential"]["w3cCredential"]
    assert sealed["proof"]["event"] == "STAMP" and len(sealed["evidence"]) == 2
    assert "proof" not in first["credential"]["w3cCredential"]


@pytest.mark.parametrize(
    ("version", "status", "plural"),
    [("2026-05-17", "REJECTED", True), ("2026-07-07", "REJECTED", True), ("2026-09-01", "INACTIVE", False)],
)
def test_a_rejected_credential_is_rejected_or_inactive_by_version(version: str, status: str, plural: bool) -> None:
    first, _ = events("reject", version)
    credential = first["credential"]

    assert credential["status"] == status
    assert ("inactiveAt" in credential) is (not plural)
    assert ({"evidences", "proofs"} <= set(credential["w3cCredential"])) is plural
    assert first["decision"] == {"action": "reject", "date": credential["decisions"][0]["decidedAt"]}


def test_otp_failed_goes_to_phone_numbers_with_an_encoded_resend_endpoint() -> None:
    [event] = events("otp-fail", "2026-09-01")

    assert event["user"]["contact"] == PHONE
    assert event["otp"]["resendEndpoint"] == f"{BASE_URL}/request/resend/{record()['id']}?contact=%2B351912345678"
    assert event["otp"]["error"]["code"] == "UNDELIVERABLE"


@pytest.mark.parametrize(
    ("outcome", "changes", "status", "message"),
    [
        ("kyc-pass", {"securityLevel": "CONTACT"}, 409, "Request asks for no identity check"),
        (
            "otp-fail",
            {"subjects": [{"contact": EMAIL, "id": "6650f0c2a1b2c3d4e5f6071a"}]},
            409,
            "reaches nobody by SMS",
        ),
        ("accept", {"canceledAt": "2026-05-20T11:00:00.000Z"}, 409, "Request is canceled"),
        ("approve", {}, 400, "outcome must be one of"),
    ],
)
def test_decisions_humanos_would_not_make_are_refused(
    outcome: str, changes: dict[str, Any], status: int, message: str
) -> None:
    with pytest.raises(DecisionError, match=message) as refused:
        events(outcome, "2026-09-01", **changes)
    assert refused.value.status == status
    assert EMAIL not in refused.value.message and PHONE not in refused.value.message


@pytest.mark.parametrize(
    ("asked", "selected"),
    [
        ("2026-04-14", "2026-04-14"),
        ("2026-05-01", "2026-04-14"),
        ("2026-08-31", "2026-07-07"),
        ("2026-09-01", "2026-09-01"),
    ],
)
def test_a_webhook_version_date_selects_the_latest_shape_not_after_it(asked: str, selected: str) -> None:
    assert resolve_webhook_version(asked, date(2027, 1, 1)) == selected


@pytest.mark.parametrize(
    ("asked", "message"),
    [("2026-04-13", "not supported; the earliest is 2026-04-14"), ("2027-01-02", "in the future"), ("soon", "YYYY")],
)
def test_a_webhook_version_too_old_future_or_malformed_is_refused(asked: str, message: str) -> None:
    with pytest.raises(VersionError, match=message):
        resolve_webhook_version(asked, date(2027, 1, 1))


# ------------------------------------------------------------------------------------------- the SDK's models


@pytest.mark.parametrize(
    ("outcome", "model"),
    [("kyc-pass", SdkIdentityEvent), ("kyc-fail", SdkIdentityEvent), ("otp-fail", SdkOtpFailedEvent)],
)
def test_2026_09_01_identity_and_otp_events_parse_into_the_sdk_models(outcome: str, model: type[Any]) -> None:
    for event in events(outcome, "2026-09-01"):
        parsed = model.from_dict(event)
        assert parsed.request_id == event["requestId"] and parsed.user.id == event["user"]["id"]


def test_a_2026_09_01_test_event_parses_into_the_sdk_model() -> None:
    parsed = SdkTestEvent.from_dict(
        dashboard_test_event("6650f0c2a1b2c3d4e5f60718", "2026-09-01", "2026-05-20T10:00:00.000Z")
    )
    assert parsed is not None
    assert (parsed.event_type, parsed.api_version) == ("test", "2026-09-01")


def test_a_2026_09_01_credential_event_parses_into_the_sdk_model_but_for_its_decisions() -> None:
    """Everything but ``credential.decisions`` parses into ``CredentialEvent``: SDK 1.2.0 types each decision as
    a list, where Humanos describes an object whose ``id`` carries the grantor's DID (the notes:
    ``decisions[{id, contact, accepted, decidedAt}]``). When an SDK release reads them, this test fails: then
    parse the whole event."""
    _, sealed = events("accept", "2026-09-01")

    with pytest.raises(pydantic.ValidationError, match="decisions"):
        SdkCredentialEvent.from_dict(sealed)
    parsed = SdkCredentialEvent.from_dict({**sealed, "credential": {**sealed["credential"], "decisions": []}})
    assert parsed is not None
    assert (parsed.decision.action.value, parsed.credential.status, parsed.credential.executions_remaining) == (
        "accept",
        "ACTIVE",
        3,
    )
