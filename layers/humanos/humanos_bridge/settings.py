"""Typed settings, read once per container from the environment.

Precedence is argument > environment variable > embedded default, resolved here and nowhere
else. A bad value fails at cold start with the variable's name and what it accepts. The local
CLI builds the same object from its flags (``Settings(**overrides)`` or ``from_env(overrides)``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from humanos_bridge.core.errors import ConfigError

#: The largest SQS batch the dispatcher is handed: template.yaml's BatchSize MaxValue. The dispatcher
#: keeps every record of a batch in flight at once (the rate limit, not a worker count, paces the calls),
#: so its threads and its HTTP and DynamoDB connection pools are sized to this, once, here.
MAX_BATCH_SIZE = 100

#: Environment variable for each setting. The template sets these; so does the local stack.
ENV_NAMES: dict[str, str] = {
    "humanos_base_url": "HUMANOS_BASE_URL",
    "humanos_api_version": "HUMANOS_API_VERSION",
    "humanos_secret_id": "HUMANOS_SECRET_ID",
    "secret_ttl_seconds": "HUMANOS_SECRET_TTL_SECONDS",
    "connect_timeout": "HUMANOS_CONNECT_TIMEOUT",
    "read_timeout": "HUMANOS_READ_TIMEOUT",
    "call_deadline_seconds": "HUMANOS_CALL_DEADLINE_SECONDS",
    "max_attempts": "HUMANOS_MAX_ATTEMPTS",
    "mapping_file": "MAPPING_FILE",
    "default_source": "DEFAULT_SOURCE",
    "idempotency_table": "IDEMPOTENCY_TABLE",
    "request_queue_url": "REQUEST_QUEUE_URL",
    "dead_letter_queue_url": "DEAD_LETTER_QUEUE_URL",
    "rate_limit_per_minute": "RATE_LIMIT_PER_MINUTE",
    "max_concurrency": "DISPATCHER_MAX_CONCURRENCY",
    "sync_rate_limit_per_minute": "SYNC_RATE_LIMIT_PER_MINUTE",
    "sender_secret_id": "SENDER_SECRET_ID",
    "signature_tolerance_seconds": "SIGNATURE_TOLERANCE_SECONDS",
    "idempotency_ttl_seconds": "IDEMPOTENCY_TTL_SECONDS",
    "webhook_secret_id": "WEBHOOK_SECRET_ID",
    "webhook_event_bus": "WEBHOOK_EVENT_BUS_NAME",
}


@dataclass(frozen=True)
class Settings:
    """Everything a function or the local stack tunes. Defaults are safe for production."""

    #: Humanos API root. Humanos is moving to api.humanos.tech; keep it configuration. For the receiver, also the
    #: one origin (scheme, host, port) an ``otp.resendEndpoint`` may be on (``receive.otp_resend``).
    humanos_base_url: str = "https://api.humanos.id"
    #: ``API-Version`` header. Empty: take the one the mapping file declares.
    humanos_api_version: str = ""
    #: ARN or name of the Secrets Manager secret ``{"apiKey", "signatureSecret"}``.
    humanos_secret_id: str = ""
    #: How long a fetched secret is trusted before it is read again.
    secret_ttl_seconds: int = 300
    connect_timeout: float = 3.05
    read_timeout: float = 8.0
    #: Total time one logical call (all attempts and back-off) may take. A redelivered event may make two
    #: (the internalId look-up, then the POST), and both must fit in the invocation.
    call_deadline_seconds: float = 12.0
    #: Attempts per logical call, the first included.
    max_attempts: int = 3
    #: Path of the mapping file (JSON or TOML) that turns events into request bodies.
    mapping_file: str = ""
    #: Source used for SQS messages that carry no ``source`` attribute.
    default_source: str = ""
    idempotency_table: str = ""
    request_queue_url: str = ""
    dead_letter_queue_url: str = ""
    #: Humanos's org-wide limit on request creations per minute (60 is the only figure known).
    rate_limit_per_minute: int = 60
    #: The dispatcher event source's maximum concurrency; the per-container rate is the org rate divided by it.
    max_concurrency: int = 2
    #: The synchronous route's share of ``rate_limit_per_minute`` (one bucket for every ingest container,
    #: ``shared_ratelimit``); the dispatchers get the rest.
    sync_rate_limit_per_minute: int = 10
    #: ARN or name of the secret holding sender secrets per source.
    sender_secret_id: str = ""
    signature_tolerance_seconds: int = 300
    #: How long an event's idempotency record is kept: longer than the DLQ's 14-day retention, so a
    #: redrive never creates a second request.
    idempotency_ttl_seconds: int = 15 * 24 * 3600
    #: The receiver: ARN or name of the secret ``{"signatureSecret", "encryptionSecret", "encryptionSalt"}``.
    webhook_secret_id: str = ""
    #: The receiver: the EventBridge bus (name or ARN) that Humanos's webhooks are published to.
    webhook_event_bus: str = ""

    def __post_init__(self) -> None:
        positive = (
            "secret_ttl_seconds",
            "connect_timeout",
            "read_timeout",
            "call_deadline_seconds",
            "max_attempts",
            "rate_limit_per_minute",
            "max_concurrency",
            "sync_rate_limit_per_minute",
            "signature_tolerance_seconds",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{ENV_NAMES[name]} must be greater than 0 (got {getattr(self, name)})")
        if self.sync_rate_limit_per_minute >= self.rate_limit_per_minute:
            raise ConfigError(
                f"{ENV_NAMES['sync_rate_limit_per_minute']} ({self.sync_rate_limit_per_minute}) must be below "
                f"{ENV_NAMES['rate_limit_per_minute']} ({self.rate_limit_per_minute}): the dispatchers get the rest "
                "of Humanos's rate limit"
            )
        if not self.humanos_base_url.startswith(("https://", "http://")):
            raise ConfigError(f"{ENV_NAMES['humanos_base_url']} must be an http(s) URL such as https://api.humanos.id")

    @property
    def dispatcher_rate_per_minute(self) -> int:
        """What the dispatchers share of the org-wide rate: all but the synchronous route's share."""
        return self.rate_limit_per_minute - self.sync_rate_limit_per_minute

    @property
    def per_container_rate_per_minute(self) -> float:
        """Each of ``max_concurrency`` dispatcher containers gets an equal share of the dispatchers' rate."""
        return self.dispatcher_rate_per_minute / self.max_concurrency

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``), then ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = env.get(ENV_NAMES[field.name])
            if raw is None or raw == "":
                continue
            values[field.name] = _coerce(field.name, raw, field.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _coerce(name: str, raw: str, kind: Any) -> Any:
    kind_name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    try:
        if kind_name == "int":
            return int(raw)
        if kind_name == "float":
            return float(raw)
    except ValueError as exc:
        raise ConfigError(
            f"{ENV_NAMES[name]} must be a{'n integer' if kind_name == 'int' else ' number'} (got {raw!r})"
        ) from exc
    return raw
