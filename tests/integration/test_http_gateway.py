"""The local HTTP API's framing: what it answers to a Content-Length it cannot use, over a real socket.

The gateway serves on a free loopback port; its handler records the events it is given, so a test can
check that a refused request never reached the function.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest

from humanos_bridge_local.http_gateway import BAD_LENGTH_MESSAGE, MAX_BODY_BYTES, HttpGateway, Route


class Recorder:
    """The function behind the gateway: answers 202 and keeps every event it was invoked with."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        return {"statusCode": 202, "headers": {"Content-Type": "application/json"}, "body": '{"status":"accepted"}'}


@pytest.fixture
def gateway() -> Iterator[tuple[HttpGateway, Recorder]]:
    recorder = Recorder()
    server = HttpGateway([Route("POST", "/events/{source}")], recorder).start()
    try:
        yield server, recorder
    finally:
        server.stop()


def exchange(
    gateway: HttpGateway, content_length: str, body: bytes = b"{}", *, close: bool = False
) -> tuple[bytes, bytes]:
    """Send one raw POST with this Content-Length header; the status line and the body of the answer.

    Read until the gateway closes the connection: it must do so itself after a refused request (``close``
    asks it to, for one it accepts).
    """
    host, port = gateway.base_url.removeprefix("http://").split(":")
    head = f"POST /events/crm HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    head += f"Content-Length: {content_length}\r\n"
    head += "Connection: close\r\n\r\n" if close else "\r\n"
    try:
        raw = head.encode("latin-1")  # how http.server decodes header bytes: "²" arrives as "²"
    except UnicodeEncodeError:
        raw = head.encode("utf-8")
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        connection.sendall(raw + body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    headers, _, payload = answer.partition(b"\r\n\r\n")
    return headers.split(b"\r\n", 1)[0], payload


@pytest.mark.parametrize(
    "content_length",
    [
        pytest.param("²", id="superscript-two"),
        pytest.param("١٢", id="arabic-indic-digits"),
        pytest.param("-2", id="negative"),
        pytest.param("1 2", id="space-inside"),
        pytest.param("0x2", id="hexadecimal"),
    ],
)
def test_a_content_length_that_is_not_ascii_digits_is_400(
    gateway: tuple[HttpGateway, Recorder], content_length: str
) -> None:
    """Answered 400 with the reason and the connection closed, instead of a dropped connection; the
    function is not invoked."""
    server, recorder = gateway
    status, payload = exchange(server, content_length)
    assert status == b"HTTP/1.1 400 Bad Request"
    assert payload == b'{"message": "' + BAD_LENGTH_MESSAGE.encode() + b'"}'
    assert recorder.events == []


@pytest.mark.parametrize("content_length", [str(MAX_BODY_BYTES + 1), "9" * 5000], ids=["just-over", "5000-digits"])
def test_a_content_length_over_the_limit_is_413(gateway: tuple[HttpGateway, Recorder], content_length: str) -> None:
    """Too large, however many digits (int() alone refuses more than 4,300)."""
    server, recorder = gateway
    status, _ = exchange(server, content_length)
    # The reason phrase is Python's own: "Request Entity Too Large" up to 3.12, "Content Too Large" from 3.13.
    assert status == f"HTTP/1.1 413 {HTTPStatus(413).phrase}".encode()
    assert recorder.events == []


def test_a_plain_content_length_reaches_the_function(gateway: tuple[HttpGateway, Recorder]) -> None:
    """The control: digits 0-9 (leading zeros allowed) frame the body, which the function receives."""
    server, recorder = gateway
    status, payload = exchange(server, "0002", b"{}", close=True)
    assert (status, payload) == (b"HTTP/1.1 202 Accepted", b'{"status":"accepted"}')
    assert [event["body"] for event in recorder.events] == ["{}"]
