"""``humanos-bridge status``: queue depths, messages in flight, the dead-letter queue, recent outcomes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from humanos_bridge_local.endpoints import Target, add_target_arguments, resolve_target
from humanos_bridge_local.flow import HEADER, FlowEvent, format_event

DEPTHS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "status",
        help="queue depths, in-flight messages, dead letters and recent outcomes",
        description="Show the request queue and dead-letter queue depths, and (local stack) the latest events.",
    )
    parser.add_argument("--recent", type=int, default=10, metavar="N", help="recent outcomes to show (local stack)")
    add_target_arguments(parser)
    parser.set_defaults(func=run)


def depths(target: Target, queue_url: str) -> dict[str, int]:
    attributes = target.client("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=list(DEPTHS))
    return {name: int(attributes["Attributes"].get(name, 0)) for name in DEPTHS}


def run(args: argparse.Namespace) -> int:
    target = resolve_target(args)
    print(f"bridge: {target.description}")
    queue = depths(target, target.request_queue_url)
    print(
        f"  request queue   {queue[DEPTHS[0]]} waiting, {queue[DEPTHS[1]]} in flight "
        f"(being handled or backing off), {queue[DEPTHS[2]]} delayed"
    )
    if target.dead_letter_queue_url:
        dlq = depths(target, target.dead_letter_queue_url)
        parked = dlq[DEPTHS[0]] + dlq[DEPTHS[1]]
        hint = "  (humanos-bridge dlq list)" if parked else ""
        print(f"  dead letters    {parked}{hint}")
    recent = _recent(target, args.recent)
    if recent is None:
        print("  recent outcomes: only for the local stack; for a deployed stack see the bridge's CloudWatch metrics")
    elif not recent:
        print("  recent outcomes: none yet")
    else:
        print(f"  recent outcomes (last {len(recent)}):")
        print("    " + HEADER)
        for event in recent:
            print("    " + format_event(event))
    return 0


def _recent(target: Target, count: int) -> list[FlowEvent] | None:
    if not target.outcomes_file:
        return None
    try:
        data: list[dict[str, Any]] = json.loads(Path(target.outcomes_file).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [FlowEvent(**item) for item in data[-count:]] if count > 0 else []
