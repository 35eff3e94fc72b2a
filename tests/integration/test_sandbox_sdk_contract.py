"""The sandbox as the official Humanos SDK reads it (``humanos`` 1.2.0 on PyPI, pinned to API version 2026-09-01).

The SDK's models are generated from Humanos's OpenAPI document, so an answer the SDK parses has the shape
Humanos declares. Each test drives the sandbox through the SDK's own client (its signing, headers and query
serialisation) and keeps what came back as the SDK's models; a sandbox answer Humanos would not give fails
here before the bridge learns from it.
"""

from __future__ import annotations

import json
import shlex
from datetime import datetime, timedelta
from typing import Any

import pydantic
import pytest
import urllib3
from humanos_sdk import API_VERSION, HumanosClient, HumanosClientConfig
from humanos_sdk_generated.exceptions import (
    ApiException,
    BadRequestException,
    NotFoundException,
    UnauthorizedException,
)
from humanos_sdk_generated.models import (
    ActionDto,
    CredentialDto,
    GenerateRequestDto,
    GenerateRequestEntity,
    GenerateRequestUserDto,
    RequestDetailEntity,
    RequestEntity,
    RequestsCreate409Response,
    RequestsDetail404Response,
    RequestsEntity,
    SuccessEntity,
)

from humanos_bridge.core.client import HumanosClient as BridgeClient
from humanos_bridge.core.credentials import StaticCredentials
from humanos_bridge.core.exactly_once import parse_time_ms
from humanos_bridge_local import cli
from humanos_bridge_local.sandbox import Sandbox

CONTACT = "ana@example.com"
SECOND_CONTACT = "+351912345678"


def sdk_client(sandbox: Sandbox, signature_secret: str | None = None) -> HumanosClient:
    """The official SDK's client, pointed at the sandbox with its credentials (or another secret).

    Not used as a context manager: SDK 1.2.0's ``__exit__`` calls a ``close()`` its ApiClient does not have.
    The sandbox closes the connections when it stops.
    """
    secret = signature_secret or sandbox.signature_secret
    return HumanosClient(
        HumanosClientConfig(base_path=sandbox.base_url, api_key=sandbox.api_key, signature_secret=secret)
    )


@pytest.fixture
def sdk(sandbox: Sandbox) -> HumanosClient:
    return sdk_client(sandbox)


def mandate_request(**changes: Any) -> GenerateRequestDto:
    """The SDK README's request: one user asked for a mandate bound to an action, at most 3 uses."""
    fields: dict[str, Any] = {
        "users": [GenerateRequestUserDto(contact=CONTACT, secondary_contact=SECOND_CONTACT)],
        "name": "Card spending",
        "internal_id": "order-1",
        "credentials": [
            CredentialDto(
                type="POLICY",
                name="Spend up to 50 EUR",
                max_executions=3,
                action=ActionDto(id="urn:via:action:spend", user_params={"maxAmount": 50}),
            )
        ],
    }
    fields.update(changes)
    return GenerateRequestDto(**fields)


