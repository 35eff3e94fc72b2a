"""``otp.failed`` and the source's ``onOtpFailed`` policy: the code is resent at most N times, to phones only, on
the Humanos host only, and the webhook's answer never depends on it.

Real parts: moto in server mode (the Humanos and webhook secrets, the idempotency table where resends are counted,
the bus with an SQS queue on it), the Humanos sandbox over HTTP (its stored requests, its ``otp-fail`` decision
that posts the real webhook, whose ``otp.resendEndpoint`` is its own ``PATCH /request/resend/{id}?contact=...``),
and the local HTTP API in front of the receiver function (routes from template.yaml), so the sandbox's webhook
and the receiver's PATCH both travel over sockets. Webhooks the sandbox will not send (an e-mail contact, an
endpoint on another host) are built by ``tests/support/receiver.py`` and handed to the function.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from humanos_bridge import wiring
from humanos_bridge.core import signing
from humanos_bridge.core.client import HumanosClient
from humanos_bridge.core.credentials import StaticCredentials
from humanos_bridge.core.http_request import InboundRequest
from humanos_bridge.receive.service import ReceiverService
from humanos_bridge.settings import Settings
from humanos_bridge_local.cfn import load_template
from humanos_bridge_local.http_gateway import HttpGateway, routes_from_events
from humanos_bridge_local.lambda_runtime import LocalContext
from humanos_bridge_local.sandbox import Delivery, Fault, RecordedCall, Sandbox, WebhookSecrets
from humanos_bridge_local.sandbox.delivery import DELIVERED
from tests.support.bridge import ROOT
from tests.support.logs import check_lines, written_lines
from tests.support.receiver import (
    CONTACT,
    ENCRYPTION_SALT,
    ENCRYPTION_SECRET,
    INTERNAL_ID,
    SIGNATURE_SECRET,
    ReceiverEnv,
    create_receiver,
    humanos_environment,
    humanos_event,
    resend_mapping,
    webhook_event,
)

#: bridge.json's apiVersion: the version every call to Humanos carries, the resend too.
API_VERSION = "2026-05-17"
RESEND_ONCE = {"action": "resend", "maxResends": 1}
EMAIL = "ana.silva@example.com"
OTP_CODES = ("UNDELIVERABLE", "CARRIER_REJECTED", "RATE_LIMITED", "BLOCKED_DESTINATION", "INVALID_PHONE_NUMBER")
#: The metric each resend outcome is counted in.
SENT, FAILED, REFUSED, SKIPPED = "OtpResendsSent", "OtpResendsFailed", "OtpResendsRefused", "OtpResendsSkipped"


@dataclass
class Loop:
    """The receiver behind the local HTTP API, and the sandbox posting its webhooks there."""

    receiver: ReceiverEnv
    sandbox: Sandbox

    def create_request(self, contacts: tuple[str, ...] = (CONTACT,), internal_id: str = INTERNAL_ID) -> str:
        """A request stored at the sandbox, as the dispatcher creates it for crm's rule (the default internalId)."""
        client = HumanosClient(
            self.sandbox.base_url, API_VERSION, StaticCredentials(self.sandbox.api_key, self.sandbox.signature_secret)
        )
        body = {"contacts": list(contacts), "groupIds": ["grp_marketing_consent"], "internalId": internal_id}
        request_id = client.create_request(body, None).request_id
        assert request_id is not None
        return request_id

    def fail_otp(self, request_id: str, code: str = "UNDELIVERABLE") -> list[Delivery]:
        """The sandbox decides ``otp-fail`` and posts one otp.failed per phone; returns once each is answered."""
        return self.wait(self.sandbox.decide(request_id, "otp-fail", otp_error=code))

    def wait(self, deliveries: list[Delivery]) -> list[Delivery]:
        done = self.sandbox.wait_for_deliveries(deliveries)
        assert [d.state for d in done] == [DELIVERED] * len(deliveries), [(d.state, d.statuses) for d in done]
        return done

    def patches(self) -> list[RecordedCall]:
        """Every PATCH the sandbox received (the resends), in order."""
        return [call for call in self.sandbox.calls if call.method == "PATCH"]

    def resends_stored(self, request_id: str) -> int:
        [record] = [r for r in self.sandbox.created if r["id"] == request_id]
        return len(record["resends"])

    def service(self) -> ReceiverService:
        service: ReceiverService = self.receiver.module.service()
        return service


