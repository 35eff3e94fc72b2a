"""The sandbox closes the loop: decided requests come back as webhooks over real HTTP, sealed as Humanos seals them.

Requests are created through the sandbox's signed HTTP API; a small HTTP/1.1 receiver (``http.server`` on a free
port) stands for the organisation's webhook URL and records what arrives; the official Humanos SDK
(``humanos_sdk.webhooks.process_webhook``) verifies and decrypts it. Each event type is checked in each
webhook API version's shape against the table in the Humanos notes. Nothing is patched: retries meet a
receiver that really answers 500, or a port where nothing listens.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple

import pytest
import urllib3
from humanos_sdk.webhooks import WebhookConfig, process_webhook

from humanos_bridge.core import signing, wire
from humanos_bridge.core.backoff import RetryPolicy
from humanos_bridge_local.sandbox import DecisionError, Delivery, Fault, Sandbox, WebhookSecrets
from humanos_bridge_local.sandbox.delivery import DELIVERED, FAILED, NO_ANSWER

API_KEY = "test-api-key"
SECRET = "test-signature-secret"
PHONE = "+351912345678"
EMAIL = "ana@example.com"
#: Retries in hundredths of a second, so a test of three attempts takes no time worth waiting for.
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02, deadline=10.0)
#: Generous bounds for background work to finish; a test never asserts how long it took.
WAIT = 10.0
V_OLD, V_MID, V_NEW = "2026-04-14", "2026-05-17", "2026-09-01"


# ------------------------------------------------------------------------------------------- the receiver


class Received(NamedTuple):
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """An HTTP/1.1 server on a free loopback port that records each POST and answers the scripted statuses
    (then 200); with a ``gate``, it holds every answer until the gate is set."""

    def __init__(self, statuses: Iterable[int] = (), *, gate: threading.Event | None = None) -> None:
        self.statuses: deque[int] = deque(statuses)
        self.gate = gate
        self.received: list[Received] = []
        self._arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._arrived:
                    status = receiver.statuses.popleft() if receiver.statuses else 200
                    receiver.received.append(Received(self.path, dict(self.headers.items()), body))
                    receiver._arrived.notify_all()
                if receiver.gate is not None:
                    receiver.gate.wait(WAIT)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: what arrived is in ``received``."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/humanos/webhooks"

    def start(self) -> Receiver:
        self._thread.start()  # the socket listens already: connections wait in the backlog until the loop runs
        return self

    def stop(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(WAIT)

    def wait_for(self, count: int, timeout: float = WAIT) -> list[Received]:
        """The first ``count`` webhooks received (fewer if they do not come within ``timeout``)."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.received) >= count, timeout)
            return list(self.received)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


class Started(list[Sandbox]):
    """Sandboxes a test started, all stopped at its end."""


@pytest.fixture
def started() -> Iterator[Started]:
    sandboxes = Started()
    try:
        yield sandboxes
    finally:
        for sandbox in sandboxes:
            sandbox.stop()


def start_sandbox(started: Started, receiver: Receiver | None, **options: Any) -> Sandbox:
    options.setdefault("delivery_policy", FAST)
    sandbox = Sandbox(API_KEY, SECRET, webhook_url=receiver.url if receiver else None, **options)
    started.append(sandbox.start())
    return sandbox


@pytest.fixture
def sandbox(started: Started, receiver: Receiver) -> Sandbox:
    """A sandbox whose webhooks go to ``receiver``, retrying fast."""
    return start_sandbox(started, receiver)


# ------------------------------------------------------------------------------------------- helpers


def create(sandbox: Sandbox, *contacts: str, key: str | None = None, **fields: Any) -> str:
    """Create a request through the signed HTTP API (2026-09-01 body) and return its id."""
    body: dict[str, Any] = {
        "users": [{"contact": contact} for contact in contacts or (PHONE, EMAIL)],
        "credentials": [{"type": "POLICY", "name": "Spend up to 50 EUR", "internalId": "cred-1", "maxExecutions": 3}],
        "internalId": "order-1",
        **fields,
    }
    data = wire.dump_bytes(body)
    headers = signing.signed_headers(API_KEY, SECRET, data) | {"API-Version": V_NEW}
    if key is not None:
        headers["Idempotency-Key"] = key
    response = urllib3.request("POST", f"{sandbox.base_url}/request", body=data, headers=headers, timeout=5)
    assert response.status == 201, response.data
    return str(response.json()["id"])


