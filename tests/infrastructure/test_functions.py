"""The functions in template.yaml: runtime, layers, environment and event sources, wired as the code expects."""

from __future__ import annotations

from typing import Any

import pytest
from cfn_template import Template, evaluate_rules, references

from humanos_bridge.core.replays import IN_PROGRESS_SECONDS
from humanos_bridge.dispatch.service import SETTLE_RESERVE_SECONDS
from humanos_bridge.ingest.service import ANSWER_RESERVE_SECONDS
from humanos_bridge.settings import ENV_NAMES, MAX_BATCH_SIZE

FUNCTIONS = ("IngestFunction", "DispatcherFunction")
LAYERS = ("HumanosLayer", "MappingsLayer")
HUMANOS_SECRET = {"Fn::If": ["ShouldCreateSecrets", {"Ref": "HumanosSecret"}, {"Ref": "ExistingHumanosSecretArn"}]}
SENDER_SECRET = {"Fn::If": ["ShouldCreateSecrets", {"Ref": "SenderSecret"}, {"Ref": "ExistingSenderSecretArn"}]}

#: What each handler reads (see the settings each one builds); a missing one fails at cold start or silently
#: falls back to a default that is wrong in AWS.
REQUIRED_ENVIRONMENT = {
    "IngestFunction": {
        "MAPPING_FILE",
        "REQUEST_QUEUE_URL",
        "SENDER_SECRET_ID",
        "SIGNATURE_TOLERANCE_SECONDS",
        "IDEMPOTENCY_TABLE",
        "HUMANOS_BASE_URL",
        "HUMANOS_API_VERSION",
        "HUMANOS_SECRET_ID",
        "HUMANOS_SECRET_TTL_SECONDS",
        "HUMANOS_CONNECT_TIMEOUT",
        "HUMANOS_READ_TIMEOUT",
        "HUMANOS_CALL_DEADLINE_SECONDS",
    },
    "DispatcherFunction": {
        "MAPPING_FILE",
        "IDEMPOTENCY_TABLE",
        "REQUEST_QUEUE_URL",
        "DEAD_LETTER_QUEUE_URL",
        "RATE_LIMIT_PER_MINUTE",
        "DISPATCHER_MAX_CONCURRENCY",
        "DEFAULT_SOURCE",
        "HUMANOS_BASE_URL",
        "HUMANOS_API_VERSION",
        "HUMANOS_SECRET_ID",
        "HUMANOS_SECRET_TTL_SECONDS",
        "HUMANOS_CONNECT_TIMEOUT",
        "HUMANOS_READ_TIMEOUT",
        "HUMANOS_CALL_DEADLINE_SECONDS",
    },
}

#: Environment variables whose value must name one particular resource or parameter.
EXPECTED_VALUES = {
    "MAPPING_FILE": {"Fn::Sub": "/opt/${MappingFile}"},
    "REQUEST_QUEUE_URL": {"Ref": "RequestQueue"},
    "DEAD_LETTER_QUEUE_URL": {"Ref": "DeadLetterQueue"},
    "IDEMPOTENCY_TABLE": {"Ref": "IdempotencyTable"},
    "HUMANOS_SECRET_ID": HUMANOS_SECRET,
    "SENDER_SECRET_ID": SENDER_SECRET,
    "HUMANOS_BASE_URL": {"Ref": "HumanosBaseUrl"},
    "HUMANOS_API_VERSION": {"Ref": "HumanosApiVersion"},
    "HUMANOS_SECRET_TTL_SECONDS": {"Ref": "SecretTtlSeconds"},
    "RATE_LIMIT_PER_MINUTE": {"Ref": "RateLimitPerMinute"},
    "DISPATCHER_MAX_CONCURRENCY": {"Ref": "MaxConcurrency"},
    "DEFAULT_SOURCE": {"Ref": "DefaultSource"},
    "SIGNATURE_TOLERANCE_SECONDS": {"Ref": "SignatureToleranceSeconds"},
    "POWERTOOLS_SERVICE_NAME": {"Ref": "ServiceName"},
    "POWERTOOLS_METRICS_NAMESPACE": {"Ref": "MetricsNamespace"},
    "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
}


