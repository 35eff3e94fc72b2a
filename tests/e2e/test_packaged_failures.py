"""A broken deployment, run locally: the local stack shows what CloudWatch would show and goes on serving.

The stack here runs a copy of template.yaml whose ingest function imports a package the layer does
not ship (the mistake that once crashed every deployment). Its init error appears in the stack's
output in Lambda's words, the ingest API answers 500 as API Gateway does for a failed invocation, and
the rest of the bridge (the dispatcher, fed straight from the queue) keeps working.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from humanos_bridge.core.queue_messages import string_attributes
from humanos_bridge_local.stack import INGEST, ROOT, LocalStack, StackOptions
from tests.e2e.conftest import FAST
from tests.e2e.stack_helpers import business_event, dispatched


def broken_template(folder: Path) -> Path:
    """template.yaml with absolute code paths, and an ingest function that fails at import."""
    code = folder / "broken-ingest"
    code.mkdir()
    source = (ROOT / "functions" / "ingest" / "app.py").read_text(encoding="utf-8")
    missing = "    import aws_xray_sdk  # not in the layer\n"
    broken = source.replace("    import functools\n", f"    import functools\n\n{missing}", 1)
    assert broken != source
    (code / "app.py").write_text(broken, encoding="utf-8")
    text = (ROOT / "template.yaml").read_text(encoding="utf-8")
    kept = ("layers/humanos/", "layers/receiver/", "mappings/", "functions/dispatcher/", "functions/receiver/")
    for relative in kept:
        text = text.replace(f"Uri: {relative}\n", f"Uri: {ROOT / relative}/\n")
    text = text.replace("CodeUri: functions/ingest/\n", f"CodeUri: {code}/\n")
    template = folder / "template.yaml"
    template.write_text(text, encoding="utf-8")
    return template


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, list[str]]]:
    said: list[str] = []
    template = broken_template(tmp_path_factory.mktemp("broken"))
    options = StackOptions(port=0, template=template, parameters=dict(FAST), write_endpoints=False)
    with LocalStack(options, on_message=said.append) as stack:
        yield stack, said


def test_init_error_is_shown_as_cloudwatch_would_show_it(broken: tuple[LocalStack, list[str]]) -> None:
    _, said = broken
    assert any(
        line.startswith("IngestFunction: INIT_REPORT Init Duration:")
        and line.endswith("Status: error\tError Type: Runtime.ImportModuleError")
        for line in said
    ), said
    assert any(
        "IngestFunction: [ERROR] Runtime.ImportModuleError: Unable to import module 'app': "
        "No module named 'aws_xray_sdk'" in line
        for line in said
    ), said


def test_ingest_answers_500_like_api_gateway_and_the_stack_keeps_serving(broken: tuple[LocalStack, list[str]]) -> None:
    stack, said = broken
    for _ in range(2):  # each request tries a fresh environment, as Lambda does after a failed init
        response = urllib3.request("GET", f"{stack.api_url}/health", timeout=30)
        assert (response.status, json.loads(response.data)) == (500, {"message": "Internal Server Error"})
    assert said.count("IngestFunction invocation failed: Runtime.ImportModuleError") == 2


def test_dispatcher_still_creates_requests_from_the_queue(broken: tuple[LocalStack, list[str]]) -> None:
    stack, _ = broken
    event = business_event("crm-contact-created", id="evt_broken_ingest_queue")
    stack.client("sqs").send_message(
        QueueUrl=stack.request_queue_url,
        MessageBody=json.dumps(event),
        MessageAttributes=string_attributes({"source": "crm"}),
    )
    assert [o.outcome for o in dispatched(stack, "evt_broken_ingest_queue")] == ["created"]


def test_a_killed_ingest_process_is_replaced_by_a_new_cold_start(stack: LocalStack) -> None:
    """The healthy stack: its ingest process is killed while idle; the next request starts a fresh one."""
    ingest = stack.functions[INGEST]
    before = {e.pid for e in ingest.environments}
    for pid in before:
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(e.alive for e in ingest.environments) and time.monotonic() < deadline:
        time.sleep(0.05)

    response = urllib3.request("GET", f"{stack.api_url}/health", timeout=30)

    assert response.status == 200
    assert {e.pid for e in ingest.environments}.isdisjoint(before)