def admin(sandbox: Sandbox, method: str, path: str, body: Any = None, *, secret: str = SECRET) -> Any:
    """A signed call to the sandbox's own ``/_sandbox/`` routes."""
    data = None if body is None else wire.dump_bytes(body)
    headers = signing.signed_headers(API_KEY, secret, data)
    return urllib3.request(method, sandbox.base_url + path, body=data, headers=headers, timeout=5)


def eventually(read: Callable[[], list[str]], timeout: float = WAIT) -> list[str]:
    """What ``read`` returns once it is not empty (or when ``timeout`` passes): for what happens on another thread."""
    deadline = time.monotonic() + timeout
    found = read()
    while not found and time.monotonic() < deadline:
        time.sleep(0.01)
        found = read()
    return found


def opened(received: Received, secrets: WebhookSecrets) -> Any:
    """What the official SDK makes of one received webhook: verified, decrypted, parsed (ValueError otherwise)."""
    config = WebhookConfig(secrets.signature_secret, secrets.encryption_secret, secrets.encryption_salt)
    return process_webhook(received.body.decode("utf-8"), received.headers, config)


def decided(sandbox: Sandbox, receiver: Receiver, request_id: str, outcome: str) -> list[Any]:
    """Decide ``request_id``, wait for its webhooks, and return them as the SDK opens them."""
    sent = sandbox.decide(request_id, outcome)
    assert [d.state for d in sandbox.wait_for_deliveries(sent, timeout=WAIT)] == [DELIVERED] * len(sent)
    arrived = receiver.wait_for(len(sent))
    return [opened(r, sandbox.webhook_secrets) for r in arrived[-len(sent) :]]


# ------------------------------------------------------------------------------------------- the SDK accepts


@pytest.mark.parametrize("version", [V_OLD, V_MID, "2026-07-07", V_NEW])
@pytest.mark.parametrize("outcome", ["accept", "reject", "kyc-pass", "kyc-fail", "otp-fail"])
def test_the_official_sdk_verifies_and_decrypts_every_event_type_in_every_shape(
    started: Started, receiver: Receiver, version: str, outcome: str
) -> None:
    """Given a request for a phone and an e-mail, when it is decided, the SDK opens every webhook and each carries
    the common fields in the version's shape: ``user.did`` and ``decisionDate`` up to 2026-04-14, ``user.id``
    (the DID) and no ``decisionDate`` later, ``api_version`` always."""
    sandbox = start_sandbox(started, receiver, webhook_api_version=version)
    request_id = create(sandbox, securityLevel="HUMANOS_KYC")

    events = decided(sandbox, receiver, request_id, outcome)

    people = [EMAIL] if outcome != "otp-fail" else []
    assert sorted(e["user"]["contact"] for e in events) == sorted([PHONE, *people])
    for event in events:
        assert (event["requestId"], event["internalId"], event["api_version"]) == (request_id, "order-1", version)
        assert event["issuerDid"].startswith("did:web:")
        if version == V_OLD:
            assert set(event["user"]) == {"contact", "did"} and "decisionDate" in event
        else:
            assert set(event["user"]) == {"contact", "id"} and "decisionDate" not in event
            assert event["user"]["id"].startswith("did:web:")
    assert sandbox.webhook_api_version == version
    assert [r.path for r in receiver.received] == ["/humanos/webhooks"] * len(events)


