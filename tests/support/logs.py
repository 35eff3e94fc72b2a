"""The lines a function's Logger writes, as Lambda's stdout receives them, and the checks every one must pass.

``written_lines`` adds a handler beside the function's own: each entry is formatted by the Logger's own
formatter (with the keys of that moment, so per invocation) and encoded as the runtime encodes stdout,
UTF-8 and strict. An entry that cannot be written raises at the logging call, where the function's own
handler would have lost it silently.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator

from aws_lambda_powertools import Logger

#: An e-mail address as ``masking`` finds one; a masked one (``a***@e***.com``) does not match.
UNMASKED_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
#: Longest line an entry may take: its identifiers and reason are bounded (each character at most 12 ASCII
#: characters once escaped), so a line never grows with what the sender sent.
MAX_LINE_CHARS = 16_384


class _Lines(logging.Handler):
    def __init__(self, logger: Logger) -> None:
        super().__init__()
        self.setFormatter(logger.registered_formatter)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        line.encode("utf-8")  # what the runtime does with stdout: a lone surrogate raises here
        self.lines.append(line)


@contextlib.contextmanager
def written_lines(logger: Logger) -> Iterator[list[str]]:
    """Every line ``logger`` (and its child loggers) writes while the block runs."""
    handler = _Lines(logger)
    underlying = logging.getLogger(logger.name)
    underlying.addHandler(handler)
    try:
        yield handler.lines
    finally:
        underlying.removeHandler(handler)


def check_lines(lines: list[str]) -> list[dict[str, object]]:
    """Assert that each line is ASCII JSON of bounded length with no unmasked e-mail; return the entries."""
    entries = []
    for line in lines:
        assert line.isascii(), line[:200]
        assert len(line) <= MAX_LINE_CHARS, f"{len(line)} characters: {line[:200]}"
        assert not UNMASKED_EMAIL.search(line), line[:200]
        entry = json.loads(line)
        assert isinstance(entry, dict)
        entries.append(entry)
    return entries
