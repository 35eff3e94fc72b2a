"""Fixtures shared by every suite: real local services, started once, always stopped.

moto runs in server mode on a free loopback port and is reached by real boto3 clients over HTTP.
Nothing here patches boto3 or urllib3.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import boto3
import pytest

from humanos_bridge_local.moto_server import MotoServer

# Powertools reads these when a handler module builds its Logger and Metrics at import, as in Lambda,
# where the template sets them. Set before any test module imports a function.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "humanos-bridge")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "HumanosBridge")

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
REGION = "eu-west-1"


def load_event(name: str) -> Any:
    """Load a sample event from ``events/`` by file name (with or without ``.json``)."""
    path = EVENTS / (name if name.endswith(".json") else f"{name}.json")
    return json.loads(path.read_text(encoding="utf-8"))


class Moto(NamedTuple):
    endpoint_url: str
    session: boto3.session.Session

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    def resource(self, service: str) -> Any:
        return self.session.resource(service, endpoint_url=self.endpoint_url)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Moto]:
    """A moto server (SQS, Secrets Manager, DynamoDB, ...) on a free loopback port."""
    # Fake credentials so that no real account is ever reachable from the tests.
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        os.environ[key] = value
    # In its own process: moto then has a core of its own instead of sharing the tests' interpreter lock.
    server = MotoServer(own_process=True).start()
    try:
        session = boto3.session.Session(region_name=REGION)
        yield Moto(server.endpoint_url, session)
    finally:
        server.stop()


@pytest.fixture
def moto(moto_server: Moto) -> Iterator[Moto]:
    """The moto server, reset after the test so that each test starts from an empty account."""
    yield moto_server
    import urllib3

    urllib3.PoolManager().request("POST", f"{moto_server.endpoint_url}/moto-api/reset")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """What tests asked to show after the run (``tests.support.run_summary``)."""
    from tests.support import run_summary

    for line in run_summary.LINES:
        terminalreporter.write_line(line)