@pytest.mark.parametrize(
    ("version", "rejected_status"), [(V_OLD, "REJECTED"), (V_MID, "REJECTED"), (V_NEW, "INACTIVE")]
)
def test_credential_events_follow_the_versions_table(
    started: Started, receiver: Receiver, version: str, rejected_status: str
) -> None:
    """Accept: DRAFT until the last person accepts, then ACTIVE. Reject: REJECTED, and from 2026-09-01 INACTIVE with
    ``inactiveAt``. The decision is a top-level ``action`` up to 2026-04-14, ``decision{action, date}`` later."""
    sandbox = start_sandbox(started, receiver, webhook_api_version=version)
    accepted = decided(sandbox, receiver, create(sandbox), "accept")
    rejected = decided(sandbox, receiver, create(sandbox, EMAIL), "reject")

    assert [e["credential"]["status"] for e in accepted] == ["DRAFT", "ACTIVE"]
    assert [e["credential"]["status"] for e in rejected] == [rejected_status]
    for event, action in ((accepted[-1], "accept"), (rejected[0], "reject")):
        credential = event["credential"]
        assert credential["id"].startswith("urn:via:credential:")
        assert (credential["name"], credential["internalId"], credential["resourceType"]) == (
            "Spend up to 50 EUR",
            "cred-1",
            "POLICY",
        )
        if version == V_OLD:
            assert event["action"] == action and "decision" not in event
            assert {"proofs", "data"} <= set(credential) and "w3cCredential" not in credential
        else:
            assert event["decision"]["action"] == action and "action" not in event
            assert event["decision"]["date"] == credential["decisions"][-1]["decidedAt"]
            assert credential["decisions"][-1]["accepted"] is (action == "accept")
            assert credential["decisions"][-1]["id"] == event["user"]["id"]
    sealed = accepted[-1]["credential"]
    if version == V_OLD:
        assert len(sealed["proofs"]) == 1
    elif version == V_MID:
        assert {"evidences", "proofs"} <= set(sealed["w3cCredential"]) and "executionsRemaining" not in sealed
    else:
        assert sealed["w3cCredential"]["proof"]["event"] == "STAMP" and "evidence" in sealed["w3cCredential"]
        assert (sealed["executionsRemaining"], sealed["inactiveAt"]) == (3, None)
        assert rejected[0]["credential"]["inactiveAt"] == rejected[0]["decision"]["date"]


@pytest.mark.parametrize("version", [V_OLD, V_MID, V_NEW])
def test_identity_events_follow_the_versions_table(started: Started, receiver: Receiver, version: str) -> None:
    """KYC pass carries the identity; a failure carries it only up to 2026-04-14. ``isFraud`` and ``riskScore``
    until 2026-09-01, then ``decision{success, message?, date}`` and more identity fields."""
    sandbox = start_sandbox(started, receiver, webhook_api_version=version)
    [passed] = decided(sandbox, receiver, create(sandbox, EMAIL, securityLevel="ORGANIZATION_KYC"), "kyc-pass")
    [failed] = decided(sandbox, receiver, create(sandbox, EMAIL, securityLevel="HUMANOS_KYC"), "kyc-fail")

    assert (passed["decision"]["success"], failed["decision"]["success"]) == (True, False)
    assert failed["decision"]["message"]
    assert "fullName" in passed["identity"]
    assert ("identity" in failed) is (version == V_OLD)
    for event in (passed, failed):
        assert ("date" in event["decision"]) is (version != V_OLD)
        assert ({"isFraud", "riskScore"} <= set(event["decision"])) is (version != V_NEW)
    assert ("nationality" in passed["identity"]) is (version == V_NEW)


def test_otp_failed_names_the_sandboxes_own_resend_endpoint_which_sends_a_fresh_code(
    sandbox: Sandbox, receiver: Receiver
) -> None:
    """``otp.failed`` goes for the phone number only, with an error code and a ``resendEndpoint`` that, called
    exactly as delivered (a signed PATCH), resends the code to that person."""
    request_id = create(sandbox)
    sent = sandbox.decide(request_id, "otp-fail", otp_error="CARRIER_REJECTED")
    sandbox.wait_for_deliveries(sent, timeout=WAIT)
    [event] = [opened(r, sandbox.webhook_secrets) for r in receiver.wait_for(1)]

    assert event["user"]["contact"] == PHONE
    assert event["otp"]["error"]["code"] == "CARRIER_REJECTED" and event["otp"]["error"]["message"]
    endpoint = event["otp"]["resendEndpoint"]
    assert endpoint == f"{sandbox.base_url}/request/resend/{request_id}?contact=%2B351912345678"
    headers = signing.signed_headers(API_KEY, SECRET, None) | {"API-Version": V_NEW}
    assert urllib3.request("PATCH", endpoint, headers=headers, timeout=5).status == 201
    assert [r["contact"] for r in sandbox.created[0]["resends"]] == [PHONE]


