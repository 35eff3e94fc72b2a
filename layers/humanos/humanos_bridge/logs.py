"""The functions' structured log: one Logger configuration, so that every line is ASCII JSON.

Powertools writes its JSON with ``ensure_ascii=False``. A lone surrogate in any logged value (JSON
carries ``"\\ud800"`` in an event id as readily as any other character) cannot then be encoded for
stdout: the line is lost, with the outcome it reported. Escaping everything outside ASCII makes each
line valid JSON in any encoding, one physical line even for U+2028; CloudWatch Logs decodes the escapes.
Identifier fields are in their safe form already (``masking.safe_id``); this is for every other value.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger

# Built once: json.dumps with any option builds a new encoder per call, ~1.5 µs of every log line. The same
# options as json.dumps would pass, so the same text (circular values still refused, not looped on).
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"), ensure_ascii=True)


def log_json(entry: dict[str, Any]) -> str:
    """One log entry as a line of ASCII JSON; values JSON has no type for are written as ``str`` does."""
    return _ENCODER.encode(entry)


def bridge_logger(**options: Any) -> Logger:
    """A Powertools Logger that writes ``log_json`` lines; ``options`` as for ``Logger``.

    Build a function's logger with it before any other Logger of its service: Powertools configures
    a service's handler and formatter once, for the first Logger built.
    """
    return Logger(json_serializer=log_json, **options)
