"""``humanos-bridge local --mapping billing.json``: a custom mapping still gets its "Try it" curl, and the flow
table shows its source's whole name.

The mapping has one source, ``billing``, made from the CRM's rules, so the CRM's sample event is a billing event.
The printed ``curl`` is taken apart as a shell would and sent as it is.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import urllib3

from humanos_bridge_local.commands.local import MAPPINGS, FlowTable, print_banner
from humanos_bridge_local.senders import signed_headers
from humanos_bridge_local.stack import ROOT, LocalStack, StackOptions
from tests.e2e.conftest import FAST
from tests.e2e.stack_helpers import dispatched


@pytest.fixture(scope="module")
def billing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bridge = json.loads((MAPPINGS / "bridge.json").read_text(encoding="utf-8"))
    path = tmp_path_factory.mktemp("mapping") / "billing.json"
    path.write_text(json.dumps({**bridge, "sources": {"billing": bridge["sources"]["crm"]}}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def table() -> FlowTable:
    return FlowTable()


@pytest.fixture(scope="module")
def stack(bridge_home: str, billing: Path, table: FlowTable) -> Iterator[LocalStack]:
    with LocalStack(
        StackOptions(port=0, parameters=dict(FAST), mapping=billing), on_event=table.print_event
    ) as running:
        yield running


def curl_request(command: str) -> tuple[str, dict[str, str], bytes]:
    """The URL, headers and body of ``curl -sS -X POST URL -H 'k: v' ... --data-binary @FILE``, as a shell reads it."""
    words = shlex.split(command)
    assert words[:4] == ["curl", "-sS", "-X", "POST"]
    headers = dict(words[i + 1].split(": ", 1) for i, word in enumerate(words) if word == "-H")
    body_file = words[words.index("--data-binary") + 1].removeprefix("@")
    return words[4], headers, (ROOT / body_file).read_bytes()


def test_the_banner_prints_a_signed_curl_the_billing_source_accepts(
    stack: LocalStack, table: FlowTable, billing: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    print_banner(stack, table=table)
    banner = capsys.readouterr().out.splitlines()

    [curl] = [line for line in banner if line.startswith("curl ")]
    url, headers, body = curl_request(curl)
    response = urllib3.request("POST", url, body=body, headers=headers, timeout=10)

    assert url == f"{stack.api_url}/events/billing"
    assert (response.status, json.loads(response.data)) == (202, {"eventId": "evt_crm_0001", "status": "accepted"})
    assert f"  mapping         {billing}  (sources: billing)" in banner


def test_the_flow_table_shows_the_whole_source_name(
    stack: LocalStack, table: FlowTable, capsys: pytest.CaptureFixture[str]
) -> None:
    """``billing`` is longer than the default column: the column grows, rows and header stay aligned."""
    print_banner(stack, table=table)
    header = capsys.readouterr().out.splitlines()[-1]
    body = (ROOT / "events" / "business" / "crm-contact-created.json").read_text(encoding="utf-8")
    event = json.loads(body) | {"id": "evt_billing_flow"}
    data = json.dumps(event).encode()
    headers = signed_headers("humanos-hmac", stack.sender_secrets["billing"][0], data)
    assert urllib3.request("POST", f"{stack.api_url}/events/billing", body=data, headers=headers).status == 202
    dispatched(stack, "evt_billing_flow")

    rows = [line for line in capsys.readouterr().out.splitlines() if "evt_billing_flow" in line]
    assert [row.split()[1:3] for row in rows] == [["ingest", "billing"], ["dispatch", "billing"]]
    assert {row.index("contact.created") for row in rows} == {header.index("type")}
