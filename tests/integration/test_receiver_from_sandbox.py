"""The loop over real sockets: the Humanos sandbox decides a stored request and posts the webhook Humanos would, in
each webhook API version's shape; the receiver (behind the local HTTP API, routes from template.yaml, on moto)
verifies, decrypts and publishes it once; the bus's rule hands it to an SQS queue, where the test reads it.

The receiver's own tests build their webhooks with the test suite's crypto; here nothing of ours builds them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from humanos_bridge.core.client import HumanosClient
from humanos_bridge.core.credentials import StaticCredentials
from humanos_bridge_local.cfn import load_template
from humanos_bridge_local.http_gateway import HttpGateway, routes_from_events
from humanos_bridge_local.lambda_runtime import LocalContext
from humanos_bridge_local.sandbox import Sandbox, WebhookSecrets
from humanos_bridge_local.sandbox.delivery import DELIVERED
from humanos_bridge_local.sandbox.webhook_events import WEBHOOK_VERSIONS
from tests.support.bridge import ROOT
from tests.support.receiver import (
    CONTACT,
    ENCRYPTION_SALT,
    ENCRYPTION_SECRET,
    SIGNATURE_SECRET,
    ReceiverEnv,
    create_receiver,
)

#: What each decision comes back as on the bus.
DETAIL_TYPE = {
    "accept": "Credential Accepted",
    "reject": "Credential Rejected",
    "kyc-pass": "Identity Verified",
    "kyc-fail": "Identity Failed",
    "otp-fail": "OTP Failed",
}


@pytest.fixture
def loop(moto: Any, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> Iterator[ReceiverEnv]:
    """The receiver behind the local HTTP API, and the sandbox posting its webhooks there."""
    receiver = create_receiver(moto, monkeypatch)
    events = load_template(ROOT / "template.yaml")["Resources"]["ReceiverFunction"]["Properties"]["Events"]
    gateway = HttpGateway(
        routes_from_events(events), lambda event: receiver.module.lambda_handler(event, LocalContext(10, "receiver"))
    ).start()
    sandbox.set_webhook_secrets(WebhookSecrets(SIGNATURE_SECRET, ENCRYPTION_SECRET, ENCRYPTION_SALT))
    sandbox.set_webhook_url(f"{gateway.base_url}/humanos/webhooks")
    try:
        yield receiver
    finally:
        gateway.stop()
        receiver.module.service.cache_clear()


def stored_request(sandbox: Sandbox, internal_id: str) -> str:
    """A request stored at the sandbox for one phone, with a credential and an identity check to decide."""
    client = HumanosClient(sandbox.base_url, "2026-05-17", StaticCredentials(sandbox.api_key, sandbox.signature_secret))
    body = {
        "contacts": [CONTACT],
        "credentials": [{"type": "DOCUMENT", "name": "Terms of service", "internalId": "terms-2026"}],
        "securityLevel": "HUMANOS_KYC",
        "internalId": internal_id,
    }
    request_id = client.create_request(body, None).request_id
    assert request_id is not None
    return request_id


@pytest.mark.parametrize("version", WEBHOOK_VERSIONS)
def test_every_decision_in_every_webhook_version_is_published_once(
    version: str, loop: ReceiverEnv, sandbox: Sandbox
) -> None:
    sandbox.pin_webhook_api_version(version)
    decided: dict[str, str] = {}
    for outcome in DETAIL_TYPE:
        request_id = decided[outcome] = stored_request(sandbox, f"crm:evt_{outcome}:consent")
        deliveries = sandbox.wait_for_deliveries(sandbox.decide(request_id, outcome))
        assert [(d.state, d.statuses[-1]) for d in deliveries] == [(DELIVERED, 200)], (outcome, deliveries)

    published = loop.published()

    assert sorted((e["detail-type"], e["detail"]["requestId"]) for e in published) == sorted(
        (DETAIL_TYPE[outcome], request_id) for outcome, request_id in decided.items()
    )
    assert all(e["source"] == "humanos.bridge" and e["detail"]["apiVersion"] == version for e in published)


def test_a_webhook_humanos_sends_again_publishes_nothing_more(loop: ReceiverEnv, sandbox: Sandbox) -> None:
    """Humanos's retry of a delivered webhook (the same sealed bytes, signed afresh) is answered 200, not published."""
    request_id = stored_request(sandbox, "crm:evt_retry:consent")
    [first] = sandbox.wait_for_deliveries(sandbox.decide(request_id, "accept"))
    [again] = sandbox.wait_for_deliveries([sandbox.redeliver(first.id)])

    assert (again.state, again.statuses[-1]) == (DELIVERED, 200)
    assert [e["detail-type"] for e in loop.published()] == ["Credential Accepted"]


def test_the_dashboards_test_button_comes_back_as_a_test_event(loop: ReceiverEnv, sandbox: Sandbox) -> None:
    delivery = sandbox.send_test_webhook()
    [done] = sandbox.wait_for_deliveries([delivery])

    assert (done.state, done.statuses[-1]) == (DELIVERED, 200)
    assert [e["detail-type"] for e in loop.published()] == ["Test"]
