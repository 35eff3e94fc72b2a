"""Ingest Lambda: HTTP API webhooks -> verified, mapped business events, queued (or sent to Humanos now).

Thin by design: routing is Powertools' event handler, everything else is
``humanos_bridge.ingest.service.IngestService``, built once per container from the environment. The raw
event is never logged: its headers carry signatures and its body contacts.
"""

from __future__ import annotations

from humanos_bridge.cold_start import collector_paused

# Imported with the garbage collector paused: 16 ms of each cold start (cold_start says why).
with collector_paused():
    import functools
    import json
    import warnings
    from typing import Any

    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
    from aws_lambda_powertools.event_handler.exceptions import NotFoundError
    from aws_lambda_powertools.logging import correlation_paths
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from humanos_bridge import wiring
    from humanos_bridge.core.http_request import InboundRequest
    from humanos_bridge.core.outcomes import Reply
    from humanos_bridge.ingest.service import IngestService
    from humanos_bridge.logs import bridge_logger
    from humanos_bridge.settings import Settings

# Powertools warns on every invocation that publishes no metric (GET /health, a batch that failed as a
# whole): noise in the function's log, nothing to act on.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

logger = bridge_logger()
metrics = Metrics()
app = APIGatewayHttpResolver()


@functools.lru_cache(maxsize=1)
def service() -> IngestService:
    """Built on the first invocation (no import-time I/O); ``service.cache_clear()`` in tests."""
    return wiring.ingest_service(Settings.from_env(), logger=logger, metrics=metrics)


@app.post("/events/<source>")
def post_event(source: str) -> Response[str]:
    return _respond(service().accept_event(source, _request()))


@app.post("/requests/<source>")
def post_request(source: str) -> Response[str]:
    return _respond(service().create_request(source, _request(), app.lambda_context))


@app.get("/health")
def health() -> Response[str]:
    return _respond(service().health())


@app.not_found
def not_found(exc: NotFoundError) -> Response[str]:
    body = {"error": {"code": "not_found", "message": "no such route; POST /events/<source> or /requests/<source>"}}
    return _respond(Reply(404, body))


def _request() -> InboundRequest:
    return InboundRequest.from_apigw_v2(app.current_event.raw_event)


def _respond(reply: Reply) -> Response[str]:
    # ASCII: a lone surrogate (Humanos may echo one back in a credential's name) has no UTF-8 form,
    # and an answer that cannot be encoded is a dropped connection, so the sender retries an accepted event.
    body = json.dumps(reply.body, ensure_ascii=True, separators=(",", ":"))
    return Response(reply.status, content_types.APPLICATION_JSON, body, dict(reply.headers))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