def test_a_test_event_is_sent_like_the_dashboards_button(sandbox: Sandbox, receiver: Receiver) -> None:
    """``test``: the common fields and ``message``, sealed like every other webhook."""
    [delivery] = sandbox.wait_for_deliveries([sandbox.send_test_webhook("ping")], timeout=WAIT)
    [event] = [opened(r, sandbox.webhook_secrets) for r in receiver.wait_for(1)]

    assert (event["eventType"], event["message"], event["api_version"]) == ("test", "ping", V_NEW)
    assert (delivery.event_type, delivery.request_id, delivery.state) == ("test", event["requestId"], DELIVERED)


def test_the_webhook_version_follows_the_keys_pinned_version_unless_set(started: Started, receiver: Receiver) -> None:
    """Humanos pins the webhook version at the first delivery and advises keeping it equal to the API version."""
    sandbox = start_sandbox(started, receiver, pinned_api_version="2026-05-17")
    assert sandbox.webhook_api_version == "2026-05-17"
    sandbox.pin_api_version("2026-09-01")
    assert sandbox.webhook_api_version == "2026-09-01"
    assert sandbox.pin_webhook_api_version("2026-04-30") == "2026-04-14"
    assert sandbox.webhook_api_version == "2026-04-14"


def test_a_wrong_secret_fails_the_sdks_check(sandbox: Sandbox, receiver: Receiver) -> None:
    """The SDK check is a real one: the same webhook with another signature secret is refused."""
    decided(sandbox, receiver, create(sandbox, EMAIL), "accept")
    other = WebhookSecrets.generate(
        encryption_secret=sandbox.webhook_secrets.encryption_secret,
        encryption_salt=sandbox.webhook_secrets.encryption_salt,
    )
    with pytest.raises(ValueError, match="Invalid webhook signature"):
        opened(receiver.received[0], other)


# ------------------------------------------------------------------------------------------- delivery


def test_a_500_is_retried_and_the_same_webhook_arrives_again(started: Started) -> None:
    """The receiver answers 500, then 200: the webhook is delivered on the second attempt, the same sealed bytes
    signed afresh, and the record shows both attempts."""
    receiver = Receiver([500]).start()
    try:
        sandbox = start_sandbox(started, receiver)
        [delivery] = sandbox.wait_for_deliveries(sandbox.decide(create(sandbox, EMAIL), "accept"), timeout=WAIT)
        first, second = receiver.wait_for(2)
    finally:
        receiver.stop()

    assert (delivery.state, delivery.attempts, delivery.statuses, delivery.status) == (DELIVERED, 2, (500, 200), 200)
    assert first.body == second.body
    assert len(receiver.received) == 2
    assert opened(second, sandbox.webhook_secrets)["eventType"] == "credential"


def test_a_receiver_that_never_answers_2xx_gets_a_bounded_number_of_attempts(started: Started) -> None:
    """Always 503: three attempts (the policy's bound), then the delivery has failed for good."""
    receiver = Receiver([503] * 10).start()
    try:
        sandbox = start_sandbox(started, receiver)
        [delivery] = sandbox.wait_for_deliveries(sandbox.decide(create(sandbox, EMAIL), "accept"), timeout=WAIT)
    finally:
        receiver.stop()

    assert (delivery.state, delivery.statuses) == (FAILED, (503, 503, 503))
    assert len(receiver.received) == 3


def test_nothing_listening_counts_as_a_failed_attempt_and_is_retried(started: Started) -> None:
    """A refused connection is retried like a 5xx and recorded without a status."""
    receiver = Receiver().start()
    receiver.stop()  # the port is now closed: nothing answers there
    sandbox = start_sandbox(started, receiver)

    [delivery] = sandbox.wait_for_deliveries(sandbox.decide(create(sandbox, EMAIL), "accept"), timeout=WAIT)

    assert (delivery.state, delivery.statuses, delivery.status) == (FAILED, (NO_ANSWER,) * 3, None)
    assert delivery.error is not None


