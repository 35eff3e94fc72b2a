"""The receiver in template.yaml: its function, route, secret, bus, least-privilege policies, alarms and outputs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfn_template import Template, as_list, policy_statements, policy_templates, references

from humanos_bridge.core.replays import IN_PROGRESS_SECONDS
from humanos_bridge.receive import otp_resend
from humanos_bridge.settings import ENV_NAMES
from humanos_bridge_local.cfn import Intrinsics

RECEIVER = "ReceiverFunction"
WEBHOOK_SECRET = {
    "Fn::If": ["ShouldCreateWebhookSecret", {"Ref": "WebhookSecret"}, {"Ref": "ExistingWebhookSecretArn"}]
}
HUMANOS_SECRET = {"Fn::If": ["ShouldCreateSecrets", {"Ref": "HumanosSecret"}, {"Ref": "ExistingHumanosSecretArn"}]}
BUS_NAME = {"Fn::If": ["ShouldCreateWebhookEventBus", {"Ref": "WebhookEventBus"}, {"Ref": "WebhookEventBusName"}]}
BUS_ARN = {
    "Fn::If": [
        "ShouldCreateWebhookEventBus",
        {"Fn::GetAtt": ["WebhookEventBus", "Arn"]},
        {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${WebhookEventBusName}"},
    ]
}
#: Everything the receiver's policies may name.
ALLOWED_TARGETS = {
    "WebhookSecret",
    "ExistingWebhookSecretArn",
    "HumanosSecret",  # signs an otp.failed resend (receive.otp_resend)
    "ExistingHumanosSecretArn",
    "WebhookEventBus",
    "WebhookEventBusName",
    "IdempotencyTable",
    "SecretsKmsKeyArn",
    "TableKmsKeyArn",
}
#: replays.ReplayGuard's calls: a conditional put, the mark (and the expiry's extension), the release; and
#: otp_resend.ResendBudget's conditional update.
CLAIM_ACTIONS = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}


def _statements(template: Template) -> list[dict[str, Any]]:
    return list(policy_statements(template.function(RECEIVER).get("Policies", [])))


def _grants(template: Template) -> set[tuple[str, str]]:
    grants = set()
    for statement in _statements(template):
        for action in as_list(statement["Action"]):
            for target in references(statement["Resource"]) - {"AWS::Region", "AWS::AccountId", "AWS::Partition"}:
                grants.add((action, target))
    for name, arguments in policy_templates(template.function(RECEIVER).get("Policies", [])):
        for target in references(arguments):
            grants.add((name, target))
    return grants


def conditions(template: Template, **parameters: str) -> Intrinsics:
    values = {name: str(spec.get("Default", "")) for name, spec in template.parameters.items()} | parameters
    return Intrinsics(values, template.conditions, lambda name: name, lambda name, attribute: f"{name}.{attribute}")


# --- the function --------------------------------------------------------------------------------


def test_the_receiver_runs_like_the_others_with_its_own_code(template: Template) -> None:
    """python3.13 on arm64 with tracing and both layers (Globals), functions/receiver/app.lambda_handler."""
    merged = template.function(RECEIVER)
    assert (merged["Runtime"], merged["Architectures"], merged["Tracing"]) == ("python3.13", ["arm64"], "Active")
    assert merged["Layers"] == [{"Ref": "HumanosLayer"}, {"Ref": "MappingsLayer"}, {"Ref": "ReceiverLayer"}]
    assert (merged["CodeUri"], merged["Handler"]) == ("functions/receiver/", "app.lambda_handler")
    app = template.path.parent / "functions/receiver/app.py"
    assert "def lambda_handler(" in app.read_text(encoding="utf-8")


def test_cryptography_is_in_a_layer_of_the_receivers_alone(template: Template) -> None:
    """layers/receiver/Makefile builds cryptography for python3.13 on arm64; no other function has the layer."""
    layer = template.resources["ReceiverLayer"]
    assert (layer["Metadata"]["BuildMethod"], layer["Metadata"]["BuildArchitecture"]) == ("makefile", "arm64")
    properties = layer["Properties"]
    assert properties["ContentUri"] == "layers/receiver/"
    assert (properties["CompatibleRuntimes"], properties["CompatibleArchitectures"]) == (["python3.13"], ["arm64"])
    folder = template.path.parent / "layers/receiver"
    makefile = (folder / "Makefile").read_text(encoding="utf-8")
    assert "build-ReceiverLayer:" in makefile and "LAYER_ARCHITECTURE ?= arm64" in makefile and "compileall" in makefile
    assert "cryptography" in (folder / "requirements.txt").read_text(encoding="utf-8")
    shared = (template.path.parent / "layers/humanos/requirements.txt").read_text(encoding="utf-8")
    assert not [line for line in shared.splitlines() if line.startswith("cryptography")]
    for function in ("IngestFunction", "DispatcherFunction"):
        assert {"Ref": "ReceiverLayer"} not in template.function(function)["Layers"]


def test_a_live_receiver_invocation_keeps_its_claim(template: Template) -> None:
    """A claim left "in progress" is taken over after IN_PROGRESS_SECONDS: by then Lambda has ended the
    invocation that made it (Timeout), or two would publish one event."""
    timeout = template.resolve_number(template.function(RECEIVER)["Timeout"])
    assert timeout < IN_PROGRESS_SECONDS, f"{RECEIVER} Timeout {timeout} s: raise replays.IN_PROGRESS_SECONDS"


def test_the_receiver_serves_one_route_on_the_http_api(template: Template) -> None:
    events = template.function(RECEIVER)["Events"]
    [(_name, event)] = events.items()
    properties = event["Properties"]
    assert event["Type"] == "HttpApi" and properties["ApiId"] == {"Ref": "HttpApi"}
    assert (properties["Method"], properties["Path"], properties["PayloadFormatVersion"]) == (
        "POST",
        "/humanos/webhooks",
        "2.0",
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEBHOOK_SECRET_ID", WEBHOOK_SECRET),
        ("WEBHOOK_EVENT_BUS_NAME", BUS_NAME),
        ("SIGNATURE_TOLERANCE_SECONDS", {"Ref": "SignatureToleranceSeconds"}),
        ("IDEMPOTENCY_TABLE", {"Ref": "IdempotencyTable"}),
        ("MAPPING_FILE", {"Fn::Sub": "/opt/${MappingFile}"}),
        ("HUMANOS_SECRET_TTL_SECONDS", {"Ref": "SecretTtlSeconds"}),
        # An otp.failed resend: the Humanos API root (the one origin a resendEndpoint may be on), its version,
        # the secret that signs it.
        ("HUMANOS_BASE_URL", {"Ref": "HumanosBaseUrl"}),
        ("HUMANOS_API_VERSION", {"Ref": "HumanosApiVersion"}),
        ("HUMANOS_SECRET_ID", HUMANOS_SECRET),
    ],
)
def test_the_receiver_reads_what_wiring_requires(template: Template, variable: str, value: Any) -> None:
    """wiring.receiver_service requires the secret, the bus and the table; the mapping tells business origins."""
    environment = template.environment(RECEIVER)
    assert environment.get(variable) == value, f"{RECEIVER}: {variable} should be {value}"
    assert variable in ENV_NAMES.values()


def test_a_resend_fits_in_the_receivers_timeout(template: Template) -> None:
    """The resend's PATCH is sent once (``HumanosClient.resend_code``), its deadline well inside the Timeout that
    the secret read, the claim, PutEvents and the mark share with it."""
    environment = template.environment(RECEIVER)
    timeout = template.resolve_number(template.function(RECEIVER)["Timeout"])
    read, deadline = float(environment["HUMANOS_READ_TIMEOUT"]), float(environment["HUMANOS_CALL_DEADLINE_SECONDS"])
    assert read <= deadline <= timeout / 2, f"{RECEIVER}: read {read} s, deadline {deadline} s, Timeout {timeout} s"


def test_every_receiver_variable_is_a_setting(template: Template) -> None:
    known = set(ENV_NAMES.values())
    for name in template.environment(RECEIVER):
        assert name in known or name.startswith("POWERTOOLS_"), f"{RECEIVER}: {name} is read by nothing"


# --- least privilege -----------------------------------------------------------------------------


def test_the_receivers_policies_name_only_its_own_resources(template: Template) -> None:
    """No sender secret, no queue: the receiver reads its secrets, claims in the table, publishes."""
    targets = {target for _, target in _grants(template)}
    assert targets <= ALLOWED_TARGETS, f"{RECEIVER}: policies also grant {sorted(targets - ALLOWED_TARGETS)}"
    assert ("AWSSecretsManagerGetSecretValuePolicy", "WebhookSecret") in _grants(template)
    assert ("AWSSecretsManagerGetSecretValuePolicy", "ExistingWebhookSecretArn") in _grants(template)


def test_the_humanos_secret_may_only_be_read(template: Template) -> None:
    """An otp.failed resend is signed with the Humanos secret: GetSecretValue on that secret (whichever the stack
    uses), through SAM's read-only policy template, and no other grant on it."""
    policies = template.function(RECEIVER)["Policies"]
    reads = [p for p in policies if isinstance(p, dict) and "AWSSecretsManagerGetSecretValuePolicy" in p]
    assert {"AWSSecretsManagerGetSecretValuePolicy": {"SecretArn": HUMANOS_SECRET}} in reads
    on_it = {grant for grant, target in _grants(template) if target in ("HumanosSecret", "ExistingHumanosSecretArn")}
    assert on_it == {"AWSSecretsManagerGetSecretValuePolicy"}


