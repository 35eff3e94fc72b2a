"""The whole bridge on one machine, on loopback: moto, the sandbox, and the functions as ``sam build`` packages them.

Start-up, in order:

1. the build: ``sam build`` output for this machine and the python3.13 runtime's own packages, made
   once and reused until their inputs change (``packaging``), and an ``/opt`` folder holding the
   functions' layers as Lambda extracts them;
2. moto in server mode on a free port, and the resources ``template.yaml`` declares, created from the
   template's own properties (``resources.TemplateResources``);
3. the Humanos sandbox with generated credentials (or a real Humanos URL and credentials), stored as
   the HumanosSecret value; generated sender secrets stored as the SenderSecret value; the webhook
   secrets (given, kept in ``--state-dir``, or generated) stored as the WebhookSecret value and handed to
   the sandbox, which seals and signs its webhooks with them; and, local only, a rule on the webhook bus
   that copies every event to a queue (what ``events tail`` and the demo read);
4. each function in its own python3.13 processes under Lambda's runtime interface client
   (``runtime_api``): its build folder, its layers and the runtime's packages on the path, its
   environment exactly as the template sets it plus Lambda's reserved variables, pointed at moto.
   One execution environment each is started and initialised before the stack says it is ready;
5. the dispatcher driven by ``SqsEventSource`` in a poller thread (long polls, the template's batch
   size and window), and ``HttpGateway`` with the template's routes, each to its function: the ingest
   function's and the receiver's (``POST /humanos/webhooks``, where the sandbox then sends its webhooks).

What the functions print is read line by line (``flow.FlowRecorder``), as CloudWatch Logs would receive it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import urllib3

from humanos_bridge.core.errors import ConfigError
from humanos_bridge.core.masking import safe_id
from humanos_bridge.mapping import MappingConfig, load_mapping
from humanos_bridge_local import bus_events, endpoints, packaging, private_files
from humanos_bridge_local.flow import FlowEvent, FlowRecorder
from humanos_bridge_local.http_gateway import HttpGateway, routes_from_events
from humanos_bridge_local.lambda_runtime import SqsEventSource
from humanos_bridge_local.resources import TemplateResources
from humanos_bridge_local.runtime_api import FunctionError, FunctionSpec, LambdaFunction
from humanos_bridge_local.sandbox import Delivery, RecordedCall, Sandbox, WebhookSecrets
from humanos_bridge_local.sandbox.delivery import FAILED
from humanos_bridge_local.sandbox.validation import VersionError
from humanos_bridge_local.senders import generate_sender_secrets

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
INGEST, DISPATCHER, RECEIVER = "IngestFunction", "DispatcherFunction", "ReceiverFunction"
#: The functions the stack runs, each with the most execution environments it may start at once (Lambda would
#: scale further; each is a process here). The sandbox delivers webhooks one at a time: the receiver needs few.
FUNCTIONS = {INGEST: 4, DISPATCHER: 1, RECEIVER: 2}
#: Seconds of each long poll: bounds how long stop() waits for the poller.
LONG_POLL_SECONDS = 1
#: What the functions' boto3 needs to reach this stack's moto instead of AWS: fake credentials (Lambda
#: sets its role's as reserved variables) and the endpoint. The one addition to the template's environment.
_AWS_ACCESS = dict(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_EC2_METADATA_DISABLED="true",
)
#: The webhook secret's JSON fields, as the receiver reads them (and ``--state-dir`` keeps them).
WEBHOOK_SECRET_FIELDS = {
    "signature_secret": "signatureSecret",
    "encryption_secret": "encryptionSecret",
    "encryption_salt": "encryptionSalt",
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
    #: The Webhook Signature Secret, Encryption Secret (base64) and Encryption Salt of the Humanos dashboard.
    #: With the sandbox: each one not given is kept from ``state_dir``, else generated. With a real Humanos: all
    #: three, or none (the receiver then answers 503 to every webhook, as a deployed stack before its secret is
    #: filled).
    humanos_webhook_signature_secret: str | None = None
    humanos_webhook_encryption_secret: str | None = None
    humanos_webhook_encryption_salt: str | None = None
    #: The sandbox decides every new request with this outcome (``accept``, ``reject`` ...); None: on demand.
    auto_decide: str | None = None
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


class LocalStack:
    """The bridge on one machine. ``start()`` returns once the HTTP endpoint accepts requests."""

    def __init__(
        self,
        options: StackOptions,
        *,
        on_event: Callable[[FlowEvent], None] | None = None,
        on_message: Callable[[str], None] | None = None,
        on_humanos_call: Callable[[RecordedCall], None] | None = None,
        on_log_line: Callable[[str, str], None] | None = None,
    ) -> None:
        self.options = options
        self._say = on_message or (lambda text: None)
        self.recorder = FlowRecorder(on_event=self._on_flow(on_event), on_other=self._say)
        #: Every line the functions write, ``(function, line)``, EMF metric lines included (the recorder
        #: leaves those out): what CloudWatch Logs would receive.
        self._on_log_line = on_log_line
        self._on_humanos_call = on_humanos_call
        self.moto: Any = None
        self.sandbox: Sandbox | None = None
        self.resources: TemplateResources | None = None
        self.gateway: HttpGateway | None = None
        self.poller: Poller | None = None
        self.sender_secrets: dict[str, list[str]] = {}
        #: The receiver's webhook secrets (None: a real Humanos and none given, so the secret holds ``{}``).
        self.webhook_secrets: WebhookSecrets | None = None
        self.mapping: MappingConfig | None = None
        #: The mapping file as the user knows it: ``--mapping``, or the mappings layer's source file.
        self.mapping_source = Path()
        self.functions: dict[str, LambdaFunction] = {}
        self.environments: dict[str, dict[str, str]] = {}
        self.build: packaging.Build | None = None
        self.runtime_dir = Path()
        self.python = ""
        self.ready_seconds: float | None = None
        self.humanos_base_url = ""
        self._opt_root: Path | None = None
        self._started = False
        #: Where this stack wrote its endpoints (None: not written), and what the banner says about it.
        self.endpoints_file: Path | None = None
        self.endpoints_note: str | None = None
        self._written: dict[str, Any] = {}
        self._events_queue_url = ""
        self._session = boto3.session.Session(region_name=REGION, **endpoints.LOCAL_CREDENTIALS)
        self._session_lock = threading.Lock()
        self._webhook_path = ""

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> LocalStack:
        started = time.perf_counter()
        self._started = True
        try:
            self._build()
            self._start_moto()
            self._start_humanos()
            self._create_resources()
            self._start_functions()
            self._start_poller()
            self._start_gateway()
            if self.sandbox is not None:
                # Known only now (the port may be a free one): the organisation's webhook URL, in the dashboard.
                self.sandbox.set_webhook_url(self.webhook_url)
        except BaseException:
            self.stop()
            raise
        self.ready_seconds = time.perf_counter() - started
        if self.options.write_endpoints:
            # Chosen now, not at start-up: another stack may have started, or died, in the meantime.
            port = urlsplit(self.api_url).port or self.options.port
            self.endpoints_file, self.endpoints_note = endpoints.file_for_new_stack(port)
            self._written = self.endpoints()
            endpoints.write_json(self.endpoints_file, self._written)
        return self

    def stop(self) -> None:
        """Stop everything: the gateway, the poller, the functions' processes, the servers. Safe to call twice."""
        if not self._started:
            return
        self._started = False
        if self.gateway is not None:
            self.gateway.stop()
        if self.poller is not None:
            self.poller.stop()
        for function in self.functions.values():
            function.close()
        if self.sandbox is not None:
            self.sandbox.stop()
        if self.moto is not None:
            self._reset_moto()
            self.moto.stop()
        if self._opt_root is not None:
            shutil.rmtree(self._opt_root, ignore_errors=True)
        if self.options.write_endpoints:
            self._remove_endpoints_file()

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

    @property
    def webhook_url(self) -> str:
        """The receiver's route: what the Humanos dashboard's webhook URL would be (the sandbox posts here)."""
        return f"{self.api_url}{self._webhook_path}"

    @property
    def event_bus_name(self) -> str:
        """The bus the receiver publishes to (its ``WEBHOOK_EVENT_BUS_NAME``, a name or an ARN, as a name)."""
        return self.environments[RECEIVER]["WEBHOOK_EVENT_BUS_NAME"].rsplit("event-bus/", 1)[-1]

    @property
    def events_queue_url(self) -> str:
        """The local-only queue that a rule on the bus fills with every published event."""
        return self._events_queue_url

    @property
    def state_file(self) -> Path | None:
        """Where the generated secrets are kept across restarts (``--state-dir``); None: in memory only."""
        return None if self.options.state_dir is None else self.options.state_dir / "secrets.json"

    @property
    def runs(self) -> str:
        """How the functions run, in one line (the banner and the demo say it)."""
        assert self.build is not None
        where = self.build.root.relative_to(ROOT) if self.build.root.is_relative_to(ROOT) else self.build.root
        return (
            f"packaged by sam build ({where}, {self.build.architecture}), each in its own "
            f"{packaging.RUNTIME} process under Lambda's runtime interface client"
        )

    def client(self, service: str) -> Any:
        """A client of this stack's moto. One session for all: it loads each service's model once (start-up time);
        clients are made under a lock, as a boto3 session is not thread-safe."""
        with self._session_lock:
            return self._session.client(service, endpoint_url=self.endpoint_url)

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
            "webhookUrl": self.webhook_url,
            "webhookSecretArn": self.environments[RECEIVER]["WEBHOOK_SECRET_ID"],
            "eventBusName": self.event_bus_name,
            "eventsQueueUrl": self.events_queue_url,
            "idempotencyTable": self.physical("IdempotencyTable"),
            "humanosBaseUrl": self.humanos_base_url,
            # The file the user knows (the layer's copy is built from it), so that a message names it.
            "mappingFile": str(self.mapping_source),
            "outcomesFile": str(self.outcomes_file) if self.outcomes_file else None,
        }

    @property
    def outcomes_file(self) -> Path | None:
        """Where the recent outcomes ``status`` shows are written, beside the endpoints file."""
        return None if self.endpoints_file is None else endpoints.outcomes_path(self.endpoints_file)

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

    def _build(self) -> None:
        """The packaged functions (cached build), and this stack's ``/opt``: their layers, merged."""
        self.build = packaging.ensure_build(self.options.template, say=self._say)
        self.runtime_dir = packaging.ensure_runtime_packages(say=self._say)
        self.python = packaging.python313()
        self._opt_root = Path(tempfile.mkdtemp(prefix="humanos-bridge-opt-"))

    def _opt_dir(self, function: str) -> Path:
        """``/opt`` for ``function``: its layers, as Lambda extracts them."""
        assert self.build is not None and self._opt_root is not None
        opt = self._opt_root / function
        return opt if opt.exists() else self.build.assemble_opt(function, opt)

    def _start_moto(self) -> None:
        from humanos_bridge_local.moto_server import MotoServer

        # Werkzeug logs one line per AWS call to stderr; the flow lines say what matters.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.moto = MotoServer().start()
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
            if options.auto_decide is not None:
                raise ConfigError("--auto-decide makes the sandbox decide; a real Humanos waits for real people")
            assert options.humanos_url is not None
            self.humanos_base_url = options.humanos_url
            self.webhook_secrets = self._dashboard_webhook_secrets()
            return
        stored = self._stored_state().get("sandbox", {})
        self.webhook_secrets = self._sandbox_webhook_secrets()
        self.sandbox = Sandbox(
            api_key=stored.get("apiKey"),
            signature_secret=stored.get("signatureSecret"),
            on_call=self._on_humanos_call,
            webhook_secrets=self.webhook_secrets,
            auto_decide=options.auto_decide,
            on_delivery=self._on_delivery,
        )
        self.sandbox.start()
        self.humanos_base_url = self.sandbox.base_url

    def _given_webhook_secrets(self) -> dict[str, str | None]:
        options = self.options
        return {
            "signature_secret": options.humanos_webhook_signature_secret,
            "encryption_secret": options.humanos_webhook_encryption_secret,
            "encryption_salt": options.humanos_webhook_encryption_salt,
        }

    def _dashboard_webhook_secrets(self) -> WebhookSecrets | None:
        """A real Humanos: its dashboard's three values, given together, or none (nothing could sign with ours)."""
        given = self._given_webhook_secrets()
        if not any(given.values()):
            return None
        if not all(given.values()):
            raise ConfigError(
                "with a real Humanos, give the three webhook secrets of its dashboard together "
                "(--humanos-webhook-signature-secret/--humanos-webhook-encryption-secret/"
                "--humanos-webhook-encryption-salt or HUMANOS_WEBHOOK_SIGNATURE_SECRET/"
                "HUMANOS_WEBHOOK_ENCRYPTION_SECRET/HUMANOS_WEBHOOK_ENCRYPTION_SALT), or none"
            )
        return WebhookSecrets(**{name: str(value) for name, value in given.items()})

    def _sandbox_webhook_secrets(self) -> WebhookSecrets:
        """The sandbox's: each secret as given, else as kept in ``--state-dir``, else generated."""
        stored = self._stored_state().get("webhooks")
        kept = stored if isinstance(stored, dict) else {}
        chosen = {
            name: value or _text_or_none(kept.get(WEBHOOK_SECRET_FIELDS[name]))
            for name, value in self._given_webhook_secrets().items()
        }
        return WebhookSecrets.generate(**chosen)

    def _on_delivery(self, delivery: Delivery) -> None:
        # The receiver logs every answer it gives; a webhook that never got one would go unseen.
        if delivery.state == FAILED:
            self._say(
                f"sandbox: webhook {delivery.id} ({safe_id(delivery.event_type)}, request "
                f"{safe_id(delivery.request_id, mask=False)}) not delivered after {delivery.attempts} attempts: "
                f"{safe_id(delivery.error or f'HTTP {delivery.status}')}"
            )

    def _webhook_secret(self) -> str:
        """The WebhookSecret value, as the Humanos dashboard's three values are put in a deployed stack."""
        secrets = self.webhook_secrets
        if secrets is None:
            return "{}"  # the template's placeholder: the receiver answers 503 until it is filled
        return json.dumps({field: getattr(secrets, name) for name, field in WEBHOOK_SECRET_FIELDS.items()})

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
        resources = TemplateResources(
            options.template,
            self._session,
            self.endpoint_url,
            parameter_overrides=overrides,
            opt_dir=self._opt_dir(INGEST),
        )
        self.resources = resources
        mapping_file = (
            str(options.mapping.resolve()) if options.mapping else resources.function_variable(INGEST, "MAPPING_FILE")
        )
        self.mapping = load_mapping(mapping_file)
        self.mapping_source = (
            options.mapping.resolve() if options.mapping else ROOT / "mappings" / resources.parameter("MappingFile")
        )
        if self.sandbox is not None:
            # Humanos pins a version to each key when it is made: pin the one this bridge sends (empty parameter
            # = the mapping's), so a call without API-Version, such as a hand-signed curl, reads the same shapes.
            sent = ""
            with contextlib.suppress(ConfigError):  # a template without the variable sends the mapping's
                sent = resources.function_variable(DISPATCHER, "HUMANOS_API_VERSION")
            try:
                self.sandbox.pin_api_version(sent or self.mapping.api_version)
            except VersionError as exc:
                raise ConfigError(f"HumanosApiVersion: {exc}") from exc
        stored = self._stored_state().get("senders")
        # Kept across restarts (--state-dir); a secretKey the mapping gained since gets a fresh secret.
        self.sender_secrets = {**generate_sender_secrets(self.mapping), **(stored if isinstance(stored, dict) else {})}
        resources.secret_strings.update(
            HumanosSecret=self._humanos_secret(),
            SenderSecret=json.dumps(self.sender_secrets),
            WebhookSecret=self._webhook_secret(),
        )
        resources.create_all()
        for function in FUNCTIONS:
            resources.opt_dir = self._opt_dir(function)
            self.environments[function] = {**resources.function_environment(function), "MAPPING_FILE": mapping_file}
        self._create_bus_reader()
        self._save_state()

    def _create_bus_reader(self) -> None:
        """Local only: a rule on the receiver's bus that copies every event to a queue, for ``events tail``.

        A bus the template does not create (``WebhookEventBusName`` names one you own) is created here when moto
        lacks it: in AWS it exists before the stack, in a fresh moto nothing does.
        """
        events = self.client("events")
        bus = self.event_bus_name
        if bus not in {found["Name"] for found in events.list_event_buses()["EventBuses"]}:
            events.create_event_bus(Name=bus)
        self._events_queue_url = bus_events.create_reader(events, self.client("sqs"), bus)

    def _start_functions(self) -> None:
        """Each function's first execution environment, started and initialised in parallel (the cold starts)."""
        for function, most in FUNCTIONS.items():
            self.functions[function] = LambdaFunction(self._spec(function), self._log_sink, max_environments=most)
        warming = [threading.Thread(target=f.warm, name=f"warm-{n}") for n, f in self.functions.items()]
        for thread in warming:
            thread.start()
        for thread in warming:
            thread.join()

    def _spec(self, function: str) -> FunctionSpec:
        assert self.resources is not None and self.build is not None
        resources = self.resources
        return FunctionSpec(
            name=function,
            handler=str(resources.function_property(function, "Handler")),
            code_dir=self.build.function_dir(function),
            opt_dir=self._opt_dir(function),
            runtime_dir=self.runtime_dir,
            python=self.python,
            timeout_seconds=float(resources.function_property(function, "Timeout") or 3),
            memory_mb=int(resources.function_property(function, "MemorySize") or 128),
            environment={**self.environments[function], **_AWS_ACCESS, "AWS_ENDPOINT_URL": self.endpoint_url},
            region=REGION,
            tracing=resources.function_property(function, "Tracing") == "Active",
        )

    def _log_sink(self, function: str, line: str) -> None:
        if self._on_log_line is not None:
            self._on_log_line(function, line)
        self.recorder.feed(function, line)

    def _start_poller(self) -> None:
        assert self.resources is not None
        dispatcher = self.functions[DISPATCHER]
        mappings = self.resources.event_source_mappings(DISPATCHER)
        if len(mappings) != 1:
            raise ConfigError(
                f"{DISPATCHER} must have exactly one AWS::Lambda::EventSourceMapping in the template "
                f"(found {len(mappings)})"
            )
        mapping = mappings[0]
        queue = self._queue_for_arn(str(mapping["EventSourceArn"]))
        timeout = float(self.resources.function_property(DISPATCHER, "Timeout"))
        source = SqsEventSource(
            self.client("sqs"),
            queue,
            lambda event, context: dispatcher.invoke(event),
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
        raise ConfigError(f"the dispatcher's event source names {arn}, which is not a queue of the template")

    def _start_gateway(self) -> None:
        """One HTTP API for every function's ``HttpApi`` routes, as the template declares them on ``HttpApi``."""
        assert self.resources is not None
        routes = [
            route
            for function in self.functions
            for route in routes_from_events(self.resources.function_property(function, "Events"), function)
        ]
        webhook_routes = [route for route in routes if route.target == RECEIVER and route.method == "POST"]
        if len(webhook_routes) != 1:
            raise ConfigError(f"{RECEIVER} must have exactly one POST HttpApi event (found {len(webhook_routes)})")
        self._webhook_path = webhook_routes[0].path
        invokers = {name: self._invoker(name) for name in {route.target for route in routes}}
        self.gateway = HttpGateway(routes, invokers, host=self.options.host, port=self.options.port)
        try:
            self.gateway.start()
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {self.options.host}:{self.options.port}: {exc.strerror}; choose another --port "
                "(0 = any free port)"
            ) from exc

    def _invoker(self, name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        function = self.functions[name]

        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            try:
                return dict(function.invoke(event))
            except FunctionError as exc:
                self._say(f"{name} invocation failed: {exc.error_type}")
                raise

        return invoke

    # -- flow, state ------------------------------------------------------------------------------

    def _on_flow(self, on_event: Callable[[FlowEvent], None] | None) -> Callable[[FlowEvent], None]:
        def handle(event: FlowEvent) -> None:
            if on_event is not None:
                on_event(event)
            if self.outcomes_file is not None:
                recent = [e.as_dict() for e in self.recorder.events[-50:]]
                endpoints.write_json(self.outcomes_file, recent)

        return handle

    def _stored_state(self) -> dict[str, Any]:
        path = self.state_file
        if path is None:
            return {}
        try:
            data = private_files.read_json(path)  # only from a folder no one else can write to
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}; delete it to start with new secrets") from exc
        return data if isinstance(data, dict) else {}

    def _save_state(self) -> None:
        if self.state_file is None:
            return
        state: dict[str, Any] = {"senders": self.sender_secrets}
        if self.sandbox is not None:
            state["sandbox"] = {"apiKey": self.sandbox.api_key, "signatureSecret": self.sandbox.signature_secret}
            # Not a real Humanos's: those stay in the dashboard, given again at each start.
            state["webhooks"] = json.loads(self._webhook_secret())
        endpoints.write_json(self.state_file, state)

    def _remove_endpoints_file(self) -> None:
        """Remove the endpoints and outcomes files this stack wrote, unless another stack has written them since."""
        path, outcomes = self.endpoints_file, self.outcomes_file
        if path is None or outcomes is None:
            return
        self.endpoints_file = None
        try:
            # All of it, not the pid alone: stacks in one process (the tests) share the pid.
            if json.loads(path.read_text(encoding="utf-8")) == self._written:
                path.unlink()
                outcomes.unlink(missing_ok=True)
        except (OSError, ValueError):
            pass


def _text_or_none(value: Any) -> str | None:
    """A kept secret, when it is one: a state file edited by hand may hold anything."""
    return value if isinstance(value, str) and value else None
