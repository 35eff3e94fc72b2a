"""Queues, table, secrets, HTTP API, alarms and outputs of template.yaml."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfn_template import Template, references

FOURTEEN_DAYS = 14 * 24 * 3600


def test_request_queue_visibility_is_at_least_six_dispatcher_timeouts(template: Template) -> None:
    """AWS: visibility >= 6 x function timeout (+ batching window), or a throttled batch is delivered twice."""
    timeout = template.resolve_number(template.function("DispatcherFunction")["Timeout"])
    window = int(template.parameters["BatchingWindowSeconds"]["MaxValue"])
    visibility = template.resolve_number(template.properties("RequestQueue")["VisibilityTimeout"])
    assert visibility >= 6 * timeout + window, (
        f"RequestQueue VisibilityTimeout {visibility} s < 6 x DispatcherFunction Timeout ({timeout} s) + the largest "
        f"BatchingWindowSeconds ({window} s); raise it to at least {6 * timeout + window}"
    )


def test_request_queue_redrives_to_the_dead_letter_queue(template: Template) -> None:
    """After MaxReceiveCount deliveries a message moves to DeadLetterQueue instead of looping forever."""
    redrive = template.properties("RequestQueue").get("RedrivePolicy", {})
    assert redrive.get("deadLetterTargetArn") == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}, (
        "RequestQueue RedrivePolicy.deadLetterTargetArn: !GetAtt DeadLetterQueue.Arn"
    )
    assert redrive.get("maxReceiveCount") == {"Ref": "MaxReceiveCount"}, "RedrivePolicy.maxReceiveCount: !Ref parameter"
    assert template.parameters["MaxReceiveCount"]["Default"] == 5, "MaxReceiveCount: default 5"


def test_dead_letter_queue_keeps_messages_fourteen_days(template: Template) -> None:
    """14 days (the SQS maximum) to read, fix and redrive; longer than the source queue, whose clock it inherits."""
    dlq = template.resolve_number(template.properties("DeadLetterQueue")["MessageRetentionPeriod"])
    source = template.resolve_number(template.properties("RequestQueue").get("MessageRetentionPeriod", 345600))
    assert dlq == FOURTEEN_DAYS, f"DeadLetterQueue MessageRetentionPeriod should be {FOURTEEN_DAYS}, not {dlq}"
    assert source < dlq, "RequestQueue retention must be shorter than the DLQ's: redriven messages keep their age"


@pytest.mark.parametrize("queue", ["RequestQueue", "DeadLetterQueue"])
def test_queues_are_encrypted(template: Template, queue: str) -> None:
    """Events carry contacts: both queues use SQS-managed server-side encryption."""
    assert template.properties(queue).get("SqsManagedSseEnabled") is True, f"{queue}: set SqsManagedSseEnabled: true"


def test_idempotency_table_matches_powertools_and_is_protected(template: Template) -> None:
    """Partition key id (S), TTL on expiration, on-demand, point-in-time recovery, encryption at rest."""
    table = template.properties("IdempotencyTable")
    assert table.get("KeySchema") == [{"AttributeName": "id", "KeyType": "HASH"}], "IdempotencyTable: hash key id"
    assert table.get("AttributeDefinitions") == [{"AttributeName": "id", "AttributeType": "S"}], "id must be type S"
    assert table.get("TimeToLiveSpecification") == {"AttributeName": "expiration", "Enabled": True}, (
        "IdempotencyTable: TimeToLiveSpecification on 'expiration' (the Powertools attribute), Enabled: true"
    )
    assert table.get("BillingMode") == "PAY_PER_REQUEST", "IdempotencyTable: BillingMode PAY_PER_REQUEST"
    assert table.get("PointInTimeRecoverySpecification") == {"PointInTimeRecoveryEnabled": True}, "enable PITR"
    assert table.get("SSESpecification", {}).get("SSEEnabled") is True, "IdempotencyTable: SSESpecification.SSEEnabled"


@pytest.mark.parametrize(
    ("secret", "placeholder"),
    [
        ("HumanosSecret", {"apiKey": "REPLACE_ME", "signatureSecret": "REPLACE_ME"}),
        # No source at all: every sender is refused until real secrets are put (a fixed secret would be known).
        ("SenderSecret", {}),
    ],
)
def test_created_secrets_hold_placeholders_only_when_asked(template: Template, secret: str, placeholder: Any) -> None:
    """With CreateSecrets=true the stack creates each secret with a placeholder that grants nothing."""
    resource = template.resources[secret]
    assert resource.get("Condition") == "ShouldCreateSecrets", f"{secret}: add Condition: ShouldCreateSecrets"
    assert json.loads(resource["Properties"]["SecretString"]) == placeholder, f"{secret}: placeholder SecretString"
    assert template.conditions["ShouldCreateSecrets"] == {"Fn::Equals": [{"Ref": "CreateSecrets"}, "true"]}


@pytest.mark.parametrize("output", ["FillHumanosSecretCommand", "FillSenderSecretCommand"])
def test_outputs_tell_the_user_how_to_fill_each_secret(template: Template, output: str) -> None:
    """The stack prints the exact put-secret-value command, reading the value from a file (not shell history)."""
    text, variables = template.outputs[output]["Value"]["Fn::Sub"]
    assert text.startswith("aws secretsmanager put-secret-value --region ${AWS::Region} --secret-id ${SecretArn} ")
    assert "--secret-string file://" in text, f"{output}: read the secret from a file, not the command line"
    assert references(variables["SecretArn"]) & {"HumanosSecret", "SenderSecret"}, f"{output}: name the secret's ARN"


@pytest.mark.parametrize(
    "output",
    [
        "ApiUrl",
        "RequestQueueUrl",
        "RequestQueueArn",
        "DeadLetterQueueUrl",
        "DeadLetterQueueArn",
        "HumanosSecretArn",
        "SenderSecretArn",
        "IdempotencyTableName",
        "AlarmTopicArn",
    ],
)
def test_stack_outputs_what_operators_need(template: Template, output: str) -> None:
    """Each output exists and refers only to declared resources and parameters."""
    assert output in template.outputs, f"Outputs: add {output}"
    missing = references(template.outputs[output]["Value"]) - template.known_names()
    assert not missing, f"Output {output} refers to undeclared {sorted(missing)}"


def test_http_api_throttles_and_logs_without_bodies_or_headers(template: Template) -> None:
    """Default route throttling comes from parameters; access logs are JSON lines with no body or header."""
    api = template.properties("HttpApi")
    throttling = api.get("DefaultRouteSettings", {})
    assert throttling.get("ThrottlingBurstLimit") == {"Ref": "ThrottlingBurstLimit"}, "HttpApi: burst from parameter"
    assert throttling.get("ThrottlingRateLimit") == {"Ref": "ThrottlingRateLimit"}, "HttpApi: rate from parameter"
    logs = api.get("AccessLogSettings", {})
    assert logs.get("DestinationArn") == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}, "HttpApi: log to a log group"
    line = json.loads(logs["Format"])  # API Gateway substitutes values inside the quotes: the shape is JSON
    for forbidden in ("$input", "$request.body", "$request.header", "$context.authorizer"):
        assert not any(forbidden in str(value) for value in line.values()), f"access log must not log {forbidden}"
    assert {"requestId", "status", "routeKey"} <= set(line), "access log: keep requestId, status and routeKey"


def _alarms(template: Template) -> dict[tuple[str, str, str], dict[str, Any]]:
    alarms = {}
    for body in template.of_type("AWS::CloudWatch::Alarm").values():
        properties = body["Properties"]
        namespace = properties["Namespace"]
        key_namespace = namespace["Ref"] if isinstance(namespace, dict) else namespace
        dimension = properties["Dimensions"][0]["Value"]
        target = sorted(references(dimension))[0] if isinstance(dimension, dict) else dimension
        alarms[(key_namespace, properties["MetricName"], target)] = properties
    return alarms


@pytest.mark.parametrize(
    ("namespace", "metric", "dimension_target"),
    [
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "DeadLetterQueue"),
        ("AWS/Lambda", "Errors", "IngestFunction"),
        ("AWS/Lambda", "Throttles", "IngestFunction"),
        ("AWS/Lambda", "Errors", "DispatcherFunction"),
        ("AWS/Lambda", "Throttles", "DispatcherFunction"),
        ("MetricsNamespace", "PermanentFailures", "ServiceName"),
        ("MetricsNamespace", "RetryableFailures", "ServiceName"),
        ("MetricsNamespace", "EventsRejected", "ServiceName"),
    ],
)
def test_alarm_watches_metric_and_notifies_the_topic(
    template: Template, namespace: str, metric: str, dimension_target: str
) -> None:
    """Each failure signal has an alarm that notifies AlarmTopic; the bridge's metrics use the service dimension."""
    alarms = _alarms(template)
    assert (namespace, metric, dimension_target) in alarms, f"add an alarm on {namespace} {metric} ({dimension_target})"
    properties = alarms[(namespace, metric, dimension_target)]
    assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}], f"{metric} alarm: AlarmActions [!Ref AlarmTopic]"
    assert properties.get("TreatMissingData") == "notBreaching", f"{metric} alarm: no data means nothing failed"
    if namespace == "MetricsNamespace":
        assert properties["Dimensions"][0]["Name"] == "service", f"{metric}: Powertools' dimension is 'service'"


def test_alarm_email_subscription_exists_only_with_an_address(template: Template) -> None:
    """An empty AlarmEmail creates no subscription (SNS refuses an empty endpoint)."""
    subscription = template.resources["AlarmEmailSubscription"]
    assert subscription.get("Condition") == "HasAlarmEmail", "AlarmEmailSubscription: Condition: HasAlarmEmail"
    assert template.conditions["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
