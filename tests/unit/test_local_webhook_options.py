"""``humanos-bridge local``'s webhook secrets: flag, else environment variable (the stack then falls back to
``--state-dir``, else generates them); and the options the local stack takes from them."""

from __future__ import annotations

import pytest

from humanos_bridge_local.cli import build_parser
from humanos_bridge_local.commands.local import stack_options

VARIABLES = ("HUMANOS_WEBHOOK_SIGNATURE_SECRET", "HUMANOS_WEBHOOK_ENCRYPTION_SECRET", "HUMANOS_WEBHOOK_ENCRYPTION_SALT")


@pytest.fixture(autouse=True)
def no_webhook_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def options_of(*argv: str) -> tuple[str | None, str | None, str | None]:
    options = stack_options(build_parser().parse_args(["local", *argv]), write_endpoints=False)
    return (
        options.humanos_webhook_signature_secret,
        options.humanos_webhook_encryption_secret,
        options.humanos_webhook_encryption_salt,
    )


def test_none_given_leaves_them_to_the_stack() -> None:
    """Nothing given: the stack keeps them from --state-dir, or generates them."""
    assert options_of() == (None, None, None)


def test_a_flag_wins_over_its_variable_and_each_variable_fills_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUMANOS_WEBHOOK_SIGNATURE_SECRET", "from-env-signature")
    monkeypatch.setenv("HUMANOS_WEBHOOK_ENCRYPTION_SALT", "from-env-salt")

    given = options_of("--humanos-webhook-signature-secret", "from-flag", "--humanos-webhook-encryption-secret", "QUJD")

    assert given == ("from-flag", "QUJD", "from-env-salt")


def test_auto_decide_is_an_option_of_local_only() -> None:
    """The demo decides its requests one by one; an automatic decision would decide them first."""
    parser = build_parser()
    assert stack_options(
        parser.parse_args(["local", "--auto-decide", "reject"]), write_endpoints=False
    ).auto_decide == ("reject")
    assert stack_options(parser.parse_args(["demo"]), write_endpoints=False).auto_decide is None
    with pytest.raises(SystemExit):
        parser.parse_args(["demo", "--auto-decide", "accept"])


def help_of(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_local_help_names_each_webhook_secrets_variable_and_fallback(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(capsys, "local")
    for variable in VARIABLES:
        assert f"(default: ${variable}; else, with the sandbox, the one kept in --state-dir, else generated;" in text


def test_events_tail_help_states_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    # Python 3.13's argparse writes "--limit, -n N" where 3.11 writes "--limit N, -n N".
    text = help_of(capsys, "events", "tail")
    assert "--limit" in text and " N the last N events (default: 20)" in text
