"""Building the bridge's parts from settings: the one composition root for every function.

Nothing here runs at import time. Handlers call these once per container (behind a cache) and
tests call them with a boto3 session aimed at moto and settings aimed at the sandbox.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import urllib3
from aws_lambda_powertools import Logger, Metrics
from botocore.config import Config

from humanos_bridge.aws_session import lambda_session
from humanos_bridge.core.errors import ConfigError
from humanos_bridge.core.ratelimit import CreationLimiter, TokenBucket
from humanos_bridge.mapping import MappingConfig, load_mapping_cached
from humanos_bridge.settings import ENV_NAMES, MAX_BATCH_SIZE, Settings

if TYPE_CHECKING:
    # Imported where used: an ingest container that only queues never loads the Humanos sender (cold start).
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    from humanos_bridge.core.client import HumanosClient
    from humanos_bridge.core.exactly_once import ExactlyOnce
    from humanos_bridge.dispatch.service import Dispatcher
    from humanos_bridge.ingest.service import IngestService
    from humanos_bridge.receive.otp_resend import OtpResender
    from humanos_bridge.receive.service import ReceiverService


def require(settings: Settings, *names: str) -> None:
    """Fail at cold start, naming every missing variable, rather than on the first event."""
    missing = [ENV_NAMES[name] for name in names if not getattr(settings, name)]
    if missing:
        raise ConfigError(f"missing configuration: set {', '.join(missing)} (the template sets them on deploy)")


def load_mapping(settings: Settings) -> MappingConfig:
    require(settings, "mapping_file")
    return load_mapping_cached(settings.mapping_file)


def api_version(settings: Settings, mapping: MappingConfig) -> str:
    """The mapping file says which API version its bodies are written for; an override must agree."""
    override = settings.humanos_api_version
    if override and override != mapping.api_version:
        raise ConfigError(
            f"{ENV_NAMES['humanos_api_version']}={override} but {settings.mapping_file} writes bodies for "
            f"apiVersion {mapping.api_version}; change one so they agree (or leave the variable empty)"
        )
    return mapping.api_version


def humanos_client(
    settings: Settings,
    mapping: MappingConfig,
    session: boto3.session.Session,
    pool: urllib3.PoolManager | None = None,
    *,
    creation_limiter: CreationLimiter | None = None,
    secrets_client: Any = None,
) -> HumanosClient:
    from humanos_bridge.core.client import HumanosClient
    from humanos_bridge.core.credentials import SecretsManagerCredentials

    require(settings, "humanos_secret_id")
    credentials = SecretsManagerCredentials(
        settings.humanos_secret_id,
        ttl_seconds=settings.secret_ttl_seconds,
        boto3_client=secrets_client or session.client("secretsmanager"),
    )
    return HumanosClient.from_settings(
        settings, credentials, api_version(settings, mapping), pool=pool, creation_limiter=creation_limiter
    )


def exactly_once(
    settings: Settings,
    client: HumanosClient,
    session: boto3.session.Session,
    *,
    persistence: DynamoDBPersistenceLayer | None = None,
) -> ExactlyOnce:
    from humanos_bridge.core.exactly_once import ExactlyOnce

    require(settings, "idempotency_table")
    if persistence is None:
        # Every record of a batch writes its idempotency record at once: with botocore's default of 10
        # pooled connections, a larger batch would open and discard connections on each call.
        dynamodb = session.client("dynamodb", config=Config(max_pool_connections=MAX_BATCH_SIZE))
        persistence = _persistence(dynamodb, settings.idempotency_table)
    return ExactlyOnce(client, persistence, ttl_seconds=settings.idempotency_ttl_seconds)


def _persistence(dynamodb: Any, table: str) -> DynamoDBPersistenceLayer:
    """Powertools' idempotency store in ``table``, through ``dynamodb``."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(table_name=table, boto3_client=dynamodb)


