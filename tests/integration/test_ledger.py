"""The ledger of attempts and claims, in a DynamoDB table on moto (server mode)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from humanos_bridge.core.errors import MappingError
from humanos_bridge.core.ledger import PRUNE_USES_ABOVE, Ledger, Use, digest


@pytest.fixture
def ledger(moto: Any, table: str) -> Ledger:
    now = iter(range(1_000, 2_000))
    return Ledger(moto.client("dynamodb"), table, ttl_seconds=60, clock=lambda: float(next(now)))


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
    """A custom key or internalId may quote event data (an e-mail): the table holds hashes, and a TTL."""
    ledger.record_attempt("crm:ana@example.com:rule")
    ledger.claim("req-2", "crm:ana@example.com:rule")
    ledger.record_use("contact-ana@example.com", "crm:ana@example.com:rule", shows="s", body="b")
    items = moto.client("dynamodb").scan(TableName=ledger.table)["Items"]
    assert len(items) == 3
    assert "ana@example.com" not in str(items)
    # The clock ticks once per call.
    assert sorted(int(item["expiration"]["N"]) for item in items) == [1_000 + 60, 1_001 + 60, 1_002 + 60]


def test_each_event_s_latest_use_of_a_shared_internal_id_is_kept_with_its_content(ledger: Ledger) -> None:
    """Each event's latest attempt with a shared internalId is kept, with hashes of what its body shows."""
    ledger.record_use("employee-42", "hr:1:welcome", shows="s-ana", body="b-welcome")  # at 1,000 s
    ledger.record_use("employee-42", "lms:7:enrolment", shows="s-ana", body="b-course")  # at 1,001 s
    ledger.record_use("employee-42", "hr:1:welcome", shows="s-ana", body="b-welcome")  # at 1,002 s

    assert ledger.uses("employee-42") == {
        digest("hr:1:welcome"): Use(1_002_000, "s-ana", "b-welcome"),
        digest("lms:7:enrolment"): Use(1_001_000, "s-ana", "b-course"),
    }
    assert ledger.uses("employee-7") == {}


def test_uses_older_than_the_ttl_are_pruned_once_the_item_grows(moto: Any, ledger: Ledger) -> None:
    """Without pruning, the item of a busy internalId would grow towards DynamoDB's 400 KB item limit."""
    clock = iter([1_000.0] * PRUNE_USES_ABOVE + [1_000.0 + 61])
    pruning = Ledger(moto.client("dynamodb"), ledger.table, ttl_seconds=60, clock=lambda: next(clock))
    for n in range(PRUNE_USES_ABOVE):
        pruning.record_use("account-1", f"shop:{n}:receipt", shows="s", body="b")  # all at 1,000 s
    pruning.record_use("account-1", "shop:new:receipt", shows="s", body="b")  # at 1,061 s: the others are stale

    assert list(pruning.uses("account-1")) == [digest("shop:new:receipt")]


def test_a_uses_item_at_dynamodb_s_size_limit_says_how_to_fix_the_mapping(moto: Any, ledger: Ledger) -> None:
    """DynamoDB refuses to grow an item past 400 KB: the attempt fails with a reason a human can act on."""
    busy = Ledger(moto.client("dynamodb"), ledger.table, ttl_seconds=60)
    busy.record_use("account-1", "shop:1:receipt", shows="s", body="b")
    [item] = moto.client("dynamodb").scan(TableName=ledger.table)["Items"]
    # The uses of thousands of events, as one attribute of about the same size (moto allows 405,000 bytes).
    moto.client("dynamodb").put_item(TableName=ledger.table, Item={**item, "filler": {"S": "x" * 404_600}})

    with pytest.raises(MappingError, match="too many events share one custom internalId"):
        for n in range(2, 12):  # a few more events fill it
            busy.record_use("account-1", f"shop:{n}:receipt", shows="s", body="b")
