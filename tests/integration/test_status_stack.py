"""``humanos-bridge status --stack``: a deployed stack's dashboard metrics, queue depths and firing alarms.

moto plays AWS. Its CloudFormation runs no SAM transform and cannot create an HTTP API or an alarm, so the
stack is a small template holding what the dashboard reads: the two queues, the two functions, an API, the
alarm topic, and the ServiceName and MetricsNamespace parameters (not the template's defaults, so that the
command must read them from the stack). The alarms are put beside it, notifying its topic as the template's
alarms do, and the metrics where the bridge (EMF) and AWS would write them, one point a minute.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import boto3
import pytest

from humanos_bridge_local.cfn import load_template
from humanos_bridge_local.cli import command_name, main
from humanos_bridge_local.dashboard import dashboard_body, widgets
from humanos_bridge_local.moto_server import MotoServer
from humanos_bridge_local.stack_metrics import TEMPLATE as BRIDGE_TEMPLATE

STACK = "bridge"
REGION = "eu-west-1"
SERVICE = "bridge-test"
NAMESPACE = "HumanosBridgeTest"
_FUNCTION = {
    "Type": "AWS::Lambda::Function",
    "Properties": {
        "Runtime": "python3.12",
        "Handler": "index.handler",
        "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
        "Code": {"ZipFile": "def handler(event, context): pass"},
    },
}
TEMPLATE: dict[str, Any] = {
    "Parameters": {"ServiceName": {"Type": "String"}, "MetricsNamespace": {"Type": "String"}},
    "Resources": {
        "RequestQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "bridge-requests"}},
        "DeadLetterQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "bridge-dlq"}},
        "FunctionRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}},
        },
        "IngestFunction": {**_FUNCTION, "Properties": {**_FUNCTION["Properties"], "FunctionName": "bridge-ingest"}},
        "DispatcherFunction": {
            **_FUNCTION,
            "Properties": {**_FUNCTION["Properties"], "FunctionName": "bridge-dispatcher"},
        },
        # SAM makes HttpApi an AWS::ApiGatewayV2::Api, which moto's CloudFormation cannot create. The dashboard
        # reads only its id, and a REST API has one too.
        "HttpApi": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "bridge"}},
        "AlarmTopic": {"Type": "AWS::SNS::Topic"},
    },
    "Outputs": {
        "RequestQueueUrl": {"Value": {"Ref": "RequestQueue"}},
        "DeadLetterQueueUrl": {"Value": {"Ref": "DeadLetterQueue"}},
        "AlarmTopicArn": {"Value": {"Ref": "AlarmTopic"}},
    },
}
PARAMETERS = [
    {"ParameterKey": "ServiceName", "ParameterValue": SERVICE},
    {"ParameterKey": "MetricsNamespace", "ParameterValue": NAMESPACE},
]
#: Every permission the command needs, in the order it calls them.
PERMISSIONS = (
    "cloudformation:DescribeStacks",
    "cloudformation:ListStackResources",
    "cloudwatch:GetMetricData",
    "sqs:GetQueueAttributes",
    "cloudwatch:DescribeAlarms",
)


class Deployed(NamedTuple):
    outputs: dict[str, str]
    api_id: str


@pytest.fixture
def deployed(moto: Any, monkeypatch: pytest.MonkeyPatch) -> Deployed:
    """The stack 'bridge', with moto as the endpoint of every AWS call the command makes."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint_url)
    monkeypatch.setenv("HUMANOS_BRIDGE_HOME", "/nonexistent")  # no local stack to fall back on
    cloudformation = moto.client("cloudformation")
    cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(TEMPLATE), Parameters=PARAMETERS)
    [stack] = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
    api = cloudformation.describe_stack_resource(StackName=STACK, LogicalResourceId="HttpApi")
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack["Outputs"]}
    return Deployed(outputs, api["StackResourceDetail"]["PhysicalResourceId"])


def put_series(moto: Any, namespace: str, name: str, dimension: tuple[str, str], values: Sequence[float]) -> None:
    """``values`` one a minute, the last one a minute ago: the window's last points."""
    now = datetime.now(UTC)
    data = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": dimension[0], "Value": dimension[1]}],
            "Timestamp": now - timedelta(minutes=len(values) - index),
            "Value": value,
        }
        for index, value in enumerate(values)
    ]
    moto.client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=data)


def put_alarm(moto: Any, name: str, topic_arn: str, state: str) -> None:
    cloudwatch = moto.client("cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName=name,
        Namespace=NAMESPACE,
        MetricName="RetryableFailures",
        Dimensions=[{"Name": "service", "Value": SERVICE}],
        Statistic="Sum",
        Period=300,
        EvaluationPeriods=1,
        Threshold=5,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        AlarmActions=[topic_arn],
    )
    cloudwatch.set_alarm_state(AlarmName=name, StateValue=state, StateReason="set by the test")