def dispatcher(
    settings: Settings,
    *,
    session: boto3.session.Session | None = None,
    pool: urllib3.PoolManager | None = None,
    persistence: DynamoDBPersistenceLayer | None = None,
    logger: Logger | None = None,
    metrics: Metrics | None = None,
    **overrides: Any,
) -> Dispatcher:
    """The SQS dispatcher with everything it needs, checked at cold start."""
    # Imported here: the ingest function's cold start does not need Powertools' batch processing.
    from humanos_bridge.dispatch.service import Dispatcher

    require(settings, "request_queue_url", "dead_letter_queue_url")
    session = session or lambda_session()
    mapping = load_mapping(settings)
    limiter = TokenBucket.for_org_limit(settings.dispatcher_rate_per_minute, settings.max_concurrency)
    client = humanos_client(settings, mapping, session, pool, creation_limiter=limiter)
    sender = exactly_once(settings, client, session, persistence=persistence)
    return Dispatcher(
        mapping,
        sender,
        lambda: session.client("sqs"),
        request_queue_url=settings.request_queue_url,
        dead_letter_queue_url=settings.dead_letter_queue_url,
        default_source=settings.default_source,
        logger=logger,
        metrics=metrics,
        **overrides,
    )


def ingest_service(
    settings: Settings,
    *,
    session: boto3.session.Session | None = None,
    pool: urllib3.PoolManager | None = None,
    persistence: DynamoDBPersistenceLayer | None = None,
    logger: Logger | None = None,
    metrics: Metrics | None = None,
    **overrides: Any,
) -> IngestService:
    """The ingest function's service: sender verification, replay protection, mapping, the queue and the
    synchronous route.

    Checked at cold start: every setting it needs, and that every source names a sender
    authentication scheme. Builds clients only; nothing here calls AWS or Humanos.
    """
    # Imported here: the dispatcher's cold start does not need the ingest modules.
    from humanos_bridge.core.ledger import Ledger
    from humanos_bridge.core.replays import ReplayGuard
    from humanos_bridge.ingest.sender_secrets import SenderSecrets
    from humanos_bridge.ingest.service import IngestService

    require(settings, "request_queue_url", "sender_secret_id", "humanos_secret_id", "idempotency_table")
    session = session or lambda_session()
    mapping = load_mapping(settings)
    api_version(settings, mapping)  # checked now; the synchronous route's sender is built on its first request
    secrets_client = session.client("secretsmanager")  # one client for both secrets: each costs cold-start time
    sender_secrets = SenderSecrets(
        settings.sender_secret_id, ttl_seconds=settings.secret_ttl_seconds, boto3_client=secrets_client
    )
    if persistence is None:
        dynamodb, table = session.client("dynamodb"), settings.idempotency_table
        ledger = Ledger(dynamodb, table, ttl_seconds=settings.idempotency_ttl_seconds)
    else:
        ledger = Ledger.beside(persistence, ttl_seconds=settings.idempotency_ttl_seconds)

    def build_sender() -> ExactlyOnce:
        """The synchronous route's sender, in the ledger's table through the ledger's client."""
        from humanos_bridge.core.exactly_once import ExactlyOnce
        from humanos_bridge.ingest.shared_ratelimit import SharedTokenBucket

        client = humanos_client(settings, mapping, session, pool, secrets_client=secrets_client)
        # The route's share of the rate limit, one bucket for all ingest containers: shared_ratelimit.
        client.creation_limiter = SharedTokenBucket.beside(ledger, settings.sync_rate_limit_per_minute)
        store = persistence or _persistence(ledger.dynamodb, ledger.table)
        return ExactlyOnce(client, store, ttl_seconds=settings.idempotency_ttl_seconds, ledger=ledger)

    return IngestService(
        mapping,
        session.client("sqs"),
        queue_url=settings.request_queue_url,
        dead_letter_queue_url=settings.dead_letter_queue_url,
        sender_secrets=sender_secrets,
        build_sender=build_sender,
        tolerance=settings.signature_tolerance_seconds,
        replays=ReplayGuard.beside(ledger, logger=logger),
        logger=logger,
        metrics=metrics,
        **overrides,
    )


