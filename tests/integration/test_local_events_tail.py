"""``humanos-bridge events tail``: what reached the webhook bus, read through the local stack's rule and queue.

Real parts: moto in server mode (an EventBridge bus, the rule and queue the local stack adds, ``bus_events``),
events put on the bus with PutEvents in the receiver's shape, and an endpoints file as ``local`` writes it. The
stack itself is not started here; ``tests/e2e/test_local_stack.py`` reads what its packaged receiver published.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from humanos_bridge_local import bus_events, endpoints
from humanos_bridge_local.cli import main
from humanos_bridge_local.commands import events as events_command
from tests.conftest import REGION, Moto

BUS = "humanos-bridge-local-humanos"
CONTACT = "+351912345678"
#: An identity event's personal data, as Humanos sends it in the payload.
IDENTITY = {"firstName": "Ana", "lastName": "Quaresma", "documentNumber": "CC-87654321", "birthDate": "1990-04-02"}


@pytest.fixture
def listening() -> Iterator[int]:
    """A port something listens on, as a running stack's ingest API does (or its endpoints file is stale)."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


@pytest.fixture
def bus(moto: Moto, tmp_path: Path, listening: int, monkeypatch: pytest.MonkeyPatch) -> str:
    """The bus with the local stack's reader, and an endpoints file naming its queue; the queue's URL."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    monkeypatch.setenv(endpoints.HOME_ENV, str(home))
    events = moto.client("events")
    events.create_event_bus(Name=BUS)
    queue_url = bus_events.create_reader(events, moto.client("sqs"), BUS)
    endpoints.write_json(
        home / endpoints.ENDPOINTS_FILE,
        {
            "apiUrl": f"http://127.0.0.1:{listening}",
            "awsEndpointUrl": moto.endpoint_url,
            "region": REGION,
            "requestQueueUrl": f"{moto.endpoint_url}/123456789012/humanos-bridge-local-RequestQueue",
            "eventBusName": BUS,
            "eventsQueueUrl": queue_url,
        },
    )
    return queue_url


def publish(moto: Moto, detail_type: str, request_id: str, **detail: Any) -> None:
    """One event as the receiver puts it on the bus (``receive.publish``)."""
    body = {"webhookKey": "ab" * 32, "requestId": request_id, **detail}
    moto.client("events").put_events(
        Entries=[
            {"Source": "humanos.bridge", "DetailType": detail_type, "Detail": json.dumps(body), "EventBusName": BUS}
        ]
    )


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def tail(capsys: pytest.CaptureFixture[str], *arguments: str) -> str:
    capsys.readouterr()
    assert main(["events", "tail", *arguments]) == 0
    return capsys.readouterr().out


def test_each_event_is_one_line_without_payload_and_masked(
    moto: Moto, bus: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given an identity event whose business event id quotes an e-mail address and whose payload holds a phone
    number and identity data, when tailed, then its line names the request and decision, and none of them shows."""
    publish(
        moto,
        "Identity Verified",
        "6650f0c2a1b2c3d4e5f60718",
        eventType="identity",
        internalId="crm:evt_ana@example.com:kyc",
        business={"source": "crm", "eventId": "evt_ana@example.com", "rule": "kyc"},
        decision={"success": True, "isFraud": False, "date": "2026-05-20T09:14:58.000Z"},
        payload={"user": {"contact": CONTACT}, "identity": IDENTITY},
    )

    out = tail(capsys)

    lines = out.splitlines()
    assert lines[0] == f"events on the bus {BUS}: the last 1 of 1 (payloads not shown)"
    assert lines[1] == bus_events.header()
    assert len(lines) == 3
    fields = lines[2].split()
    assert fields[1:6] == ["Identity", "Verified", "6650f0c2a1b2c3d4e5f60718", "crm", "e***@e***.com"]
    assert fields[6:] == ["verified", "abababababab…"]
    for shown_nowhere in ("ana@example.com", "912345678", *IDENTITY.values()):
        assert shown_nowhere not in out


def test_the_last_n_are_shown_oldest_first_and_left_on_the_bus(
    moto: Moto, bus: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--limit 2 of three events: the two latest, in the order published; a second tail shows them again."""
    for number, detail_type in enumerate(["Credential Accepted", "Credential Rejected", "OTP Failed"]):
        publish(moto, detail_type, f"req{number}", decision={"errorCode": "SMS_FAILED"} if number == 2 else {})

    first = tail(capsys, "--limit", "2")
    second = tail(capsys, "-n", "2")

    assert first == second
    rows = first.splitlines()[2:]
    assert [row.split()[1:4] for row in rows] == [["Credential", "Rejected", "req1"], ["OTP", "Failed", "req2"]]
    assert rows[1].split()[-2] == "SMS_FAILED"
    assert first.splitlines()[0] == f"events on the bus {BUS}: the last 2 of 3 (payloads not shown)"


def test_an_empty_bus_says_how_to_put_an_event_there(bus: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = tail(capsys)
    assert out.startswith(f"no event on the bus {BUS} yet: a decided request's webhook puts one there (`")
    assert out.rstrip().endswith("sandbox decide REQUEST_ID --accept`)")


def test_follow_prints_each_new_event_once(moto: Moto, bus: str) -> None:
    """--follow: the events so far, then each one published later, once, until stopped."""
    publish(moto, "Test", "req-before")
    printed: list[str] = []
    stop = threading.Event()
    reader = events_command.BusReader(endpoints.read_local_endpoints())
    follower = threading.Thread(target=events_command.follow, args=(reader, 10, printed.append, stop))
    follower.start()
    try:
        wait_until(lambda: any(line.startswith("following") for line in printed))
        publish(moto, "Credential Accepted", "req-after")
        wait_until(lambda: any("req-after" in line for line in printed))  # the follower reads every second
        time.sleep(2 * events_command.FOLLOW_POLL_SECONDS)  # a later read must not print it again
    finally:
        stop.set()
        follower.join(10)

    assert printed[:2] == [f"events on the bus {BUS}: the last 1 of 1 (payloads not shown)", bus_events.header()]
    assert printed[2].split()[1:3] == ["Test", "req-before"]
    assert printed[3] == f"following the bus {BUS}; Ctrl-C to stop"
    assert [line.split()[1:4] for line in printed[4:]] == [["Credential", "Accepted", "req-after"]]


def test_a_stack_started_before_the_receiver_existed_is_named(
    tmp_path: Path, listening: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An endpoints file without the events queue (an older humanos-bridge's): restart it, says the error."""
    monkeypatch.setenv(endpoints.HOME_ENV, str(tmp_path))
    api = f"http://127.0.0.1:{listening}"
    endpoints.write_json(
        tmp_path / "local.json",
        {"apiUrl": api, "awsEndpointUrl": "http://127.0.0.1:1", "region": REGION, "requestQueueUrl": "q"},
    )

    assert main(["events", "tail"]) == 2

    assert capsys.readouterr().err.startswith(
        f"humanos-bridge: error: the local stack at {api} was started by an older humanos-bridge, without a webhook "
        "bus to read; restart `"
    )
