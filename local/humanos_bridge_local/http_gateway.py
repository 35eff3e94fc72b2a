"""A local stand-in for API Gateway's HTTP API: HTTP requests in, payload format 2.0 events to a handler.

Routes come from the functions' ``HttpApi`` events in the template (``POST /events/{source}`` to the ingest
function, ``POST /humanos/webhooks`` to the receiver ...): each route invokes the function that declares it.
A request that matches no route is answered ``404 {"message":"Not Found"}`` without invoking the
handler, as API Gateway does. A matched request becomes the event AWS would build (``rawPath``,
``rawQueryString``, lower-cased headers with repeated ones comma-joined, ``cookies``,
``requestContext.http``, ``routeKey``, ``pathParameters``, text or base64 body) and the handler's
answer (``statusCode``, ``headers``, ``body``, ``isBase64Encoded``) is written back. A handler that
raises is a ``500 {"message":"Internal Server Error"}``, as with a failed Lambda invocation.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

#: API Gateway's own payload limit for HTTP APIs.
MAX_BODY_BYTES = 10 * 1024 * 1024
#: The answer to a Content-Length that is not a plain decimal number.
BAD_LENGTH_MESSAGE = "Bad Request: Content-Length must be the body's size in bytes, written with the digits 0-9"
#: Content types API Gateway passes as text; anything else arrives base64-encoded.
_TEXT_TYPES = re.compile(r"^(text/.*|application/(json|.*\+json|xml|.*\+xml|javascript|x-www-form-urlencoded))$")
_PARAMETER = re.compile(r"\{([A-Za-z0-9_]+)(\+?)\}")

Invoke = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Route:
    """One ``METHOD /path/{param}`` route of the HTTP API, and the function it invokes (its integration)."""

    method: str
    path: str
    #: The logical id of the function the route invokes; "" when the gateway has one handler for every route.
    target: str = ""

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Path parameters when ``method`` and ``path`` match this route, else None."""
        if self.method not in (method, "ANY"):
            return None
        names: list[str] = []

        def group(found: re.Match[str]) -> str:
            names.append(found.group(1))
            return "(.+)" if found.group(2) else "([^/]+)"

        pattern = _PARAMETER.sub(group, re.escape(self.path).replace(r"\{", "{").replace(r"\}", "}"))
        matched = re.fullmatch(pattern, path)
        if matched is None:
            return None
        return dict(zip(names, matched.groups(), strict=True))


def routes_from_events(events: dict[str, Any] | None, target: str = "") -> list[Route]:
    """The ``HttpApi`` events of a function (``Events`` property, intrinsics evaluated) as routes to ``target``."""
    routes = []
    for event in (events or {}).values():
        if event.get("Type") == "HttpApi":
            properties = event.get("Properties", {})
            method, path = str(properties.get("Method", "ANY")).upper(), str(properties.get("Path", "/"))
            routes.append(Route(method, path, target))
    return routes


def apigw_v2_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    route: Route,
    path_parameters: dict[str, str],
    source_ip: str,
    domain_name: str,
    now: float | None = None,
) -> dict[str, Any]:
    """The payload format 2.0 event API Gateway sends for one request."""
    stamp = time.time() if now is None else now
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        joined[lower] = f"{joined[lower]},{value}" if lower in joined else value
    # API Gateway adds it (https there); URL-signing schemes rebuild the URL the sender called from it.
    joined.setdefault("x-forwarded-proto", "http")
    content_type = joined.get("content-type", "").split(";", 1)[0].strip().lower()
    as_text = bool(_TEXT_TYPES.match(content_type)) and _is_utf8(body)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": joined,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": domain_name,
            "domainPrefix": domain_name.split(".", 1)[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": base64.b64encode(uuid.uuid4().bytes[:10]).decode("ascii"),
            "routeKey": route.key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(stamp)),
            "timeEpoch": int(stamp * 1000),
        },
        "isBase64Encoded": bool(body) and not as_text,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        query: dict[str, str] = {}
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        event["body"] = body.decode("utf-8") if as_text else base64.b64encode(body).decode("ascii")
    return event


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes


