"""Dispatcher Lambda: SQS batches of business events -> signed Humanos requests, exactly once.

Thin by design: everything it does is ``humanos_bridge.dispatch.Dispatcher``, built once per
container from the environment (see ``humanos_bridge.settings``).
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

from humanos_bridge import wiring
from humanos_bridge.dispatch import Dispatcher
from humanos_bridge.settings import Settings

logger = Logger()
metrics = Metrics()
tracer = Tracer()


@functools.lru_cache(maxsize=1)
def dispatcher() -> Dispatcher:
    """Built on the first invocation (no import-time I/O); ``dispatcher.cache_clear()`` in tests."""
    return wiring.dispatcher(Settings.from_env(), logger=logger, metrics=metrics, tracer=tracer)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response = dispatcher().dispatch_batch(event, context)
    tracer.put_annotation("batch_size", len(event.get("Records", [])))
    tracer.put_annotation("failures", len(response.get("batchItemFailures", [])))
    return response