def status(capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert main(["status", "--stack", STACK, "--region", REGION, *extra]) == 0
    return capsys.readouterr().out


def sections(out: str) -> dict[str, list[str]]:
    """The lines under each widget's heading (the heading without its threshold notes), by title."""
    found: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in out.splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            lines = found.setdefault(line.strip().split("  (")[0], [])
        elif line.startswith("    "):
            lines.append(line.strip())
    return found


def line_of(out: str, title: str, label: str) -> str:
    [line] = [line for line in sections(out)[title] if line.startswith(label + " ")]
    return line


def test_every_dashboard_metric_has_a_line(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    """Given a stack without data, every line the dashboard draws is there, blank, and metric math says why not."""
    out = status(capsys)
    shown = sections(out)
    for widget in widgets(dashboard_body(load_template(BRIDGE_TEMPLATE))):
        assert widget.title in shown, widget.title
        for query in widget.queries:
            if query.expression:
                [note] = [line for line in shown[widget.title] if line.startswith("not shown: metric math: ")]
                assert query.label in note
            elif query.visible:
                assert line_of(out, widget.title, query.label).endswith(" no data"), (widget.title, query.label)
    assert "(backlog alarm at 900)" in out


def test_sparklines_draw_what_cloudwatch_holds(
    deployed: Deployed, moto: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given points under the stack's namespace, queues, functions and API, each line draws them to the right."""
    put_series(moto, NAMESPACE, "EventsAccepted", ("service", SERVICE), [1, 2, 3, 4, 5])
    put_series(moto, NAMESPACE, "RequestsCreated", ("service", SERVICE), [5, 4, 3, 2, 1])
    # The template's default service name: another bridge's figures, which must not be counted.
    put_series(moto, "HumanosBridge", "EventsAccepted", ("service", "humanos-bridge"), [1000])
    put_series(moto, "AWS/SQS", "ApproximateNumberOfMessagesVisible", ("QueueName", "bridge-requests"), [0, 3, 7])
    put_series(moto, "AWS/Lambda", "Errors", ("FunctionName", "bridge-dispatcher"), [0, 0, 2])
    put_series(moto, "AWS/ApiGateway", "Count", ("ApiId", deployed.api_id), [10, 20])
    # No latency points: moto 5.2 answers 500 to a percentile (p50, p99) of data it holds, which AWS computes.

    out = status(capsys)

    # A point a minute ago is the window's last; if a minute turned during the test, the last but one.
    expected = {
        ("Events in, requests created", "accepted by ingest"): "▂▄▅▇█ {2,3}total 15",
        ("Events in, requests created", "Humanos requests created"): "█▇▅▄▂ {2,3}total 15",
        ("Request queue depth", "waiting"): "▁▄█ {2,3}latest 7",
        ("Function errors and throttles", "dispatcher errors"): "▁▁█ {2,3}total 2",
        ("HTTP API answers", "requests"): "▅█ {2,3}total 30",
    }
    for (title, label), drawn in expected.items():
        assert re.search(f" {drawn}$", line_of(out, title, label)), line_of(out, title, label)
    assert line_of(out, "Events in, requests created", "received by the dispatcher").endswith(" no data")
    assert line_of(out, "Humanos latency (ms)", "p99").endswith(" no data")
    assert "1,0" not in out


def test_a_long_window_draws_longer_points(deployed: Deployed, moto: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """--minutes 600 draws 60 points of 10 minutes; a total over the window stays the same."""
    put_series(moto, NAMESPACE, "EventsAccepted", ("service", SERVICE), [1, 2, 3, 4, 5])
    out = status(capsys, "--minutes", "600")
    assert "of the last 600 minutes" in out and "one point every 10 minutes" in out
    assert line_of(out, "Events in, requests created", "accepted by ingest").endswith(" total 15")


def test_queue_depths_and_firing_alarms_are_listed(
    deployed: Deployed, moto: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Depths are read now; of the alarms on the stack's topic only the one in ALARM is named, no other topic's."""
    sqs = moto.client("sqs")
    for _ in range(2):
        sqs.send_message(QueueUrl=deployed.outputs["RequestQueueUrl"], MessageBody="{}")
    sqs.send_message(QueueUrl=deployed.outputs["DeadLetterQueueUrl"], MessageBody="{}")
    topic = deployed.outputs["AlarmTopicArn"]
    put_alarm(moto, "bridge-RetryableFailuresAlarm-A1B2", topic, "ALARM")
    put_alarm(moto, "bridge-PermanentFailuresAlarm-C3D4", topic, "OK")
    # A topic whose ARN starts with the stack's: its alarms are not the stack's.
    other = moto.client("sns").create_topic(Name=topic.rsplit(":", 1)[-1] + "-other")["TopicArn"]
    put_alarm(moto, "other-RetryableFailuresAlarm-E5F6", other, "ALARM")

    out = status(capsys)

    assert "  request queue   2 waiting, 0 in flight (being handled or backing off), 0 delayed" in out
    # The hint names the CLI as it was run, so it can be pasted as it is.
    assert f"  dead letters    1  ({command_name()} dlq list --stack bridge --region eu-west-1)" in out
    assert "  alarms          1 in ALARM, of 2 that notify the stack's AlarmTopic" in out
    assert re.search(r"\n    bridge-RetryableFailuresAlarm-A1B2  since \d{4}-\d\d-\d\d \d\d:\d\d UTC\n", out)
    assert "PermanentFailuresAlarm" not in out and "other-" not in out


def test_a_resource_the_stack_lacks_is_named_not_guessed(
    deployed: Deployed, moto: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stack deployed from an older template, without DispatcherFunction: its lines say so, the rest draw."""
    older = json.loads(json.dumps(TEMPLATE))
    del older["Resources"]["DispatcherFunction"]
    older["Resources"]["RequestQueue"]["Properties"]["QueueName"] = "older-requests"
    older["Resources"]["DeadLetterQueue"]["Properties"]["QueueName"] = "older-dlq"
    moto.client("cloudformation").create_stack(StackName="older", TemplateBody=json.dumps(older), Parameters=PARAMETERS)

    assert main(["status", "--stack", "older", "--region", REGION]) == 0
    out = capsys.readouterr().out

    assert "not shown: dispatcher errors (the stack has no DispatcherFunction)" in out
    assert line_of(out, "Function errors and throttles", "ingest errors").endswith(" no data")


def test_an_unknown_stack_names_the_stack_and_region(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--stack", "nope", "--region", REGION]) == 2
    err = capsys.readouterr().err
    assert "stack 'nope' not found in eu-west-1: check --stack, --region" in err


def test_minutes_without_a_stack_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--minutes", "30"]) == 2
    assert "--minutes is for a deployed stack's metrics: add --stack NAME" in capsys.readouterr().err


def test_no_credentials_says_how_to_give_them(
    moto: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint_url)  # were a credential found, it would reach moto only
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):
        monkeypatch.setenv(name, "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    assert main(["status", "--stack", STACK, "--region", REGION]) == 2
    assert "no AWS credentials found: pass --profile NAME, set AWS_PROFILE" in capsys.readouterr().err


def test_an_unknown_profile_is_named(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"):
        monkeypatch.setenv(name, "/nonexistent")
    assert main(["status", "--stack", STACK, "--region", REGION, "--profile", "nope"]) == 2
    assert "(nope) could not be found: check --profile" in capsys.readouterr().err


# -- a role without one of the permissions ---------------------------------------------------------------


class StrictMoto(NamedTuple):
    endpoint_url: str
    iam: Any


@pytest.fixture(scope="module")
def strict_moto() -> Iterator[StrictMoto]:
    """A moto server of its own that checks IAM policies, holding the stack; an admin made the stack."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "3")  # the three calls that make the admin
        server = MotoServer(own_process=True).start()
    try:
        root = boto3.session.Session(region_name=REGION, aws_access_key_id="root", aws_secret_access_key="root")
        admin = _user_session(root.client("iam", endpoint_url=server.endpoint_url), "admin", ["*"])
        admin.client("cloudformation", endpoint_url=server.endpoint_url).create_stack(
            StackName=STACK, TemplateBody=json.dumps(TEMPLATE), Parameters=PARAMETERS
        )
        yield StrictMoto(server.endpoint_url, admin.client("iam", endpoint_url=server.endpoint_url))
    finally:
        server.stop()


def _user_session(iam: Any, name: str, actions: list[str]) -> Any:
    iam.create_user(UserName=name)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    iam.put_user_policy(UserName=name, PolicyName="status", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return boto3.session.Session(
        region_name=REGION, aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"]
    )


@pytest.mark.parametrize("missing", PERMISSIONS)
def test_a_missing_permission_is_named(
    missing: str, strict_moto: StrictMoto, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a user allowed every call but one, the error names the permission to add."""
    granted = [permission for permission in PERMISSIONS if permission != missing]
    # moto checks CloudWatch calls as "monitoring:..." (the service's endpoint name); AWS as "cloudwatch:...".
    granted += [p.replace("cloudwatch:", "monitoring:") for p in granted if p.startswith("cloudwatch:")]
    operator = _user_session(strict_moto.iam, "operator-" + missing.replace(":", "-"), granted)
    credentials = operator.get_credentials()
    monkeypatch.setenv("AWS_ENDPOINT_URL", strict_moto.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials.secret_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)

    assert main(["status", "--stack", STACK, "--region", REGION]) == 2
    err = capsys.readouterr().err
    assert f"not allowed to call {missing} in eu-west-1: add {missing} to the role or user" in err


def test_credentials_aws_does_not_know_are_refused_as_such(
    strict_moto: StrictMoto, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An access key of no user (deleted, or of another account): a login to refresh, not a permission to add."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", strict_moto.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unknown")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)

    assert main(["status", "--stack", STACK, "--region", REGION]) == 2
    assert "AWS refused the credentials (InvalidClientTokenId): refresh them" in capsys.readouterr().err
