"""``humanos-bridge sandbox`` as a user runs it: a process that serves signed calls until Ctrl-C, and
``humanos-bridge sandbox requests``, which lists what it stores with contacts masked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
import urllib3

from humanos_bridge.core import signing, wire

BIN = Path(sys.executable).parent / "humanos-bridge"
BODY = {"contacts": ["+351912345678"], "groupIds": ["grp_1"], "internalId": "evt-cli"}
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
PINNED = ["--api-version", "2026-05-17"]


class Running(NamedTuple):
    process: subprocess.Popen[str]
    base_url: str
    banner: list[str]


@pytest.fixture
def running() -> Iterator[Running]:
    """``humanos-bridge sandbox`` on a free port with known credentials, its key pinned to 2026-05-17."""
    process = subprocess.Popen(
        [BIN, "sandbox", "--port", "0", "--api-key", "cli-key", "--signature-secret", "cli-secret", *PINNED],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
    )
    try:
        assert process.stdout is not None
        banner = [process.stdout.readline() for _ in range(4)]
        assert banner[0].startswith("Humanos sandbox listening on http://127.0.0.1:")
        yield Running(process, banner[0].rsplit(" ", 1)[1].strip(), banner)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def create(base_url: str, body: dict[str, object]) -> int:
    """A signed POST /request without API-Version: the key's pinned version decides the body's shape."""
    data = wire.dump_bytes(body)
    headers = signing.signed_headers("cli-key", "cli-secret", data)
    return urllib3.request("POST", f"{base_url}/request", body=data, headers=headers, timeout=5).status


def test_the_sandbox_command_serves_signed_calls_and_stops_on_ctrl_c(running: Running) -> None:
    assert running.banner[3].startswith("API version:      2026-05-17 (pinned to the key")
    assert create(running.base_url, BODY) == 201
    running.process.send_signal(signal.SIGINT)
    rest = running.process.communicate(timeout=10)[0]
    assert running.process.returncode == 0
    assert "POST /request 201" in rest and rest.rstrip().endswith("Humanos sandbox stopped.")
    assert "+351912345678" not in rest


def test_sandbox_requests_lists_what_the_sandbox_stores_with_contacts_masked(running: Running) -> None:
    """Two requests stored; ``--internal-id`` shows the one the bridge's look-up would find, contact masked."""
    assert create(running.base_url, BODY) == 201
    assert create(running.base_url, {**BODY, "contacts": ["ana@example.com"], "internalId": "evt-other"}) == 201
    credentials = ["--url", running.base_url, "--api-key", "cli-key", "--signature-secret", "cli-secret"]

    every = subprocess.run([BIN, "sandbox", "requests", *credentials], capture_output=True, text=True, env=ENV)
    one = subprocess.run(
        [BIN, "sandbox", "requests", "--internal-id", "evt-cli", *credentials], capture_output=True, text=True, env=ENV
    )

    assert (every.returncode, one.returncode) == (0, 0)
    assert every.stdout.startswith(f"2 request(s) stored by the Humanos sandbox at {running.base_url}\n")
    assert "internalId evt-other" in every.stdout and "a***@e***.com" in every.stdout
    lines = one.stdout.splitlines()
    assert lines[0] == f"1 request(s) with internalId evt-cli stored by the Humanos sandbox at {running.base_url}"
    assert " open " in lines[1] and "internalId evt-cli  CONTACT" in lines[1]
    assert lines[2].strip() == "name: -  subjects: +35********78  credentials: Group grp_1"
    assert "+351912345678" not in every.stdout + one.stdout and "ana@example.com" not in every.stdout


def test_sandbox_requests_with_a_wrong_secret_says_so(running: Running) -> None:
    """The listing is signed like any call: a wrong secret is Humanos's 401, reported without the secret."""
    wrong = ["--url", running.base_url, "--api-key", "cli-key", "--signature-secret", "not-the-secret"]
    result = subprocess.run([BIN, "sandbox", "requests", *wrong], capture_output=True, text=True, env=ENV)
    assert result.returncode == 2
    assert "401" in result.stderr and "not-the-secret" not in result.stderr
