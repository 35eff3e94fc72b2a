"""Dispatcher figures: a batch against a slow Humanos, the bridge's own cost per event, secret reads.

Everything is local and real: moto in server mode (SQS, DynamoDB, Secrets Manager) and the Humanos
sandbox over HTTP. moto runs in a child process (``MotoServer(own_process=True)``), as the test
suites run it: AWS's services do not share the dispatcher's interpreter lock in Lambda, and an
in-process moto made every DynamoDB call of a batch queue behind the dispatcher's own threads.
Batches are real SQS messages, received and shaped as Lambda delivers them (``lambda_sqs_record``);
only ``dispatch_batch`` (the part that runs in Lambda) is timed.

1. **10-record batch, 100 ms Humanos latency.** The real dispatcher (``wiring.dispatcher``, built
   once, warm: secret cached, connections open) against a **naive sequential dispatcher** measured
   in the same run, batches alternating: per record it reads the secret from Secrets Manager, maps
   with the same mapping, signs and POSTs on a new connection, with no idempotency table.
   RATE_LIMIT_PER_MINUTE is set high so the token bucket does not set the pace. A 1-record batch
   through the same dispatcher is timed in the same rounds: ``batch10_vs_batch1_ratio`` is what a
   10-record batch costs in units of one call (1.0 when every record is in flight at once). Each
   round also times 10 concurrent ``put_item`` calls on moto (``moto_dynamodb_10_concurrent_puts``):
   moto serves them one after another, in one process, where DynamoDB would serve them side by side,
   and each record makes ``dynamodb_calls_per_event_real`` such calls around its Humanos call. So the
   same rounds also time the same dispatcher with its idempotency store modelled at DynamoDB's latency
   (``STORE_LATENCY_SECONDS`` per call, calls overlapping: ``bench/store_model.py``), 10-record and
   1-record batches: ``*_store_modelled`` is what the dispatcher does with a batch when the store is not
   moto.
2. **Own cost per event**: the in-process steps of ``dispatch_batch`` timed directly in tight loops
   (no network, no Humanos, no DynamoDB/SQS): parse_batch, ``_prepare`` (Outcome, JSON, identity,
   map_event), lanes, the idempotency body hash, dump_bytes, signed_headers, the log lines, and the
   Powertools partial response. Powertools' idempotency record handling is left out: it is
   interleaved with its DynamoDB calls.
3. **Secrets Manager reads per 1,000 events**: 100 batches of 10 through a freshly built (cold)
   dispatcher, sandbox without latency, read from ``SecretsManagerCredentials.fetch_count``; the
   naive dispatcher's reads are counted by a botocore ``before-call`` hook on its client. The same
   run gives per-event wall times without latency (``moto_no_latency_*``); those are bound by moto's
   CPU time (``dynamodb_calls_per_event_real`` DynamoDB calls per event, none for the naive one), so
   ``moto_dynamodb_put_item_ms_median`` is reported beside them.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import urllib3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from bench.store_model import ModelledPersistence
from bench.timing import best_per_call
from humanos_bridge import USER_AGENT, wiring
from humanos_bridge.core import signing, wire
from humanos_bridge.core.client import reset_default_pool
from humanos_bridge.core.credentials import SecretsManagerCredentials
from humanos_bridge.core.exactly_once import body_hash
from humanos_bridge.core.queue_messages import parse_batch
from humanos_bridge.dispatch.service import CREATED, Dispatcher, Outcome
from humanos_bridge.mapping import MappingConfig, load_mapping, load_mapping_cached
from humanos_bridge.settings import Settings
from humanos_bridge_local.lambda_runtime import LocalContext, lambda_sqs_record
from humanos_bridge_local.moto_server import MotoServer
from humanos_bridge_local.sandbox import Fault, Sandbox

ROOT = Path(__file__).resolve().parent.parent
MAPPING = ROOT / "mappings" / "bridge.json"
EVENT = ROOT / "events" / "business" / "crm-contact-created.json"
SOURCE = "crm"
REGION = "eu-west-1"
BATCH_SIZE = 10
LATENCY_SECONDS = 0.1
LATENCY_BATCHES = 7
VOLUME_BATCHES = 100
#: Latency of each idempotency store call in the ``store_modelled`` figures (``bench/store_model.py``).
STORE_LATENCY_SECONDS = 0.005
#: High enough that the per-container token bucket (capacity 1) never makes a record wait noticeably.
RATE_LIMIT_PER_MINUTE = 600_000


# -- environment ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set ``values`` in os.environ for the benchmark, restoring what was there afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class _Stack:
    """The queue, its DLQ, the idempotency table and the Humanos secret on moto; batches from the queue."""

    def __init__(self, endpoint_url: str, sandbox: Sandbox) -> None:
        self.session = boto3.session.Session(region_name=REGION)
        self.sqs = self.session.client("sqs", endpoint_url=endpoint_url)
        self.dlq_url = self.sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
        self.queue_url = self.sqs.create_queue(QueueName="requests", Attributes={"VisibilityTimeout": "180"})[
            "QueueUrl"
        ]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        self.queue_arn = attributes["Attributes"]["QueueArn"]
        self.session.client("dynamodb", endpoint_url=endpoint_url).create_table(
            TableName="idempotency",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        secret = json.dumps({"apiKey": sandbox.api_key, "signatureSecret": sandbox.signature_secret})
        secretsmanager = self.session.client("secretsmanager", endpoint_url=endpoint_url)
        self.secret_arn = secretsmanager.create_secret(Name="humanos", SecretString=secret)["ARN"]
        self.template = json.loads(EVENT.read_text(encoding="utf-8"))
        self.sent = 0

    def batch(self, prefix: str, size: int = BATCH_SIZE) -> dict[str, Any]:
        """Send ``size`` events with fresh ids, receive them, and shape them as Lambda's SQS event."""
        entries = []
        for index in range(size):
            self.sent += 1
            body = json.dumps({**self.template, "id": f"evt_{prefix}_{self.sent:06d}"})
            attributes = {"source": {"DataType": "String", "StringValue": SOURCE}}
            entries.append({"Id": str(index), "MessageBody": body, "MessageAttributes": attributes})
        self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
        messages: list[dict[str, Any]] = []
        while len(messages) < size:
            got = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=size - len(messages),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not got:
                raise RuntimeError(f"queue returned {len(messages)} of {size} messages just sent")
            messages.extend(got)
        return {"Records": [lambda_sqs_record(m, self.queue_arn, REGION) for m in messages]}

    def delete(self, event: dict[str, Any]) -> None:
        """What Lambda's event source does with a fully acknowledged batch."""
        entries = [{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(event["Records"])]
        self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)


