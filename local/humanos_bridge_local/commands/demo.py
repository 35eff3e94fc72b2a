"""``humanos-bridge demo``: the sample events through a fresh local stack, checked against events/demo.json.

Each step of the manifest names a sample event, its source, whether it is signed, the headers its sender adds
(a Shopify topic), an optional fault the Humanos sandbox answers for that event, and the outcome it must have:
the HTTP status, the answer's ``status`` or error ``code``, and what the dispatcher finally does with it
(``created``, ``duplicate``, ``parked``; nothing when the event is refused, ignored or a copy). Exit 0 when
every step matches and the sandbox stored exactly the requests the events made, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3

from humanos_bridge.core.errors import ConfigError
from humanos_bridge.core.masking import mask_text, safe_id
from humanos_bridge.core.queue_messages import is_fifo
from humanos_bridge_local.aws_envelopes import queue_message
from humanos_bridge_local.commands.local import add_stack_arguments, print_event, say, stack_options
from humanos_bridge_local.flow import DISPATCH, HEADER
from humanos_bridge_local.sandbox import Fault
from humanos_bridge_local.senders import identity_headers, sender_auth, signed_headers
from humanos_bridge_local.stack import ROOT, LocalStack

MANIFEST = ROOT / "events" / "demo.json"
#: Dispatcher outcomes that end an event's journey (``retry`` is a step on the way).
FINAL = ("created", "duplicate", "recovered", "ignored", "parked")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="send every sample event through a fresh local stack and check each outcome",
        description=(
            "Start the local stack on free ports, send the sample events listed in events/demo.json (valid, "
            "duplicated, ignored, unmappable, unsigned, refused by Humanos), wait until the queue drains, print "
            "a summary and exit 0 when every outcome is the expected one, 1 otherwise."
        ),
    )
    parser.add_argument("--manifest", type=Path, default=MANIFEST, help=f"steps and expectations (default: {MANIFEST})")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds to wait for the queue to drain (default: %(default)s)"
    )
    add_stack_arguments(parser, default_port=0)
    parser.set_defaults(func=run)


@dataclass
class Step:
    name: str
    source: str
    event: Path
    expect: dict[str, Any]
    signed: bool = True
    humanos_fault: int | None = None
    #: None: POSTed to the ingest API; "eventbridge", "sns" or "sqs": put on the queue as that service would.
    via: str | None = None
    #: Headers the sender adds besides its signature, such as the topic and delivery id Shopify sends.
    headers: dict[str, str] = field(default_factory=dict)
    # What happened.
    http: int | None = None
    answer: dict[str, Any] = field(default_factory=dict)
    dispatch: str | None = None
    dispatch_reason: str | None = None

    @property
    def event_id(self) -> str | None:
        value = self.answer.get("eventId")
        return str(value) if value else None

    @property
    def answer_word(self) -> str:
        error = self.answer.get("error")
        if isinstance(error, dict):
            return str(error.get("code"))
        return str(self.answer.get("status", "-"))

    @property
    def requests_created(self) -> int:
        """Humanos requests this step's event created: one, or one per item of a forEach rule."""
        return int(self.answer.get("requests", 1)) if self.dispatch in ("created", "recovered") else 0

    @property
    def problems(self) -> list[str]:
        found = []
        if self.http != self.expect.get("http"):
            found.append(f"HTTP {self.http}, expected {self.expect.get('http')}")
        wanted = self.expect.get("status") or self.expect.get("code")
        if wanted and self.answer_word != wanted:
            found.append(f"answer {self.answer_word}, expected {wanted}")
        if "requests" in self.expect and self.answer.get("requests", 1) != self.expect["requests"]:
            found.append(f"{self.answer.get('requests', 1)} request(s) to make, expected {self.expect['requests']}")
        if self.dispatch != self.expect.get("dispatch"):
            found.append(
                f"dispatcher {self.dispatch or 'nothing'}, expected {self.expect.get('dispatch') or 'nothing'}"
            )
        return found


