"""``humanos-bridge local``'s start-up banner: where the sender secrets are, their values only on request.

One stack with ``--state-dir`` (a folder that does not exist yet), its banner printed as the command prints it.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from humanos_bridge_local.cli import build_parser, command_name
from humanos_bridge_local.commands.local import print_banner
from humanos_bridge_local.private_files import read_json
from humanos_bridge_local.stack import LocalStack, StackOptions
from tests.e2e.conftest import FAST


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


def test_show_secrets_prints_each_senders_secret(stack: LocalStack, capsys: pytest.CaptureFixture[str]) -> None:
    """--show-secrets: one line per sender with its secret, as a developer signing by hand needs."""
    out = banner(stack, capsys, show_secrets=True)
    assert "  sender secrets (local only, generated):\n" in out
    for key, secrets in stack.sender_secrets.items():
        assert f"    {key:<14} {secrets[0]}\n" in out


def test_the_state_file_holds_the_secrets_the_banner_points_to(stack: LocalStack) -> None:
    """The folder was created 0700 and the file is its owner's only: that is where the values are."""
    assert stack.state_file is not None
    assert stat.S_IMODE(stack.state_file.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(stack.state_file.stat().st_mode) == 0o600
    assert read_json(stack.state_file)["senders"] == stack.sender_secrets


@pytest.mark.parametrize(("argv", "shown"), [([], False), (["--show-secrets"], True)])
def test_show_secrets_is_an_option_of_local(argv: list[str], shown: bool, tmp_path: Path) -> None:
    args = build_parser().parse_args(["local", "--state-dir", str(tmp_path), *argv])
    assert args.show_secrets is shown