OpenLoop = Callable[..., Loop]


@pytest.fixture
def open_loop(moto: Any, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, tmp_path: Path) -> Iterator[OpenLoop]:
    """Opens the loop with crm's ``onOtpFailed`` set to a policy (None: left out) and Humanos at ``base_url``
    (default: the sandbox); closes it after the test."""
    gateways: list[HttpGateway] = []
    receivers: list[ReceiverEnv] = []

    def open_(policy: dict[str, Any] | None = RESEND_ONCE, *, base_url: str | None = None) -> Loop:
        environment = humanos_environment(moto, base_url or sandbox.base_url, sandbox.api_key, sandbox.signature_secret)
        environment["MAPPING_FILE"] = str(resend_mapping(tmp_path, policy))
        receiver = create_receiver(moto, monkeypatch, environment=environment)
        receivers.append(receiver)
        events = load_template(ROOT / "template.yaml")["Resources"]["ReceiverFunction"]["Properties"]["Events"]
        gateway = HttpGateway(
            routes_from_events(events),
            lambda event: receiver.module.lambda_handler(event, LocalContext(10, "receiver")),
        ).start()
        gateways.append(gateway)
        sandbox.set_webhook_secrets(WebhookSecrets(SIGNATURE_SECRET, ENCRYPTION_SECRET, ENCRYPTION_SALT))
        sandbox.set_webhook_url(f"{gateway.base_url}/humanos/webhooks")
        return Loop(receiver, sandbox)

    try:
        yield open_
    finally:
        for gateway in gateways:
            gateway.stop()
        for receiver in receivers:
            receiver.module.service.cache_clear()


def otp_failed(
    request_id: str, endpoint: str, *, contact: str = CONTACT, code: str = "UNDELIVERABLE"
) -> dict[str, Any]:
    """An otp.failed event (2026-05-17 shape) about ``contact`` in ``request_id``, with ``endpoint`` to resend."""
    return humanos_event(
        "otp.failed",
        requestId=request_id,
        user={"contact": contact, "id": "did:via:user:3f9c2a"},
        otp={"resendEndpoint": endpoint, "error": {"code": code, "message": "every SMS provider failed"}},
    )


def endpoint_of(sandbox: Sandbox, request_id: str, contact: str = CONTACT) -> str:
    """The sandbox's resend endpoint, as its own otp.failed webhooks carry it (``+`` encoded)."""
    return f"{sandbox.base_url}/request/resend/{request_id}?contact={quote(contact, safe='')}"


def metric_counts(out: str) -> dict[str, float]:
    """The receiver's metrics in the function's output (Powertools' EMF lines), summed by name."""
    counts: dict[str, float] = {}
    for line in out.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = blob[metric["Name"]]
                total = sum(value) if isinstance(value, list) else value
                counts[metric["Name"]] = counts.get(metric["Name"], 0) + total
    return counts


def resend_lines(lines: list[str]) -> list[dict[str, Any]]:
    return [entry for entry in check_lines(lines) if str(entry.get("message", "")).startswith("otp resend ")]


# --- the policy --------------------------------------------------------------------------------------------


def test_without_a_policy_an_otp_failure_is_published_and_nothing_resent(open_loop: OpenLoop) -> None:
    """Given crm with no ``onOtpFailed`` (the default), when Humanos reports an SMS code undelivered, then the
    event is on the bus and Humanos gets no resend; the receiver has no resender, so it never reads the secret."""
    loop = open_loop(None)
    request_id = loop.create_request()

    [delivery] = loop.fail_otp(request_id)

    assert delivery.statuses == (200,)
    assert [e["detail-type"] for e in loop.receiver.published()] == ["OTP Failed"]
    assert loop.patches() == []
    assert loop.service().resender is None


def test_action_none_is_the_same_as_no_policy(open_loop: OpenLoop) -> None:
    loop = open_loop({"action": "none"})
    loop.fail_otp(loop.create_request())
    assert loop.patches() == [] and loop.service().resender is None