def http_answer(response: Any) -> HttpAnswer:
    """What API Gateway sends back for a handler's return value (format 2.0 rules)."""
    if not isinstance(response, dict) or "statusCode" not in response:
        # A bare value is taken as a 200 JSON answer, as API Gateway does for payload format 2.0.
        data = response if isinstance(response, str) else json.dumps(response)
        return HttpAnswer(200, {"Content-Type": "application/json"}, data.encode("utf-8"))
    body = response.get("body") or ""
    raw = base64.b64decode(body) if response.get("isBase64Encoded") else str(body).encode("utf-8")
    headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers[str(name)] = ",".join(str(v) for v in values)
    return HttpAnswer(int(response["statusCode"]), headers, raw)


def _json_answer(status: int, message: str) -> HttpAnswer:
    return HttpAnswer(status, {"Content-Type": "application/json"}, json.dumps({"message": message}).encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], gateway: HttpGateway) -> None:
        self.gateway = gateway
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the local stack prints one flow line per event instead (request lines could hold contacts)."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length_text = self.headers.get("Content-Length", "0").strip() or "0"
        # ASCII digits only: str.isdigit() also takes superscripts and other scripts' digits, which int() then
        # refuses (a dropped connection) or reads as a number. After a bad length the body's end is unknown, so
        # the connection is closed either way.
        if not (length_text.isascii() and length_text.isdigit()):
            self.close_connection = True
            self._write(_json_answer(400, BAD_LENGTH_MESSAGE))
            return
        digits = length_text.lstrip("0") or "0"
        # Compared by length first: int() refuses numbers of more than 4,300 digits.
        if len(digits) > len(str(MAX_BODY_BYTES)) or int(digits) > MAX_BODY_BYTES:
            self.close_connection = True
            self._write(_json_answer(413, "Request Entity Too Large"))
            return
        body = self.rfile.read(int(digits))
        url = urlsplit(self.path)
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        answer = self.server.gateway.handle(
            self.command, url.path, url.query, list(self.headers.items()), body, self.client_address[0], host
        )
        self._write(answer)

    def _write(self, answer: HttpAnswer) -> None:
        try:
            self.send_response(answer.status)
            headers = {k.lower(): v for k, v in answer.headers.items()}
            for name, value in answer.headers.items():
                if name.lower() not in ("content-length", "connection", "date"):
                    self.send_header(name, value)
            if "content-type" not in headers and answer.body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer.body)))
            self.send_header("Apigw-Requestid", uuid.uuid4().hex[:16])
            self.end_headers()
            self.wfile.write(answer.body)
        except OSError:
            self.close_connection = True

    def date_time_string(self, timestamp: float | None = None) -> str:
        return formatdate(timestamp, usegmt=True)


class HttpGateway:
    """Serves ``routes`` on ``host:port`` (0 = a free port) and invokes each route's function with its events.

    ``invoke`` is one handler for every route, or a handler per function, keyed by ``Route.target``. Requests
    are served concurrently; ``invoke`` is the function's own concurrency (one request at a time per execution
    environment, as in Lambda).
    """

    def __init__(
        self, routes: list[Route], invoke: Invoke | Mapping[str, Invoke], *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        if not routes:
            raise ValueError("the HTTP API has no routes")
        keys = [route.key for route in routes]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:
            # API Gateway refuses a second route with the same key: which function would answer is undefined.
            raise ValueError(f"the HTTP API declares these routes more than once: {', '.join(twice)}")
        if isinstance(invoke, Mapping):
            missing = sorted({route.target for route in routes} - set(invoke))
            if missing:
                raise ValueError(f"no function to invoke for the routes of {', '.join(missing)}")
            self._invokers: dict[str, Invoke] = dict(invoke)
        else:
            self._invokers = {route.target: invoke for route in routes}
        self.routes = routes
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> HttpGateway:
        server = _Server((self._host, self._port), self)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="http-gateway", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("gateway not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle(
        self,
        method: str,
        path: str,
        query: str,
        headers: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
        host: str,
    ) -> HttpAnswer:
        for route in self.routes:
            parameters = route.match(method, path)
            if parameters is None:
                continue
            event = apigw_v2_event(
                method=method,
                raw_path=path,
                raw_query=query,
                headers=headers,
                body=body,
                route=route,
                path_parameters=parameters,
                source_ip=source_ip,
                domain_name=host,
            )
            try:
                response = self._invokers[route.target](event)
            except Exception:  # a failed invocation: API Gateway answers 500 and says nothing more
                return _json_answer(500, "Internal Server Error")
            return http_answer(response)
        return _json_answer(404, "Not Found")
