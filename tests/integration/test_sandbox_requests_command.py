"""``humanos-bridge sandbox requests`` against the running local stack's sandbox: the URL from the endpoints
file, the key pair from the stack's HumanosSecret (on moto), contacts masked in what it prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import urllib3

from humanos_bridge.core import signing, wire
from humanos_bridge_local import cli
from humanos_bridge_local.sandbox import Sandbox
from tests.conftest import REGION

BODY = {"users": [{"contact": "joana.silva@example.com"}], "groupIds": ["grp-consent"], "internalId": "order-1"}


def create(sandbox: Sandbox, body: dict[str, Any]) -> None:
    data = wire.dump_bytes(body)
    headers = signing.signed_headers(sandbox.api_key, sandbox.signature_secret, data)
    assert urllib3.request("POST", f"{sandbox.base_url}/request", body=data, headers=headers, timeout=5).status == 201


@pytest.fixture
def endpoints(moto: Any, sandbox: Sandbox, tmp_path: Path) -> Path:
    """What ``humanos-bridge local`` leaves for the operator commands: its endpoints file and HumanosSecret."""
    secret = moto.client("secretsmanager").create_secret(
        Name="HumanosSecret",
        SecretString=json.dumps({"apiKey": sandbox.api_key, "signatureSecret": sandbox.signature_secret}),
    )
    path = tmp_path / "local.json"
    path.write_text(
        json.dumps(
            {
                "region": REGION,
                "awsEndpointUrl": moto.endpoint_url,
                "requestQueueUrl": f"{moto.endpoint_url}/000000000000/requests",
                "humanosBaseUrl": sandbox.base_url,
                "humanosSecretArn": secret["ARN"],
            }
        ),
        encoding="utf-8",
    )
    return path


def test_lists_the_local_stacks_sandbox_with_its_stored_credentials(
    endpoints: Path, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """No credentials on the command line: the stack's own are read, and the listing is signed with them."""
    create(sandbox, BODY)
    create(sandbox, {**BODY, "internalId": "order-2"})

    assert cli.main(["sandbox", "requests", "--endpoints", str(endpoints), "--internal-id", "order-2"]) == 0

    out = capsys.readouterr().out
    first = f"1 request(s) with internalId order-2 stored by the Humanos sandbox at {sandbox.base_url}"
    assert out.splitlines()[0] == first
    assert sandbox.created[1]["id"] in out and sandbox.created[0]["id"] not in out
    assert "j***@e***.com" in out and "joana" not in out
    [listing] = [c for c in sandbox.calls if c.method == "GET"]
    assert listing.query == {"internalId": "order-2", "pageIndex": "0", "pageSize": "100"}


def test_names_show_their_invoice_numbers_and_hide_their_contacts(
    endpoints: Path, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    """A name is read as ``send`` reads answers: INV-2026-0043 is an identifier, not a number to mask."""
    create(sandbox, {**BODY, "name": "Invoice INV-2026-0043 for joana.silva@example.com or +351912345678"})

    assert cli.main(["sandbox", "requests", "--endpoints", str(endpoints)]) == 0

    out = capsys.readouterr().out
    assert "name: Invoice INV-2026-0043 for j***@e***.com or " in out
    assert "joana" not in out and "912345678" not in out


def test_pages_through_everything_stored(endpoints: Path, sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --internal-id every request is listed, page by page."""
    for n in range(3):
        create(sandbox, {**BODY, "internalId": f"order-{n}"})

    assert cli.main(["sandbox", "requests", "--endpoints", str(endpoints)]) == 0

    out = capsys.readouterr().out
    assert out.startswith("3 request(s) stored by")
    assert all(request["id"] in out for request in sandbox.created)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--url", "http://127.0.0.1:1"], "give --url, --api-key and --signature-secret together"),
        (["--endpoints", "/nonexistent/local.json"], "no local stack is running (/nonexistent/local.json not found)"),
    ],
)
def test_says_what_to_pass_when_no_sandbox_is_named(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Half the credentials, or no running stack: exit 2 with what to do instead."""
    assert cli.main(["sandbox", "requests", *argv]) == 2
    assert message in capsys.readouterr().err
