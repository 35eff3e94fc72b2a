"""The whole bridge in one process on loopback: moto, the sandbox, the ingest API and the dispatcher poller.

Start-up, in order:

1. moto in server mode on a free port, and the resources ``template.yaml`` declares, created from the
   template's own properties (``resources.TemplateResources``);
2. the Humanos sandbox with generated credentials (or a real Humanos URL and credentials), stored as
   the HumanosSecret value; generated sender secrets stored as the SenderSecret value;
3. each function's environment exactly as the template sets it (Globals merged), pointed at moto; the
   function modules imported and their services built once (the cold start), each under its own
   variables;
4. the dispatcher driven by ``SqsEventSource`` in a poller thread (long polls, the template's batch
   size and window), and the ingest handler behind ``HttpGateway`` with the template's routes.

The functions build their services from ``os.environ`` once per process, so one process holds one
local stack at a time; ``stop()`` restores the environment and clears their caches.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import urllib3

from humanos_bridge.client import reset_default_pool
from humanos_bridge.errors import ConfigError
from humanos_bridge.mapping import MappingConfig, load_mapping, load_mapping_cached
from humanos_bridge_local import endpoints
from humanos_bridge_local.flow import FlowEvent, FlowRecorder
from humanos_bridge_local.http_gateway import HttpGateway, routes_from_events
from humanos_bridge_local.lambda_runtime import LocalContext, SqsEventSource
from humanos_bridge_local.resources import TemplateResources
from humanos_bridge_local.sandbox import RecordedCall, Sandbox
from humanos_bridge_local.senders import generate_sender_secrets

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
INGEST, DISPATCHER = "IngestFunction", "DispatcherFunction"
#: Seconds of each long poll: bounds how long stop() waits for the poller.
LONG_POLL_SECONDS = 1
#: Keeps boto3 inside the process's own moto: fake credentials, a fixed region, no metadata lookups.
_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
    # No X-Ray daemon and no EMF reader here: Lambda's stdout would carry metrics, this terminal must not.
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
}


@dataclass
class StackOptions:
    """What ``humanos-bridge local`` (and ``demo``, and the tests) can choose."""

    port: int = 8080
    host: str = "127.0.0.1"
    template: Path = ROOT / "template.yaml"
    mapping: Path | None = None
    state_dir: Path | None = None
    batch_size: int | None = None
    batching_window: float | None = None
    #: Real Humanos instead of the sandbox (all three, or none).
    humanos_url: str | None = None
    humanos_api_key: str | None = None
    humanos_signature_secret: str | None = None
    #: Other template parameter overrides (``MaxReceiveCount`` ...).
    parameters: dict[str, str] = field(default_factory=dict)
    #: Write the endpoints file the operator commands read (off for parallel test stacks).
    write_endpoints: bool = True


@dataclass
class Poller:
    """The dispatcher's event source in a thread: poll, deliver, repeat until stopped."""

    source: SqsEventSource
    on_error: Callable[[str], None]
    stop_event: threading.Event = field(default_factory=threading.Event)
    busy: threading.Event = field(default_factory=threading.Event)
    batches: int = 0
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="dispatcher-poller", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                messages = self.source.receive(wait_seconds=LONG_POLL_SECONDS)
                if not messages:
                    continue
                self.busy.set()
                try:
                    result = self.source.deliver(messages)
                finally:
                    self.busy.clear()
                self.batches += 1
                if result.error:
                    self.on_error(f"dispatcher invocation failed, batch left on the queue: {result.error}")
            except Exception as exc:  # keep polling, as Lambda's event source does, but say so
                if self.stop_event.is_set():
                    return
                self.on_error(f"poller: {type(exc).__name__}: {exc}")
                self.stop_event.wait(1.0)

    def stop(self) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(LONG_POLL_SECONDS + 35)
            self.thread = None