def test_the_sandbox_answers_while_a_webhook_is_still_being_delivered(started: Started) -> None:
    """Delivery runs in the background: while the receiver holds the first webhook unanswered, the admin route
    answers the next decision and the Humanos API keeps answering; released, both webhooks arrive in order."""
    gate = threading.Event()
    receiver = Receiver(gate=gate).start()
    try:
        sandbox = start_sandbox(started, receiver)
        first, second = create(sandbox, EMAIL), create(sandbox, EMAIL)
        sandbox.decide(first, "accept")
        [held] = receiver.wait_for(1)

        answer = admin(sandbox, "POST", f"/_sandbox/requests/{second}/decide", {"outcome": "reject"})
        listed = admin(sandbox, "GET", "/_sandbox/deliveries").json()["data"]

        assert answer.status == 202
        assert [(d["state"], d["attempts"]) for d in listed] == [("pending", 0), ("pending", 0)]
        gate.set()
        delivered = sandbox.wait_for_deliveries(timeout=WAIT)
    finally:
        receiver.stop()
    assert [(d.request_id, d.outcome, d.state) for d in delivered] == [
        (first, "accept", DELIVERED),
        (second, "reject", DELIVERED),
    ]
    assert opened(held, sandbox.webhook_secrets)["requestId"] == first


def test_redelivery_sends_the_same_bytes_again(sandbox: Sandbox, receiver: Receiver) -> None:
    """What a Humanos retry looks like to a receiver that already answered: the same envelope, a fresh signature."""
    [first] = sandbox.wait_for_deliveries(sandbox.decide(create(sandbox, EMAIL), "accept"), timeout=WAIT)
    [again] = sandbox.wait_for_deliveries([sandbox.redeliver(first.id)], timeout=WAIT)
    original, copy = receiver.wait_for(2)

    assert (again.outcome, again.state, again.request_id) == ("redeliver", DELIVERED, first.request_id)
    assert copy.body == original.body
    assert opened(copy, sandbox.webhook_secrets) == opened(original, sandbox.webhook_secrets)


def test_new_secrets_sign_and_seal_from_the_next_webhook(sandbox: Sandbox, receiver: Receiver) -> None:
    """A rotation in the dashboard: webhooks sent after it open only with the new secrets."""
    old = sandbox.webhook_secrets
    new = WebhookSecrets.generate()
    decided(sandbox, receiver, create(sandbox, EMAIL), "accept")
    sandbox.set_webhook_secrets(new)
    decided(sandbox, receiver, create(sandbox, EMAIL), "accept")
    before, after = receiver.received

    assert opened(before, old) and opened(after, new)
    with pytest.raises(ValueError, match="signature"):
        opened(after, old)


def test_delivery_logs_name_no_contact_and_no_secret(started: Started, caplog: pytest.LogCaptureFixture) -> None:
    """Each attempt is logged (the delivery, event type, request id, status), never a contact or a secret."""
    receiver = Receiver([500]).start()
    try:
        sandbox = start_sandbox(started, receiver)
        with caplog.at_level(logging.INFO, logger="humanos_bridge_local.sandbox.delivery"):
            sandbox.wait_for_deliveries(sandbox.decide(create(sandbox), "otp-fail"), timeout=WAIT)
    finally:
        receiver.stop()

    lines = [r.getMessage() for r in caplog.records if r.name == "humanos_bridge_local.sandbox.delivery"]
    assert len(lines) == 2
    assert "attempt 1 of 3 got 500; retrying" in lines[0] and "attempt 2 of 3 got 200; delivered" in lines[1]
    secrets = sandbox.webhook_secrets
    for text in (caplog.text, *lines):
        for hidden in (PHONE, "351912345678", EMAIL, secrets.signature_secret, secrets.encryption_secret):
            assert hidden not in text


# ------------------------------------------------------------------------------------------- what can be decided


