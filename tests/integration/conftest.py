"""Fixtures for integration tests: the Humanos sandbox over real HTTP, and a fresh DynamoDB table on moto."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from humanos_bridge_local.sandbox import Sandbox

SANDBOX_API_KEY = "test-api-key"
SANDBOX_SIGNATURE_SECRET = "test-signature-secret"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A fresh Humanos sandbox per test, with fixed credentials, started and always stopped."""
    with Sandbox(api_key=SANDBOX_API_KEY, signature_secret=SANDBOX_SIGNATURE_SECRET) as server:
        yield server


@pytest.fixture
def table(moto: Any) -> str:
    """A new table shaped like the idempotency table (hash key ``id``) on the shared moto server."""
    dynamodb = moto.client("dynamodb")
    name = f"table-{threading.get_ident()}-{id(dynamodb)}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name