def test_resend_once_sends_exactly_one_signed_patch_to_the_delivered_endpoint(
    open_loop: OpenLoop, capfd: pytest.CaptureFixture[str]
) -> None:
    """Given ``{"action": "resend", "maxResends": 1}``, when the sandbox's real otp.failed webhook arrives, then the
    event is published and Humanos gets one PATCH of the endpoint exactly as delivered: bodyless, signed over the
    timestamp alone with the Humanos secret, with the API key and the API version; Humanos stores one resend."""
    loop = open_loop()
    request_id = loop.create_request()

    with written_lines(loop.receiver.module.logger) as lines:
        [delivery] = loop.fail_otp(request_id)

    assert delivery.statuses == (200,)
    [published] = loop.receiver.published()
    assert published["detail-type"] == "OTP Failed"
    assert published["detail"]["business"]["source"] == "crm"
    [patch] = loop.patches()
    assert delivery.event["otp"]["resendEndpoint"] == endpoint_of(loop.sandbox, request_id)
    assert patch.path == f"/request/resend/{request_id}" and patch.query == {"contact": CONTACT}
    assert patch.status == 201 and patch.body == b""
    headers = patch.headers
    assert headers["authorization"] == f"Bearer {loop.sandbox.api_key}"
    assert headers["api-version"] == API_VERSION
    assert "content-type" not in headers, "a bodyless call sends no Content-Type (and never {})"
    signing.verify([loop.sandbox.signature_secret], headers["x-timestamp"], headers["x-signature"], None)
    assert loop.resends_stored(request_id) == 1
    [line] = resend_lines(lines)
    assert line["message"] == "otp resend sent" and line["level"] == "INFO"
    assert (line["source"], line["requestId"], line["resendNumber"], line["maxResends"]) == ("crm", request_id, 1, 1)
    assert line["status"] == 201 and line["webhookKey"] == published["detail"]["webhookKey"]
    assert metric_counts(capfd.readouterr().out).get(SENT) == 1


def test_the_same_webhook_delivered_again_resends_nothing(open_loop: OpenLoop) -> None:
    """Humanos retries a delivery (the same sealed bytes, signed afresh): a replay, published once, resent once."""
    loop = open_loop()
    request_id = loop.create_request()
    [first] = loop.fail_otp(request_id)

    again = loop.wait([loop.sandbox.redeliver(first.id), loop.sandbox.redeliver(first.id)])

    assert [d.statuses for d in again] == [(200,), (200,)]
    assert len(loop.receiver.published()) == 1
    assert len(loop.patches()) == 1 and loop.resends_stored(request_id) == 1


def test_a_second_otp_failure_for_the_same_request_over_the_limit_is_logged_not_sent(
    open_loop: OpenLoop, capfd: pytest.CaptureFixture[str]
) -> None:
    """Given one resend allowed, when the fresh code fails too (another otp.failed: a new event, published), then
    no second PATCH: the log says the limit was reached, OtpResendsSkipped counts it."""
    loop = open_loop()
    request_id = loop.create_request()
    loop.fail_otp(request_id, "UNDELIVERABLE")

    with written_lines(loop.receiver.module.logger) as lines:
        loop.fail_otp(request_id, "CARRIER_REJECTED")

    assert [e["detail"]["decision"]["errorCode"] for e in loop.receiver.published()] == [
        "UNDELIVERABLE",
        "CARRIER_REJECTED",
    ]
    assert len(loop.patches()) == 1
    [line] = resend_lines(lines)
    assert (line["message"], line["level"], line["maxResends"]) == ("otp resend limit_reached", "WARNING", 1)
    assert "resendNumber" not in line
    counts = metric_counts(capfd.readouterr().out)
    assert (counts.get("WebhooksPublished"), counts.get(SENT), counts.get(SKIPPED)) == (2, 1, 1)


def test_max_resends_two_allows_two_then_stops(open_loop: OpenLoop) -> None:
    """Three failures of one contact's code with ``maxResends: 2``: two resends, the third only published."""
    loop = open_loop({"action": "resend", "maxResends": 2})
    request_id = loop.create_request()
    for code in OTP_CODES[:3]:
        loop.fail_otp(request_id, code)
    assert len(loop.receiver.published()) == 3
    assert len(loop.patches()) == 2 and loop.resends_stored(request_id) == 2


