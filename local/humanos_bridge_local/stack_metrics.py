"""What CloudWatch says about a deployed stack: the dashboard's metrics over a window, and the stack's alarms.

The metrics are the dashboard's own widgets, read from template.yaml by ``dashboard.widgets`` and filled
with the stack's values instead of CloudFormation's: its parameters (``MetricsNamespace``, ``ServiceName``),
its resources' physical ids (function names, the API id) and its queues' names. Each line therefore asks
``GetMetricData`` for the namespace, metric, dimensions and statistic that its widget draws, and the
terminal view cannot drift from the dashboard. One call fetches up to 500 lines.

Two kinds of line are left out, and the view says so: metric math (moto, which the tests run against,
evaluates no arithmetic, so such a line could not be tested; the dashboard draws it) and a line that reads a
resource the stack does not have (a stack deployed from an older template).

The alarms are those that notify the stack's ``AlarmTopic`` (its ``AlarmTopicArn`` output): every alarm of
the template does, and ``tests/infrastructure/test_resources.py`` keeps it so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from humanos_bridge_local import dashboard
from humanos_bridge_local.aws_errors import explained
from humanos_bridge_local.dashboard import Query, Widget
from humanos_bridge_local.deployed import DeployedStack

TEMPLATE = dashboard.ROOT / "template.yaml"
#: Most points a line draws: one character each, so that a line fits a terminal.
MAX_POINTS = 60
#: ``GetMetricData`` takes at most this many queries per call.
MAX_QUERIES = 500
#: Stands in, inside the filled dashboard, for a name the stack does not have (followed by that name).
MISSING = "not in the stack: "
#: Statistics whose figure over the window is their total; for the others it is the latest value.
ADDITIVE = frozenset({"Sum", "SampleCount"})


@dataclass(frozen=True)
class Window:
    """``points`` periods of ``period`` seconds, ending at ``end`` (a whole minute)."""

    end: datetime
    period: int
    points: int

    @property
    def start(self) -> datetime:
        return self.end - timedelta(seconds=self.period * self.points)


@dataclass(frozen=True)
class Line:
    """One drawn line of a widget: its query and a value per period of the window (None: no data)."""

    query: Query
    values: tuple[float | None, ...]

    @property
    def has_data(self) -> bool:
        return any(value is not None for value in self.values)

    @property
    def figure(self) -> tuple[str, float]:
        """``("total", sum)`` for a count, else ``("latest", last value)``; call only when ``has_data``."""
        known = [value for value in self.values if value is not None]
        return ("total", sum(known)) if self.query.stat in ADDITIVE else ("latest", known[-1])


@dataclass(frozen=True)
class Panel:
    """A widget as the terminal shows it: the lines it could read and what it left out, with why."""

    widget: Widget
    lines: list[Line]
    not_shown: list[str]


@dataclass(frozen=True)
class Alarm:
    name: str
    state: str
    since: datetime


def stack_widgets(stack: DeployedStack, document: Mapping[str, Any]) -> list[Widget]:
    """The dashboard's widgets of ``document`` (template.yaml) filled with the deployed stack's values.

    A parameter the stack lacks takes the template's default; a resource it lacks becomes ``MISSING`` and
    its name, so that ``read_panels`` can leave out the lines that read it.
    """
    parameters = document.get("Parameters", {})
    values: dict[str, str] = {}
    for key in dashboard.variables(document):
        value = _stack_value(stack, key)
        if value is not None:
            values[key] = value
        elif key not in parameters:
            values[key] = MISSING + key
    return dashboard.widgets(dashboard.dashboard_body(document, values))


def _stack_value(stack: DeployedStack, key: str) -> str | None:
    pseudo = {"AWS::Region": stack.region, "AWS::StackName": stack.name}
    if key in pseudo:
        return pseudo[key]
    if key in stack.parameters:
        return stack.parameters[key]
    name, _, attribute = key.partition(".")
    resource = stack.resources.get(name)
    if resource is None:
        return None
    if not attribute:
        return resource.physical_id  # what !Ref gives: a function's name, an API's id, a queue's URL
    if attribute == "QueueName" and resource.type == "AWS::SQS::Queue":
        return resource.physical_id.rsplit("/", 1)[-1]  # the queue's URL ends in its name
    return None


def window(shown: Iterable[Widget], minutes: int, now: datetime) -> Window:
    """The last ``minutes`` before ``now``'s whole minute, in the dashboard's period (60 s) or, for a window
    longer than ``MAX_POINTS`` of them, in whole minutes long enough that it holds ``MAX_POINTS``."""
    seconds = minutes * 60
    period = max([60, *(widget.period for widget in shown), math.ceil(seconds / MAX_POINTS / 60) * 60])
    return Window(now.replace(second=0, microsecond=0), period, max(1, math.ceil(seconds / period)))


def read_panels(cloudwatch: Any, shown: Sequence[Widget], view: Window, region: str) -> list[Panel]:
    """Each widget with a line per query it draws, read from CloudWatch over ``view``."""
    plans = [_plan(widget) for widget in shown]
    values = iter(_metric_values(cloudwatch, [query for drawn, _ in plans for query in drawn], view, region))
    return [
        Panel(widget, [Line(query, next(values)) for query in drawn], not_shown)
        for widget, (drawn, not_shown) in zip(shown, plans, strict=True)
    ]


def _plan(widget: Widget) -> tuple[list[Query], list[str]]:
    drawn: list[Query] = []
    math_labels: list[str] = []
    missing: list[str] = []
    for query in widget.queries:
        if query.expression:
            math_labels.append(query.label)
        elif not query.visible:
            continue  # an input of metric math, which the dashboard does not draw either
        elif absent := _absent(query):
            missing.append(f"{query.label} (the stack has no {absent})")
        else:
            drawn.append(query)
    not_shown = [f"metric math: {', '.join(math_labels)}; see the dashboard"] if math_labels else []
    return drawn, not_shown + missing


def _absent(query: Query) -> str:
    for text in (query.namespace, query.name, *(value for _, value in query.dimensions)):
        if text.startswith(MISSING):
            return text.removeprefix(MISSING)
    return ""


def _metric_values(
    cloudwatch: Any, queries: Sequence[Query], view: Window, region: str
) -> list[tuple[float | None, ...]]:
    by_id: dict[str, list[float | None]] = {f"q{index}": [None] * view.points for index in range(len(queries))}
    requests = [_metric_query(f"q{index}", query, view.period) for index, query in enumerate(queries)]
    paginator = cloudwatch.get_paginator("get_metric_data")
    for first in range(0, len(requests), MAX_QUERIES):
        with explained("cloudwatch:GetMetricData", region):
            pages = paginator.paginate(
                MetricDataQueries=requests[first : first + MAX_QUERIES],
                StartTime=view.start,
                EndTime=view.end,
                ScanBy="TimestampAscending",
            )
            for page in pages:
                for result in page["MetricDataResults"]:
                    _place(by_id[result["Id"]], result["Timestamps"], result["Values"], view)
    return [tuple(by_id[f"q{index}"]) for index in range(len(queries))]


def _metric_query(query_id: str, query: Query, period: int) -> dict[str, Any]:
    dimensions = [{"Name": name, "Value": value} for name, value in query.dimensions]
    metric = {"Namespace": query.namespace, "MetricName": query.name, "Dimensions": dimensions}
    return {"Id": query_id, "MetricStat": {"Metric": metric, "Period": period, "Stat": query.stat}}


def _place(slots: list[float | None], timestamps: Sequence[datetime], values: Sequence[float], view: Window) -> None:
    for timestamp, value in zip(timestamps, values, strict=True):
        slot = int((timestamp - view.start).total_seconds() // view.period)
        if 0 <= slot < len(slots):
            slots[slot] = float(value)


def stack_alarms(cloudwatch: Any, topic_arn: str, region: str) -> list[Alarm]:
    """Every metric alarm that notifies ``topic_arn``, by name."""
    with explained("cloudwatch:DescribeAlarms", region):
        found = [
            alarm
            for page in cloudwatch.get_paginator("describe_alarms").paginate(ActionPrefix=topic_arn)
            for alarm in page["MetricAlarms"]
        ]
    # ActionPrefix matches the start of an ARN; another topic's ARN may start with this one's.
    return sorted(
        (
            Alarm(alarm["AlarmName"], alarm["StateValue"], alarm["StateUpdatedTimestamp"])
            for alarm in found
            if topic_arn in alarm.get("AlarmActions", [])
        ),
        key=lambda alarm: alarm.name,
    )
