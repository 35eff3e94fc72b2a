"""The ``otp.failed`` policy without sockets: ``onOtpFailed`` in the mapping (every mistake named precisely), the
check that an endpoint is on the Humanos API root, and a resender that never raises."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import urllib3

from humanos_bridge.core.client import ForeignEndpointError, HumanosClient, same_origin_path
from humanos_bridge.core.credentials import StaticCredentials
from humanos_bridge.core.errors import ConfigError
from humanos_bridge.mapping import load_mapping, parse_mapping
from humanos_bridge.mapping.model import OtpFailedPolicy
from humanos_bridge.receive.events import parse_event
from humanos_bridge.receive.origin import Origin
from humanos_bridge.receive.otp_resend import FAILED, OtpResender, ResendBudget
from tests.support.bridge import ROOT
from tests.support.receiver import humanos_event

PATH = "sources.crm.onOtpFailed"
BASE = "https://api.humanos.id"
ENDPOINT = "https://api.humanos.id/request/resend/6650f0c2a1b2c3d4e5f60718?contact=%2B351912345678"


def bridge_with(policy: Any, source: str = "crm") -> dict[str, Any]:
    document = json.loads((ROOT / "mappings" / "bridge.json").read_text(encoding="utf-8"))
    document["sources"][source]["onOtpFailed"] = copy.deepcopy(policy)
    return dict(document)


def problems(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_mapping(document, file="m.json")
    return list(caught.value.details["errors"])


# --- the mapping ---------------------------------------------------------------------------------------------


def test_without_on_otp_failed_a_source_does_nothing() -> None:
    mapping = parse_mapping(json.loads((ROOT / "mappings" / "bridge.json").read_text(encoding="utf-8")))
    assert all(mapping.source(name).on_otp_failed == OtpFailedPolicy() for name in mapping.sources)
    assert not OtpFailedPolicy().resends


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({"action": "resend"}, OtpFailedPolicy("resend", 1)),
        ({"action": "resend", "maxResends": 1}, OtpFailedPolicy("resend", 1)),
        ({"action": "resend", "maxResends": 3}, OtpFailedPolicy("resend", 3)),
        ({"action": "none"}, OtpFailedPolicy()),
    ],
)
def test_on_otp_failed_reads_the_action_and_the_limit(policy: dict[str, Any], expected: OtpFailedPolicy) -> None:
    assert parse_mapping(bridge_with(policy)).source("crm").on_otp_failed == expected


@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        ("resend", f'{PATH}: must be an object such as {{"action": "resend", "maxResends": 1}}, got string'),
        ({}, f'{PATH}.action: must be "none" or "resend", got nothing; e.g. {{"action": "resend", "maxResends": 1}}'),
        ({"action": "retry"}, f'{PATH}.action: must be "none" or "resend", got \'retry\''),
        ({"action": ["resend"]}, f'{PATH}.action: must be "none" or "resend", got a array'),
        (
            {"action": "resend", "maxResends": 0},
            f"{PATH}.maxResends: must be a whole number from 1 to 3 (resend calls per request and contact), got 0",
        ),
        ({"action": "resend", "maxResends": 4}, f"{PATH}.maxResends: must be a whole number from 1 to 3"),
        ({"action": "resend", "maxResends": 1.5}, f"{PATH}.maxResends: must be a whole number from 1 to 3"),
        ({"action": "resend", "maxResends": True}, f"{PATH}.maxResends: must be a whole number from 1 to 3"),
        ({"action": "resend", "maxResends": "1"}, f"{PATH}.maxResends: must be a whole number from 1 to 3"),
        (
            {"action": "none", "maxResends": 1},
            f'{PATH}.maxResends: applies to "action": "resend" only; remove it, or set the action to "resend"',
        ),
        ({"action": "resend", "max_resends": 1}, f"{PATH}.max_resends: unknown key; did you mean 'maxResends'?"),
    ],
)
def test_each_mistake_in_on_otp_failed_is_named_with_its_fix(policy: Any, problem: str) -> None:
    [line] = problems(bridge_with(policy))
    assert line.startswith(f"m.json: {problem}"), line


def test_a_resend_policy_on_a_source_whose_rules_never_name_it_is_refused() -> None:
    """The shop's rule sets its own internalId and idempotencyKey: no otp.failed could be traced to the shop,
    so a resend policy there would silently never apply."""
    [line] = problems(bridge_with({"action": "resend"}, source="shop"))
    assert line.startswith("m.json: sources.shop.onOtpFailed: no rule of this source sends the default internalId")
    assert parse_mapping(bridge_with({"action": "none"}, source="shop")).source("shop").on_otp_failed.action == "none"


def test_the_policy_s_problem_is_listed_with_the_file_s_others() -> None:
    document = bridge_with({"action": "resend", "maxResends": 9})
    document["sources"]["crm"]["unmatched"] = "drop"
    where = sorted(line.split(": ")[1] for line in problems(document))
    assert where == [f"{PATH}.maxResends", "sources.crm.unmatched"]


def test_toml_writes_the_policy_as_a_table(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        """version = 1
apiVersion = "2026-05-17"
[sources.crm]
eventType = "type"
eventId = "id"
onOtpFailed = { action = "resend", maxResends = 2 }
[[sources.crm.rules."contact.created"]]
name = "consent"
request = { contacts = "=as_list(phone)", groupIds = ["grp_1"] }
""",
        encoding="utf-8",
    )
    assert load_mapping(path).source("crm").on_otp_failed == OtpFailedPolicy("resend", 2)


# --- the endpoint's origin -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "endpoint", "path"),
    [
        (BASE, ENDPOINT, "/request/resend/6650f0c2a1b2c3d4e5f60718"),
        (BASE, "https://api.humanos.id:443/request/resend/1?contact=%2B351912345678", "/request/resend/1"),
        ("https://api.humanos.id:443", ENDPOINT, "/request/resend/6650f0c2a1b2c3d4e5f60718"),
        (BASE, "HTTPS://API.Humanos.ID/request/resend/1", "/request/resend/1"),  # case-insensitive scheme and host
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/request/resend/1?contact=x", "/request/resend/1"),
        ("https://gateway.example.com/humanos/", "https://gateway.example.com/humanos/request/resend/1", None),
    ],
)
def test_an_endpoint_on_the_api_root_is_accepted_and_logged_by_its_path_alone(
    base: str, endpoint: str, path: str | None
) -> None:
    """The path is what the client's log names: never the query, which names the contact."""
    assert same_origin_path(base, endpoint) == (path or "/humanos/request/resend/1")