def test_each_decision_is_refused_when_humanos_would_not_send_it(started: Started, receiver: Receiver) -> None:
    """Unknown request 404; a credential decided twice 409; KYC on a CONTACT request 409; otp.failed with no phone
    409; a canceled request 409; no webhook URL 409. Nothing is sent for any of them."""
    sandbox = start_sandbox(started, receiver)
    request_id = create(sandbox, EMAIL)
    sandbox.decide(request_id, "accept")
    canceled = create(sandbox, EMAIL)
    headers = signing.signed_headers(API_KEY, SECRET, None)
    assert urllib3.request("DELETE", f"{sandbox.base_url}/request/{canceled}", headers=headers).status == 201
    refusals = []
    for target, outcome in (
        ("0" * 24, "accept"),
        (request_id, "reject"),
        (request_id, "kyc-pass"),
        (request_id, "otp-fail"),
        (canceled, "accept"),
        (request_id, "maybe"),
    ):
        with pytest.raises(DecisionError) as refused:
            sandbox.decide(target, outcome)
        refusals.append((refused.value.status, refused.value.message.split(":")[0].split(";")[0]))
    unconfigured = start_sandbox(started, None)
    with pytest.raises(DecisionError, match="no webhook URL is configured") as no_url:
        unconfigured.decide(create(unconfigured), "accept")

    assert refusals == [
        (404, "Request not found"),
        (409, "Request's credential is already decided"),
        (409, "Request asks for no identity check (securityLevel CONTACT)"),
        (409, "Request reaches nobody by SMS"),
        (409, "Request is canceled"),
        (400, "outcome must be one of accept, reject, kyc-pass, kyc-fail, otp-fail"),
    ]
    assert no_url.value.status == 409
    assert len(sandbox.wait_for_deliveries(timeout=WAIT)) == 1
    assert unconfigured.deliveries == []


def test_an_identity_and_otp_failures_may_follow_a_credential_decision(sandbox: Sandbox, receiver: Receiver) -> None:
    """Decided once per kind: the credential and the identity each once, an SMS may fail again."""
    request_id = create(sandbox, PHONE, securityLevel="HUMANOS_KYC")
    for outcome in ("otp-fail", "otp-fail", "kyc-pass", "accept"):
        sandbox.decide(request_id, outcome)
    kinds = [d.event_type for d in sandbox.wait_for_deliveries(timeout=WAIT)]
    assert kinds == ["otp.failed", "otp.failed", "identity", "credential"]


# ------------------------------------------------------------------------------------------- admin routes


def test_the_admin_route_decides_and_lists_deliveries_without_contacts(sandbox: Sandbox, receiver: Receiver) -> None:
    """``POST /_sandbox/requests/{id}/decide`` (signed) answers 202 with pending delivery records;
    ``GET /_sandbox/deliveries`` shows how they end. Neither shows a contact."""
    request_id = create(sandbox)

    answer = admin(sandbox, "POST", f"/_sandbox/requests/{request_id}/decide", {"outcome": "reject"})
    assert answer.status == 202
    queued = answer.json()
    assert (queued["requestId"], queued["outcome"], len(queued["deliveries"])) == (request_id, "reject", 2)
    sandbox.wait_for_deliveries(timeout=WAIT)
    listed = admin(sandbox, "GET", f"/_sandbox/deliveries?ids={queued['deliveries'][0]['id']}")

    assert listed.status == 200
    [shown] = listed.json()["data"]
    assert {k: shown[k] for k in ("eventType", "requestId", "outcome", "state", "statuses", "attempts")} == {
        "eventType": "credential",
        "requestId": request_id,
        "outcome": "reject",
        "state": "delivered",
        "statuses": [200],
        "attempts": 1,
    }
    for text in (answer.data, listed.data):
        assert PHONE.encode() not in text and EMAIL.encode() not in text
    assert len(receiver.wait_for(2)) == 2


def test_injected_faults_never_touch_the_admin_routes(sandbox: Sandbox, receiver: Receiver) -> None:
    """Faults stand for Humanos's unreliability: with every call failing, the sandbox's own routes still answer."""
    request_id = create(sandbox, EMAIL)
    sandbox.inject(Fault.status(500), method=None, path_prefix="/")

    answer = admin(sandbox, "POST", f"/_sandbox/requests/{request_id}/decide", {"outcome": "accept"})
    listed = admin(sandbox, "GET", "/request")

    assert (answer.status, listed.status) == (202, 500)
    assert len(receiver.wait_for(1)) == 1


