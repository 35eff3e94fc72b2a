"""Cold start, measured on the artifact: each function as ``sam build`` packages it, in fresh python3.13 processes.

Each sample is a new execution environment of the local stack (``runtime_api.ExecutionEnvironment``):
``python3.13 -S -m awslambdaric app.lambda_handler`` in the function's build folder, with only that
folder, its layers (``/opt/python``) and the runtime's own packages on the path, Lambda's environment
(``PYTHONDONTWRITEBYTECODE=1``: /var/task and /opt are read-only, so nothing compiled is kept), pointed
at moto and the Humanos sandbox. Two figures per sample:

- **init**: process start to the first ``/next``, Lambda's ``Init Duration`` (importing the handler);
- **init + first invocation**: process start to the first response. The first invocation builds the
  services (settings, boto3 clients, the secret fetch, the mapping) and does real work: ingest answers
  a signed ``POST /events/crm`` (queued in moto), the dispatcher an SQS batch of that one event (signed
  ``POST /request`` to the sandbox, idempotency record in moto), the receiver a Humanos webhook sealed and
  signed with the stack's webhook secrets (its key derived, claimed, published to the bus in moto).

Both are divided by the wall time of ``python3.13 -S -c "import boto3"`` with the same runtime packages
on the path, measured in the same rounds, interleaved, so that the ratios hold on a busy machine.
Peak memory is the ``REPORT`` line's ``Max Memory Used`` (VmHWM) after the first invocation.

The ``*_precompiled`` figures run copies of the same build with bytecode written beside the sources
(``compileall --invalidation-mode unchecked-hash``): ``own_code`` only ``humanos_bridge`` and ``app.py``,
``layer`` every ``.py`` of ``/var/task`` and ``/opt/python``. Since ``layers/humanos/Makefile`` ships the
layer compiled, they only add ``app.py``'s bytecode: they stay to show that nothing is left to gain there.
The ``*_collector_running`` figures run a copy whose handler imports with the garbage collector running, as
any module does (``humanos_bridge.cold_start`` made a no-op): what pausing it saves, measured in the same rounds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from humanos_bridge_local.http_gateway import Route, apigw_v2_event
from humanos_bridge_local.lambda_runtime import lambda_sqs_record
from humanos_bridge_local.runtime_api import ExecutionEnvironment, FunctionSpec
from humanos_bridge_local.sandbox.webhook_crypto import seal
from humanos_bridge_local.sandbox.webhook_events import dashboard_test_event, iso
from humanos_bridge_local.senders import sender_auth, signed_headers
from humanos_bridge_local.stack import DISPATCHER, INGEST, RECEIVER, REGION, ROOT, LocalStack, StackOptions

#: Fresh processes per variant; every variant runs once per round, interleaved with the baseline.
ROUNDS = 7
FUNCTIONS = (INGEST, DISPATCHER, RECEIVER)
FIGURE_NAMES = {INGEST: "ingest", DISPATCHER: "dispatcher", RECEIVER: "receiver"}
SOURCE = "crm"


@dataclasses.dataclass(frozen=True)
class Variant:
    """A copy of the build, changed: what it precompiles (relative to the function's folder and to
    ``/opt/python``), and whether the handler's imports run with the garbage collector paused, as shipped."""

    precompile: tuple[str, ...] = ()
    collector_paused: bool = True


VARIANTS: dict[str, Variant | None] = {
    "": None,  # as sam build ships it: the layer compiled by its Makefile, app.py not
    "own_code_precompiled": Variant(precompile=("humanos_bridge",)),
    "layer_precompiled": Variant(precompile=(".",)),
    "collector_running": Variant(collector_paused=False),
}
#: ``humanos_bridge/cold_start.py`` in the ``collector_running`` variant.
_COLLECTOR_RUNNING = '''"""The benchmark's variant: the handler's imports run with the garbage collector as usual."""
import contextlib


def collector_paused():
    return contextlib.nullcontext()
'''


@dataclasses.dataclass
class Sample:
    init_ms: float
    first_response_ms: float
    peak_rss_mb: float


