"""The local stack, started once per test module on free ports, reached over real HTTP.

The stack is what ``humanos-bridge local`` runs: moto in server mode with the resources of
template.yaml and the Humanos sandbox in this process; the ingest function and the webhook receiver (behind
one local HTTP API, where the sandbox sends its webhooks) and the dispatcher (fed by its SQS poller) as
``sam build`` packages them, each in its own python3.13 processes under Lambda's runtime interface client.
Its endpoints file goes to a temporary HUMANOS_BRIDGE_HOME, where the operator commands
(``humanos_bridge_local.cli.main``) find it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from humanos_bridge_local.endpoints import HOME_ENV
from humanos_bridge_local.stack import LocalStack, StackOptions

#: Humanos's real limit (60/min) would make the tests wait for tokens; the sandbox has no limit.
FAST = {"RateLimitPerMinute": "6000"}


@pytest.fixture(scope="module")
def bridge_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private HUMANOS_BRIDGE_HOME, so the tests never touch ~/.humanos-bridge."""
    home = str(tmp_path_factory.mktemp("bridge-home"))
    saved = os.environ.get(HOME_ENV)
    os.environ[HOME_ENV] = home
    try:
        yield home
    finally:
        if saved is None:
            os.environ.pop(HOME_ENV, None)
        else:
            os.environ[HOME_ENV] = saved


@pytest.fixture(scope="module")
def stack(bridge_home: str) -> Iterator[LocalStack]:
    """The whole bridge on loopback, default mapping and template, started and always stopped."""
    with LocalStack(StackOptions(port=0, parameters=dict(FAST))) as running:
        yield running
