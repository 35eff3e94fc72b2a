"""``humanos-bridge status``: queue depths, messages in flight, the dead-letter queue, recent outcomes.

With ``--stack NAME``, a deployed stack: the dashboard's metrics over the last ``--minutes`` (one line each,
read from CloudWatch, see ``stack_metrics``), the queues' depths now, and the alarms that are firing.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from humanos_bridge.core.errors import ConfigError
from humanos_bridge.core.masking import safe_id
from humanos_bridge_local.aws_errors import explained
from humanos_bridge_local.cfn import load_template
from humanos_bridge_local.cli import command_name
from humanos_bridge_local.deployed import read_stack
from humanos_bridge_local.endpoints import Target, add_target_arguments, aws_session, resolve_target
from humanos_bridge_local.flow import FlowEvent, format_event, header, source_width
from humanos_bridge_local.sparkline import figure, sparkline
from humanos_bridge_local.stack_metrics import TEMPLATE, Line, Panel, read_panels, stack_alarms, stack_widgets, window

DEPTHS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)
DEFAULT_MINUTES = 60
#: CloudWatch keeps one-minute points for 15 days; a longer window would draw from coarser ones.
MAX_MINUTES = 14 * 24 * 60


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="queue depths, in-flight messages, dead letters, and recent outcomes or metrics",
        description=(
            "Show the request queue and dead-letter queue depths, and the latest events (local stack) or, "
            "with --stack, the dashboard's metrics over the last minutes and the alarms that are firing."
        ),
    )
    parser.add_argument(
        "--recent",
        type=int,
        default=10,
        metavar="N",
        help="recent outcomes to show (local stack; default: %(default)s)",
    )
    parser.add_argument(
        "--minutes",
        type=int,
        metavar="N",
        help=f"with --stack: the metrics of the last N minutes (default {DEFAULT_MINUTES}, at most {MAX_MINUTES})",
    )
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def depths(sqs: Any, queue_url: str, region: str | None) -> dict[str, int]:
    with explained("sqs:GetQueueAttributes", region):
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(DEPTHS))
    return {name: int(attributes["Attributes"].get(name, 0)) for name in DEPTHS}


def run(args: argparse.Namespace) -> int:
    if args.stack:
        return _run_stack(args)
    if args.minutes is not None:
        raise ConfigError("--minutes is for a deployed stack's metrics: add --stack NAME")
    target = resolve_target(args)
    print(f"bridge: {target.description}")
    _print_queues(
        target.client("sqs"), target.request_queue_url, target.dead_letter_queue_url, _region(target), "dlq list"
    )
    recent = _recent(target, args.recent)
    if recent is None:
        print("  recent outcomes: only for the local stack; for a deployed stack see the bridge's CloudWatch metrics")
    elif not recent:
        print("  recent outcomes: none yet")
    else:
        print(f"  recent outcomes (last {len(recent)}):")
        width = source_width(event.source or "" for event in recent)
        print("    " + header(source_width=width))
        for event in recent:
            print("    " + format_event(event, source_width=width))
    return 0


def _run_stack(args: argparse.Namespace) -> int:
    minutes = DEFAULT_MINUTES if args.minutes is None else args.minutes
    if not 1 <= minutes <= MAX_MINUTES:
        raise ConfigError(f"--minutes {minutes}: give 1 to {MAX_MINUTES} (two weeks)")
    session = aws_session(args)
    stack = read_stack(session, args.stack)
    shown = stack_widgets(stack, load_template(TEMPLATE))
    view = window(shown, minutes, datetime.now(UTC))
    every = "a minute" if view.period == 60 else f"every {view.period // 60} minutes"
    print(
        f"bridge: stack {safe_id(stack.name, mask=False)} in {stack.region}, the dashboard's metrics "
        f"of the last {minutes} minutes to {view.end:%H:%M} UTC, one point {every}"
    )
    for text in _panel_lines(read_panels(session.client("cloudwatch"), shown, view, stack.region)):
        print(text)
    print()
    dead_letter_queue_url = stack.outputs.get("DeadLetterQueueUrl")
    hint = f"dlq list --stack {safe_id(stack.name, mask=False)} --region {stack.region}"
    _print_queues(session.client("sqs"), stack.output("RequestQueueUrl"), dead_letter_queue_url, stack.region, hint)
    if "AlarmTopicArn" not in stack.outputs:
        print("  alarms          unknown: the stack has no AlarmTopicArn output")
        return 0
    alarms = stack_alarms(session.client("cloudwatch"), stack.outputs["AlarmTopicArn"], stack.region)
    firing = [alarm for alarm in alarms if alarm.state == "ALARM"]
    print(f"  alarms          {len(firing)} in ALARM, of {len(alarms)} that notify the stack's AlarmTopic")
    for alarm in firing:
        print(f"    {safe_id(alarm.name, mask=False)}  since {alarm.since.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    return 0


def _panel_lines(panels: list[Panel]) -> Iterator[str]:
    """A heading per widget (with its threshold lines), then a line per metric: label, sparkline, figure."""
    width = max((len(line.query.label) for panel in panels for line in panel.lines), default=0)
    for panel in panels:
        notes = "".join(f"  ({label} at {figure(value)})" for label, value in panel.widget.annotations)
        yield f"  {panel.widget.title}{notes}"
        for line in panel.lines:
            yield f"    {line.query.label:<{width}}  {sparkline(line.values)}  {_figure(line)}"
        for reason in panel.not_shown:
            yield f"    not shown: {reason}"


def _figure(line: Line) -> str:
    if not line.has_data:
        return "no data"
    name, value = line.figure
    return f"{name} {figure(value)}"


def _print_queues(
    sqs: Any, request_queue_url: str, dead_letter_queue_url: str | None, region: str | None, dlq_command: str
) -> None:
    queue = depths(sqs, request_queue_url, region)
    print(
        f"  request queue   {queue[DEPTHS[0]]} waiting, {queue[DEPTHS[1]]} in flight "
        f"(being handled or backing off), {queue[DEPTHS[2]]} delayed"
    )
    if dead_letter_queue_url:
        dlq = depths(sqs, dead_letter_queue_url, region)
        parked = dlq[DEPTHS[0]] + dlq[DEPTHS[1]]
        hint = f"  ({command_name()} {dlq_command})" if parked else ""
        print(f"  dead letters    {parked}{hint}")


def _region(target: Target) -> str | None:
    return getattr(target.session, "region_name", None)


def _recent(target: Target, count: int) -> list[FlowEvent] | None:
    if not target.outcomes_file:
        return None
    try:
        data: list[dict[str, Any]] = json.loads(Path(target.outcomes_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [FlowEvent(**item) for item in data[-count:]] if count > 0 else []