def test_create_replay_list_detail_resend_and_cancel_parse_into_the_sdk_models(
    sdk: HumanosClient, sandbox: Sandbox
) -> None:
    """The whole life of a request through the SDK: every answer is the SDK's model, and says what happened."""
    created = sdk.requests.create(mandate_request(), idempotency_key="evt-1")
    replayed = sdk.requests.create(mandate_request(), idempotency_key="evt-1")

    assert isinstance(created, GenerateRequestEntity)
    assert replayed == created
    assert len(sandbox.created) == 1
    [subject] = created.subjects
    assert (subject.contact, subject.secondary_contact) == (CONTACT, SECOND_CONTACT)
    assert created.credentials[0].name == "Spend up to 50 EUR"

    listed = sdk.requests.list(internal_id="order-1", page_index=0, page_size=5)
    assert isinstance(listed, RequestsEntity)
    assert listed.total_pages == 1
    [item] = listed.data
    assert (item.id, item.name, item.security_level, item.canceled_at) == (created.id, "Card spending", "CONTACT", None)
    assert [(s.id, s.contact, s.identity_status) for s in item.subjects] == [(subject.id, CONTACT, "NONE")]
    assert [(c.id, c.resource_type, c.status) for c in item.credentials] == [
        (created.credentials[0].id, "POLICY", "DRAFT")
    ]

    detail = sdk.requests.detail(created.id)
    assert isinstance(detail, RequestDetailEntity)
    [person] = detail.subjects
    assert [c.contact for c in person.contacts] == [CONTACT]
    assert person.organization.contacts == [CONTACT, SECOND_CONTACT]
    [credential] = detail.credentials
    assert (credential.status, credential.executions_remaining, credential.decisions) == ("DRAFT", 3, [])

    assert sdk.requests.resend_otp(created.id, contact=CONTACT) == SuccessEntity(success=True)
    assert sdk.requests.cancel(created.id) == SuccessEntity(success=True)

    [after] = sdk.requests.list(internal_id="order-1").data
    assert after.canceled_at is not None
    assert [c.status for c in after.credentials] == ["INACTIVE"]
    assert [r["contact"] for r in sandbox.created[0]["resends"]] == [CONTACT]
    assert [(c.method, c.path, c.status) for c in sandbox.calls] == [
        ("POST", "/request", 201),
        ("POST", "/request", 201),
        ("GET", "/request", 200),
        ("GET", f"/request/{created.id}", 200),
        ("PATCH", f"/request/resend/{created.id}", 201),
        ("DELETE", f"/request/{created.id}", 201),
        ("GET", "/request", 200),
    ]
    assert {c.headers["api-version"] for c in sandbox.calls} == {API_VERSION}


def test_a_wrong_secret_is_refused_with_the_401_the_sdk_raises(sandbox: Sandbox) -> None:
    """The SDK signs with the secret it is given; a wrong one gets 401 in the NestJS shape, and nothing is made."""
    wrong = sdk_client(sandbox, signature_secret="not-the-secret")
    with pytest.raises(UnauthorizedException) as refused:
        wrong.requests.create(mandate_request(), idempotency_key="evt-1")
    assert json.loads(refused.value.body) == {
        "statusCode": 401,
        "message": "Invalid signature",
        "error": "Unauthorized",
    }
    assert sandbox.created == []


def test_errors_keep_the_nestjs_shape_the_sdk_reads_where_its_models_can(sdk: HumanosClient) -> None:
    """409 and 404 parse into the SDK's error models. A validation 400 lists its messages, as NestJS's
    ValidationPipe does; SDK 1.2.0's error models type ``message`` as one string, so it raises without them."""
    sdk.requests.create(mandate_request(), idempotency_key="evt-1")

    with pytest.raises(ApiException) as conflict:
        sdk.requests.create(mandate_request(name="Other"), idempotency_key="evt-1")
    with pytest.raises(NotFoundException) as missing:
        sdk.requests.detail("ffffffffffffffffffffffff")
    with pytest.raises(BadRequestException) as invalid:
        sdk.requests.create(mandate_request(users=[GenerateRequestUserDto(contact="not a contact")]))

    assert conflict.value.status == 409
    assert conflict.value.data == RequestsCreate409Response(
        status_code=409, message="Idempotency-Key already used with a different body", error="Conflict"
    )
    assert missing.value.data == RequestsDetail404Response(
        status_code=404, message="Request not found", error="Not Found"
    )
    assert invalid.value.data is None
    assert json.loads(invalid.value.body)["message"] == [
        "users.0.contact must be a valid e-mail or international phone number"
    ]


def test_list_filters_and_paging_as_the_sdk_sends_them(sdk: HumanosClient, sandbox: Sandbox) -> None:
    """securityLevel goes out once per level, dates as the SDK formats them, pageSize within the SDK's 5 to 100."""
    sdk.requests.create(mandate_request(internal_id="a"))
    sdk.requests.create(mandate_request(internal_id="b", security_level="HUMANOS_KYC", name="Onboarding"))
    created_at = datetime.fromisoformat(sandbox.created[0]["createdAt"])

    both = sdk.requests.list(security_level=["CONTACT", "HUMANOS_KYC"], page_size=100)
    kyc = sdk.requests.list(security_level=["HUMANOS_KYC"], search="onboard")
    today = sdk.requests.list(date_from=created_at, date_to=created_at, subject=CONTACT)
    tomorrow = sdk.requests.list(date_from=created_at + timedelta(days=1))

    assert [r.internal_id for r in both.data] == ["a", "b"]
    assert [(r.internal_id, [s.kyc for s in r.subjects]) for r in kyc.data] == [("b", ["PENDING"])]
    assert (len(today.data), tomorrow.data) == (2, [])
    with pytest.raises(pydantic.ValidationError):  # the SDK itself refuses a page size Humanos would refuse
        sdk.requests.list(page_size=4)


