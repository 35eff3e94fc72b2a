"""``humanos-bridge local`` as a new user runs it, in its own process: twice, side by side, and killed.

Each stack is the console script a fresh clone has (``.venv/bin/humanos-bridge local --port 0``), run from the
repository with a private HUMANOS_BRIDGE_HOME; the operator commands run the same way, as separate processes.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from humanos_bridge_local.endpoints import HOME_ENV, read_local_endpoints
from humanos_bridge_local.stack import ROOT

BIN = Path(sys.executable).parent / "humanos-bridge"
#: What the banner's last line starts with: the flow table's header.
TABLE_HEADER = "time "


class Running(NamedTuple):
    process: subprocess.Popen[str]
    banner: list[str]
    home: Path

    def line(self, prefix: str, *, then: int = 0) -> str:
        """The banner line starting with ``prefix`` without it (``then``: the one that many lines below, whole)."""
        [at] = [index for index, line in enumerate(self.banner) if line.startswith(prefix)]
        return self.banner[at + then].strip() if then else self.banner[at][len(prefix) :].strip()

    @property
    def api_url(self) -> str:
        return self.line("  ingest API").split()[0]

    @property
    def endpoints_file(self) -> Path:
        return Path(self.line("  endpoints file").split()[0])


def environment(home: Path) -> dict[str, str]:
    return {**os.environ, HOME_ENV: str(home), "PYTHONUNBUFFERED": "1"}


def start_local(home: Path, *arguments: str) -> Running:
    """Start ``humanos-bridge local`` and read its banner up to the flow table's header."""
    process = subprocess.Popen(
        [str(BIN), "local", *arguments],
        cwd=ROOT,
        env=environment(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    banner: list[str] = []
    while not banner or not banner[-1].startswith(TABLE_HEADER):
        line = process.stdout.readline()
        if not line:
            process.wait(timeout=30)
            pytest.fail("humanos-bridge local stopped before it was ready:\n" + "".join(banner))
        banner.append(line.rstrip("\n"))
    return Running(process, banner, home)


def stop(running: Running) -> int:
    """SIGTERM, as a service manager stops it; its exit code."""
    if running.process.poll() is None:
        running.process.send_signal(signal.SIGTERM)
    running.process.communicate(timeout=60)
    return running.process.returncode


def run_cli(home: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *arguments], cwd=ROOT, env=environment(home), capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The stack `make run` would start, on a free port."""
    running = start_local(tmp_path_factory.mktemp("home"), "--port", "0")
    try:
        yield running
    finally:
        stop(running)


def test_the_printed_send_command_runs_as_printed(first: Running) -> None:
    """No "command not found": the banner names the CLI by the path it was run with."""
    command = first.line("or:")
    assert command.startswith(".venv/bin/humanos-bridge send crm events/business/crm-contact-created.json")

    done = subprocess.run(
        shlex.split(command), cwd=ROOT, env=environment(first.home), capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"POST {first.api_url}/events/crm (humanos-hmac) -> 202\n")


def test_a_second_start_on_the_same_port_names_the_running_bridge(first: Running) -> None:
    """`make run` twice: refused at once (no build), saying which bridge holds the port and how to run another."""
    port = first.api_url.rsplit(":", 1)[1]

    done = run_cli(first.home, "local", "--port", port)

    assert done.returncode == 2
    assert done.stdout == ""  # not even "starting the local bridge"
    assert done.stderr == (
        f"humanos-bridge: error: port {port} is held by the humanos-bridge local already running "
        f"(pid {first.process.pid}, {first.api_url}, endpoints file {first.home / 'local.json'}); use that one "
        "(send, dlq and status reach it), stop it, or to run a second stack next to it, choose another port: "
        '--port 0 for any free one (with make: make run ARGS="--port 0")\n'
    )


def test_a_second_stack_keeps_to_its_own_file_and_leaves_the_first_ones(first: Running) -> None:
    """`local --port 0` next to a running stack: it writes local-<port>.json, and stopping it orphans nothing."""
    first_file = first.home / "local.json"
    before = first_file.read_bytes()
    second = start_local(first.home, "--port", "0")
    try:
        own = first.home / f"local-{second.api_url.rsplit(':', 1)[1]}.json"
        assert second.endpoints_file == own
        assert second.line("  endpoints file", then=1) == (
            f"local.json stays with the stack already running (pid {first.process.pid}, {first.api_url})"
        )
        assert second.line("or:").endswith(f" --endpoints {own}")

        reached = run_cli(first.home, "status", "--endpoints", str(own)).stdout
        assert reached.startswith(f"bridge: the local stack at {second.api_url}\n")
        assert run_cli(first.home, "status").stdout.startswith(f"bridge: the local stack at {first.api_url}\n")
    finally:
        assert stop(second) == 0

    assert not own.exists() and not (first.home / own.name.replace("local", "outcomes")).exists()
    assert first_file.read_bytes() == before
    assert read_local_endpoints(first_file)["apiUrl"] == first.api_url
    assert run_cli(first.home, "status").returncode == 0


def test_a_killed_stack_leaves_a_file_the_commands_call_stale(tmp_path: Path) -> None:
    """kill -9: the next command names the stale file and removes it, instead of a 91-line traceback."""
    running = start_local(tmp_path, "--port", "0")
    path = running.endpoints_file
    running.process.kill()
    running.process.communicate(timeout=60)
    assert path.exists()

    done = run_cli(tmp_path, "dlq", "list")

    assert done.returncode == 2
    assert done.stderr.startswith(
        f"humanos-bridge: error: no local stack is running: {path} is stale (its process, pid "
        f"{running.process.pid}, is not running: the stack was killed, crashed, or the machine restarted) and was "
        "removed; start `.venv/bin/humanos-bridge local` (or `make run`)"
    )
    assert not path.exists()
    assert f"no local stack is running ({path} not found)" in run_cli(tmp_path, "status").stderr
