"""Fixtures for integration tests: the Humanos sandbox over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from humanos_bridge_local.sandbox import Sandbox

SANDBOX_API_KEY = "test-api-key"
SANDBOX_SIGNATURE_SECRET = "test-signature-secret"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A fresh Humanos sandbox per test, with fixed credentials, started and always stopped."""
    with Sandbox(api_key=SANDBOX_API_KEY, signature_secret=SANDBOX_SIGNATURE_SECRET) as server:
        yield server