def test_put_events_is_granted_on_the_one_bus_only(template: Template) -> None:
    """events:PutEvents on the bus the stack creates, or on the one named: never "*" nor another bus."""
    [statement] = [s for s in _statements(template) if "events:" in str(s["Action"])]
    assert statement["Action"] == "events:PutEvents" and statement["Effect"] == "Allow"
    assert statement["Resource"] == BUS_ARN


def test_table_access_is_exactly_the_claims(template: Template) -> None:
    table = {action for action, target in _grants(template) if target == "IdempotencyTable"}
    assert table == CLAIM_ACTIONS, f"{RECEIVER}: grant exactly {sorted(CLAIM_ACTIONS)} on IdempotencyTable"


def test_kms_grants_exist_only_for_customer_keys_and_only_via_their_service(template: Template) -> None:
    policies = template.function(RECEIVER)["Policies"]
    conditional = {
        item["Fn::If"][0]: item["Fn::If"] for item in policies if isinstance(item, dict) and "Fn::If" in item
    }
    assert set(conditional) == {"HasSecretsKmsKey", "HasTableKmsKey"}
    for condition, (_, granted, otherwise) in conditional.items():
        assert otherwise == {"Ref": "AWS::NoValue"}, condition
        [statement] = granted["Statement"]
        assert "kms:ViaService" in statement["Condition"]["StringEquals"], condition


