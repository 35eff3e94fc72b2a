"""Dispatcher Lambda: SQS batches of business events -> signed Humanos requests, exactly once.

Thin by design: everything it does is ``humanos_bridge.dispatch.service.Dispatcher``, built once per
container from the environment (see ``humanos_bridge.settings``).
"""

from __future__ import annotations

from humanos_bridge.cold_start import collector_paused

# Imported with the garbage collector paused: 16 ms of each cold start (cold_start says why).
with collector_paused():
    import functools
    import warnings
    from typing import Any

    from aws_lambda_powertools import Metrics
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from humanos_bridge import wiring
    from humanos_bridge.dispatch.service import Dispatcher
    from humanos_bridge.logs import bridge_logger
    from humanos_bridge.settings import Settings

# Powertools warns on every invocation that publishes no metric (GET /health, a batch that failed as a
# whole): noise in the function's log, nothing to act on.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)

logger = bridge_logger()
metrics = Metrics()


@functools.lru_cache(maxsize=1)
def dispatcher() -> Dispatcher:
    """Built on the first invocation (no import-time I/O); ``dispatcher.cache_clear()`` in tests."""
    return wiring.dispatcher(Settings.from_env(), logger=logger, metrics=metrics)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dispatcher().dispatch_batch(event, context)
