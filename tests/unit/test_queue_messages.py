"""Reading Lambda's SQS records, and refusing anything else loudly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from humanos_bridge.core.queue_messages import NotAnSqsBatch, parse_batch, string_attributes
from tests.support.bridge import ROOT

SAMPLE = json.loads((ROOT / "events" / "sqs" / "batch-valid.json").read_text())


def test_a_lambda_sqs_record_is_read_with_its_attributes() -> None:
    [first, *_] = parse_batch(SAMPLE)
    assert first.attributes["source"] == "crm"
    assert (first.receive_count, first.sent_at_ms, first.group_id) == (1, 1779268501000, None)


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (None, "expected a non-empty 'Records' list"),
        ({"Records": "x"}, "expected a non-empty 'Records' list"),
        ({"Records": [{"eventSource": "aws:sns"}]}, r"Records\[0\] is not an SQS record"),
        ({"Records": [{"eventSource": "aws:sqs"}]}, r"Records\[0\] is malformed \(KeyError\)"),
        (
            {"Records": [dict(SAMPLE["Records"][0], attributes={"ApproximateReceiveCount": "secret-ish"})]},
            r"Records\[0\] is malformed \(ValueError\): expected the shape",
        ),
    ],
)
def test_anything_else_is_refused_with_where_and_why(event: Any, message: str) -> None:
    with pytest.raises(NotAnSqsBatch, match=message) as caught:
        parse_batch(event)
    assert "secret-ish" not in str(caught.value)


def test_string_attributes_skip_empty_values_and_type_numbers() -> None:
    assert string_attributes({"source": "crm", "eventId": None, "redriveCount": 2, "traceId": ""}) == {
        "source": {"DataType": "String", "StringValue": "crm"},
        "redriveCount": {"DataType": "Number", "StringValue": "2"},
    }


def test_bodies_are_not_parsed_with_the_batch_so_a_poison_body_fails_only_its_own_record() -> None:
    """A body nested 100,000 deep is carried as it came: it is parsed (and refused) per record, by the dispatcher."""
    poison = "[" * 100_000 + "]" * 100_000
    event = {"Records": [dict(SAMPLE["Records"][0], body=poison), *SAMPLE["Records"][1:]]}
    first, *others = parse_batch(event)
    assert first.body == poison
    assert [m.body for m in others] == [r["body"] for r in SAMPLE["Records"][1:]]