# -- the two dispatchers ----------------------------------------------------------------------------


class NaiveDispatcher:
    """The baseline: what a first, straightforward handler does, one record after another.

    Per record: read the secret from Secrets Manager, map with the same mapping, sign, and POST on
    a new connection (a PoolManager per call). No cache, no pool, no idempotency table.
    """

    def __init__(self, mapping: MappingConfig, secretsmanager: Any, secret_id: str, base_url: str) -> None:
        self.mapping = mapping
        self.secretsmanager = secretsmanager
        self.secret_id = secret_id
        self.url = f"{base_url}/request"
        self.secret_reads = 0
        # Counts the API calls botocore actually makes, not our loop's idea of them.
        secretsmanager.meta.events.register("before-call.secrets-manager.GetSecretValue", self._count_read)

    def _count_read(self, **kwargs: Any) -> None:
        self.secret_reads += 1

    def dispatch_batch(self, event: dict[str, Any]) -> None:
        for record in event["Records"]:
            source = record["messageAttributes"]["source"]["stringValue"]
            mapped = self.mapping.map_event(source, json.loads(record["body"]))
            secret = json.loads(self.secretsmanager.get_secret_value(SecretId=self.secret_id)["SecretString"])
            payload = wire.dump_bytes(mapped.body)
            headers = {
                "API-Version": self.mapping.api_version,
                "User-Agent": USER_AGENT,
                "Idempotency-Key": mapped.idempotency_key,
                **signing.signed_headers(secret["apiKey"], secret["signatureSecret"], payload),
            }
            pool = urllib3.PoolManager()
            try:
                response = pool.request("POST", self.url, body=payload, headers=headers, retries=False)
            finally:
                pool.clear()
            if response.status != 201:
                raise RuntimeError(f"naive dispatcher: Humanos answered {response.status}")


