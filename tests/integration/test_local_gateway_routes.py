"""The local HTTP API routes each template route to the function that declares it, as API Gateway does.

Real HTTP on loopback; the two "functions" are recorders that answer with their own name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import urllib3

from humanos_bridge_local.cfn import load_template
from humanos_bridge_local.http_gateway import HttpGateway, Route, routes_from_events
from humanos_bridge_local.stack import INGEST, RECEIVER, ROOT


def answering(name: str, seen: list[tuple[str, str]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def invoke(event: dict[str, Any]) -> dict[str, Any]:
        seen.append((name, event["routeKey"]))
        return {"statusCode": 200, "body": json.dumps({"function": name})}

    return invoke


@pytest.fixture
def template_routes() -> list[Route]:
    """The HttpApi routes of the ingest function and of the receiver, read from template.yaml."""
    resources = load_template(ROOT / "template.yaml")["Resources"]
    return [
        route
        for function in (INGEST, RECEIVER)
        for route in routes_from_events(resources[function]["Properties"]["Events"], function)
    ]


@pytest.fixture
def gateway(template_routes: list[Route]) -> Iterator[tuple[HttpGateway, list[tuple[str, str]]]]:
    seen: list[tuple[str, str]] = []
    invokers = {INGEST: answering(INGEST, seen), RECEIVER: answering(RECEIVER, seen)}
    server = HttpGateway(template_routes, invokers).start()
    try:
        yield server, seen
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("method", "path", "function", "route_key"),
    [
        ("POST", "/humanos/webhooks", RECEIVER, "POST /humanos/webhooks"),
        ("POST", "/events/crm", INGEST, "POST /events/{source}"),
        ("GET", "/health", INGEST, "GET /health"),
    ],
)
def test_each_route_invokes_the_function_that_declares_it(
    gateway: tuple[HttpGateway, list[tuple[str, str]]], method: str, path: str, function: str, route_key: str
) -> None:
    server, seen = gateway

    response = urllib3.request(method, f"{server.base_url}{path}", body=b"{}" if method == "POST" else None)

    assert (response.status, json.loads(response.data)) == (200, {"function": function})
    assert seen == [(function, route_key)]


def test_a_path_no_function_declares_is_api_gateways_404(gateway: tuple[HttpGateway, list[tuple[str, str]]]) -> None:
    server, seen = gateway

    response = urllib3.request("GET", f"{server.base_url}/humanos/webhooks")  # the receiver's route is POST only

    assert (response.status, json.loads(response.data)) == (404, {"message": "Not Found"})
    assert seen == []


def test_a_route_declared_twice_is_refused() -> None:
    """API Gateway refuses two routes with one key; locally it would be a coin toss which function answers."""
    routes = [Route("POST", "/hooks", "A"), Route("POST", "/hooks", "B")]

    with pytest.raises(ValueError, match=r"declares these routes more than once: POST /hooks"):
        HttpGateway(routes, {"A": lambda e: {}, "B": lambda e: {}})


def test_a_route_without_a_function_to_invoke_is_refused() -> None:
    with pytest.raises(ValueError, match=r"no function to invoke for the routes of B"):
        HttpGateway([Route("POST", "/a", "A"), Route("POST", "/b", "B")], {"A": lambda e: {}})
