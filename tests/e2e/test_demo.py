"""`humanos-bridge demo` on the repository's own template, mapping and sample events."""

from __future__ import annotations

import pytest

from humanos_bridge_local.cli import main


@pytest.mark.timeout(120)
def test_demo_exits_zero_when_every_outcome_is_expected(capsys: pytest.CaptureFixture[str]) -> None:
    """Every step of events/demo.json has its declared outcome, so the demo exits 0 and says so."""
    assert main(["demo", "--parameter", "RateLimitPerMinute=6000"]) == 0

    out = capsys.readouterr().out
    assert "OK: all 16 steps had the expected outcome, through the functions as sam build packages them" in out
    assert "functions: packaged by sam build (.aws-sam/local/" in out
    assert "  in the DLQ    1\n" in out
    assert "ana@example.com" not in out