def run() -> dict[str, Any]:
    options = StackOptions(port=0, write_endpoints=False, parameters={"RateLimitPerMinute": "6000"})
    with LocalStack(options) as stack, tempfile.TemporaryDirectory(prefix="bench-footprint-") as scratch:
        assert stack.poller is not None
        stack.poller.stop()  # the samples below take the queued events themselves
        specs = {
            (function, variant): _spec(stack, function, changes, Path(scratch) / f"{function}-{variant}")
            for function in FUNCTIONS
            for variant, changes in VARIANTS.items()
        }
        python, runtime_dir = stack.python, stack.runtime_dir
        baseline: list[float] = []
        mapping_imports: list[float] = []
        samples: dict[tuple[str, str], list[Sample]] = {key: [] for key in specs}
        for _ in range(ROUNDS):
            baseline.append(_import_boto3_ms(python, runtime_dir))
            mapping_imports.append(_mapping_import_ms(python, specs[(DISPATCHER, "")], runtime_dir))
            for variant in VARIANTS:
                # The dispatcher's batch is the event this round's ingest sample queued.
                samples[(INGEST, variant)].append(_cold_start(specs[(INGEST, variant)], _ingest_event(stack), 202))
                samples[(DISPATCHER, variant)].append(_cold_start(specs[(DISPATCHER, variant)], _sqs_batch(stack), 0))
                receiver = _cold_start(specs[(RECEIVER, variant)], _webhook_event(stack), 200)
                samples[(RECEIVER, variant)].append(receiver)
        assert stack.sandbox is not None
        created = sum(c.method == "POST" and c.path == "/request" and c.status == 201 for c in stack.sandbox.calls)
        if created != ROUNDS * len(VARIANTS):
            raise RuntimeError(f"the dispatcher samples created {created} requests, not {ROUNDS * len(VARIANTS)}")
    figures = _figures(baseline, samples)
    figures["mapping_engine_import_ms_median"] = round(statistics.median(mapping_imports), 1)
    return figures


