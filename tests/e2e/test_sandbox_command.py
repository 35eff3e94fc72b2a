"""``humanos-bridge sandbox`` as a user runs it: a process that serves signed calls until Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import urllib3

from humanos_bridge import signing, wire

BIN = Path(sys.executable).parent / "humanos-bridge"
BODY = {"contacts": ["+351912345678"], "groupIds": ["grp_1"], "internalId": "evt-cli"}


def test_the_sandbox_command_serves_signed_calls_and_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [str(BIN), "sandbox", "--port", "0", "--api-key", "cli-key", "--signature-secret", "cli-secret"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Humanos sandbox listening on http://127.0.0.1:")
        base_url = first.rsplit(" ", 1)[1].strip()
        body = wire.dump_bytes(BODY)
        headers = {**signing.signed_headers("cli-key", "cli-secret", body), "API-Version": "2026-05-17"}
        answer = urllib3.request("POST", f"{base_url}/request", body=body, headers=headers, timeout=5)
        assert answer.status == 201
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=10)[0]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "POST /request 201" in rest and rest.rstrip().endswith("Humanos sandbox stopped.")
    assert "+351912345678" not in rest
