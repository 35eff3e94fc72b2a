"""What a new user reads first: ``--help`` with its defaults, and the commands the CLI prints, runnable as printed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from humanos_bridge_local.cli import build_parser, command_name


def help_of(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    # argparse wraps to the terminal's width: one line per option makes the assertions about words.
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["status"], "--recent N recent outcomes to show (local stack; default: 10)"),
        (["demo"], "--timeout TIMEOUT seconds to wait for the queue to drain (default: 30.0)"),
        (["sandbox"], "--rate-limit N request creations admitted per minute (default: no limit)"),
        (["sandbox"], "--port PORT port to listen on, 0 for any free one (default: 8081)"),
        (["local"], "--port PORT HTTP port, 0 = any free one (default: 8080)"),
    ],
)
def test_help_states_each_default(command: list[str], shown: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert shown in help_of(capsys, *command)


def test_the_sandbox_and_the_local_stack_default_to_different_ports() -> None:
    """Run side by side, as the README suggests, they must not fight over one port."""
    parser = build_parser()
    assert parser.parse_args(["sandbox"]).port != parser.parse_args(["local"]).port


def test_send_help_says_what_the_queue_url_is_for(capsys: pytest.CaptureFixture[str]) -> None:
    """``send`` puts an event on the request queue only with --via; it has no use for a dead-letter queue."""
    text = help_of(capsys, "send")

    assert "--queue-url QUEUE_URL with --via sqs|eventbridge|sns: the request queue to put the event on" in text
    assert "it is put on the bridge's request queue (the local stack's, --stack's, or --queue-url)" in text
    assert "--dlq-url" not in text


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_script_run_from_the_repository_venv_is_named_by_its_path(tmp_path: Path) -> None:
    """``make run`` runs ``.venv/bin/humanos-bridge``: a bare ``humanos-bridge`` would be "command not found"."""
    executable(tmp_path / ".venv" / "bin" / "humanos-bridge")

    name = command_name(".venv/bin/humanos-bridge", search_path="/nonexistent", cwd=tmp_path)

    assert name == ".venv/bin/humanos-bridge"


def test_a_script_the_path_finds_is_named_by_its_name(tmp_path: Path) -> None:
    script = executable(tmp_path / "bin" / "humanos-bridge")

    assert command_name(str(script), search_path=str(script.parent), cwd=tmp_path) == "humanos-bridge"


def test_another_humanos_bridge_on_the_path_does_not_stand_for_this_one(tmp_path: Path) -> None:
    """An older install first on PATH would run other code: this one is named by its path."""
    script = executable(tmp_path / "repo" / ".venv" / "bin" / "humanos-bridge")
    other = executable(tmp_path / "elsewhere" / "humanos-bridge")

    name = command_name(str(script), search_path=str(other.parent), cwd=tmp_path / "somewhere-else")

    assert name == str(script)


def test_a_path_with_spaces_is_quoted_for_the_shell(tmp_path: Path) -> None:
    script = executable(tmp_path / "my repo" / "humanos-bridge")

    assert command_name(str(script), search_path="/nonexistent", cwd=tmp_path / "elsewhere") == f"'{script}'"


def test_run_as_a_module_the_name_is_this_interpreters_script(tmp_path: Path) -> None:
    """``python -m humanos_bridge_local.cli`` (and the tests): the console script installed next to Python."""
    name = command_name("/any/where/cli.py", search_path="/nonexistent", cwd=tmp_path)

    assert name.endswith("bin/humanos-bridge")
    assert os.access(name, os.X_OK)
