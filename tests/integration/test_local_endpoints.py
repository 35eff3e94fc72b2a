"""The endpoints file a ``humanos-bridge local`` leaves: stale after a kill, never taken over by a second stack.

A stack's liveness is checked as the commands check it: its pid (a process that has exited) and its ingest
API (a real listening socket, or a port nothing listens on). Queues are moto's, over HTTP.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from humanos_bridge.core.errors import ConfigError
from humanos_bridge_local import endpoints
from humanos_bridge_local.cli import main
from humanos_bridge_local.commands.local import refuse_taken_port
from tests.conftest import EVENTS, REGION


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HUMANOS_BRIDGE_HOME for the test."""
    folder = tmp_path / "home"
    folder.mkdir(mode=0o700)
    monkeypatch.setenv(endpoints.HOME_ENV, str(folder))
    return folder


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something listens on, as a running stack's ingest API does."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def closed_port() -> int:
    """A port nothing listens on: bound for a moment, then released."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def exited_pid() -> int:
    """The pid of a process that has run and been reaped, as a killed stack's is."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait(timeout=30)
    return process.pid


def stack_file(home: Path, *, port: int, pid: int | None = None, name: str = "local.json", **extra: Any) -> Path:
    """An endpoints file as ``humanos-bridge local`` writes it (and its outcomes file), for a stack on ``port``."""
    moto = "http://127.0.0.1:1"
    data = {
        "pid": os.getpid() if pid is None else pid,
        "apiUrl": f"http://127.0.0.1:{port}",
        "awsEndpointUrl": moto,
        "region": REGION,
        "requestQueueUrl": f"{moto}/123456789012/humanos-bridge-local-RequestQueue",
        "deadLetterQueueUrl": f"{moto}/123456789012/humanos-bridge-local-DeadLetterQueue",
        **extra,
    }
    path = home / name
    endpoints.write_json(path, data)
    endpoints.write_json(endpoints.outcomes_path(path), [])
    return path


COMMANDS = [["status"], ["dlq", "list"], ["send", "crm", str(EVENTS / "business" / "crm-contact-created.json")]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_file_left_by_a_killed_stack_is_removed_and_named(
    command: list[str], home: Path, listening: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """kill -9 left local.json: each command says no stack is running, names the file, and removes it."""
    pid = exited_pid()
    path = stack_file(home, port=listening, pid=pid)

    assert main(command) == 2

    err = capsys.readouterr().err
    assert err.startswith(
        f"humanos-bridge: error: no local stack is running: {path} is stale (its process, pid {pid}, is not "
        "running: the stack was killed, crashed, or the machine restarted) and was removed; start `"
    )
    assert "Traceback" not in err
    assert not path.exists() and not (home / "outcomes.json").exists()
    assert main(command) == 2
    assert f"no local stack is running ({path} not found)" in capsys.readouterr().err


def test_a_file_whose_api_refuses_connections_is_stale_even_with_a_live_pid(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a reboot the recorded pid may belong to another process: nothing listening at the API settles it."""
    port = closed_port()
    path = stack_file(home, port=port)

    assert main(["status"]) == 2

    assert f"nothing listens at its ingest API http://127.0.0.1:{port}" in capsys.readouterr().err
    assert not path.exists()


def test_a_running_stacks_file_is_used_and_kept(
    home: Path, listening: int, moto: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs = moto.client("sqs")
    queue = sqs.create_queue(QueueName="requests")["QueueUrl"]
    dlq = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    path = stack_file(
        home, port=listening, awsEndpointUrl=moto.endpoint_url, requestQueueUrl=queue, deadLetterQueueUrl=dlq
    )

    assert main(["status"]) == 0

    assert capsys.readouterr().out.startswith(f"bridge: the local stack at http://127.0.0.1:{listening}\n")
    assert path.exists()


def test_a_stale_file_rewritten_since_is_left_to_its_new_stack(home: Path, listening: int) -> None:
    """Judged stale, then replaced by a stack starting meanwhile: removing it would orphan that stack."""
    path = stack_file(home, port=closed_port())
    judged = json.loads(path.read_text(encoding="utf-8"))
    stack_file(home, port=listening)

    assert endpoints.remove_stale(path, judged)

    assert json.loads(path.read_text(encoding="utf-8"))["apiUrl"] == f"http://127.0.0.1:{listening}"


def test_a_first_stack_writes_the_default_file(home: Path) -> None:
    assert endpoints.file_for_new_stack(8080) == (home / "local.json", None)


def test_a_second_stack_writes_its_own_file_beside_the_first(home: Path, listening: int) -> None:
    """The first stack keeps local.json, which the operator commands read by default."""
    first = stack_file(home, port=listening)
    before = first.read_bytes()

    path, note = endpoints.file_for_new_stack(41234)

    assert path == home / "local-41234.json"
    assert endpoints.outcomes_path(path) == home / "outcomes-41234.json"
    assert note == f"local.json stays with the stack already running (pid {os.getpid()}, http://127.0.0.1:{listening})"
    assert first.read_bytes() == before


def test_a_new_stack_replaces_a_stale_default_file(home: Path) -> None:
    pid = exited_pid()
    stack_file(home, port=closed_port(), pid=pid)

    path, note = endpoints.file_for_new_stack(8080)

    assert path == home / "local.json" and not path.exists()
    assert note == f"replaced a stale local.json (its process, pid {pid}, is not running)"


def test_a_port_held_by_a_running_stack_is_refused_naming_it(home: Path, listening: int) -> None:
    """`make run` twice: the second says which bridge holds the port, and how to start another next to it."""
    path = stack_file(home, port=listening)

    with pytest.raises(ConfigError) as refused:
        refuse_taken_port("127.0.0.1", listening)

    assert str(refused.value) == (
        f"port {listening} is held by the humanos-bridge local already running (pid {os.getpid()}, "
        f"http://127.0.0.1:{listening}, endpoints file {path}); use that one (send, dlq and status reach it), stop "
        "it, or to run a second stack next to it, choose another port: --port 0 for any free one (with make: make "
        'run ARGS="--port 0")'
    )


def test_a_port_held_by_another_program_is_refused_before_the_build(home: Path, listening: int) -> None:
    with pytest.raises(ConfigError) as refused:
        refuse_taken_port("127.0.0.1", listening)

    assert str(refused.value).startswith(f"cannot listen on 127.0.0.1:{listening}: another program holds it")
    assert 'make run ARGS="--port 0"' in str(refused.value)


@pytest.mark.parametrize("port", [0, "free"])
def test_a_free_port_is_not_refused(port: int | str, home: Path) -> None:
    refuse_taken_port("127.0.0.1", closed_port() if port == "free" else 0)


@pytest.mark.parametrize(
    ("name", "outcomes"),
    [("local.json", "outcomes.json"), ("local-8081.json", "outcomes-8081.json"), ("mine.json", "outcomes-mine.json")],
)
def test_each_endpoints_file_has_its_own_outcomes_file(name: str, outcomes: str) -> None:
    assert endpoints.outcomes_path(Path("/h") / name) == Path("/h") / outcomes
