"""The CloudWatch dashboard: valid widgets, reading only metrics that exist, and every metric the bridge writes.

The body is read from the transformed template (what CloudFormation receives); the bridge's own metric
names come from the code itself (``humanos_bridge_local.dashboard.emitted_metrics`` reads every
``add_metric``/``single_metric`` call), so renaming a metric without the dashboard fails here.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cfn_template import Template

from humanos_bridge_local.dashboard import Widget, dashboard_body, dashboard_resource, emitted_metrics, widgets

#: AWS's metrics the dashboard may read, by namespace, with the dimension that names our resource and
#: the resource type it must name. (From the SQS, Lambda and HTTP API metric references.)
AWS_METRICS = {
    "AWS/SQS": (
        {
            "ApproximateNumberOfMessagesVisible",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateAgeOfOldestMessage",
            "NumberOfMessagesSent",
        },
        "QueueName",
        "AWS::SQS::Queue",
    ),
    "AWS/Lambda": ({"Errors", "Throttles", "Duration", "Invocations"}, "FunctionName", "AWS::Serverless::Function"),
    "AWS/ApiGateway": ({"Count", "4xx", "5xx", "Latency", "IntegrationLatency"}, "ApiId", "AWS::Serverless::HttpApi"),
}
STATISTICS = re.compile(r"^(Sum|Average|Maximum|Minimum|SampleCount|p\d{1,2}(\.\d+)?)$")
#: Filled into the body so that the tests can recognise each parameter's value.
SENTINELS = {
    "QueueRetentionAlarmPercent": 37,
    "QueueAgeAlarmSeconds": 613,
    "MetricsNamespace": "NS",
    "ServiceName": "svc",
}


@pytest.fixture(scope="module")
def body(transformed: dict[str, Any]) -> dict[str, Any]:
    return dashboard_body(transformed, SENTINELS)


@pytest.fixture(scope="module")
def board(body: dict[str, Any]) -> list[Widget]:
    return widgets(body)


def test_every_widget_is_a_metric_graph_on_the_grid_without_overlap(body: dict[str, Any]) -> None:
    """CloudWatch's grid is 24 columns wide; widgets that overlap are moved around by the console."""
    cells: dict[tuple[int, int], str] = {}
    assert body["widgets"], "the dashboard has no widget"
    for raw in body["widgets"]:
        assert raw["type"] == "metric", f"{raw.get('type')}: only metric widgets are expected"
        properties = raw["properties"]
        assert {"title", "region", "view", "metrics", "period"} <= set(properties), properties.get("title")
        assert properties["view"] == "timeSeries" and properties["region"] == "eu-west-1"
        assert raw["x"] >= 0 and raw["x"] + raw["width"] <= 24, f"{properties['title']}: outside the 24 columns"
        for column in range(raw["x"], raw["x"] + raw["width"]):
            for row in range(raw["y"], raw["y"] + raw["height"]):
                assert (column, row) not in cells, f"{properties['title']} overlaps {cells[(column, row)]}"
                cells[(column, row)] = properties["title"]


def test_every_query_is_well_formed(board: list[Widget]) -> None:
    """Statistics CloudWatch knows, unique ids, and expressions that use only the widget's own metric ids."""
    for widget in board:
        ids = [query.id for query in widget.queries]
        assert len(ids) == len(set(ids)), f"{widget.title}: duplicate ids {ids}"
        assert any(query.visible for query in widget.queries), f"{widget.title}: draws nothing"
        for query in widget.queries:
            assert query.label, f"{widget.title}: every line needs a label"
            if query.expression:
                used = set(re.findall(r"\b[a-z][A-Za-z0-9_]*\b", query.expression)) - {"e"}
                assert used <= set(ids), f"{widget.title}: {query.expression} uses unknown ids {used - set(ids)}"
            else:
                assert STATISTICS.match(query.stat), f"{widget.title}: statistic {query.stat}"


def test_every_bridge_metric_on_the_dashboard_is_one_the_code_emits(board: list[Widget]) -> None:
    """Powertools writes the bridge's metrics in MetricsNamespace with the one dimension service=ServiceName."""
    emitted = emitted_metrics()
    for widget in board:
        for query in widget.queries:
            if query.namespace == SENTINELS["MetricsNamespace"]:
                assert query.name in emitted, f"{widget.title}: the code emits no metric {query.name}"
                assert query.dimensions == (("service", SENTINELS["ServiceName"]),), f"{widget.title}: {query.name}"