def _spec(stack: LocalStack, function: str, variant: Variant | None, folder: Path) -> FunctionSpec:
    """The stack's spec of ``function``; for a variant, on a copy of the build changed as it says."""
    spec = stack._spec(function)
    if variant is None:
        return spec
    code_dir = shutil.copytree(spec.code_dir, folder / "task")
    opt_dir = shutil.copytree(spec.opt_dir, folder / "opt")  # follows the layer symlinks: real copies
    if not variant.collector_paused:
        cold_start = opt_dir / "python" / "humanos_bridge" / "cold_start.py"
        cold_start.write_text(_COLLECTOR_RUNNING, encoding="utf-8")
        for compiled in (cold_start.parent / "__pycache__").glob("cold_start.*.pyc"):
            compiled.unlink()  # the Makefile's bytecode is unchecked: it would still run the shipped module
    if variant.precompile:
        targets = [str(code_dir), *(str(opt_dir / "python" / part) for part in variant.precompile)]
        command = [stack.python, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash"]
        subprocess.run([*command, *targets], check=True, capture_output=True)
    return dataclasses.replace(spec, code_dir=code_dir, opt_dir=opt_dir)


def _import_boto3_ms(python: str, runtime_dir: Path) -> float:
    environment = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(runtime_dir), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.monotonic()
    subprocess.run([python, "-S", "-c", "import boto3"], env=environment, check=True)
    return (time.monotonic() - started) * 1000


def _mapping_import_ms(python: str, spec: FunctionSpec, runtime_dir: Path) -> float:
    """What importing the mapping engine adds to a cold start: ``-X importtime``'s cumulative figure for it,
    after ``import boto3`` (which every function does first, and which brings jmespath)."""
    path = os.pathsep.join([str(spec.opt_dir / "python"), str(runtime_dir)])
    environment = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [python, "-S", "-X", "importtime", "-c", "import boto3, humanos_bridge.mapping"]
    lines = subprocess.run(command, env=environment, check=True, capture_output=True, text=True).stderr.splitlines()
    mapping = next(line for line in lines if line.rstrip().endswith("| humanos_bridge.mapping"))
    return int(mapping.split("|")[1]) / 1000


def _cold_start(spec: FunctionSpec, event: dict[str, Any], status: int) -> Sample:
    """One fresh environment: start it, invoke it once, check the answer, read its figures."""
    reports: list[str] = []
    environment = ExecutionEnvironment(spec, _collect_reports(reports))
    started = time.monotonic()
    environment.start()
    try:
        answer = json.loads(environment.invoke(json.dumps(event).encode()))
        first_response = time.monotonic() - started
    finally:
        environment.stop()
    _check(spec.name, answer, status)
    assert environment.init_seconds is not None
    peak = next(float(part.split(":")[1].split()[0]) for part in reports[0].split("\t") if "Max Memory Used" in part)
    return Sample(environment.init_seconds * 1000, first_response * 1000, peak)


def _collect_reports(into: list[str]) -> Callable[[str, str], None]:
    lock = threading.Lock()

    def on_output(function: str, line: str) -> None:
        if line.startswith("REPORT "):
            with lock:
                into.append(line)

    return on_output


def _check(function: str, answer: Any, status: int) -> None:
    """A sample only counts if the invocation did the real work (no error path measured by mistake)."""
    if function in (INGEST, RECEIVER) and answer.get("statusCode") != status:
        raise RuntimeError(f"{function} answered {answer.get('statusCode')}: {answer.get('body')}")
    if function == DISPATCHER and answer != {"batchItemFailures": []}:
        raise RuntimeError(f"{function} answered {answer}")


def _ingest_event(stack: LocalStack) -> dict[str, Any]:
    """A signed ``POST /events/crm`` of the sample business event, with a new event id, as API Gateway sends it."""
    assert stack.mapping is not None
    event = json.loads((ROOT / "events" / "business" / "crm-contact-created.json").read_text(encoding="utf-8"))
    event["id"] = f"evt_bench_{uuid.uuid4().hex[:12]}"
    body = json.dumps(event).encode()
    auth = sender_auth(stack.mapping, SOURCE)
    headers = signed_headers(auth.config or auth.scheme, stack.sender_secrets[auth.secret_key][0], body)
    return apigw_v2_event(
        method="POST",
        raw_path=f"/events/{SOURCE}",
        raw_query="",
        headers=[*headers.items(), ("User-Agent", "bench"), ("Content-Length", str(len(body)))],
        body=body,
        route=Route("POST", "/events/{source}"),
        path_parameters={"source": SOURCE},
        source_ip="127.0.0.1",
        domain_name="localhost",
    )


def _webhook_event(stack: LocalStack) -> dict[str, Any]:
    """A Humanos webhook (the dashboard's test event, about a new request id), sealed and signed with the stack's
    webhook secrets as Humanos seals it, as API Gateway sends it to ``POST /humanos/webhooks``."""
    assert stack.webhook_secrets is not None
    event = dashboard_test_event(uuid.uuid4().hex[:24], "2026-09-01", iso(datetime.now(UTC)))
    sealed = seal(event, stack.webhook_secrets)
    return apigw_v2_event(
        method="POST",
        raw_path="/humanos/webhooks",
        raw_query="",
        headers=[*sealed.headers.items(), ("User-Agent", "bench"), ("Content-Length", str(len(sealed.body)))],
        body=sealed.body,
        route=Route("POST", "/humanos/webhooks"),
        path_parameters={},
        source_ip="127.0.0.1",
        domain_name="localhost",
    )


def _sqs_batch(stack: LocalStack) -> dict[str, Any]:
    """The oldest queued event as a batch of one record, as Lambda's SQS event source delivers it."""
    sqs = stack.client("sqs")
    answer = sqs.receive_message(
        QueueUrl=stack.request_queue_url,
        MaxNumberOfMessages=1,
        AttributeNames=["All"],
        MessageAttributeNames=["All"],
        VisibilityTimeout=300,
        WaitTimeSeconds=1,
    )
    messages = answer.get("Messages", [])
    if not messages:
        raise RuntimeError("no queued event for the dispatcher: the ingest sample queued nothing")
    attributes = sqs.get_queue_attributes(QueueUrl=stack.request_queue_url, AttributeNames=["QueueArn"])
    queue_arn = str(attributes["Attributes"]["QueueArn"])
    return {"Records": [lambda_sqs_record(messages[0], queue_arn, REGION)]}


def _figures(baseline: list[float], samples: dict[tuple[str, str], list[Sample]]) -> dict[str, Any]:
    """Medians; each ratio is the median of the rounds' own ratios (a sample over its round's baseline)."""
    figures: dict[str, Any] = {
        "note": (
            f"fresh python3.13 process per sample, sam build output (host arch), /opt = layers, awslambdaric, "
            f"PYTHONDONTWRITEBYTECODE=1, moto + Humanos sandbox; medians of {ROUNDS} interleaved rounds. "
            "init = process start -> first /next (Lambda's Init Duration); init_plus_first_invocation = process "
            "start -> first response (ingest: signed POST /events/crm, queued; dispatcher: SQS batch of that event, "
            "sent to the sandbox; receiver: a sealed, signed Humanos webhook, published); ratios to the wall time "
            "of `python3.13 -S -c 'import boto3'` (runtime packages on PYTHONPATH) of the same rounds; "
            "peak_rss = REPORT Max Memory Used after the first invocation; "
            "*_precompiled = the same build with .pyc beside the sources (unchecked-hash); *_collector_running = "
            "the same build with the handler's imports run with the garbage collector running (cold_start a no-op)"
        ),
        "rounds": ROUNDS,
        "import_boto3_ms_median": round(statistics.median(baseline), 1),
    }
    for (function, variant), found in samples.items():
        name = FIGURE_NAMES[function]
        suffix = f"_{variant}" if variant else ""
        if not variant:
            figures[f"{name}_init_ms_median"] = round(statistics.median(s.init_ms for s in found), 1)
            figures[f"{name}_init_plus_first_invocation_ms_median"] = round(
                statistics.median(s.first_response_ms for s in found), 1
            )
            figures[f"{name}_peak_rss_mb_median"] = statistics.median(s.peak_rss_mb for s in found)
        init_ratio = statistics.median(s.init_ms / b for s, b in zip(found, baseline, strict=True))
        first_ratio = statistics.median(s.first_response_ms / b for s, b in zip(found, baseline, strict=True))
        figures[f"{name}_init_vs_import_boto3_ratio{suffix}"] = round(init_ratio, 2)
        figures[f"{name}_init_plus_first_invocation_vs_import_boto3_ratio{suffix}"] = round(first_ratio, 2)
    return figures