def test_each_contact_of_a_shared_request_gets_its_own_resends(open_loop: OpenLoop) -> None:
    """Two co-signers by SMS in one request, both codes undelivered: each person gets a fresh code (the limit is
    per request and contact: the second person's failure is no repeat of the first's)."""
    loop = open_loop()
    other = "+351918888888"
    request_id = loop.create_request((CONTACT, other))

    assert len(loop.fail_otp(request_id)) == 2

    assert sorted(call.query["contact"] for call in loop.patches()) == sorted([CONTACT, other])
    loop.fail_otp(request_id, "CARRIER_REJECTED")
    assert len(loop.patches()) == 2, "one each, then no more"


# --- never for e-mail, never to another host ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("contact", "endpoint_contact"),
    [
        pytest.param(EMAIL, EMAIL, id="e-mail-contact"),
        pytest.param(CONTACT, EMAIL, id="endpoint-names-an-e-mail"),
        pytest.param("not a number", "not a number", id="neither"),
    ],
)
def test_a_code_sent_by_e_mail_is_never_resent(
    open_loop: OpenLoop, capfd: pytest.CaptureFixture[str], contact: str, endpoint_contact: str
) -> None:
    """Humanos sends otp.failed for SMS only; should one name an e-mail address, it is published and not resent."""
    loop = open_loop()
    request_id = loop.create_request((CONTACT, EMAIL))
    payload = otp_failed(request_id, endpoint_of(loop.sandbox, request_id, endpoint_contact), contact=contact)

    with written_lines(loop.receiver.module.logger) as lines:
        answer = loop.receiver.invoke(webhook_event(payload))

    assert (answer.status, answer.body) == (200, {"status": "published"})
    assert loop.patches() == []
    [line] = resend_lines(lines)
    assert (line["message"], line["level"]) == ("otp resend not_a_phone", "WARNING")
    assert metric_counts(capfd.readouterr().out).get(SKIPPED) == 1
    assert EMAIL not in "\n".join(lines)


@pytest.fixture
def elsewhere() -> Iterator[Sandbox]:
    """Another server that would accept anything: it must never see a call."""
    with Sandbox(api_key="someone-else", signature_secret="someone-elses-secret") as server:
        yield server


FOREIGN = {
    "other-port": "http://127.0.0.1:{elsewhere}/request/resend/{id}?contact=%2B351912345678",
    "other-host-name": "http://localhost:{port}/request/resend/{id}?contact=%2B351912345678",
    "other-scheme": "https://127.0.0.1:{port}/request/resend/{id}?contact=%2B351912345678",
    "user-information": "http://127.0.0.1:{port}@127.0.0.1:{elsewhere}/request/resend/{id}?contact=%2B351912345678",
    "scheme-relative": "//127.0.0.1:{elsewhere}/request/resend/{id}?contact=%2B351912345678",
    "not-a-url": "http://[::1/request/resend/{id}",
}


@pytest.mark.parametrize("form", FOREIGN.values(), ids=list(FOREIGN))
def test_an_endpoint_off_the_humanos_host_is_refused_and_nothing_is_sent(
    open_loop: OpenLoop, elsewhere: Sandbox, capfd: pytest.CaptureFixture[str], form: str
) -> None:
    """A signed call carries the API key, and a bodyless one a signature any bodyless call could reuse: an endpoint
    whose scheme, host or port is not HUMANOS_BASE_URL's gets no call at all (logged as an error, counted in
    OtpResendsRefused), and uses none of the contact's resends: a good endpoint afterwards is called."""
    loop = open_loop()
    request_id = loop.create_request()
    port = loop.sandbox.base_url.rsplit(":", 1)[1]
    endpoint = form.format(port=port, elsewhere=elsewhere.base_url.rsplit(":", 1)[1], id=request_id)

    with written_lines(loop.receiver.module.logger) as lines:
        answer = loop.receiver.invoke(webhook_event(otp_failed(request_id, endpoint)))

    assert (answer.status, answer.body) == (200, {"status": "published"})
    assert elsewhere.calls == [] and loop.patches() == []
    [line] = resend_lines(lines)
    assert (line["message"], line["level"], line["cause"]) == ("otp resend refused", "ERROR", "foreign_endpoint")
    assert metric_counts(capfd.readouterr().out).get(REFUSED) == 1
    assert "351912345678" not in "\n".join(lines)

    good = otp_failed(request_id, endpoint_of(loop.sandbox, request_id), code="CARRIER_REJECTED")
    assert loop.receiver.invoke(webhook_event(good)).status == 200
    assert len(loop.patches()) == 1, "the refused endpoint did not use the one resend allowed"


