"""`humanos-bridge demo` on the repository's own template, mapping and sample events."""

from __future__ import annotations

import pytest

from humanos_bridge_local.cli import main


@pytest.mark.timeout(120)
def test_demo_exits_zero_when_every_outcome_is_expected(capsys: pytest.CaptureFixture[str]) -> None:
    """Every step of events/demo.json has its declared outcome, and the bus holds exactly the events its webhooks
    should have published, so the demo exits 0 and says so."""
    assert main(["demo", "--parameter", "RateLimitPerMinute=6000"]) == 0

    out = capsys.readouterr().out
    assert "OK: all 21 steps had the expected outcome, through the functions as sam build packages them" in out
    assert "functions: packaged by sam build (.aws-sam/local/" in out
    # Humanos refused one event; the mapping refused a Shopify order, which the dispatcher parked (not a 422: Shopify
    # would retry it and then delete its subscription).
    assert "  in the DLQ    2\n" in out
    assert "  Shopify order, no e-mail or phone (unmappable)      202  accepted       parked      ok" in out
    # The way back: an accepted and a rejected request on the bus, and nothing more (the tampered copy and the
    # replay published nothing).
    assert "  on the bus    2 events (payloads not shown)\n" in out
    assert "  a copy of its webhook, signature broken             401  unauthorized" in out
    assert "  Humanos retries the accepted webhook                200  replayed" in out
    assert "ana@example.com" not in out