#: The AWS services the receiver calls (its session's named-services loader: ``aws_session``).
RECEIVER_SERVICES = ("dynamodb", "events", "secretsmanager")
#: The receiver answers Humanos within its 10 s Timeout: an AWS call that hangs fails (503, Humanos retries)
#: well before Lambda would kill the invocation.
_RECEIVER_AWS_CONFIG = Config(connect_timeout=2, read_timeout=4, retries={"mode": "standard", "max_attempts": 2})


def receiver_service(
    settings: Settings,
    *,
    session: boto3.session.Session | None = None,
    pool: urllib3.PoolManager | None = None,
    logger: Logger | None = None,
    metrics: Metrics | None = None,
    **overrides: Any,
) -> ReceiverService:
    """The receiver function's service: the webhook secrets, the idempotency table and the bus; and, when a
    source of the mapping resends codes after ``otp.failed`` (``onOtpFailed``), the Humanos client for it.

    Checked at cold start: every setting it needs, and the mapping when ``MAPPING_FILE`` names one (it tells
    which business event a webhook answers, ``receive.origin``, and which sources resend). Builds clients only;
    calls nothing: the Humanos secret is read on the first resend, never by a container that does not resend.
    """
    # Imported here: only the receiver loads ``cryptography`` (through receive.decryption).
    from humanos_bridge.receive.dedup import Deduplicator
    from humanos_bridge.receive.origin import OriginIndex
    from humanos_bridge.receive.publish import Publisher
    from humanos_bridge.receive.service import ReceiverService
    from humanos_bridge.receive.webhook_secret import WebhookSecretStore

    require(settings, "webhook_secret_id", "webhook_event_bus", "idempotency_table")
    session = session or lambda_session(RECEIVER_SERVICES)
    mapping = load_mapping(settings) if settings.mapping_file else None
    secrets_client = session.client("secretsmanager", config=_RECEIVER_AWS_CONFIG)  # both secrets, one client
    dynamodb = session.client("dynamodb", config=_RECEIVER_AWS_CONFIG)
    secrets = WebhookSecretStore(
        settings.webhook_secret_id, ttl_seconds=settings.secret_ttl_seconds, boto3_client=secrets_client
    )
    dedup = Deduplicator.in_table(
        dynamodb, settings.idempotency_table, ttl_seconds=settings.idempotency_ttl_seconds, logger=logger
    )
    publisher = Publisher(session.client("events", config=_RECEIVER_AWS_CONFIG), settings.webhook_event_bus)
    resender = (
        _otp_resender(settings, mapping, session, pool, secrets_client, dynamodb, logger, metrics) if mapping else None
    )
    return ReceiverService(
        secrets,
        publisher,
        dedup,
        origins=OriginIndex.from_mapping(mapping),
        tolerance=settings.signature_tolerance_seconds,
        resender=resender,
        logger=logger,
        metrics=metrics,
        **overrides,
    )


def _otp_resender(
    settings: Settings,
    mapping: MappingConfig,
    session: boto3.session.Session,
    pool: urllib3.PoolManager | None,
    secrets_client: Any,
    dynamodb: Any,
    logger: Logger | None,
    metrics: Metrics | None,
) -> OtpResender | None:
    """The receiver's resender, when some source's ``onOtpFailed`` resends; None (nothing loaded) otherwise."""
    policies = {name: mapping.source(name).on_otp_failed for name in mapping.sources}
    resending = {name: policy for name, policy in policies.items() if policy.resends}
    if not resending:
        return None
    # Imported here: the Humanos HTTP client, for receivers that resend only.
    from humanos_bridge.receive.otp_resend import OtpResender, ResendBudget

    client = humanos_client(settings, mapping, session, pool, secrets_client=secrets_client)
    budget = ResendBudget(dynamodb, settings.idempotency_table, ttl_seconds=settings.idempotency_ttl_seconds)
    return OtpResender(resending, budget, client, logger=logger, metrics=metrics)