def test_template_declares_exactly_the_three_functions(template: Template) -> None:
    """The bridge is the ingest function, the dispatcher and the receiver (its own checks are in
    test_receiver_template.py); a new function needs these tests extended."""
    assert sorted(template.of_type("AWS::Serverless::Function")) == sorted([*FUNCTIONS, "ReceiverFunction"]), (
        "template.yaml should declare IngestFunction, DispatcherFunction and ReceiverFunction; extend "
        "tests/infrastructure for new ones"
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_runs_python313_on_arm64_with_active_tracing(template: Template, function: str) -> None:
    """Globals (or the function) give every function the runtime, architecture and tracing decided for the bridge."""
    merged = template.function(function)
    assert merged.get("Runtime") == "python3.13", f"{function}: set Runtime: python3.13 (Globals.Function)"
    assert merged.get("Architectures") == ["arm64"], f"{function}: set Architectures: [arm64] (Globals.Function)"
    assert merged.get("Tracing") == "Active", f"{function}: set Tracing: Active (Globals.Function)"


@pytest.mark.parametrize(
    ("function", "code_uri", "timeout", "memory"),
    [("IngestFunction", "functions/ingest/", 20, 256), ("DispatcherFunction", "functions/dispatcher/", 30, 512)],
)
def test_function_code_handler_and_size(
    template: Template, function: str, code_uri: str, timeout: int, memory: int
) -> None:
    """Each function ships its own folder with app.lambda_handler, at the timeout and memory decided."""
    merged = template.function(function)
    assert merged.get("CodeUri") == code_uri, f"{function}: CodeUri should be {code_uri}"
    assert merged.get("Handler") == "app.lambda_handler", f"{function}: Handler should be app.lambda_handler"
    assert template.resolve_number(merged["Timeout"]) == timeout, f"{function}: Timeout should be {timeout} s"
    assert template.resolve_number(merged["MemorySize"]) == memory, f"{function}: MemorySize should be {memory} MB"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_handler_module_exists_where_code_uri_points(template: Template, function: str) -> None:
    """sam build packages CodeUri; the handler module must be there and define lambda_handler."""
    code_uri = template.function(function)["CodeUri"]
    app = template.path.parent / code_uri / "app.py"
    where = app.relative_to(template.path.parent)
    assert app.is_file(), f"{function}: {where} is missing; sam build would ship nothing"
    assert "def lambda_handler(" in app.read_text(encoding="utf-8"), f"{function}: {app.name} defines no lambda_handler"


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("layer", LAYERS)
def test_both_layers_are_attached_to_every_function(template: Template, function: str, layer: str) -> None:
    """The library and the mapping files reach every function (Globals.Function.Layers or the function's own)."""
    layers = template.function(function).get("Layers", [])
    assert {"Ref": layer} in layers, f"{function}: add '!Ref {layer}' to Globals.Function.Layers"


def test_humanos_layer_builds_python313_for_arm64(template: Template) -> None:
    """sam build runs layers/humanos/Makefile: the requirements' wheels for python3.13/arm64 next to humanos_bridge
    under python/, compiled to bytecode."""
    layer = template.resources["HumanosLayer"]
    assert layer["Type"] == "AWS::Serverless::LayerVersion"
    assert layer.get("Metadata", {}).get("BuildMethod") == "makefile", "HumanosLayer: Metadata.BuildMethod makefile"
    makefile = (template.path.parent / "layers/humanos/Makefile").read_text(encoding="utf-8")
    assert "build-HumanosLayer:" in makefile, "layers/humanos/Makefile needs a build-HumanosLayer target"
    assert "LAYER_ARCHITECTURE ?= arm64" in makefile, "layers/humanos/Makefile should fetch arm64 wheels by default"
    assert "--python-version 3.13" in makefile and "compileall" in makefile
    assert layer["Metadata"].get("BuildArchitecture") == "arm64", "HumanosLayer: Metadata.BuildArchitecture arm64"
    properties = layer["Properties"]
    assert properties["ContentUri"] == "layers/humanos/", "HumanosLayer: ContentUri should be layers/humanos/"
    assert properties["CompatibleRuntimes"] == ["python3.13"], "HumanosLayer: CompatibleRuntimes [python3.13]"
    assert properties["CompatibleArchitectures"] == ["arm64"], "HumanosLayer: CompatibleArchitectures [arm64]"
    content = template.path.parent / "layers/humanos"
    assert (content / "humanos_bridge/__init__.py").is_file(), "layers/humanos/humanos_bridge/ is not a package"
    requirements = (content / "requirements.txt").read_text(encoding="utf-8")
    for dependency in ("aws-lambda-powertools", "boto3", "urllib3"):
        assert dependency in requirements, f"layers/humanos/requirements.txt should list {dependency}"


def test_mappings_layer_has_no_build_method_so_files_land_in_opt(template: Template) -> None:
    """Without a build method the mapping files are zipped as they are, so MAPPING_FILE=/opt/<file> finds them."""
    layer = template.resources["MappingsLayer"]
    assert "BuildMethod" not in layer.get("Metadata", {}), "MappingsLayer: remove Metadata.BuildMethod"
    assert layer["Properties"]["ContentUri"] == "mappings/", "MappingsLayer: ContentUri should be mappings/"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_environment_references_only_things_that_exist(template: Template, function: str) -> None:
    """Every !Ref, !GetAtt and ${...} in a function's environment names a parameter or resource of this template."""
    known = template.known_names()
    for name, value in template.environment(function).items():
        missing = references(value) - known
        assert not missing, f"{function}: {name} refers to {sorted(missing)}, which template.yaml does not declare"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_environment_names_are_settings_the_code_reads(template: Template, function: str) -> None:
    """A variable the code never reads is a typo or a leftover; names come from settings.ENV_NAMES or Powertools."""
    known = set(ENV_NAMES.values())
    for name in template.environment(function):
        assert name in known or name.startswith("POWERTOOLS_"), (
            f"{function}: {name} is not in humanos_bridge.settings.ENV_NAMES; fix the name or add the setting"
        )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_function_gets_every_variable_it_needs(template: Template, function: str) -> None:
    """Each handler finds its queues, table, secrets, mapping file and Humanos settings in its environment."""
    missing = REQUIRED_ENVIRONMENT[function] - set(template.environment(function))
    assert not missing, f"{function}: set {sorted(missing)} in its Environment.Variables (or Globals)"


def test_ingest_does_not_get_the_dispatchers_variables(template: Template) -> None:
    """Ingest does not scale with the event source; giving it that name would invite misuse."""
    extra = {"DISPATCHER_MAX_CONCURRENCY"} & set(template.environment("IngestFunction"))
    assert not extra, f"IngestFunction: remove {sorted(extra)}; only the dispatcher uses them"


def test_ingest_parks_in_the_dispatchers_dead_letter_queue(template: Template) -> None:
    """A provider's event that its mapping refuses is parked where the dispatcher parks (unmappable: "park"), so
    `dlq list` and `dlq redrive` see both."""
    assert template.environment("IngestFunction")["DEAD_LETTER_QUEUE_URL"] == {"Ref": "DeadLetterQueue"}
    assert template.environment("DispatcherFunction")["DEAD_LETTER_QUEUE_URL"] == {"Ref": "DeadLetterQueue"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_both_functions_read_the_same_rate_limit_split(template: Template, function: str) -> None:
    """The synchronous route takes SyncRateLimitPerMinute and the dispatchers the rest: each side must see both."""
    environment = template.environment(function)
    assert environment.get("RATE_LIMIT_PER_MINUTE") == {"Ref": "RateLimitPerMinute"}
    assert environment.get("SYNC_RATE_LIMIT_PER_MINUTE") == {"Ref": "SyncRateLimitPerMinute"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_environment_values_name_the_right_resource(template: Template, function: str) -> None:
    """Queue URLs, table, secrets and tunables point at the resource or parameter they are named after."""
    for name, value in template.environment(function).items():
        if name in EXPECTED_VALUES:
            assert value == EXPECTED_VALUES[name], f"{function}: {name} should be {EXPECTED_VALUES[name]}, not {value}"


def test_call_deadline_fits_in_each_function_timeout(template: Template) -> None:
    """Two Humanos calls (a look-up after an earlier attempt, then the POST; all attempts of each) must end
    before Lambda kills the function, with the time kept to settle or answer, or the outcome is lost."""
    reserve = {"IngestFunction": ANSWER_RESERVE_SECONDS, "DispatcherFunction": SETTLE_RESERVE_SECONDS}
    for function in FUNCTIONS:
        environment = template.environment(function)
        timeout = template.resolve_number(template.function(function)["Timeout"])
        deadline = float(environment["HUMANOS_CALL_DEADLINE_SECONDS"])
        assert 2 * deadline + reserve[function] <= timeout, (
            f"{function}: 2 x HUMANOS_CALL_DEADLINE_SECONDS ({deadline}) + {reserve[function]} s > Timeout {timeout}"
        )
        read = float(environment["HUMANOS_READ_TIMEOUT"])
        assert read <= deadline, f"{function}: HUMANOS_READ_TIMEOUT {read} exceeds the call deadline {deadline}"


def test_a_live_ingest_invocation_keeps_its_replay_claim(template: Template) -> None:
    """A copy of a delivery may take over its claim after IN_PROGRESS_SECONDS: by then the invocation that made
    the claim must be over (Lambda kills it at Timeout), or two would handle one delivery."""
    timeout = template.resolve_number(template.function("IngestFunction")["Timeout"])
    assert timeout < IN_PROGRESS_SECONDS, f"IngestFunction Timeout {timeout} s: raise replays.IN_PROGRESS_SECONDS"


def test_ingest_serves_the_three_routes_on_the_http_api(template: Template) -> None:
    """POST /events/{source}, POST /requests/{source} and GET /health, on HttpApi, payload format 2.0."""
    events = template.function("IngestFunction")["Events"]
    routes = set()
    for name, event in events.items():
        assert event["Type"] == "HttpApi", f"IngestFunction event {name}: Type should be HttpApi"
        properties = event["Properties"]
        assert properties.get("ApiId") == {"Ref": "HttpApi"}, f"IngestFunction event {name}: set ApiId: !Ref HttpApi"
        assert properties.get("PayloadFormatVersion") == "2.0", f"IngestFunction event {name}: payload format 2.0"
        routes.add((properties["Method"], properties["Path"]))
    assert routes == {("POST", "/events/{source}"), ("POST", "/requests/{source}"), ("GET", "/health")}


def _event_source(template: Template) -> dict[str, Any]:
    """The one AWS::Lambda::EventSourceMapping, asserted to be the dispatcher's only trigger."""
    mappings = template.of_type("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == 1, "one event source mapping: RequestQueue -> DispatcherFunction"
    assert "Events" not in template.function("DispatcherFunction"), (
        "DispatcherFunction: no SAM Events; its SQS event would attach AWSLambdaSQSQueueExecutionRole (every queue)"
    )
    (mapping,) = mappings.values()
    return dict(mapping["Properties"])


def test_dispatcher_reads_the_request_queue_reporting_partial_failures(template: Template) -> None:
    """One event source on RequestQueue; failed records are reported one by one, not the whole batch."""
    properties = _event_source(template)
    assert properties["FunctionName"] == {"Ref": "DispatcherFunction"}, "FunctionName: !Ref DispatcherFunction"
    assert properties["EventSourceArn"] == {"Fn::GetAtt": ["RequestQueue", "Arn"]}, "!GetAtt RequestQueue.Arn"
    assert properties.get("FunctionResponseTypes") == ["ReportBatchItemFailures"], (
        "the event source: set FunctionResponseTypes: [ReportBatchItemFailures]"
    )
    assert properties.get("BatchSize") == {"Ref": "BatchSize"}, "event source: BatchSize: !Ref BatchSize"
    assert properties.get("MaximumBatchingWindowInSeconds") == {"Ref": "BatchingWindowSeconds"}, (
        "event source: MaximumBatchingWindowInSeconds: !Ref BatchingWindowSeconds"
    )


def test_event_source_keeps_the_logical_id_sam_gave_it(template: Template) -> None:
    """Stacks deployed with the former SAM "Requests" event update their mapping in place; under another id
    CloudFormation would first create a second mapping for the same queue and function, which Lambda refuses."""
    assert list(template.of_type("AWS::Lambda::EventSourceMapping")) == ["DispatcherFunctionRequests"]


def test_rate_limiter_and_event_source_share_one_concurrency_parameter(template: Template) -> None:
    """The token bucket divides the org rate by DISPATCHER_MAX_CONCURRENCY; it must be the event source's limit."""
    scaling = _event_source(template).get("ScalingConfig", {}).get("MaximumConcurrency")
    environment = template.environment("DispatcherFunction")["DISPATCHER_MAX_CONCURRENCY"]
    assert isinstance(scaling, dict) and set(scaling) == {"Ref"}, "ScalingConfig.MaximumConcurrency: !Ref a parameter"
    assert environment == scaling, (
        f"DISPATCHER_MAX_CONCURRENCY ({environment}) and ScalingConfig.MaximumConcurrency ({scaling}) must be !Ref "
        "of the same parameter, or Humanos's rate limit is exceeded"
    )
    parameter = template.parameters[scaling["Ref"]]
    assert int(parameter.get("MinValue", 0)) >= 2, f"{scaling['Ref']}: MinValue 2 (AWS refuses less)"


def test_default_batch_settings_are_accepted_by_lambda(template: Template) -> None:
    """Lambda refuses BatchSize > 10 without a batching window; the defaults comply and the parameter says so."""
    batch = template.parameters["BatchSize"]
    assert "BatchingWindowSeconds" in batch["Description"], "BatchSize: say that above 10 needs BatchingWindowSeconds"
    assert int(batch["Default"]) <= 10 or int(template.parameters["BatchingWindowSeconds"]["Default"]) >= 1


@pytest.mark.parametrize(
    ("batch_size", "window", "accepted"),
    [
        ("10", "0", True),
        ("1", "0", True),
        ("11", "0", False),
        ("100", "0", False),
        ("11", "1", True),
        ("100", "20", True),
    ],
)
def test_a_rule_refuses_batches_above_ten_without_a_window(
    template: Template, batch_size: str, window: str, accepted: bool
) -> None:
    """Lambda would refuse to create the event source half-way through a deployment; the template's Rules
    refuse the parameters up front, with a message that names both."""
    failed = evaluate_rules(template.document, {"BatchSize": batch_size, "BatchingWindowSeconds": window})
    about_batches = [message for message in failed if "BatchSize" in message]
    assert (not about_batches) is accepted, f"BatchSize={batch_size}, BatchingWindowSeconds={window}: {failed}"
    if not accepted:
        assert "BatchingWindowSeconds" in about_batches[0]


def test_largest_batch_is_what_the_dispatcher_sizes_its_threads_and_pools_for(template: Template) -> None:
    """Every record of a batch is in flight at once, on threads and pooled connections sized to
    settings.MAX_BATCH_SIZE: a larger BatchSize would run in waves and churn connections."""
    maximum = int(template.parameters["BatchSize"]["MaxValue"])
    assert maximum == MAX_BATCH_SIZE, (
        f"BatchSize MaxValue {maximum} != humanos_bridge.settings.MAX_BATCH_SIZE {MAX_BATCH_SIZE}; change both together"
    )
