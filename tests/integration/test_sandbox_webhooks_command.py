"""``humanos-bridge sandbox decide`` against a running sandbox, and ``humanos-bridge sandbox`` with its webhook
options, over real HTTP: the webhooks that arrive are opened with the official SDK and the secrets the
sandbox was given or printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3

from humanos_bridge.core import signing, wire
from humanos_bridge_local import cli
from humanos_bridge_local.sandbox import Sandbox, WebhookSecrets
from tests.conftest import REGION
from tests.integration.test_sandbox_webhooks import (
    API_KEY,
    EMAIL,
    PHONE,
    SECRET,
    WAIT,
    Receiver,
    Started,
    create,
    opened,
    start_sandbox,
)

BIN = Path(sys.executable).parent / "humanos-bridge"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def started() -> Iterator[Started]:
    sandboxes = Started()
    try:
        yield sandboxes
    finally:
        for sandbox in sandboxes:
            sandbox.stop()


def named(sandbox: Sandbox) -> list[str]:
    """A standalone sandbox named in full, as ``humanos-bridge sandbox`` prints it."""
    return ["--url", sandbox.base_url, "--api-key", API_KEY, "--signature-secret", SECRET]


def test_decide_sends_the_webhooks_and_follows_them_until_delivered(
    started: Started, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a stored request for two people, ``sandbox decide --accept`` makes the sandbox post two credential
    webhooks the SDK accepts, and prints one line per delivery, contacts nowhere."""
    sandbox = start_sandbox(started, receiver)
    request_id = create(sandbox)

    assert cli.main(["sandbox", "decide", request_id, "--accept", *named(sandbox)]) == 0

    out = capsys.readouterr().out.splitlines()
    where = f"the Humanos sandbox at {sandbox.base_url}"
    assert out[0] == f"accept: 2 webhook(s) queued by {where} for request {request_id}"
    assert [line.split()[1:4] for line in out[1:]] == [["credential", "accept", "request"]] * 2
    assert all(line.endswith("delivered after 1 attempt(s): 200") for line in out[1:])
    events = [opened(r, sandbox.webhook_secrets) for r in receiver.wait_for(2)]
    assert [(e["requestId"], e["decision"]["action"]) for e in events] == [(request_id, "accept")] * 2
    assert not any(PHONE in line or EMAIL in line or "351912345678" in line for line in out)


def test_decide_exits_1_when_a_webhook_cannot_be_delivered(
    started: Started, capsys: pytest.CaptureFixture[str]
) -> None:
    """The receiver answers 503 every time: after the sandbox's last attempt the command says so and exits 1."""
    receiver = Receiver([503] * 10).start()
    try:
        sandbox = start_sandbox(started, receiver)
        code = cli.main(
            ["sandbox", "decide", create(sandbox), "--otp-fail", "--otp-error", "RATE_LIMITED", *named(sandbox)]
        )
    finally:
        receiver.stop()

    assert code == 1
    [line] = capsys.readouterr().out.splitlines()[1:]
    assert "otp.failed  otp-fail" in line and line.endswith("failed after 3 attempt(s): 503,503,503")


