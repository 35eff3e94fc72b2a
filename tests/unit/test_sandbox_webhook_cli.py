"""``humanos-bridge sandbox``'s webhook options and ``sandbox decide``'s arguments, as parsed: no sockets."""

from __future__ import annotations

import base64

import pytest

from humanos_bridge_local.cli import build_parser
from humanos_bridge_local.commands.sandbox import describe_delivery, webhook_secrets_of

VARIABLES = ("HUMANOS_WEBHOOK_SIGNATURE_SECRET", "HUMANOS_WEBHOOK_ENCRYPTION_SECRET", "HUMANOS_WEBHOOK_ENCRYPTION_SALT")
GIVEN = base64.b64encode(b"k" * 32).decode("ascii")


@pytest.fixture(autouse=True)
def no_secrets_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def help_of(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["sandbox"], "--webhook-url URL where to POST webhooks, e.g. a local receiver (default: none)"),
        (["sandbox"], "(default: $HUMANOS_WEBHOOK_SIGNATURE_SECRET, else generated: random text)"),
        (["sandbox"], "(default: $HUMANOS_WEBHOOK_ENCRYPTION_SECRET, else generated: base64 of 32 random bytes)"),
        (["sandbox"], "(default: $HUMANOS_WEBHOOK_ENCRYPTION_SALT, else generated: random text)"),
        (["sandbox"], "kyc-pass, kyc-fail, otp-fail (default: only on `sandbox decide`)"),
        (["sandbox"], "--auto-decide-delay SECONDS seconds between a request's creation and its automatic decision "),
        (
            ["sandbox", "decide"],
            "--wait SECONDS how long to follow the deliveries, 0 to only queue them (default: 30.0)",
        ),
        (["sandbox", "decide"], "BLOCKED_DESTINATION (default: UNDELIVERABLE)"),
    ],
)
def test_help_states_each_default(command: list[str], shown: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert shown in help_of(capsys, *command)


def test_a_flag_wins_over_its_variable_and_the_rest_are_generated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flag > environment variable > generated, secret by secret."""
    monkeypatch.setenv("HUMANOS_WEBHOOK_SIGNATURE_SECRET", "from-env")
    monkeypatch.setenv("HUMANOS_WEBHOOK_ENCRYPTION_SECRET", GIVEN)
    args = build_parser().parse_args(["sandbox", "--humanos-webhook-signature-secret", "from-flag"])

    secrets = webhook_secrets_of(args)

    assert (secrets.signature_secret, secrets.encryption_secret) == ("from-flag", GIVEN)
    assert secrets.encryption_salt and secrets.encryption_salt != webhook_secrets_of(args).encryption_salt


def test_help_never_shows_a_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The variables are read when the sandbox starts, not as argparse defaults that ``--help`` would print."""
    monkeypatch.setenv("HUMANOS_WEBHOOK_SIGNATURE_SECRET", "do-not-print-me")
    assert "do-not-print-me" not in help_of(capsys, "sandbox")


@pytest.mark.parametrize("flag", ["--accept", "--reject", "--kyc-pass", "--kyc-fail", "--otp-fail"])
def test_decide_takes_exactly_one_outcome(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["sandbox", "decide", "6650f0c2a1b2c3d4e5f60718", flag])
    assert (args.request_id, args.outcome, args.otp_error) == ("6650f0c2a1b2c3d4e5f60718", flag[2:], "UNDELIVERABLE")
    for argv in (["--accept", "--reject"], []):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["sandbox", "decide", "6650f0c2a1b2c3d4e5f60718", *argv])
    assert (
        "one of the arguments --accept --reject --kyc-pass --kyc-fail --otp-fail is required" in capsys.readouterr().err
    )


def test_a_delivery_line_shows_the_record_and_escapes_what_it_quotes() -> None:
    line = describe_delivery(
        {
            "id": 3,
            "eventType": "credential",
            "outcome": "accept",
            "requestId": "6650f0c2a1b2c3d4e5f60718",
            "url": "http://127.0.0.1:8080/humanos/webhooks\x1b[2K",
            "attempts": 2,
            "statuses": [0, 200],
            "state": "delivered",
            "error": None,
        }
    )
    assert line == (
        "3  credential  accept  request 6650f0c2a1b2c3d4e5f60718  -> http://127.0.0.1:8080/humanos/webhooks\\x1b[2K  "
        "delivered after 2 attempt(s): no-answer,200"
    )