def load_manifest(path: Path) -> list[Step]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read demo manifest {path}: {exc}") from exc
    steps = []
    for index, raw in enumerate(data.get("steps", [])):
        try:
            event = path.parent / raw["event"]
            steps.append(
                Step(
                    name=str(raw["name"]),
                    source=str(raw["source"]),
                    event=event,
                    expect=dict(raw["expect"]),
                    signed=bool(raw.get("signed", True)),
                    humanos_fault=raw.get("humanosFault"),
                    via=raw.get("via"),
                    headers={str(name): str(value) for name, value in raw.get("headers", {}).items()},
                )
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: steps[{index}] needs name, source, event and expect ({exc})") from exc
        except AttributeError as exc:
            raise ConfigError(f"{path}: steps[{index}].headers must be an object of header values") from exc
        if not event.exists():
            raise ConfigError(f"{path}: steps[{index}] names {event}, which does not exist")
    if not steps:
        raise ConfigError(f"{path} lists no steps")
    return steps


def run(args: argparse.Namespace) -> int:
    steps = load_manifest(args.manifest)
    say("starting a fresh local stack ...")
    with LocalStack(stack_options(args, write_endpoints=False), on_event=print_event, on_message=say) as stack:
        say(f"ready in {stack.ready_seconds:.1f} s at {stack.api_url}")
        say(f"functions: {stack.runs}; sending {len(steps)} events\n")
        say(HEADER)
        if stack.sandbox is None:
            raise ConfigError("the demo injects Humanos faults, so it runs against the sandbox only; drop --humanos-*")
        for step in steps:
            send_step(stack, step)
        drained = stack.wait_until_drained(args.timeout)
        settle(stack, steps)
        depths = stack.queue_depths()
        created = len(stack.sandbox.created)
    print_summary(steps, depths, created, drained)
    failed = [step for step in steps if step.problems]
    expected_created = sum(step.requests_created for step in steps)
    if created != expected_created:
        # Exactly once, checked where it matters: what Humanos stored, not what the functions logged.
        say(f"\nFAILED: the Humanos sandbox stored {created} requests; the events made {expected_created}")
        return 1
    if not drained:
        say(f"\nFAILED: the request queue did not drain within {args.timeout:g} s")
        return 1
    if failed:
        say(f"\nFAILED: {len(failed)} of {len(steps)} steps did not have the expected outcome")
        return 1
    say(f"\nOK: all {len(steps)} steps had the expected outcome, through the functions as sam build packages them")
    return 0


def send_step(stack: LocalStack, step: Step) -> None:
    assert stack.mapping is not None and stack.sandbox is not None
    body = step.event.read_bytes()
    if step.via is not None:
        # As the template's EventBridge rule or SNS subscription delivers it: no HTTP, no source attribute.
        message = queue_message(stack.mapping, step.source, body, step.via, fifo=is_fifo(stack.request_queue_url))
        stack.client("sqs").send_message(QueueUrl=stack.request_queue_url, **message)
        event_id = stack.mapping.event_identity(step.source, json.loads(body))[1]
        step.answer = {"eventId": safe_id(event_id), "status": "accepted"}
        return
    if step.humanos_fault is not None:
        # Only this event's request is refused: its contact appears in no other sample's body.
        stack.sandbox.inject(Fault.status(step.humanos_fault), body_contains=_marker(step))
    auth = sender_auth(stack.mapping, step.source)
    # As the provider sends them: the topic the step gives, and a delivery id the source reads (fresh if not given).
    given = identity_headers(stack.mapping.source(step.source), step.headers)
    headers = {"Content-Type": "application/json", **given}
    url = f"{stack.api_url}/events/{step.source}"
    if step.signed:
        secret = stack.sender_secrets[auth.secret_key][0]
        headers = signed_headers(auth.config or auth.scheme, secret, body, url=url, headers=given)
    response = urllib3.request("POST", url, body=body, headers=headers, timeout=15)
    step.http = response.status
    try:
        step.answer = json.loads(response.data or b"{}")
    except ValueError:
        step.answer = {}


def _marker(step: Step) -> bytes:
    """Bytes of the mapped request that only this step's event produces: its event id as the internalId."""
    data = json.loads(step.event.read_text(encoding="utf-8"))
    for key in ("eventId", "id"):
        if isinstance(data.get(key), str):
            return data[key].encode()
    raise ConfigError(f"{step.event}: a step with humanosFault needs an event with an id")


def settle(stack: LocalStack, steps: list[Step]) -> None:
    """Give each step the dispatcher's final outcome for its event id, in the order the steps were sent."""
    finals: dict[str, list[tuple[str, str | None]]] = {}
    for event in stack.recorder.events:
        if event.stage == DISPATCH and event.outcome in FINAL and event.event_id:
            finals.setdefault(event.event_id, []).append((event.outcome, event.reason))
    for step in steps:
        queue = finals.get(step.event_id or "")
        if step.answer.get("status") == "accepted" and queue:
            step.dispatch, step.dispatch_reason = queue.pop(0)


def print_summary(steps: list[Step], depths: dict[str, int], created: int, drained: bool) -> None:
    say("\nSummary")
    say(f"  {'step':<50} {'HTTP':>4}  {'answer':<14} {'dispatcher':<11} result")
    for step in steps:
        result = "ok" if not step.problems else "UNEXPECTED: " + "; ".join(step.problems)
        say(f"  {step.name:<50} {step.http or '-':>4}  {step.answer_word:<14} {step.dispatch or '-':<11} {result}")
    count = {word: sum(1 for s in steps if s.dispatch == word) for word in FINAL}
    accepted = sum(1 for s in steps if s.answer.get("status") == "accepted")
    ignored = sum(1 for s in steps if s.answer.get("status") == "ignored")
    say("")
    say(f"  accepted      {accepted}")
    say(f"  ignored       {ignored}")
    made = sum(step.requests_created for step in steps)
    events = count["created"] + count["recovered"]
    say(f"  created       {made} requests from {events} events   (requests stored by the Humanos sandbox: {created})")
    say(f"  duplicates    {count['duplicate']}")
    rejected = [s for s in steps if s.http is not None and s.http >= 400]
    say(f"  rejected      {len(rejected)}")
    for step in rejected:
        error = step.answer.get("error", {})
        say(mask_text(f"                {step.http} {error.get('code')}: {error.get('message')}"))
    say(f"  in the DLQ    {depths['dead_letters']}")
    for step in steps:
        if step.dispatch == "parked":
            say(mask_text(f"                {step.event_id}: {step.dispatch_reason}"))
    state = "" if drained else " (not drained)"
    say(f"  queue         {depths['visible']} waiting, {depths['in_flight']} in flight{state}")
