"""Queues, table, secrets, HTTP API, alarms and outputs of template.yaml."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfn_template import Template, evaluate_rules, references

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
    assert template.parameters["MaxReceiveCount"]["Default"] == 200, "MaxReceiveCount: default 200 (a day of failures)"


@pytest.mark.parametrize("queue", ["RequestQueue", "DeadLetterQueue"])
def test_queues_keep_messages_fourteen_days(template: Template, queue: str) -> None:
    """14 days, the SQS maximum: a backlog must not expire silently (4 days were ~345,000 events at Humanos's
    60 a minute), and the DLQ gives a human time to read, fix and redrive."""
    retention = template.resolve_number(template.properties(queue).get("MessageRetentionPeriod", 345600))
    assert retention == FOURTEEN_DAYS, f"{queue} MessageRetentionPeriod should be {FOURTEEN_DAYS}, not {retention}"


@pytest.mark.parametrize(
    ("alarm", "queue"), [("RequestQueueExpiryAlarm", "RequestQueue"), ("DeadLetterExpiryAlarm", "DeadLetterQueue")]
)
def test_expiry_alarm_compares_the_oldest_message_with_the_queues_retention(
    template: Template, alarm: str, queue: str
) -> None:
    """SQS deletes a message at the retention without a trace: the alarm fires at QueueRetentionAlarmPercent of
    that queue's own MessageRetentionPeriod, long before."""
    properties = template.properties(alarm)
    queries = {query["Id"]: query for query in properties["Metrics"]}
    (stat,) = [query["MetricStat"] for query in queries.values() if "MetricStat" in query]
    assert stat["Metric"]["MetricName"] == "ApproximateAgeOfOldestMessage" and stat["Stat"] == "Maximum"
    assert stat["Metric"]["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    (returned,) = [query for query in queries.values() if query.get("ReturnData", True)]
    retention = template.resolve_number(template.properties(queue)["MessageRetentionPeriod"])
    metric_id = next(key for key, query in queries.items() if "MetricStat" in query)
    assert returned["Expression"].replace(" ", "") == f"100*{metric_id}/{retention}", (
        f"{alarm}: the expression must divide by {queue}'s retention ({retention} s)"
    )
    assert properties["Threshold"] == {"Ref": "QueueRetentionAlarmPercent"}
    assert properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    percent = template.parameters["QueueRetentionAlarmPercent"]
    assert 0 < int(percent["MinValue"]) <= int(percent["Default"]) <= int(percent["MaxValue"]) < 100


def test_backlog_alarm_stays_beside_the_expiry_alarm(template: Template) -> None:
    """The short QueueAgeAlarmSeconds alarm (a backlog building) is kept: the expiry alarm comes days later."""
    properties = template.properties("RequestQueueAgeAlarm")
    assert properties["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert properties["Threshold"] == {"Ref": "QueueAgeAlarmSeconds"}


def test_dead_letter_alarm_fires_on_each_new_arrival(template: Template) -> None:
    """Not "DLQ not empty" (one notification, then 14 days in ALARM): new dead letters per period, counting
    both what the dispatcher sends (NumberOfMessagesSent) and what SQS moves in after MaxReceiveCount,
    which NumberOfMessagesSent does not count (a rise of the visible messages does)."""
    properties = template.properties("DeadLetterArrivalsAlarm")
    queries = {query["Id"]: query for query in properties["Metrics"]}
    stats = {
        query["MetricStat"]["Metric"]["MetricName"]: (key, query["MetricStat"])
        for key, query in queries.items()
        if "MetricStat" in query
    }
    assert set(stats) == {"NumberOfMessagesSent", "ApproximateNumberOfMessagesVisible"}
    for _, stat in stats.values():
        assert stat["Metric"]["Dimensions"] == [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}
        ]
        assert not queries[_]["ReturnData"]
    (returned,) = [query for query in queries.values() if query.get("ReturnData", True)]
    sent, visible = stats["NumberOfMessagesSent"][0], stats["ApproximateNumberOfMessagesVisible"][0]
    expression = returned["Expression"]
    assert f"FILL({sent}, 0)" in expression and f"DIFF(FILL({visible}, 0))" in expression
    assert stats["NumberOfMessagesSent"][1]["Stat"] == "Sum"
    assert properties["Threshold"] == 0 and properties["ComparisonOperator"] == "GreaterThanThreshold"
    assert "DeadLetterQueueAlarm" not in template.resources, "the old 'not empty' alarm notified only once"


@pytest.mark.parametrize(
    "resource", ["RequestQueue", "DeadLetterQueue", "IdempotencyTable", "HumanosSecret", "SenderSecret"]
)
def test_stateful_resources_survive_stack_deletion_and_replacement(template: Template, resource: str) -> None:
    """Queued events, dead letters, the idempotency records and the secrets' values are kept when the stack is
    deleted or the resource replaced (README.md says what to delete by hand)."""
    body = template.resources[resource]
    assert body.get("DeletionPolicy") == "Retain", f"{resource}: DeletionPolicy: Retain"
    assert body.get("UpdateReplacePolicy") == "Retain", f"{resource}: UpdateReplacePolicy: Retain"


@pytest.mark.parametrize(
    ("resource", "path", "key", "condition"),
    [
        ("IngestLogGroup", ("KmsKeyId",), "LogsKmsKeyArn", "HasLogsKmsKey"),
        ("DispatcherLogGroup", ("KmsKeyId",), "LogsKmsKeyArn", "HasLogsKmsKey"),
        ("ApiAccessLogGroup", ("KmsKeyId",), "LogsKmsKeyArn", "HasLogsKmsKey"),
        ("IdempotencyTable", ("SSESpecification", "KMSMasterKeyId"), "TableKmsKeyArn", "HasTableKmsKey"),
        ("HumanosSecret", ("KmsKeyId",), "SecretsKmsKeyArn", "HasSecretsKmsKey"),
        ("SenderSecret", ("KmsKeyId",), "SecretsKmsKeyArn", "HasSecretsKmsKey"),
        ("AlarmTopic", ("KmsMasterKeyId",), "AlarmTopicKmsKeyArn", "HasAlarmTopicKmsKey"),
    ],
)
def test_customer_managed_key_is_applied_when_given(
    template: Template, resource: str, path: tuple[str, ...], key: str, condition: str
) -> None:
    """Each optional KMS key parameter encrypts its resources when set, and changes nothing when empty."""
    value: Any = template.properties(resource)
    for part in path:
        value = value[part]
    assert value == {"Fn::If": [condition, {"Ref": key}, {"Ref": "AWS::NoValue"}]}, f"{resource}: {'.'.join(path)}"
    assert template.conditions[condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": key}, ""]}]}


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
        "DashboardUrl",
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
    """Every alarm by (namespace, metric, what its dimension names), once per metric of a metric-math alarm."""
    alarms = {}
    for body in template.of_type("AWS::CloudWatch::Alarm").values():
        properties = body["Properties"]
        metrics = [
            {**query["MetricStat"]["Metric"], "Statistic": query["MetricStat"]["Stat"]}
            for query in properties.get("Metrics", [])
            if "MetricStat" in query
        ] or [properties]
        for metric in metrics:
            namespace = metric["Namespace"]
            key_namespace = namespace["Ref"] if isinstance(namespace, dict) else namespace
            dimension = metric["Dimensions"][0]["Value"]
            target = sorted(references(dimension))[0] if isinstance(dimension, dict) else dimension
            alarms[(key_namespace, metric["MetricName"], target)] = {**properties, "Dimensions": metric["Dimensions"]}
    return alarms


@pytest.mark.parametrize(
    ("namespace", "metric", "dimension_target"),
    [
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "DeadLetterQueue"),
        ("AWS/SQS", "NumberOfMessagesSent", "DeadLetterQueue"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", "DeadLetterQueue"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", "RequestQueue"),
        ("AWS/ApiGateway", "5xx", "HttpApi"),
        ("AWS/Lambda", "Errors", "IngestFunction"),
        ("AWS/Lambda", "Throttles", "IngestFunction"),
        ("AWS/Lambda", "Errors", "DispatcherFunction"),
        ("AWS/Lambda", "Throttles", "DispatcherFunction"),
        ("MetricsNamespace", "PermanentFailures", "ServiceName"),
        ("MetricsNamespace", "RetryableFailures", "ServiceName"),
        ("MetricsNamespace", "EventsRejected", "ServiceName"),
        ("MetricsNamespace", "EventsFailed", "ServiceName"),
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
    assert properties["OKActions"] == [{"Ref": "AlarmTopic"}], f"{metric} alarm: say when it is over, too"
    assert properties.get("TreatMissingData") == "notBreaching", f"{metric} alarm: no data means nothing failed"
    if namespace == "MetricsNamespace":
        assert properties["Dimensions"][0]["Name"] == "service", f"{metric}: Powertools' dimension is 'service'"


def test_alarm_email_subscription_exists_only_with_an_address(template: Template) -> None:
    """AlarmEmail "none" (the operator subscribes the topic elsewhere) creates no subscription; an address does."""
    subscription = template.resources["AlarmEmailSubscription"]
    assert subscription.get("Condition") == "HasAlarmEmail", "AlarmEmailSubscription: Condition: HasAlarmEmail"
    assert template.conditions["HasAlarmEmail"] == {
        "Fn::And": [
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]},
            {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, "none"]}]},
        ]
    }
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}


@pytest.mark.parametrize(("alarm_email", "accepted"), [("", False), ("none", True), ("oncall@example.com", True)])
def test_an_empty_alarm_email_is_refused_at_deploy_time(template: Template, alarm_email: str, accepted: bool) -> None:
    """An empty AlarmEmail used to mean that nobody heard of any alarm: a Rule refuses it, "none" says it on purpose."""
    failed = [
        message for message in evaluate_rules(template.document, {"AlarmEmail": alarm_email}) if "AlarmEmail" in message
    ]
    assert (not failed) is accepted, failed


def test_every_alarm_notifies_the_topic(template: Template) -> None:
    """No alarm that changes state in silence."""
    for name, body in template.of_type("AWS::CloudWatch::Alarm").items():
        assert body["Properties"].get("AlarmActions") == [{"Ref": "AlarmTopic"}], f"{name}: AlarmActions"
        assert body["Properties"].get("TreatMissingData") == "notBreaching", f"{name}: no data means nothing failed"