def _role(transformed: dict[str, Any]) -> dict[str, Any]:
    resources = transformed["Resources"]
    assert resources[RECEIVER]["Properties"]["Role"] == {"Fn::GetAtt": [f"{RECEIVER}Role", "Arn"]}
    return dict(resources[f"{RECEIVER}Role"]["Properties"])


def test_the_generated_role_adds_nothing_beyond_logs_and_tracing(transformed: dict[str, Any]) -> None:
    """After the SAM transform: the managed policies are logs and X-Ray only, and no inline statement names "*"."""
    role = _role(transformed)
    names = {json.dumps(arn).strip('"').split(":policy/", 1)[-1] for arn in role.get("ManagedPolicyArns", [])}
    assert names <= {"service-role/AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess"}, names
    for policy in role.get("Policies", []):
        for branch in policy["Fn::If"][1:] if "Fn::If" in policy else [policy]:
            if isinstance(branch, dict) and "PolicyDocument" in branch:
                for statement in policy_statements(branch["PolicyDocument"]):
                    assert "*" not in str(statement["Resource"]).replace("${AWS::", ""), statement


def test_the_receivers_checkov_skips_survive_the_transform(transformed: dict[str, Any]) -> None:
    skips = transformed["Resources"][RECEIVER].get("Metadata", {}).get("checkov", {}).get("skip", [])
    assert skips and all(str(skip.get("comment", "")).strip() for skip in skips)


# --- the secret and the bus ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parameters", "create_secret", "create_bus"),
    [
        ({}, True, True),
        ({"CreateSecrets": "false"}, True, True),  # a stack from before the receiver: nothing new to pass
        ({"ExistingWebhookSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:w-AbC"}, False, True),
        ({"WebhookEventBusName": "business-events"}, True, False),
    ],
)
def test_the_secret_and_the_bus_are_created_unless_named(
    template: Template, parameters: dict[str, str], create_secret: bool, create_bus: bool
) -> None:
    given = conditions(template, **parameters)
    assert given.condition(template.resources["WebhookSecret"]["Condition"]) is create_secret
    assert given.condition(template.resources["WebhookEventBus"]["Condition"]) is create_bus