def test_decide_with_no_wait_only_queues(started: Started, capsys: pytest.CaptureFixture[str]) -> None:
    """``--wait 0``: the decision is made and the webhooks queued; the command does not follow them."""
    failing = Receiver([500, 500]).start()
    try:
        sandbox = start_sandbox(started, failing)
        assert cli.main(["sandbox", "decide", create(sandbox, EMAIL), "--reject", "--wait", "0", *named(sandbox)]) == 0
        out = capsys.readouterr().out.splitlines()
        sandbox.wait_for_deliveries(timeout=WAIT)
    finally:
        failing.stop()
    assert out[1].endswith("pending after 0 attempt(s): -")
    assert out[2].startswith("(1 still being retried by the sandbox after 0 s")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["0" * 24, "--accept"], "the sandbox answered 404: Request not found"),
        (["not-an-id", "--accept"], "the sandbox answered 400: requestId must be a mongodb id"),
        (["{request}", "--kyc-pass"], "the sandbox answered 409: Request asks for no identity check"),
    ],
)
def test_decide_says_why_the_sandbox_refused(
    started: Started, receiver: Receiver, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox = start_sandbox(started, receiver)
    request_id = create(sandbox, EMAIL)

    code = cli.main(["sandbox", "decide", *(a.format(request=request_id) for a in argv), *named(sandbox)])

    assert code == 2
    assert message in capsys.readouterr().err
    assert sandbox.deliveries == []


def test_decide_with_a_wrong_secret_is_refused_like_any_unsigned_call(
    started: Started, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox = start_sandbox(started, receiver)
    argv = ["--url", sandbox.base_url, "--api-key", API_KEY, "--signature-secret", "wrong"]

    assert cli.main(["sandbox", "decide", create(sandbox, EMAIL), "--accept", *argv]) == 2
    assert "the sandbox answered 401: Invalid signature" in capsys.readouterr().err
    assert sandbox.deliveries == []


def test_decide_says_when_no_sandbox_answers(capsys: pytest.CaptureFixture[str]) -> None:
    receiver = Receiver().start()
    url = receiver.url.rsplit("/humanos", 1)[0]
    receiver.stop()  # a port where nothing listens any more

    argv = ["--url", url, "--api-key", API_KEY, "--signature-secret", SECRET]
    assert cli.main(["sandbox", "decide", "0" * 24, "--accept", *argv]) == 2
    assert f"cannot reach the sandbox at {url}" in capsys.readouterr().err


def test_decide_finds_the_local_stacks_sandbox_and_its_credentials(
    moto: Any, started: Started, receiver: Receiver, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No credentials on the command line: the local stack's endpoints file names the sandbox, and its
    HumanosSecret (on moto) the key pair the decision is signed with, as for ``sandbox requests``."""
    sandbox = start_sandbox(started, receiver)
    secret = moto.client("secretsmanager").create_secret(
        Name="HumanosSecret", SecretString=json.dumps({"apiKey": API_KEY, "signatureSecret": SECRET})
    )
    endpoints = tmp_path / "local.json"
    endpoints.write_text(
        json.dumps(
            {
                "region": REGION,
                "awsEndpointUrl": moto.endpoint_url,
                "requestQueueUrl": f"{moto.endpoint_url}/000000000000/requests",
                "humanosBaseUrl": sandbox.base_url,
                "humanosSecretArn": secret["ARN"],
            }
        ),
        encoding="utf-8",
    )
    request_id = create(sandbox, EMAIL)

    assert cli.main(["sandbox", "decide", request_id, "--reject", "--endpoints", str(endpoints)]) == 0

    [event] = [opened(r, sandbox.webhook_secrets) for r in receiver.wait_for(1)]
    assert (event["requestId"], event["decision"]["action"]) == (request_id, "reject")
    assert "delivered after 1 attempt(s): 200" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------- the server's options


def test_the_sandbox_command_auto_decides_and_seals_with_the_secrets_it_was_given(receiver: Receiver) -> None:
    """``humanos-bridge sandbox --webhook-url ... --auto-decide accept``, one secret from its flag, one from its
    environment variable, the salt generated: a created request comes back accepted, sealed with those secrets,
    and the sandbox prints the delivery."""
    encryption_secret = WebhookSecrets.generate().encryption_secret
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HUMANOS_WEBHOOK_ENCRYPTION_SECRET": encryption_secret}
    env.pop("HUMANOS_WEBHOOK_ENCRYPTION_SALT", None)
    argv: list[str | Path] = [BIN, "sandbox", "--port", "0", "--api-key", API_KEY, "--signature-secret", SECRET]
    argv += ["--webhook-url", receiver.url, "--humanos-webhook-signature-secret", "hook-secret"]
    argv += ["--auto-decide", "accept", "--auto-decide-delay", "0.05"]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().rsplit(" ", 1)[1].strip()  # "Humanos sandbox listening on <url>"
        banner: dict[str, str] = {}
        for line in iter(process.stdout.readline, ""):
            if line.startswith("Press Ctrl-C"):
                break
            name, _, value = line.partition(":")
            banner[name] = value.strip()
        data = wire.dump_bytes({"users": [{"contact": EMAIL}], "groupIds": ["grp-consent"], "internalId": "evt-1"})
        headers = signing.signed_headers(API_KEY, SECRET, data)
        assert urllib3.request("POST", f"{base_url}/request", body=data, headers=headers, timeout=5).status == 201
        [received] = receiver.wait_for(1)
    finally:
        # SIGTERM stops the sandbox as Ctrl-C does; its delivery thread prints the attempt under way first.
        process.terminate()
        shown = process.communicate(timeout=30)[0]

    assert banner["Webhook URL"] == receiver.url
    assert banner["Webhook signature secret"] == "hook-secret"
    assert banner["Webhook encryption secret"] == encryption_secret
    assert banner["Auto-decide"] == "accept, 0.05 s after each creation"
    secrets = WebhookSecrets("hook-secret", encryption_secret, banner["Webhook encryption salt"])
    event = opened(received, secrets)
    assert (event["eventType"], event["decision"]["action"], event["internalId"]) == ("credential", "accept", "evt-1")
    assert process.returncode == 0
    assert "POST /request 201" in shown
    assert "webhook 1  credential  accept" in shown and "delivered after 1 attempt(s): 200" in shown
    assert EMAIL not in shown


def test_the_sandbox_command_refuses_a_malformed_encryption_secret() -> None:
    """A secret that is not base64 stops the sandbox before it listens, without quoting the secret."""
    env = {**os.environ, "HUMANOS_WEBHOOK_ENCRYPTION_SECRET": "not base64!"}
    done = subprocess.run([BIN, "sandbox", "--port", "0"], capture_output=True, text=True, env=env, timeout=30)

    assert done.returncode == 2
    assert "the webhook encryption secret is not valid base64" in done.stderr
    assert "not base64!" not in done.stderr + done.stdout