def load_function(code_dir: Path) -> ModuleType:
    """Import ``<code_dir>/app.py`` once, as ``function_<dir>_app`` (the name the tests use too)."""
    module_name = f"function_{code_dir.name}_app"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, code_dir / "app.py")
    if spec is None or spec.loader is None:
        raise ConfigError(f"cannot import {code_dir / 'app.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def cached_factories(module: ModuleType) -> list[Any]:
    """The module's once-per-container builders (``functools.lru_cache`` functions of no arguments)."""
    return [value for value in vars(module).values() if callable(getattr(value, "cache_clear", None))]


@contextlib.contextmanager
def scoped_environment(values: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` applied, restored afterwards."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class EmfFilter(io.TextIOBase):
    """Standard output without Powertools' EMF metric lines (``{"_aws": ...}``).

    In Lambda those lines go to CloudWatch Logs, which turns them into metrics; ``single_metric``
    prints them whatever POWERTOOLS_METRICS_DISABLED says. A terminal has no use for them.
    """

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._state = threading.local()

    def write(self, text: str) -> int:
        if text.startswith('{"_aws":'):
            self._state.dropped = True  # print() sends the newline as a second write
            return len(text)
        if text == "\n" and getattr(self._state, "dropped", False):
            self._state.dropped = False
            return len(text)
        self._state.dropped = False
        return int(self.stream.write(text))

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return bool(self.stream.isatty())


class LocalStack:
    """The bridge on one machine. ``start()`` returns once the HTTP endpoint accepts requests."""

    def __init__(
        self,
        options: StackOptions,
        *,
        on_event: Callable[[FlowEvent], None] | None = None,
        on_message: Callable[[str], None] | None = None,
        on_humanos_call: Callable[[RecordedCall], None] | None = None,
    ) -> None:
        self.options = options
        self._say = on_message or (lambda text: None)
        self.recorder = FlowRecorder(on_event=self._on_flow(on_event), on_other=self._say)
        self._on_humanos_call = on_humanos_call
        self.moto: Any = None
        self.sandbox: Sandbox | None = None
        self.resources: TemplateResources | None = None
        self.gateway: HttpGateway | None = None
        self.poller: Poller | None = None
        self.sender_secrets: dict[str, list[str]] = {}
        self.mapping: MappingConfig | None = None
        self.functions: dict[str, ModuleType] = {}
        self.environments: dict[str, dict[str, str]] = {}
        self.ready_seconds: float | None = None
        self.humanos_base_url = ""
        self._saved_env: dict[str, str | None] = {}
        self._saved_handlers: list[logging.Handler] = []
        self._logger: logging.Logger | None = None
        self._started = False
        self._stdout: Any = sys.stdout

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> LocalStack:
        started = time.perf_counter()
        self._started = True
        self._stdout = sys.stdout
        sys.stdout = EmfFilter(sys.stdout)
        try:
            self._set_environment(_AWS_ENV)
            self._start_moto()
            self._start_humanos()
            self._create_resources()
            self._load_functions()
            self._start_poller()
            self._start_gateway()
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.perf_counter() - started
        if self.options.write_endpoints:
            endpoints.write_json(endpoints.endpoints_path(), self.endpoints())
        return self

    def stop(self) -> None:
        """Stop everything, restore the process's environment and logging. Safe to call twice."""
        if not self._started:
            return
        self._started = False
        if self.gateway is not None:
            self.gateway.stop()
        if self.poller is not None:
            self.poller.stop()
        self._unload_functions()
        if self.sandbox is not None:
            self.sandbox.stop()
        if self.moto is not None:
            self._reset_moto()
            self.moto.stop()
        self._restore_logging()
        if isinstance(sys.stdout, EmfFilter):
            sys.stdout = self._stdout
        self._restore_environment()
        if self.options.write_endpoints:
            self._remove_endpoints_file()

    def _unload_functions(self) -> None:
        """Close what the functions built (the dispatcher's worker pool) and forget it, for the next stack."""
        for module in self.functions.values():
            for factory in cached_factories(module):
                if factory.cache_info().currsize and hasattr(built := factory(), "close"):
                    built.close()
                factory.cache_clear()
        load_mapping_cached.cache_clear()
        reset_default_pool()

    def _restore_environment(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what it exposes --------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        assert self.gateway is not None
        return self.gateway.base_url

    @property
    def endpoint_url(self) -> str:
        return str(self.moto.endpoint_url)

    def physical(self, logical_id: str) -> str:
        assert self.resources is not None
        return self.resources.created[logical_id].ref

    @property
    def request_queue_url(self) -> str:
        return self.physical("RequestQueue")

    @property
    def dead_letter_queue_url(self) -> str:
        return self.physical("DeadLetterQueue")

    def client(self, service: str) -> Any:
        session = boto3.session.Session(region_name=REGION, **endpoints.LOCAL_CREDENTIALS)
        return session.client(service, endpoint_url=self.endpoint_url)

    def endpoints(self) -> dict[str, Any]:
        """What the operator commands need to find this stack (URLs and names, no secret values)."""
        return {
            "pid": os.getpid(),
            "apiUrl": self.api_url,
            "awsEndpointUrl": self.endpoint_url,
            "region": REGION,
            "requestQueueUrl": self.request_queue_url,
            "deadLetterQueueUrl": self.dead_letter_queue_url,
            "senderSecretArn": self.physical("SenderSecret"),
            "humanosSecretArn": self.physical("HumanosSecret"),
            "idempotencyTable": self.physical("IdempotencyTable"),
            "humanosBaseUrl": self.humanos_base_url,
            "mappingFile": self.environments[INGEST]["MAPPING_FILE"],
            "outcomesFile": str(endpoints.home() / endpoints.OUTCOMES_FILE),
        }

    def queue_depths(self) -> dict[str, int]:
        """Visible and in-flight messages of the request queue, and the DLQ's depth."""
        sqs = self.client("sqs")
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        queue = sqs.get_queue_attributes(QueueUrl=self.request_queue_url, AttributeNames=names)["Attributes"]
        dlq = sqs.get_queue_attributes(QueueUrl=self.dead_letter_queue_url, AttributeNames=names)["Attributes"]
        return {
            "visible": int(queue["ApproximateNumberOfMessages"]),
            "in_flight": int(queue["ApproximateNumberOfMessagesNotVisible"]),
            "dead_letters": int(dlq["ApproximateNumberOfMessages"]) + int(dlq["ApproximateNumberOfMessagesNotVisible"]),
        }

    def wait_until_drained(self, timeout: float = 30.0) -> bool:
        """Wait until the request queue holds nothing visible and the poller is idle; False on timeout.

        Messages waiting out a back-off stay in flight: they are not "drained", so callers that
        expect retries must wait for them explicitly.
        """
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            depths = self.queue_depths()
            idle = self.poller is not None and not self.poller.busy.is_set()
            if depths["visible"] == 0 and depths["in_flight"] == 0 and idle:
                # Twice in a row, a poll apart: a message received just now is in flight, not gone.
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= 0.3:
                    return True
            else:
                quiet_since = None
            time.sleep(0.1)
        return False

    # -- start-up steps ---------------------------------------------------------------------------

    def _set_environment(self, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _start_moto(self) -> None:
        from humanos_bridge_local.moto_server import MotoServer

        # Werkzeug logs one line per AWS call to stderr; the flow lines say what matters.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.moto = MotoServer().start()
        self._set_environment({"AWS_ENDPOINT_URL": self.endpoint_url})
        # moto keeps its accounts per process, not per server: start from an empty one.
        self._reset_moto()

    def _reset_moto(self) -> None:
        with contextlib.suppress(Exception):  # on the way down, a failed reset only leaves memory behind
            urllib3.request("POST", f"{self.endpoint_url}/moto-api/reset", timeout=5)

    def _start_humanos(self) -> None:
        options = self.options
        given = [options.humanos_url, options.humanos_api_key, options.humanos_signature_secret]
        if any(given):
            if not all(given):
                raise ConfigError(
                    "to use a real Humanos, give its URL, API key and signature secret together "
                    "(--humanos-url/--humanos-api-key/--humanos-signature-secret or HUMANOS_BASE_URL/"
                    "HUMANOS_API_KEY/HUMANOS_SIGNATURE_SECRET)"
                )
            assert options.humanos_url is not None
            self.humanos_base_url = options.humanos_url
            return
        stored = self._stored_state().get("sandbox", {})
        self.sandbox = Sandbox(
            api_key=stored.get("apiKey"),
            signature_secret=stored.get("signatureSecret"),
            on_call=self._on_humanos_call,
        )
        self.sandbox.start()
        self.humanos_base_url = self.sandbox.base_url

    def _humanos_secret(self) -> str:
        if self.sandbox is not None:
            return json.dumps({"apiKey": self.sandbox.api_key, "signatureSecret": self.sandbox.signature_secret})
        return json.dumps(
            {"apiKey": self.options.humanos_api_key, "signatureSecret": self.options.humanos_signature_secret}
        )

    def _create_resources(self) -> None:
        options = self.options
        overrides = dict(options.parameters)
        overrides["HumanosBaseUrl"] = self.humanos_base_url
        if options.batch_size is not None:
            overrides["BatchSize"] = str(options.batch_size)
        if options.batching_window is not None:
            overrides["BatchingWindowSeconds"] = f"{options.batching_window:g}"
        session = boto3.session.Session(region_name=REGION, **endpoints.LOCAL_CREDENTIALS)
        resources = TemplateResources(options.template, session, self.endpoint_url, parameter_overrides=overrides)
        self.resources = resources
        mapping_file = (
            str(options.mapping.resolve()) if options.mapping else resources.function_variable(INGEST, "MAPPING_FILE")
        )
        self.mapping = load_mapping(mapping_file)
        self.sender_secrets = self._stored_state().get("senders") or generate_sender_secrets(self.mapping)
        resources.secret_strings.update(
            HumanosSecret=self._humanos_secret(), SenderSecret=json.dumps(self.sender_secrets)
        )
        resources.create_all()
        for function in (INGEST, DISPATCHER):
            self.environments[function] = {**resources.function_environment(function), "MAPPING_FILE": mapping_file}
        self._save_state()

    def _load_functions(self) -> None:
        assert self.resources is not None
        shared = _shared(self.environments[INGEST], self.environments[DISPATCHER])
        # Powertools reads the service name and log level at import: set before the modules load.
        self._set_environment(shared)
        for function in (INGEST, DISPATCHER):
            code_dir = self.options.template.resolve().parent / str(
                self.resources.function_property(function, "CodeUri")
            )
            module = load_function(code_dir)
            self.functions[function] = module
            for factory in cached_factories(module):
                factory.cache_clear()
        load_mapping_cached.cache_clear()
        reset_default_pool()
        self._capture_logs(shared.get("POWERTOOLS_SERVICE_NAME", "service_undefined"))
        # The cold start: each function builds its services under its own variables, as in its own container.
        for function, module in self.functions.items():
            with scoped_environment(self.environments[function]):
                for factory in cached_factories(module):
                    factory()

    def _capture_logs(self, service: str) -> None:
        logger = logging.getLogger(service)
        self._logger = logger
        self._saved_handlers = list(logger.handlers)
        for handler in self._saved_handlers:
            logger.removeHandler(handler)
        logger.addHandler(self.recorder)

    def _restore_logging(self) -> None:
        logger, self._logger = self._logger, None
        if logger is None:
            return
        logger.removeHandler(self.recorder)
        for handler in self._saved_handlers:
            logger.addHandler(handler)
        self._saved_handlers = []

    def _start_poller(self) -> None:
        assert self.resources is not None
        module = self.functions[DISPATCHER]
        events = self.resources.function_property(DISPATCHER, "Events")
        sqs_events = [e["Properties"] for e in events.values() if e.get("Type") == "SQS"]
        if len(sqs_events) != 1:
            raise ConfigError(f"{DISPATCHER} must have exactly one SQS event in the template (found {len(sqs_events)})")
        mapping = sqs_events[0]
        queue = self._queue_for_arn(str(mapping["Queue"]))
        timeout = float(self.resources.function_property(DISPATCHER, "Timeout"))
        source = SqsEventSource(
            self.client("sqs"),
            queue,
            module.lambda_handler,
            batch_size=int(mapping.get("BatchSize", 10)),
            window_seconds=float(mapping.get("MaximumBatchingWindowInSeconds", 0)),
            function_timeout=timeout,
            function_name=DISPATCHER,
        )
        self.poller = Poller(source, on_error=self._say)
        self.poller.start()

    def _queue_for_arn(self, arn: str) -> str:
        assert self.resources is not None
        for physical in self.resources.created.values():
            if physical.attributes.get("Arn") == arn:
                return physical.ref
        raise ConfigError(f"the dispatcher's SQS event names {arn}, which is not a queue of the template")

    def _start_gateway(self) -> None:
        assert self.resources is not None
        module = self.functions[INGEST]
        routes = routes_from_events(self.resources.function_property(INGEST, "Events"))
        timeout = float(self.resources.function_property(INGEST, "Timeout"))

        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            try:
                return dict(module.lambda_handler(event, LocalContext(timeout, INGEST)))
            except Exception as exc:
                self._say(f"ingest invocation failed: {type(exc).__name__}")
                raise

        self.gateway = HttpGateway(routes, invoke, host=self.options.host, port=self.options.port)
        try:
            self.gateway.start()
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {self.options.host}:{self.options.port}: {exc.strerror}; choose another --port "
                "(0 = any free port)"
            ) from exc

    # -- flow, state ------------------------------------------------------------------------------

    def _on_flow(self, on_event: Callable[[FlowEvent], None] | None) -> Callable[[FlowEvent], None]:
        def handle(event: FlowEvent) -> None:
            if on_event is not None:
                on_event(event)
            if self.options.write_endpoints:
                recent = [e.as_dict() for e in self.recorder.events[-50:]]
                endpoints.write_json(endpoints.home() / endpoints.OUTCOMES_FILE, recent)

        return handle

    def _stored_state(self) -> dict[str, Any]:
        if self.options.state_dir is None:
            return {}
        path = self.options.state_dir / "secrets.json"
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}; delete it to start with new secrets") from exc
        return data if isinstance(data, dict) else {}

    def _save_state(self) -> None:
        if self.options.state_dir is None:
            return
        state: dict[str, Any] = {"senders": self.sender_secrets}
        if self.sandbox is not None:
            state["sandbox"] = {"apiKey": self.sandbox.api_key, "signatureSecret": self.sandbox.signature_secret}
        endpoints.write_json(self.options.state_dir / "secrets.json", state)

    def _remove_endpoints_file(self) -> None:
        """Remove the endpoints and outcomes files, unless another stack has written them since."""
        path = endpoints.endpoints_path()
        try:
            if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
                path.unlink()
                (endpoints.home() / endpoints.OUTCOMES_FILE).unlink(missing_ok=True)
        except (OSError, ValueError):
            pass


def _shared(first: Mapping[str, str], second: Mapping[str, str]) -> dict[str, str]:
    """Variables both functions set to the same value: safe in one process's ``os.environ``."""
    return {name: value for name, value in first.items() if second.get(name) == value}