def test_every_metric_the_code_emits_is_on_the_dashboard(board: list[Widget]) -> None:
    """A metric nobody looks at is paid for ($0.30 a month) for nothing: each one has its line."""
    shown = {query.name for widget in board for query in widget.queries if query.namespace == "NS"}
    missing = emitted_metrics() - shown
    assert not missing, f"add {sorted(missing)} to the dashboard in template.yaml"


def test_aws_metrics_exist_and_name_this_stacks_resources(template: Template, board: list[Widget]) -> None:
    """Each AWS metric is one its service publishes, with the dimension that names a resource of this stack."""
    for widget in board:
        for query in widget.queries:
            if query.expression or query.namespace == SENTINELS["MetricsNamespace"]:
                continue
            assert query.namespace in AWS_METRICS, f"{widget.title}: unexpected namespace {query.namespace}"
            names, dimension, resource_type = AWS_METRICS[query.namespace]
            assert query.name in names, f"{widget.title}: {query.namespace} publishes no {query.name}"
            ((key, value),) = query.dimensions
            assert key == dimension, f"{widget.title}: {query.name} is by {dimension}, not {key}"
            assert template.resources[value]["Type"] == resource_type, f"{widget.title}: {value} is no {resource_type}"


def test_retention_lines_divide_by_the_queues_retention(template: Template, board: list[Widget]) -> None:
    """The '% of the retention' lines use the queues' MessageRetentionPeriod and mark the expiry alarm's threshold."""
    retention = template.resolve_number(template.properties("RequestQueue")["MessageRetentionPeriod"])
    expressions = [query for widget in board for query in widget.queries if "/" in query.expression]
    assert expressions, "draw the age of the oldest message against the retention"
    for query in expressions:
        assert query.expression.replace(" ", "").endswith(f"/{retention}"), query.expression
    (widget,) = [widget for widget in board if any(query in widget.queries for query in expressions)]
    assert (SENTINELS["QueueRetentionAlarmPercent"]) in [value for _, value in widget.annotations]
    assert 100 in [value for _, value in widget.annotations], "mark 100 %: where SQS deletes messages"


def test_alarm_thresholds_are_drawn_where_the_alarms_fire(board: list[Widget]) -> None:
    """The backlog alarm's QueueAgeAlarmSeconds is a line on the age graph."""
    values = {value for widget in board for _, value in widget.annotations}
    assert SENTINELS["QueueAgeAlarmSeconds"] in values


def test_dashboard_is_reachable_from_the_stack_outputs(transformed: dict[str, Any]) -> None:
    """The DashboardUrl output opens this stack's dashboard."""
    name, _ = dashboard_resource(transformed)
    url = transformed["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
    assert url.startswith("https://${AWS::Region}.console.aws.amazon.com/cloudwatch/")
    assert url.endswith("${" + name + "}")


def test_readme_cost_counts_the_metrics_the_code_emits(template: Template) -> None:
    """The fixed monthly cost counts one custom metric per name the code emits (plus one per cause): README.md
    those of ingest and dispatch, docs/receiver.md (the receiver's guide, which README.md's cost links) the
    receiver's."""
    root = template.path.parent
    receiver = emitted_metrics((root / "layers/humanos/humanos_bridge/receive", root / "functions/receiver"))
    count = len(emitted_metrics() - receiver)
    readme = (root / "README.md").read_text(encoding="utf-8")
    assert f"{count} metrics with the `service` dimension" in readme, (
        f"README.md's cost section: the code emits {count} metric names; update the count and the figure"
    )
    guide = (root / "docs" / "receiver.md").read_text(encoding="utf-8")
    assert f"adds {len(receiver)} metrics with the `service` dimension" in guide, (
        f"docs/receiver.md's cost section: the receiver emits {len(receiver)} metric names"
    )


def test_dashboard_body_is_json_text_in_sub(transformed: dict[str, Any]) -> None:
    """The body stays one !Sub string, so that CloudFormation fills in the names and it stays valid JSON."""
    _, resource = dashboard_resource(transformed)
    text = resource["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(text, str)
    json.loads(re.sub(r"\$\{[^}]+\}", "1", text))
