"""The functions' log: every line is ASCII JSON, whatever a logged value holds."""

from __future__ import annotations

import io
import json

from humanos_bridge.logs import bridge_logger, log_json


def test_a_lone_surrogate_is_written_as_a_json_escape() -> None:
    """Powertools' own serializer keeps it raw (ensure_ascii=False), and no encoding can write it."""
    line = log_json({"message": "event accepted", "reason": "body.\ud800: café \u2028 \x1b[2K"})
    assert line == '{"message":"event accepted","reason":"body.\\ud800: caf\\u00e9 \\u2028 \\u001b[2K"}'
    assert json.loads(line)["reason"] == "body.\ud800: café \u2028 \x1b[2K"


def test_values_json_has_no_type_for_are_written_as_str_writes_them() -> None:
    assert log_json({"at": {1, 2} - {2}}) == '{"at":"{1}"}'


def test_a_bridge_logger_writes_an_entry_with_a_lone_surrogate_to_a_utf8_stream() -> None:
    """What Lambda's stdout is: UTF-8, strict. The entry is written, as one line, not lost."""
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)
    logger = bridge_logger(service="unit-test-logs", stream=stream)
    logger.info("event accepted", extra={"eventId": "evt_\ud800_x"})
    lines = raw.getvalue().decode("ascii").splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert (entry["message"], entry["eventId"]) == ("event accepted", "evt_\ud800_x")