def _real_dispatch(dispatcher: Dispatcher, event: dict[str, Any]) -> float:
    """Seconds spent in ``dispatch_batch``; every record must be acknowledged."""
    started = time.perf_counter()
    response = dispatcher.dispatch_batch(event, LocalContext(60))
    elapsed = time.perf_counter() - started
    if response.get("batchItemFailures"):
        raise RuntimeError(f"dispatcher reported failures: {response['batchItemFailures']}")
    return elapsed


def _naive_dispatch(naive: NaiveDispatcher, event: dict[str, Any]) -> float:
    started = time.perf_counter()
    naive.dispatch_batch(event)
    return time.perf_counter() - started


# -- 1. a batch against a slow Humanos ------------------------------------------------------------


def _latency_batches(
    stack: _Stack, sandbox: Sandbox, dispatcher: Dispatcher, modelled: Dispatcher, naive: NaiveDispatcher
) -> dict[str, Any]:
    # Warm all (secret cached, connections open, boto3 clients built) before the latency is on.
    for prefix, run in (
        ("warm_real", lambda e: _real_dispatch(dispatcher, e)),
        ("warm_modelled", lambda e: _real_dispatch(modelled, e)),
        ("warm_naive", naive.dispatch_batch),
    ):
        event = stack.batch(prefix)
        run(event)
        stack.delete(event)
    sandbox.inject(Fault.latency(LATENCY_SECONDS), method="POST")
    variants = ("real", "naive", "single", "modelled", "modelled_single")
    times: dict[str, list[float]] = {which: [] for which in variants}
    bursts: list[float] = []
    dynamodb = stack.session.client("dynamodb")
    try:
        for round_ in range(LATENCY_BATCHES):
            # Rotate which goes first, so drift hits all alike.
            shift = round_ % len(variants)
            for which in variants[shift:] + variants[:shift]:
                event = stack.batch(f"lat_{which}", 1 if which.endswith("single") else BATCH_SIZE)
                if which == "naive":
                    times[which].append(_naive_dispatch(naive, event))
                else:
                    times[which].append(_real_dispatch(modelled if which.startswith("modelled") else dispatcher, event))
                stack.delete(event)
            bursts.append(_dynamodb_burst(dynamodb, round_))
    finally:
        sandbox.clear_faults()
    real_s, naive_s, single_s, modelled_s, modelled_single_s = (statistics.median(times[which]) for which in variants)
    return {
        "batch10_latency100ms_store_modelled_ms_median": round(modelled_s * 1e3, 1),
        "batch10_latency100ms_store_modelled_vs_naive_speedup": round(naive_s / modelled_s, 2),
        "batch10_vs_batch1_ratio_store_modelled": round(modelled_s / modelled_single_s, 2),
        "batch10_latency100ms_real_ms_median": round(real_s * 1e3, 1),
        "batch10_latency100ms_naive_ms_median": round(naive_s * 1e3, 1),
        "batch10_latency100ms_vs_naive_speedup": round(naive_s / real_s, 2),
        "batch1_latency100ms_real_ms_median": round(single_s * 1e3, 1),
        "batch10_vs_batch1_ratio": round(real_s / single_s, 2),
        "moto_dynamodb_10_concurrent_puts_ms_median": round(statistics.median(bursts) * 1e3, 1),
        "batch10_latency100ms_batches_per_variant": LATENCY_BATCHES,
    }


# -- 2. own cost per event ------------------------------------------------------------------------


