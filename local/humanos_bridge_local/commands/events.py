"""``humanos-bridge events tail``: what the receiver published to the webhook bus of the running local stack.

Reads the queue that the local stack's own rule on the bus fills (``bus_events``), without consuming it, and
prints one line per event: time, detail-type, Humanos request id, the business event it answers, the decision
and the start of its webhook key. Never the payload (contacts, identity data). ``--follow`` then prints each new
event as it arrives, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from humanos_bridge.core.errors import ConfigError
from humanos_bridge_local import bus_events
from humanos_bridge_local.cli import command_name
from humanos_bridge_local.endpoints import LOCAL_CREDENTIALS, endpoints_path, read_local_endpoints

DEFAULT_LIMIT = 20
#: Seconds between two reads of the queue with ``--follow``.
FOLLOW_POLL_SECONDS = 1.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("events", help="what reached the webhook event bus (local stack)")
    actions = parser.add_subparsers(dest="events_command", metavar="ACTION", required=True)
    tail = actions.add_parser(
        "tail",
        help="print the events the receiver published to the bus (payloads never shown)",
        description=(
            "Print the latest events on the local stack's webhook bus, one line each: time, detail-type, Humanos "
            "request id, the business event it answers, the decision and its webhook key. Payloads, which hold "
            "contacts and identity data, are never shown; identifiers are masked. Reads through a rule and a queue "
            "that only the local stack adds, and leaves the events there."
        ),
    )
    tail.add_argument("--follow", "-f", action="store_true", help="then print new events as they arrive, until Ctrl-C")
    tail.add_argument(
        "--limit", "-n", type=int, default=DEFAULT_LIMIT, metavar="N", help="the last N events (default: %(default)s)"
    )
    tail.add_argument(
        "--endpoints", type=Path, metavar="FILE", help=f"local stack endpoints file (default: {endpoints_path()})"
    )
    tail.set_defaults(func=run_tail)


class BusReader:
    """The running local stack's bus, as its endpoints file names it."""

    def __init__(self, data: dict[str, Any]) -> None:
        if not data.get("eventsQueueUrl"):
            raise ConfigError(
                f"the local stack at {data.get('apiUrl')} was started by an older humanos-bridge, without a webhook "
                f"bus to read; restart `{command_name()} local`"
            )
        session = boto3.session.Session(region_name=data["region"], **LOCAL_CREDENTIALS)
        self.sqs = session.client("sqs", endpoint_url=data["awsEndpointUrl"])
        self.queue_url = str(data["eventsQueueUrl"])
        self.bus = str(data.get("eventBusName", "?"))
        self.api_url = str(data.get("apiUrl"))

    def read(self) -> list[bus_events.BusEvent]:
        try:
            return bus_events.read_all(self.sqs, self.queue_url)
        except (BotoCoreError, ClientError) as exc:
            raise ConfigError(
                f"cannot read the webhook bus of the local stack at {self.api_url} ({type(exc).__name__}); "
                "has it stopped?"
            ) from exc


def run_tail(args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise ConfigError(f"--limit must not be negative, got {args.limit}")
    reader = BusReader(read_local_endpoints(args.endpoints))
    if not args.follow:
        print_latest(reader, args.limit, print)
        return 0
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    in_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    try:
        follow(reader, args.limit, print, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def print_latest(reader: BusReader, limit: int, say: Callable[[str], None]) -> set[str]:
    """The last ``limit`` events under a heading; the ids of every event read (shown or not)."""
    events = reader.read()
    shown = events[-limit:] if limit else []
    if not events:
        say(
            f"no event on the bus {reader.bus} yet: a decided request's webhook puts one there "
            f"(`{command_name()} sandbox decide REQUEST_ID --accept`)"
        )
    else:
        say(f"events on the bus {reader.bus}: the last {len(shown)} of {len(events)} (payloads not shown)")
    if shown:
        say(bus_events.header())
        for event in shown:
            say(bus_events.format_event(event))
    return {event.message_id for event in events}


def follow(reader: BusReader, limit: int, say: Callable[[str], None], stop: threading.Event) -> None:
    """``print_latest``, then every new event as it arrives, until ``stop`` is set."""
    seen = print_latest(reader, limit, say)
    say(f"following the bus {reader.bus}; Ctrl-C to stop")
    headed = bool(seen) and limit > 0
    while not stop.wait(FOLLOW_POLL_SECONDS):
        fresh = [event for event in reader.read() if event.message_id not in seen]
        if fresh and not headed:
            say(bus_events.header())
            headed = True
        for event in fresh:
            seen.add(event.message_id)
            say(bus_events.format_event(event))