def test_the_configured_base_url_decides_what_is_foreign(open_loop: OpenLoop, sandbox: Sandbox) -> None:
    """HUMANOS_BASE_URL names the sandbox ``localhost``; its webhooks say ``127.0.0.1``: the same machine, not the
    same origin as written, so refused (no name is resolved to call two names one host)."""
    loop = open_loop(base_url=sandbox.base_url.replace("127.0.0.1", "localhost"))
    loop.fail_otp(loop.create_request())
    assert loop.patches() == []


# --- failures: the webhook keeps its 200 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "cause"),
    [
        pytest.param(Fault.status(500), 500, "humanos_retryable", id="500"),
        pytest.param(Fault.status(429, retry_after="1"), 429, "humanos_retryable", id="429"),
        pytest.param(Fault.status(404), 404, "humanos_rejected", id="404"),
        pytest.param(Fault.drop(), None, "humanos_ambiguous", id="connection-dropped"),
    ],
)
def test_a_failed_resend_is_counted_sent_once_and_the_webhook_still_answers_200(
    open_loop: OpenLoop, capfd: pytest.CaptureFixture[str], fault: Fault, status: int | None, cause: str
) -> None:
    """Given Humanos failing the PATCH, when the otp.failed webhook arrives, then it is answered 200 (published:
    no 503, whose retry would be a replay and resend nothing) after exactly one PATCH (never repeated: a 5xx or a
    lost answer may have texted the person), logged with its status and counted in OtpResendsFailed. The call
    used the one resend allowed: neither Humanos's retry of the webhook nor a later failure calls again."""
    loop = open_loop()
    request_id = loop.create_request()
    loop.sandbox.inject(fault, method="PATCH", path_prefix="/request/resend/")

    with written_lines(loop.receiver.module.logger) as lines:
        [delivery] = loop.fail_otp(request_id)

    assert delivery.statuses == (200,)
    assert len(loop.receiver.published()) == 1
    [patch] = loop.patches()
    assert patch.fault is not None and loop.resends_stored(request_id) == 0
    [line] = resend_lines(lines)
    assert (line["message"], line["level"], line["cause"]) == ("otp resend failed", "ERROR", cause)
    assert line.get("status") == status and line["resendNumber"] == 1
    counts = metric_counts(capfd.readouterr().out)
    assert (counts.get(FAILED), counts.get(SENT), counts.get("WebhooksFailed")) == (1, None, None)

    loop.sandbox.clear_faults()
    loop.wait([loop.sandbox.redeliver(delivery.id)])
    loop.fail_otp(request_id, "CARRIER_REJECTED")
    assert len(loop.patches()) == 1