def _own_cost(dispatcher: Dispatcher, event: dict[str, Any], api_key: str, secret: str) -> dict[str, Any]:
    messages = parse_batch(event)
    size = len(messages)

    def prepare() -> list[Outcome]:
        outcomes = [Outcome(message=m) for m in messages]
        for outcome in outcomes:
            dispatcher._prepare(outcome)
        return outcomes

    prepared = prepare()
    if any(not o.requests for o in prepared):
        raise RuntimeError("own-cost event did not map")
    bodies = [o.requests[0].body for o in prepared if o.requests]
    payloads = [wire.dump_bytes(b) for b in bodies]
    for outcome in prepared:  # as after a successful send, so the log lines carry the same fields
        outcome.kind, outcome.request_ids, outcome.humanos_seconds = CREATED, ["req_0123456789abcdef"], 0.1012
    source_bodies = [json.loads(m.body) for m in messages]

    def partial_response() -> None:
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        process_partial_response(event=event, record_handler=lambda record: None, processor=processor)

    per_batch = {
        "parse_batch": best_per_call(lambda: parse_batch(event), 500),
        "prepare_outcome_json_identity_map": best_per_call(prepare, 100),
        "lanes": best_per_call(lambda: dispatcher._lanes(prepared), 1000),
        "idempotency_body_hash": best_per_call(lambda: [body_hash(b) for b in bodies], 300),
        "dump_bytes": best_per_call(lambda: [wire.dump_bytes(b) for b in bodies], 300),
        "signed_headers": best_per_call(lambda: [signing.signed_headers(api_key, secret, p) for p in payloads], 300),
        "report_log_lines": best_per_call(lambda: dispatcher._report(prepared), 100),
        "partial_response": best_per_call(partial_response, 300),
    }
    breakdown = {name: round(seconds / size * 1e6, 1) for name, seconds in per_batch.items()}
    map_only = best_per_call(lambda: [dispatcher.mapping.map_event(SOURCE, b) for b in source_bodies], 100)
    return {
        "own_cost_us_per_event": round(sum(per_batch.values()) / size * 1e6, 1),
        "own_cost_us_per_event_breakdown": breakdown,
        "own_cost_of_which_map_event_us": round(map_only / size * 1e6, 1),
    }


# -- 3. secret reads and throughput over 1,000 events ---------------------------------------------


def _volume(stack: _Stack, settings: Settings, naive: NaiveDispatcher, logger: Logger) -> dict[str, Any]:
    reset_default_pool()  # a cold container: no open connections
    dynamodb_calls = [0]

    def count_dynamodb_call(**kwargs: Any) -> None:
        dynamodb_calls[0] += 1

    # Registered on the session before the dispatcher builds its clients, so only theirs are counted.
    stack.session.events.register("before-call.dynamodb", count_dynamodb_call)
    dispatcher = wiring.dispatcher(settings, session=stack.session, logger=logger)
    credentials = dispatcher.sender.client.credentials
    if not isinstance(credentials, SecretsManagerCredentials):
        raise RuntimeError(f"expected the dispatcher to read Secrets Manager, got {credentials!r}")
    reads_before = naive.secret_reads
    real_s = naive_s = 0.0
    try:
        for _ in range(VOLUME_BATCHES):
            event = stack.batch("vol_real")
            real_s += _real_dispatch(dispatcher, event)
            stack.delete(event)
            event = stack.batch("vol_naive")
            naive_s += _naive_dispatch(naive, event)
            stack.delete(event)
        fetches = credentials.fetch_count
    finally:
        dispatcher.close()
        stack.session.events.unregister("before-call.dynamodb", count_dynamodb_call)
    events = VOLUME_BATCHES * BATCH_SIZE
    return {
        "secrets_manager_reads_per_1000_events_real": round(fetches * 1000 / events),
        "secrets_manager_reads_per_1000_events_naive": round((naive.secret_reads - reads_before) * 1000 / events),
        "moto_no_latency_real_us_per_event": round(real_s / events * 1e6, 1),
        "moto_no_latency_naive_us_per_event": round(naive_s / events * 1e6, 1),
        "moto_no_latency_vs_naive_speedup": round(naive_s / real_s, 2),
        "dynamodb_calls_per_event_real": round(dynamodb_calls[0] / events, 2),
        "moto_dynamodb_put_item_ms_median": round(_dynamodb_call_ms(stack), 2),
        "volume_events_per_variant": events,
    }


def _dynamodb_burst(dynamodb: Any, round_: int) -> float:
    """Seconds for ``BATCH_SIZE`` put_item calls sent to moto at once, as a batch's lanes send them."""
    with ThreadPoolExecutor(max_workers=BATCH_SIZE) as pool:
        started = time.perf_counter()
        items = [{"id": {"S": f"bench-burst-{round_}-{n}"}} for n in range(BATCH_SIZE)]
        list(pool.map(lambda item: dynamodb.put_item(TableName="idempotency", Item=item), items))
        return time.perf_counter() - started