@pytest.mark.parametrize(
    ("secret", "path", "body", "status"),
    [
        ("not-the-secret", "/_sandbox/webhooks/test", None, 401),
        (SECRET, "/_sandbox/requests/{id}/decide", {"outcome": 1}, 400),
        (SECRET, "/_sandbox/requests/{id}/decide", {"outcome": "accept", "otpError": "NOPE"}, 202),
        (SECRET, "/_sandbox/requests/{id}/remove", {"outcome": "accept"}, 404),
        (SECRET, "/_sandbox/deliveries/x/redeliver", None, 400),
        (SECRET, "/_sandbox/deliveries/99/redeliver", None, 404),
    ],
)
def test_admin_routes_are_signed_and_checked(sandbox: Sandbox, secret: str, path: str, body: Any, status: int) -> None:
    """A wrong signature is refused like any Humanos call; malformed admin calls get 400/404 in the NestJS shape
    (an otp error code only matters to an otp-fail)."""
    response = admin(sandbox, "POST", path.format(id=create(sandbox, EMAIL)), body, secret=secret)
    assert response.status == status
    if status >= 400:
        assert set(response.json()) == {"statusCode", "message", "error"}


def test_a_bad_otp_error_code_is_refused_for_otp_fail(sandbox: Sandbox) -> None:
    response = admin(
        sandbox, "POST", f"/_sandbox/requests/{create(sandbox)}/decide", {"outcome": "otp-fail", "otpError": "NOPE"}
    )
    assert response.status == 400
    assert response.json()["message"].startswith("otp error code must be one of UNDELIVERABLE")
    assert sandbox.deliveries == []


# ------------------------------------------------------------------------------------------- auto-decide


def test_auto_decide_sends_the_outcome_for_each_new_request_but_not_for_a_replay(
    started: Started, receiver: Receiver
) -> None:
    """With ``auto_decide="accept"`` every request created comes back accepted, with no decide call; a replayed
    creation (same Idempotency-Key) creates nothing and so decides nothing."""
    sandbox = start_sandbox(started, receiver, auto_decide="accept", auto_decide_delay=0.05)
    first = create(sandbox, EMAIL, key="evt-1")
    assert create(sandbox, EMAIL, key="evt-1") == first
    second = create(sandbox, EMAIL, key="evt-2")

    events = [opened(r, sandbox.webhook_secrets) for r in receiver.wait_for(2)]

    assert sorted(e["requestId"] for e in events) == sorted([first, second])
    assert {e["decision"]["action"] for e in events} == {"accept"}
    assert [d.outcome for d in sandbox.wait_for_deliveries(timeout=WAIT)] == ["accept", "accept"]


def test_auto_decide_can_be_switched_on_later_and_skips_what_it_cannot_decide(
    started: Started, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Switched on after start (as the local stack does once its receiver listens); an outcome a request cannot
    take (KYC at security level CONTACT) is logged and skipped, without a contact in the log."""
    sandbox = start_sandbox(started, receiver)
    sandbox.set_auto_decide("kyc-pass", delay=0.0)
    assert sandbox.auto_decide == ("kyc-pass", 0.0)
    with caplog.at_level(logging.WARNING, logger="humanos_bridge_local.sandbox.webhooks"):
        contact_only = create(sandbox, EMAIL)
        kyc = create(sandbox, EMAIL, securityLevel="HUMANOS_KYC")
        [event] = [opened(r, sandbox.webhook_secrets) for r in receiver.wait_for(1)]
        refusals = eventually(lambda: [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING])

    assert (event["eventType"], event["requestId"]) == ("identity", kyc)
    assert refusals == [
        f"auto-decide kyc-pass of request {contact_only} refused: Request asks for no identity check "
        "(securityLevel CONTACT); create it with a KYC security level"
    ]
    assert EMAIL not in caplog.text
    assert len(sandbox.wait_for_deliveries(timeout=WAIT)) == 1


def test_unset_webhook_url_can_be_set_after_start(started: Started, receiver: Receiver) -> None:
    """The local stack starts the sandbox before its receiver's URL is known."""
    sandbox = start_sandbox(started, None)
    assert sandbox.webhook_url is None
    sandbox.set_webhook_url(receiver.url)

    [delivery] = sandbox.wait_for_deliveries([sandbox.send_test_webhook()], timeout=WAIT)

    assert (delivery.url, delivery.state) == (receiver.url, DELIVERED)
    assert isinstance(delivery, Delivery)