def test_an_unreadable_humanos_secret_sends_nothing_and_uses_no_resend(
    open_loop: OpenLoop, moto: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    """The Humanos secret deleted (or never filled): the webhook is published, the resend fails before any call
    (``credentials_error``), and the resend allowed is still there once the secret is back."""
    loop = open_loop()
    request_id = loop.create_request()
    secrets = moto.client("secretsmanager")
    resender = loop.service().resender
    assert resender is not None
    credentials: Any = resender.client.credentials
    secret_id = credentials.secret_id
    secrets.put_secret_value(SecretId=secret_id, SecretString="{}")

    with written_lines(loop.receiver.module.logger) as lines:
        [delivery] = loop.fail_otp(request_id)

    assert delivery.statuses == (200,) and loop.patches() == []
    [line] = resend_lines(lines)
    assert (line["message"], line["cause"]) == ("otp resend failed", "credentials_error")
    assert "resendNumber" not in line
    assert metric_counts(capfd.readouterr().out).get(FAILED) == 1

    good = json.dumps({"apiKey": loop.sandbox.api_key, "signatureSecret": loop.sandbox.signature_secret})
    secrets.put_secret_value(SecretId=secret_id, SecretString=good)
    loop.receiver.module.service.cache_clear()  # the function's cache would keep the bad value for its TTL
    loop.fail_otp(request_id, "CARRIER_REJECTED")
    assert len(loop.patches()) == 1


# --- what does not resend, and what is never read ----------------------------------------------------------


def test_the_humanos_secret_is_read_only_when_a_code_is_resent(open_loop: OpenLoop) -> None:
    """A receiver whose mapping resends reads the Humanos secret on its first resend, not for other webhooks."""
    loop = open_loop()
    request_id = loop.create_request()
    resender = loop.service().resender
    assert resender is not None
    credentials: Any = resender.client.credentials

    for payload in (humanos_event("credential", requestId=request_id), humanos_event("test")):
        assert loop.receiver.invoke(webhook_event(payload)).status == 200
    assert credentials.fetch_count == 0 and loop.patches() == []

    loop.fail_otp(request_id)
    assert credentials.fetch_count == 1 and len(loop.patches()) == 1


@pytest.mark.parametrize(
    "internal_id",
    [
        pytest.param("employee-4711", id="custom-internal-id"),
        pytest.param("shop:evt_1:purchase-agreement", id="a-source-that-does-not-resend"),
        pytest.param(None, id="no-internal-id"),
    ],
)
def test_a_request_of_no_resending_source_is_not_resent(open_loop: OpenLoop, internal_id: str | None) -> None:
    """The policy is the source's: a webhook whose internalId names no source that resends is only published."""
    loop = open_loop()
    request_id = loop.create_request()
    payload = otp_failed(request_id, endpoint_of(loop.sandbox, request_id)) | {"internalId": internal_id}
    if internal_id is None:
        del payload["internalId"]

    assert loop.receiver.invoke(webhook_event(payload)).body == {"status": "published"}
    assert loop.patches() == []


def test_nothing_personal_or_secret_reaches_the_log(open_loop: OpenLoop) -> None:
    """Sent, limit reached, refused, failed: every line is masked JSON without the contact, the endpoint (its query
    names the contact), the API key or either signature secret."""
    loop = open_loop()
    request_id = loop.create_request()
    with written_lines(loop.receiver.module.logger) as lines:
        loop.fail_otp(request_id)
        loop.fail_otp(request_id, "CARRIER_REJECTED")
        foreign = otp_failed(request_id, "http://127.0.0.1:9/request/resend/x?contact=%2B351912345678", code="X")
        loop.receiver.invoke(webhook_event(foreign))
        loop.sandbox.inject(Fault.status(500), method="PATCH", path_prefix="/request/resend/")
        loop.fail_otp(loop.create_request(), "RATE_LIMITED")
    text = "\n".join(lines)
    assert len(resend_lines(lines)) == 4
    for secret in (
        CONTACT,
        "351912345678",
        "%2B351912345678",
        loop.sandbox.api_key,
        loop.sandbox.signature_secret,
        SIGNATURE_SECRET,
        ENCRYPTION_SECRET,
    ):
        assert secret not in text


# --- never more than N, whatever the interleaving ------------------------------------------------------------


@dataclass
class Containers:
    """Receivers built from the same settings, as two Lambda containers are: each its own clients and caches,
    one idempotency table and one Humanos between them. ``by_limit[n]``: the pair whose crm resends ``n`` times."""

    loop: Loop
    by_limit: dict[int, tuple[ReceiverService, ReceiverService]]

    def deliver(self, service: ReceiverService, payload: dict[str, Any]) -> int:
        """One delivery of ``payload``, sealed and signed afresh (as Humanos's retry is): the answer's status."""
        return service.handle_webhook(InboundRequest.from_apigw_v2(webhook_event(payload))).status

    def calls_for(self, request_id: str) -> int:
        return sum(1 for call in self.loop.patches() if call.path == f"/request/resend/{request_id}")


@pytest.fixture
def containers(open_loop: OpenLoop, tmp_path: Path) -> Containers:
    loop = open_loop()
    by_limit = {}
    for limit in (1, 2, 3):
        directory = tmp_path / f"limit-{limit}"
        directory.mkdir()
        mapping = str(resend_mapping(directory, {"action": "resend", "maxResends": limit}))
        pair = tuple(wiring.receiver_service(Settings.from_env(mapping_file=mapping)) for _ in range(2))
        by_limit[limit] = (pair[0], pair[1])
    return Containers(loop, by_limit)


@pytest.mark.parametrize("limit", [1, 2])
def test_racing_deliveries_in_two_containers_never_pass_the_limit(containers: Containers, limit: int) -> None:
    """Four different otp.failed webhooks about one person, each delivered twice at once, half to each container:
    every one is published once, and Humanos gets exactly ``limit`` resends."""
    request_id = containers.loop.create_request()
    first, second = containers.by_limit[limit]
    payloads = [otp_failed(request_id, endpoint_of(containers.loop.sandbox, request_id), code=c) for c in OTP_CODES[:4]]
    jobs = [(service, payload) for payload in payloads for service in (first, second)]
    gate = threading.Barrier(len(jobs))
    statuses: list[int] = []

    def deliver(service: ReceiverService, payload: dict[str, Any]) -> None:
        gate.wait()
        statuses.append(containers.deliver(service, payload))

    threads = [threading.Thread(target=deliver, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert set(statuses) <= {200, 503}, "a copy meets its twin in progress (503, Humanos retries) or published"
    assert len(containers.loop.receiver.published()) == len(payloads)
    assert containers.calls_for(request_id) == limit


class ResendModel(RuleBasedStateMachine):
    """Deliveries of otp.failed webhooks about one person of one request, in any order, to either container,
    copies racing, Humanos failing some resends: the resends made are min(limit, different failures published),
    never more, whatever Humanos answered."""

    def __init__(self, containers: Containers) -> None:
        super().__init__()
        self.containers = containers
        self.limit = 1
        self.request_id = ""
        self.published: set[str] = set()

    @initialize(limit=st.sampled_from([1, 2, 3]))
    def new_request(self, limit: int) -> None:
        self.limit = limit
        self.request_id = self.containers.loop.create_request()

    def _payload(self, code: str) -> dict[str, Any]:
        endpoint = endpoint_of(self.containers.loop.sandbox, self.request_id)
        return otp_failed(self.request_id, endpoint, code=code)

    @rule(code=st.sampled_from(OTP_CODES), container=st.sampled_from([0, 1]))
    def deliver(self, code: str, container: int) -> None:
        """A delivery, or Humanos's retry of one (the same event sealed afresh)."""
        status = self.containers.deliver(self.containers.by_limit[self.limit][container], self._payload(code))
        assert status == 200
        self.published.add(code)

    @rule(code=st.sampled_from(OTP_CODES))
    def deliver_twice_at_once(self, code: str) -> None:
        """Two copies at once, one per container."""
        gate = threading.Barrier(2)
        statuses: list[int] = []

        def one(service: ReceiverService) -> None:
            gate.wait()
            statuses.append(self.containers.deliver(service, self._payload(code)))

        threads = [threading.Thread(target=one, args=(s,)) for s in self.containers.by_limit[self.limit]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert 200 in statuses and set(statuses) <= {200, 503}
        self.published.add(code)

    @rule()
    def humanos_fails_the_next_resend(self) -> None:
        self.containers.loop.sandbox.inject(
            Fault.status(503), times=1, method="PATCH", path_prefix=f"/request/resend/{self.request_id}"
        )

    @invariant()
    def resends_are_min_of_limit_and_failures(self) -> None:
        if self.request_id:
            assert self.containers.calls_for(self.request_id) == min(self.limit, len(self.published))

    def teardown(self) -> None:
        self.containers.loop.sandbox.clear_faults()


def test_never_more_resends_than_the_limit_whatever_the_interleaving(containers: Containers) -> None:
    """The property above over random sequences (each example a new request at the sandbox)."""
    run_state_machine_as_test(
        lambda: ResendModel(containers),
        settings=settings(
            max_examples=15,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