def _dynamodb_call_ms(stack: _Stack) -> float:
    """One DynamoDB call on the moto server (see ``dynamodb_calls_per_event_real``; the naive makes none)."""
    dynamodb = stack.session.client("dynamodb")
    times = []
    for n in range(30):
        started = time.perf_counter()
        dynamodb.put_item(TableName="idempotency", Item={"id": {"S": f"bench-probe-{n}"}})
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


# -- run --------------------------------------------------------------------------------------------


def run() -> dict[str, Any]:
    moto = MotoServer(own_process=True).start()
    sandbox = Sandbox(tolerance_seconds=3600).start()
    devnull = open(os.devnull, "w")  # noqa: SIM115 - closed in finally
    dispatcher: Dispatcher | None = None
    try:
        env = {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_SESSION_TOKEN": "bench",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": moto.endpoint_url,
            "POWERTOOLS_SERVICE_NAME": "humanos-bridge",
            "POWERTOOLS_METRICS_NAMESPACE": "HumanosBridge",
        }
        with _environment(env):
            stack = _Stack(moto.endpoint_url, sandbox)
            settings = Settings(
                humanos_base_url=sandbox.base_url,
                humanos_secret_id=stack.secret_arn,
                mapping_file=str(MAPPING),
                idempotency_table="idempotency",
                request_queue_url=stack.queue_url,
                dead_letter_queue_url=stack.dlq_url,
                rate_limit_per_minute=RATE_LIMIT_PER_MINUTE,
            )
            load_mapping_cached.cache_clear()
            reset_default_pool()
            # Log lines go to /dev/null: their cost stays in, the terminal stays readable.
            logger = Logger(service="humanos-bridge", stream=devnull)
            dispatcher = wiring.dispatcher(settings, session=stack.session, logger=logger)
            modelled = wiring.dispatcher(
                settings, session=stack.session, logger=logger, persistence=ModelledPersistence(STORE_LATENCY_SECONDS)
            )
            naive = NaiveDispatcher(
                load_mapping(MAPPING), stack.session.client("secretsmanager"), stack.secret_arn, sandbox.base_url
            )
            try:
                figures = _latency_batches(stack, sandbox, dispatcher, modelled, naive)
            finally:
                modelled.close()
            figures.update(_own_cost(dispatcher, stack.batch("own"), sandbox.api_key, sandbox.signature_secret))
            dispatcher.close()
            dispatcher = None
            volume = _volume(stack, settings, naive, logger)
            figures.update(volume)
            figures["own_cost_share_of_no_latency_dispatch"] = round(
                figures["own_cost_us_per_event"] / volume["moto_no_latency_real_us_per_event"], 3
            )
            created = len(sandbox.created)
    finally:
        if dispatcher is not None:
            dispatcher.close()
        devnull.close()
        sandbox.stop()
        moto.stop()
        load_mapping_cached.cache_clear()
        reset_default_pool()
    # real, naive: warm-up, latency and volume batches; modelled: warm-up and latency; + the 1-record batches.
    expected = (2 * (1 + LATENCY_BATCHES + VOLUME_BATCHES) + 1 + LATENCY_BATCHES) * BATCH_SIZE + 2 * LATENCY_BATCHES
    if created != expected:
        raise RuntimeError(f"the sandbox created {created} requests, expected {expected} (one per event)")
    figures["settings"] = (
        f"RATE_LIMIT_PER_MINUTE={RATE_LIMIT_PER_MINUTE} (token bucket off the critical path), "
        "every record of a batch in flight at once, metrics off, logs to /dev/null, moto in a child process"
    )
    figures["note"] = (
        "real = wiring.dispatcher built once and warm; naive = per record: get_secret_value, map, sign, "
        "POST on a new connection, sequential, no idempotency table; medians over alternating batches "
        "(real 10, naive 10, real 1, modelled 10, modelled 1; modelled = the real dispatcher with its idempotency "
        f"store at {STORE_LATENCY_SECONDS * 1e3:g} ms per call, calls overlapping as on DynamoDB). "
        "moto_no_latency_* figures are bound by moto's own CPU time (the real "
        "dispatcher makes dynamodb_calls_per_event_real DynamoDB calls per event, the naive none), not by the bridge"
    )
    return figures
