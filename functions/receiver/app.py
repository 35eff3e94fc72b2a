"""Receiver Lambda: Humanos's signed, encrypted webhooks -> verified, deduplicated events on EventBridge.

Thin by design: routing is Powertools' event handler, everything else is
``humanos_bridge.receive.service.ReceiverService``, built once per container from the environment. The raw
event is never logged: its headers carry signatures, and its body decrypts to contacts and identity data.
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
    from humanos_bridge.logs import bridge_logger
    from humanos_bridge.receive.service import ReceiverService
    from humanos_bridge.settings import Settings

# Powertools warns on every invocation that publishes no metric: noise in the function's log.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

logger = bridge_logger()
metrics = Metrics()
app = APIGatewayHttpResolver()


@functools.lru_cache(maxsize=1)
def service() -> ReceiverService:
    """Built on the first invocation (no import-time I/O); ``service.cache_clear()`` in tests."""
    return wiring.receiver_service(Settings.from_env(), logger=logger, metrics=metrics)


@app.post("/humanos/webhooks")
def post_webhook() -> Response[str]:
    return _respond(service().handle_webhook(InboundRequest.from_apigw_v2(app.current_event.raw_event)))


@app.not_found
def not_found(exc: NotFoundError) -> Response[str]:
    return _respond(Reply(404, {"error": {"code": "not_found", "message": "no such route; POST /humanos/webhooks"}}))


def _respond(reply: Reply) -> Response[str]:
    body = json.dumps(reply.body, ensure_ascii=True, separators=(",", ":"))
    return Response(reply.status, content_types.APPLICATION_JSON, body, dict(reply.headers))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
