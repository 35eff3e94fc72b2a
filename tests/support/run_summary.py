"""Lines a test wants shown after the run, passed or not (the figures of a long check, like the exactly-once
model's examples and steps): pytest hides a passing test's output otherwise. tests/conftest.py prints them."""

from __future__ import annotations

LINES: list[str] = []
