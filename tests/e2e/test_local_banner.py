"""``humanos-bridge local``'s start-up banner: where the sender and webhook secrets are, their values only on
request; and what ``--state-dir`` keeps of them across a restart.

One stack with ``--state-dir`` (a folder that does not exist yet), its banner printed as the command prints it,
and a second one started on the same folder, as a restart would.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from humanos_bridge_local.cli import build_parser, command_name
from humanos_bridge_local.commands.local import print_banner
from humanos_bridge_local.private_files import read_json
from humanos_bridge_local.stack import RECEIVER, WEBHOOK_SECRET_FIELDS, LocalStack, StackOptions
from tests.e2e.conftest import FAST
from tests.e2e.stack_helpers import WAIT_SECONDS, on_bus

#: The webhook secrets' attribute names, and their fields in the secret's JSON.
WEBHOOK_FIELDS = WEBHOOK_SECRET_FIELDS


@pytest.fixture(scope="module")
def stack(bridge_home: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    state_dir = tmp_path_factory.mktemp("local") / "state"
    with LocalStack(StackOptions(port=0, parameters=dict(FAST), state_dir=state_dir)) as running:
        yield running


def banner(stack: LocalStack, capsys: pytest.CaptureFixture[str], *, show_secrets: bool) -> str:
    capsys.readouterr()
    print_banner(stack, show_secrets=show_secrets)
    return capsys.readouterr().out


def test_the_banner_says_where_the_secrets_are_and_shows_none(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Output is often redirected to a file: it names each sender and the state file, never a secret's value."""
    out = banner(stack, capsys, show_secrets=False)
    values = [value for secrets in stack.sender_secrets.values() for value in secrets]
    assert values and not [value for value in values if value in out]
    assert stack.state_file is not None
    assert (
        f"  sender secrets  {', '.join(stack.sender_secrets)}: generated, in moto's SenderSecret "
        f"(`{command_name()} send` signs with them)\n"
        f"                  and in {stack.state_file} (--state-dir); --show-secrets prints them\n"
    ) in out
    assert "curl -sS -X POST" in out  # still ready to paste: signed, without showing the secret
    assert stack.webhook_secrets is not None
    webhook_values = [getattr(stack.webhook_secrets, name) for name in WEBHOOK_FIELDS]
    assert not [value for value in webhook_values if value in out]
    assert (
        "  webhook secrets in moto's WebhookSecret (shared with the sandbox)\n"
        f"                  and in {stack.state_file}; --show-secrets prints them\n"
    ) in out


def test_the_banner_names_the_receiver_the_bus_and_how_to_read_it(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    out = banner(stack, capsys, show_secrets=False)

    cli = command_name()
    assert f"  webhooks        {stack.api_url}/humanos/webhooks  (the receiver: the sandbox posts here)\n" in out
    assert f"  event bus       humanos-bridge-local-humanos  (in moto; `{cli} events tail` reads it)\n" in out
    assert f"\n{cli} sandbox decide REQUEST_ID --accept\n{cli} events tail --follow\n" in out


def test_show_secrets_prints_each_senders_secret(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    """--show-secrets: one line per sender with its secret, as a developer signing by hand needs."""
    out = banner(stack, capsys, show_secrets=True)
    assert "  sender secrets (local only, generated):\n" in out
    for key, secrets in stack.sender_secrets.items():
        assert f"    {key:<14} {secrets[0]}\n" in out
    assert stack.webhook_secrets is not None
    assert f"    signature      {stack.webhook_secrets.signature_secret}\n" in out
    assert f"    encryption     {stack.webhook_secrets.encryption_secret}\n" in out
    assert f"    salt           {stack.webhook_secrets.encryption_salt}\n" in out


def test_the_state_file_holds_the_secrets_the_banner_points_to(stack: LocalStack) -> None:
    """The folder was created 0700 and the file is its owner's only: that is where the values are."""
    assert stack.state_file is not None
    assert stat.S_IMODE(stack.state_file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(stack.state_file.stat().st_mode) == 0o600
    assert read_json(stack.state_file)["senders"] == stack.sender_secrets


def test_the_receiver_the_sandbox_and_the_state_file_hold_the_same_webhook_secrets(stack: LocalStack) -> None:
    assert stack.state_file is not None and stack.sandbox is not None
    held = webhook_secret_of(stack)
    assert read_json(stack.state_file)["webhooks"] == held
    assert held == {field: getattr(stack.sandbox.webhook_secrets, name) for name, field in WEBHOOK_FIELDS.items()}


def test_a_restart_keeps_the_webhook_secrets_and_a_given_one_replaces_its_own(
    stack: LocalStack, bridge_home: str
) -> None:
    """Given a stack that kept its webhook secrets in --state-dir, when another starts on that folder with a new
    signature secret (as from --humanos-webhook-signature-secret), then it keeps the encryption secret and salt,
    uses and keeps the new signature secret, and its sandbox's webhooks pass its receiver."""
    assert stack.options.state_dir is not None and stack.state_file is not None
    before = webhook_secret_of(stack)
    options = StackOptions(
        port=0,
        parameters=dict(FAST),
        state_dir=stack.options.state_dir,
        humanos_webhook_signature_secret="rotated-in-the-dashboard",
        write_endpoints=False,
    )

    with LocalStack(options) as restarted:
        held = webhook_secret_of(restarted)
        assert restarted.sandbox is not None
        delivery = restarted.sandbox.send_test_webhook()
        [delivered] = restarted.sandbox.wait_for_deliveries([delivery], timeout=WAIT_SECONDS)
        [event] = on_bus(restarted, delivery.request_id)

    assert held == {**before, "signatureSecret": "rotated-in-the-dashboard"}
    assert read_json(stack.state_file)["webhooks"] == held
    assert (delivered.statuses, event.detail_type) == ((200,), "Test")


def webhook_secret_of(stack: LocalStack) -> dict[str, str]:
    """The WebhookSecret value the receiver reads, from moto."""
    secret_id = stack.environments[RECEIVER]["WEBHOOK_SECRET_ID"]
    value = stack.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]
    return dict(json.loads(value))


@pytest.mark.parametrize(("argv", "shown"), [([], False), (["--show-secrets"], True)])
def test_show_secrets_is_an_option_of_local(argv: list[str], shown: bool, tmp_path: Path) -> None:
    args = build_parser().parse_args(["local", "--state-dir", str(tmp_path), *argv])
    assert args.show_secrets is shown
