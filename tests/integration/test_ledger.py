"""The ledger of attempts and claims, in a DynamoDB table on moto (server mode)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from humanos_bridge.ledger import Ledger


@pytest.fixture
def ledger(moto: Any) -> Ledger:
    dynamodb = moto.client("dynamodb")
    name = f"ledger-{threading.get_ident()}-{id(dynamodb)}"
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    now = iter(range(1_000, 2_000))
    return Ledger(dynamodb, name, ttl_seconds=60, clock=lambda: float(next(now)))


def test_first_attempt_is_new_and_later_ones_see_when_it_started(ledger: Ledger) -> None:
    assert ledger.record_attempt("crm:1:rule") is None
    assert ledger.record_attempt("crm:1:rule") == 1_000_000
    assert ledger.record_attempt("crm:1:rule") == 1_000_000
    assert ledger.record_attempt("hr:1:rule") is None


def test_a_request_is_claimed_by_one_event_only(ledger: Ledger) -> None:
    assert ledger.owned_by("req-1", "crm:1:rule") is None
    assert ledger.claim("req-1", "crm:1:rule")
    assert ledger.claim("req-1", "crm:1:rule")  # the owner claiming again is fine
    assert not ledger.claim("req-1", "hr:1:rule")
    assert ledger.owned_by("req-1", "crm:1:rule") is True
    assert ledger.owned_by("req-1", "hr:1:rule") is False


def test_racing_claims_leave_exactly_one_owner(ledger: Ledger) -> None:
    """Eight events claim one request at once: one wins, the others are told it is taken."""
    results: dict[str, bool] = {}
    gate = threading.Barrier(8)

    def claim(key: str) -> None:
        gate.wait()
        results[key] = ledger.claim("req-race", key)

    threads = [threading.Thread(target=claim, args=(f"src:{n}:rule",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    winners = [key for key, won in results.items() if won]
    assert len(winners) == 1
    assert ledger.owned_by("req-race", winners[0]) is True


def test_items_expire_with_the_idempotency_records_and_hold_no_raw_key(ledger: Ledger, moto: Any) -> None:
    """A custom key may quote event data (an e-mail): the table holds its hash, and a TTL."""
    ledger.record_attempt("crm:ana@example.com:rule")
    ledger.claim("req-2", "crm:ana@example.com:rule")
    items = moto.client("dynamodb").scan(TableName=ledger.table)["Items"]
    assert len(items) == 2
    assert "ana@example.com" not in str(items)
    assert sorted(int(item["expiration"]["N"]) for item in items) == [1_000 + 60, 1_001 + 60]  # clock ticks per call