def test_the_created_secret_holds_nothing_anyone_could_sign_with(template: Template) -> None:
    """Placeholder ``{}``: every webhook waits (503) until the dashboard's values are put; retained, and under the
    secrets' KMS key when one is given."""
    secret = template.resources["WebhookSecret"]
    assert secret["Properties"]["SecretString"] == "{}"
    assert (secret["DeletionPolicy"], secret["UpdateReplacePolicy"]) == ("Retain", "Retain")
    kms = {"Fn::If": ["HasSecretsKmsKey", {"Ref": "SecretsKmsKeyArn"}, {"Ref": "AWS::NoValue"}]}
    assert secret["Properties"]["KmsKeyId"] == kms


def test_the_bus_the_stack_creates_outlives_the_stack_with_the_rules_on_it(template: Template) -> None:
    bus = template.resources["WebhookEventBus"]
    assert bus["Type"] == "AWS::Events::EventBus" and bus["DeletionPolicy"] == "Retain"
    assert bus["Properties"]["Name"] == {"Fn::Sub": "${AWS::StackName}-humanos"}


def test_the_receiver_logs_where_the_others_do(template: Template) -> None:
    group = template.properties("ReceiverLogGroup")
    assert group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${ReceiverFunction}"}
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert group["KmsKeyId"] == {"Fn::If": ["HasLogsKmsKey", {"Ref": "LogsKmsKeyArn"}, {"Ref": "AWS::NoValue"}]}


@pytest.mark.parametrize(
    ("alarm", "metric", "dimension"),
    [
        ("ReceiverErrorsAlarm", "Errors", {"Ref": "ReceiverFunction"}),
        ("ReceiverThrottlesAlarm", "Throttles", {"Ref": "ReceiverFunction"}),
        ("WebhooksFailedAlarm", "WebhooksFailed", {"Ref": "ServiceName"}),
        ("WebhooksRejectedAlarm", "WebhooksRejected", {"Ref": "ServiceName"}),
    ],
)
def test_the_receivers_failures_raise_alarms(template: Template, alarm: str, metric: str, dimension: Any) -> None:
    properties = template.properties(alarm)
    assert properties["MetricName"] == metric and properties["Dimensions"][0]["Value"] == dimension
    assert properties["AlarmActions"] == properties["OKActions"] == [{"Ref": "AlarmTopic"}]
    assert properties["TreatMissingData"] == "notBreaching"


def test_a_code_not_resent_raises_an_alarm_on_the_metrics_the_resender_writes(template: Template) -> None:
    properties = template.properties("OtpResendsFailedAlarm")
    metrics = {query["Id"]: query for query in properties["Metrics"]}
    for query_id, outcome in (("failed", otp_resend.FAILED), ("refused", otp_resend.REFUSED)):
        stat = metrics[query_id]["MetricStat"]
        assert stat["Metric"]["MetricName"] == otp_resend.METRICS[outcome] and stat["Stat"] == "Sum"
        assert stat["Metric"]["Dimensions"] == [{"Name": "service", "Value": {"Ref": "ServiceName"}}]
        assert stat["Metric"]["Namespace"] == {"Ref": "MetricsNamespace"}
    assert metrics["notResent"]["Expression"] == "FILL(failed, 0) + FILL(refused, 0)"
    assert [query["Id"] for query in properties["Metrics"] if query["ReturnData"]] == ["notResent"]
    assert (properties["Threshold"], properties["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert properties["AlarmActions"] == properties["OKActions"] == [{"Ref": "AlarmTopic"}]
    assert properties["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize(
    "output",
    ["WebhookUrl", "WebhookSecretArn", "WebhookEventBusName", "WebhookEventBusArn", "FillWebhookSecretCommand"],
)
def test_the_stack_tells_where_webhooks_go_and_come_out(template: Template, output: str) -> None:
    assert output in template.outputs
    assert not references(template.outputs[output]["Value"]) - template.known_names()


def test_the_webhook_url_is_the_receivers_route(template: Template) -> None:
    url = template.outputs["WebhookUrl"]["Value"]["Fn::Sub"]
    assert url == "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/humanos/webhooks"
    assert template.outputs["WebhookEventBusArn"]["Value"] == BUS_ARN