@pytest.mark.parametrize(
    ("base", "endpoint"),
    [
        (BASE, "https://api.humanos.tech/request/resend/1?contact=%2B351912345678"),  # another Humanos host
        (BASE, "http://api.humanos.id/request/resend/1"),  # a downgrade: the API key in clear
        (BASE, "https://api.humanos.id:8443/request/resend/1"),
        (BASE, "https://api.humanos.id.example.com/request/resend/1"),
        (BASE, "https://api.humanos.id@example.com/request/resend/1"),
        (BASE, "https://user:pass@api.humanos.id/request/resend/1"),  # user information: refused too
        (BASE, "//api.humanos.id/request/resend/1"),
        (BASE, "/request/resend/1"),
        (BASE, "https://[::1/request/resend/1"),
        ("https://gateway.example.com/humanos", "https://gateway.example.com/other/request/resend/1"),
        ("https://gateway.example.com/humanos", "https://gateway.example.com/humanosx/request/resend/1"),
    ],
)
def test_an_endpoint_off_the_api_root_is_refused_naming_no_contact(base: str, endpoint: str) -> None:
    with pytest.raises(ForeignEndpointError) as caught:
        same_origin_path(base, endpoint)
    assert "nothing was sent" in caught.value.message
    assert "351912345678" not in caught.value.message and "pass" not in caught.value.message


class NoNetwork(urllib3.PoolManager):
    """A pool that fails the test if the client tries to send anything."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the client sent a request")


def test_the_client_refuses_a_foreign_endpoint_before_reading_a_secret_or_sending() -> None:
    client = HumanosClient(BASE, "2026-05-17", StaticCredentials("key", "secret"), pool=NoNetwork())
    with pytest.raises(ForeignEndpointError):
        client.resend_code("https://attacker.example/request/resend/1?contact=%2B351912345678")


# --- the resender never raises -------------------------------------------------------------------------------


class BrokenBudget(ResendBudget):
    """A bug of ours where the count is taken."""

    def __init__(self) -> None:
        super().__init__(None, "table", ttl_seconds=60)

    def take(self, request_id: str, contact: str, limit: int) -> int | None:
        raise RuntimeError("a bug, with +351912345678 in its text")


def test_a_bug_in_a_resend_is_a_failed_resend_not_an_exception() -> None:
    """The event is published before the resender runs: whatever goes wrong there is logged and counted, and the
    webhook's answer stays what publishing made it; the exception's text (it may quote data) is not logged."""
    client = HumanosClient(BASE, "2026-05-17", StaticCredentials("key", "secret"), pool=NoNetwork())
    resender = OtpResender({"crm": OtpFailedPolicy("resend", 1)}, BrokenBudget(), client)
    event = parse_event(json.dumps(humanos_event("otp.failed")).encode())

    resend = resender.after_published(event, Origin("crm", "evt_crm_0001", "marketing-consent-sms"), "key")

    assert resend is not None and (resend.outcome, resend.cause) == (FAILED, "internal_error")
    assert resend.reason is not None and "351912345678" not in resend.reason


@pytest.mark.parametrize(
    ("event_type", "origin"),
    [("otp.failed", None), ("otp.failed", Origin("hr")), ("credential", Origin("crm")), ("test", Origin("crm"))],
)
def test_only_an_otp_failure_of_a_resending_source_is_looked_at(event_type: str, origin: Origin | None) -> None:
    client = HumanosClient(BASE, "2026-05-17", StaticCredentials("key", "secret"), pool=NoNetwork())
    resender = OtpResender({"crm": OtpFailedPolicy("resend", 1)}, BrokenBudget(), client)
    event = parse_event(json.dumps(humanos_event(event_type)).encode())
    assert resender.after_published(event, origin, "key") is None
