"""The local flow table: one row per event and step, whatever the event's identifiers hold.

A row is built from a function's log line. Its values are shown in their safe form: a sender's event
type cannot add a fake row, an id cannot colour or clear the terminal, and a huge id stays a column.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from humanos_bridge_local.flow import (
    HEADER,
    MAX_SOURCE_WIDTH,
    SOURCE_WIDTH,
    FlowEvent,
    FlowRecorder,
    flow_event,
    format_event,
    header,
    source_width,
)

FAKE_ROW = "contact.created\n00:00:00.000  dispatch  crm     contact.created     evt_fake  created"


def ingest_line(**fields: Any) -> str:
    """An ``event ...`` entry of the ingest function, as a function of any version might write it."""
    entry = {
        "level": "WARNING",
        "message": "event rejected",
        "route": "events",
        "outcome": "rejected",
        "source": "crm",
        "eventType": "contact.created",
        "eventId": "evt_crm_0001",
        "status": 422,
        "cause": "invalid_body",
        "reason": "body.contacts[0]: not an e-mail address",
        "latencyMs": 3.2,
    }
    entry.update(fields)
    return json.dumps(entry)


def shown_rows(*lines: str) -> tuple[list[str], list[FlowEvent]]:
    printed: list[str] = []
    recorder = FlowRecorder(on_event=lambda event: printed.append(format_event(event)), on_other=printed.append)
    for line in lines:
        recorder.feed("IngestFunction", line)
    return printed, recorder.events


def assert_one_harmless_line(text: str) -> None:
    assert "\n" not in text and "\r" not in text
    assert text.isprintable(), text


def test_a_hostile_event_type_id_and_reason_stay_in_their_row() -> None:
    """Finding 5: a newline and a fake row in the type, ANSI escapes in the id and in the reason's quoted key."""
    printed, events = shown_rows(
        ingest_line(
            eventType=FAKE_ROW,
            eventId="\x1b[31mevt_red\x1b[0m",
            reason='body.data.total["\n\x1b[2Kfake"]: NaN and Infinity are not JSON',
        )
    )
    (row,) = printed
    assert_one_harmless_line(row)
    assert "\\x1b[31mevt_red" in row  # the escape is visible, not obeyed
    assert row.endswith('invalid_body: body.data.total["\\n\\x1b[2Kfake"]: NaN and Infinity are not JSON')
    # Kept (and written to outcomes.json) in the same safe form.
    assert events[0].event_type == FAKE_ROW.replace("\n", "\\n")
    assert events[0].event_id == "\\x1b[31mevt_red\\x1b[0m"


def test_contacts_and_huge_ids_are_masked_and_bounded_in_what_is_kept() -> None:
    _, (by_mail, huge) = shown_rows(
        ingest_line(eventId="ana.silva@example.com"), ingest_line(eventId="evt_" + "9" * 200_000)
    )
    assert by_mail.event_id == "a***@e***.com"
    assert huge.event_id is not None and len(huge.event_id) <= 128
    assert huge.event_id.endswith("chars)")


def test_a_row_read_back_from_an_edited_outcomes_file_is_shown_safely() -> None:
    """``status`` prints the recent outcomes from ``outcomes.json``, a file anyone may have edited."""
    edited = FlowEvent(
        at=0.0,
        stage="dispatch",
        outcome="created\x1b[2J",
        source="crm\r",
        event_type=FAKE_ROW,
        event_id="evt_\ud800_x",
        request_id="req\x1b]0;title\x07",
        code="humanos_rejected\n",
        reason="\x1b[31m" + "x" * 5000,
    )
    row = format_event(edited)
    assert_one_harmless_line(row)
    assert len(row) < 1200
    row.encode("utf-8")  # no lone surrogate left to fail the terminal's encoder


def test_other_lines_keep_their_tabs_and_show_each_traceback_frame_on_its_own_line() -> None:
    printed, _ = shown_rows(
        "INIT_REPORT Init Duration: 812.40 ms\tPhase: init\tStatus: error",
        "[ERROR] KeyError: '\x1b[2Kkey'\rTraceback (most recent call last):\r  File \"/var/task/app.py\", line 7",
    )
    assert printed[0] == "IngestFunction: INIT_REPORT Init Duration: 812.40 ms\tPhase: init\tStatus: error"
    assert printed[1].split("\n") == [
        "IngestFunction: [ERROR] KeyError: '\\x1b[2Kkey'",
        "    Traceback (most recent call last):",
        '      File "/var/task/app.py", line 7',
    ]


def test_a_rejected_line_shows_the_event_id_and_type_its_entry_names() -> None:
    """Whatever the ingest function knew of a rejected event is in its row, next to the status and reason."""
    printed, _ = shown_rows(ingest_line(eventId="evt_crm_0042", eventType="contact.created"))

    (row,) = printed
    assert row.split()[1:7] == ["ingest", "crm", "contact.created", "evt_crm_0042", "rejected", "422"]


def test_a_for_each_dispatch_counts_its_requests_where_one_request_id_goes() -> None:
    """A HubSpot batch made three requests: its row says so rather than ``-``."""
    entry = {
        "level": "INFO",
        "message": "event created",
        "outcome": "created",
        "source": "hubspot",
        "eventType": "batch",
        "eventId": "evt_batch_1",
        "requestIds": ["req_1", "req_2", "req_3"],
        "requests": 3,
        "requestsCreated": 3,
    }
    recorder = FlowRecorder(on_event=lambda event: None, on_other=lambda text: None)
    recorder.feed("DispatcherFunction", json.dumps(entry))

    (event,) = recorder.events
    assert event.requests == 3 and event.request_id is None
    assert format_event(event).split()[2:7] == ["hubspot", "batch", "evt_batch_1", "created", "3"]


def test_the_source_column_fits_the_longest_source_name() -> None:
    """A mapping with a ``billing`` source: its rows and header show the whole name, aligned."""
    width = source_width(["crm", "billing"])
    event = flow_event(json.loads(ingest_line(source="billing")), {}, now=0.0)
    assert event is not None

    row, titles = format_event(event, source_width=width), header(source_width=width)

    assert row.split()[2] == "billing"
    assert row.index("contact.created") == titles.index("type")


@pytest.mark.parametrize(
    ("names", "width"),
    [([], SOURCE_WIDTH), (["crm", "hr"], SOURCE_WIDTH), (["typeform-consent"], 16), (["s" * 64], MAX_SOURCE_WIDTH)],
)
def test_the_source_column_stays_within_its_bounds(names: list[str], width: int) -> None:
    assert source_width(names) == width


def test_the_default_header_matches_the_default_rows() -> None:
    """``demo`` prints HEADER above rows formatted with the default width."""
    event = flow_event(json.loads(ingest_line()), {}, now=0.0)
    assert event is not None
    assert format_event(event).index("contact.created") == HEADER.index("type")


def test_powertools_no_metrics_warning_is_left_out_of_the_table() -> None:
    """What Python prints for Powertools' warning, two lines, never reaches the developer; other output does."""
    printed, _ = shown_rows(
        "/opt/python/aws_lambda_powertools/metrics/provider/cloudwatch_emf/cloudwatch.py:474: UserWarning: No "
        "application metrics to publish. The cold-start metric may be published if enabled. If application "
        "metrics should never be empty, consider using 'raise_on_empty_metrics'",
        "  warnings.warn(",
        "  an indented line that follows no warning",
    )

    assert printed == ["IngestFunction:   an indented line that follows no warning"]