def test_the_seed_get_example_without_api_version_is_answered_200(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """README, "When Humanos answers 401", step 6: ``humanos-bridge sign --curl "$BASE/request?internalId=..."``
    prints a signed bodyless GET without API-Version. The key's pinned version applies, so the pair is proven
    good by a 200, as the README says."""
    monkeypatch.setenv("HUMANOS_API_KEY", sandbox.api_key)
    monkeypatch.setenv("HUMANOS_SIGNATURE_SECRET", sandbox.signature_secret)
    assert cli.main(["sign", "--curl", f"{sandbox.base_url}/request?internalId=does-not-exist"]) == 0
    words = shlex.split(capsys.readouterr().out)
    headers = dict(words[i + 1].split(": ", 1) for i, word in enumerate(words) if word == "-H")
    assert "API-Version" not in headers

    answer = urllib3.request(words[3], words[4], headers=headers, timeout=5)

    assert answer.status == 200
    assert RequestsEntity.from_json(answer.data.decode()) == RequestsEntity(data=[], total_pages=0)
    assert "api-version" not in sandbox.calls[0].headers


def test_the_bridges_lookup_reads_the_list_answer_the_sdk_reads(sandbox: Sandbox) -> None:
    """What ``find_requests`` (the look-up after an ambiguous failure) hands to exactly-once is Humanos's
    RequestEntity: the id, creation time, contacts and name it compares are the ones the SDK reads."""
    bridge = BridgeClient(sandbox.base_url, API_VERSION, StaticCredentials(sandbox.api_key, sandbox.signature_secret))
    body = {"users": [{"contact": CONTACT}], "groupIds": ["grp-1"], "name": "Welcome", "internalId": "emp-7"}
    made = bridge.create_request(body, "evt-7")

    [found] = bridge.find_requests("emp-7")

    as_sdk = RequestEntity.from_dict(found)
    assert as_sdk is not None
    assert (found["id"], as_sdk.id) == (made.request_id, made.request_id)
    assert parse_time_ms(found["createdAt"]) == int(as_sdk.created_at.timestamp() * 1000)
    assert [s["contact"] for s in found["subjects"]] == [s.contact for s in as_sdk.subjects] == [CONTACT]
    assert found["name"] == as_sdk.name == "Welcome"


def test_sdk_1_2_0_cannot_read_two_credential_fields_as_humanos_documents_them(
    sdk: HumanosClient, sandbox: Sandbox
) -> None:
    """Where the SDK's generated types contradict Humanos's own field descriptions, the sandbox answers what
    Humanos describes: ``executionsRemaining`` null for an unlimited credential ("`null` means the mandate is
    unlimited"; typed as a required number) and ``inactiveAt`` a time once inactive (typed as an object).
    When an SDK release reads both, this test fails: drop the note in ``sandbox/shapes.py`` with it."""
    unlimited = sdk.requests.create(mandate_request(credentials=None, group_ids=["grp-consent"]))
    bounded = sdk.requests.create(mandate_request(internal_id="order-2"))
    sdk.requests.cancel(bounded.id)

    raw = [
        json.loads(sdk.requests.detail_without_preload_content(r.id).data)["credentials"][0]
        for r in (unlimited, bounded)
    ]

    assert raw[0]["executionsRemaining"] is None
    assert raw[1]["inactiveAt"] == sandbox.created[1]["canceledAt"]
    for request, field in ((unlimited, "executionsRemaining"), (bounded, "inactiveAt")):
        with pytest.raises(pydantic.ValidationError, match=field):
            sdk.requests.detail(request.id)
