"""``humanos-bridge demo``: the sample events through a fresh local stack, checked against events/demo.json.

Each step of the manifest names a sample event, its source, whether it is signed, the headers its sender adds
(a Shopify topic), an optional fault the Humanos sandbox answers for that event, and the outcome it must have:
the HTTP status, the answer's ``status`` or error ``code``, and what the dispatcher finally does with it
(``created``, ``duplicate``, ``parked``; nothing when the event is refused, ignored or a copy).

Then the way back (the manifest's ``webhooks``): the sandbox decides requests the steps created (``decide``: the
person accepts or rejects, and Humanos sends its webhook to the receiver), sends a webhook again as Humanos's
retry does (``redeliver``), and the demo posts a copy of one with its signature broken (``tamper``). Each names
the HTTP status the receiver must answer, its answer (``published``, ``replayed``, or the error code), and the
detail-type each of its webhooks puts on the event bus (``bus``; none when it must publish nothing).

Exit 0 when every step matches, the sandbox stored exactly the requests the events made, and the bus holds
exactly the events the webhooks should have published (detail-type and Humanos request id), 1 otherwise.
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
from humanos_bridge_local import bus_events
from humanos_bridge_local.aws_envelopes import queue_message
from humanos_bridge_local.commands.local import add_stack_arguments, print_event, say, stack_options
from humanos_bridge_local.flow import DISPATCH, HEADER, WEBHOOK, FlowEvent
from humanos_bridge_local.sandbox import OUTCOMES, DecisionError, Delivery, Fault
from humanos_bridge_local.sandbox.webhook_crypto import signed_headers as webhook_headers
from humanos_bridge_local.senders import identity_headers, sender_auth, signed_headers
from humanos_bridge_local.stack import ROOT, LocalStack

MANIFEST = ROOT / "events" / "demo.json"
#: Dispatcher outcomes that end an event's journey (``retry`` is a step on the way).
FINAL = ("created", "duplicate", "recovered", "ignored", "parked")
#: What a webhook step does: the sandbox decides a request, sends a webhook again, or the demo posts a tampered one.
DECIDE, REDELIVER, TAMPER = "decide", "redeliver", "tamper"
#: Seconds to wait for a webhook's deliveries (the sandbox retries for about 16 s) and for its line in the flow.
WEBHOOK_TIMEOUT_SECONDS = 20.0
#: Seconds to wait for the expected events to reach the bus's queue (they are there once the receiver answers).
BUS_TIMEOUT_SECONDS = 5.0


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
    #: The Humanos request the dispatcher created (or found) for this step's event.
    request_id: str | None = None

    @property
    def event_id(self) -> str | None:
        value = self.answer.get("eventId")
        return str(value) if value else None

    @property
    def answer_word(self) -> str:
        """The answer's status (``accepted``, ``parked``...), else its error code."""
        if self.answer.get("status"):
            return str(self.answer["status"])
        error = self.answer.get("error")
        return str(error.get("code")) if isinstance(error, dict) else "-"

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


@dataclass
class WebhookStep:
    """A webhook coming back: a decision in the sandbox, Humanos's retry of one, or a tampered copy."""

    name: str
    action: str
    #: ``decide``: the step whose request is decided; ``redeliver``/``tamper``: the webhook step whose webhook
    #: is sent again or copied.
    of: str
    expect: dict[str, Any]
    #: ``decide``: ``accept``, ``reject``, ``kyc-pass``, ``kyc-fail`` or ``otp-fail``.
    outcome: str | None = None
    # What happened.
    request_id: str | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    http: int | None = None
    answer: str | None = None
    failure: str | None = None

    @property
    def expected_on_bus(self) -> list[tuple[str, str]]:
        """(detail-type, request id) of the events this step's webhooks must put on the bus: one each."""
        detail_type = self.expect.get("bus")
        if not detail_type or self.request_id is None:
            return []
        return [(str(detail_type), self.request_id)] * max(len(self.deliveries), 1)

    @property
    def problems(self) -> list[str]:
        if self.failure:
            return [self.failure]
        found = []
        if self.http != self.expect.get("http"):
            found.append(f"HTTP {self.http}, expected {self.expect.get('http')}")
        wanted = self.expect.get("answer")
        if wanted and self.answer != wanted:
            found.append(f"answer {self.answer or 'none'}, expected {wanted}")
        return found


def load_webhook_steps(path: Path, data: dict[str, Any], names: set[str]) -> list[WebhookStep]:
    """The manifest's ``webhooks``: each refers by name to an earlier step (or webhook step, for redeliver/tamper)."""
    steps: list[WebhookStep] = []
    for index, raw in enumerate(data.get("webhooks", [])):
        where = f"{path}: webhooks[{index}]"
        try:
            step = WebhookStep(
                name=str(raw["name"]),
                action=str(raw["action"]),
                of=str(raw["of"]),
                expect=dict(raw["expect"]),
                outcome=raw.get("outcome"),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{where} needs name, action, of and expect ({exc})") from exc
        if step.action not in (DECIDE, REDELIVER, TAMPER):
            raise ConfigError(f"{where}: action must be {DECIDE}, {REDELIVER} or {TAMPER}, not {step.action!r}")
        if step.action == DECIDE and step.outcome not in OUTCOMES:
            raise ConfigError(f"{where}: a decide needs an outcome, one of {', '.join(OUTCOMES)}")
        earlier = names if step.action == DECIDE else {s.name for s in steps if s.action == DECIDE}
        if step.of not in earlier:
            what = "step" if step.action == DECIDE else "decide webhook step before it"
            raise ConfigError(f"{where}: names {step.of!r}, which is no {what}")
        steps.append(step)
    return steps


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
    webhooks = load_webhook_steps(args.manifest, _manifest_data(args.manifest), {step.name for step in steps})
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
        by_name = {step.name: step for step in steps}
        for webhook in webhooks:
            send_webhook_step(stack, webhook, by_name, {w.name: w for w in webhooks})
        expected_bus = sorted(event for webhook in webhooks for event in webhook.expected_on_bus)
        sqs = stack.client("sqs")
        on_bus = bus_events.wait_for(sqs, stack.events_queue_url, len(expected_bus), timeout=BUS_TIMEOUT_SECONDS)
        depths = stack.queue_depths()
        created = len(stack.sandbox.created)
    print_summary(steps, depths, created, drained)
    print_webhooks(webhooks, on_bus)
    failed = [step.name for step in steps if step.problems] + [step.name for step in webhooks if step.problems]
    expected_created = sum(step.requests_created for step in steps)
    found_bus = sorted((event.detail_type, event.request_id) for event in on_bus)
    total = len(steps) + len(webhooks)
    failures = []
    if created != expected_created:
        # Exactly once, checked where it matters: what Humanos stored, not what the functions logged.
        failures.append(f"the Humanos sandbox stored {created} requests; the events made {expected_created}")
    if not drained:
        failures.append(f"the request queue did not drain within {args.timeout:g} s")
    if failed:
        failures.append(f"{len(failed)} of {total} steps did not have the expected outcome")
    if found_bus != expected_bus:
        # Exactly once on the way back too: what reached the bus, not what the receiver logged.
        failures.append(
            f"the event bus holds {len(found_bus)} events; the webhooks should have published {len(expected_bus)}: "
            f"{_bus_difference(expected_bus, found_bus)}"
        )
    if failures:
        say("")
        for failure in failures:
            say(f"FAILED: {failure}")
        return 1
    say(f"\nOK: all {total} steps had the expected outcome, through the functions as sam build packages them")
    return 0


def _manifest_data(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))  # load_manifest has read it already
    return data if isinstance(data, dict) else {}


def _bus_difference(expected: list[tuple[str, str]], found: list[tuple[str, str]]) -> str:
    missing, extra = list(expected), []
    for event in found:
        if event in missing:
            missing.remove(event)
        else:
            extra.append(event)
    parts = [f"missing {t} for {safe_id(r, mask=False)}" for t, r in missing]
    parts += [f"unexpected {safe_id(t)} for {safe_id(r, mask=False)}" for t, r in extra]
    return "; ".join(parts)


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
            return str(data[key]).encode()
    raise ConfigError(f"{step.event}: a step with humanosFault needs an event with an id")


def settle(stack: LocalStack, steps: list[Step]) -> None:
    """Give each step the dispatcher's final outcome for its event id, in the order the steps were sent."""
    finals: dict[str, list[FlowEvent]] = {}
    for event in stack.recorder.events:
        if event.stage == DISPATCH and event.outcome in FINAL and event.event_id:
            finals.setdefault(event.event_id, []).append(event)
    for step in steps:
        queue = finals.get(step.event_id or "")
        if step.answer.get("status") == "accepted" and queue:
            final = queue.pop(0)
            step.dispatch, step.dispatch_reason, step.request_id = final.outcome, final.reason, final.request_id


def send_webhook_step(
    stack: LocalStack, step: WebhookStep, steps: dict[str, Step], webhooks: dict[str, WebhookStep]
) -> None:
    """Decide, redeliver or tamper, then record what the receiver answered (its status, and its word for it)."""
    assert stack.sandbox is not None
    if step.action == TAMPER:
        post_tampered(stack, step, webhooks[step.of])
        return
    if step.action == DECIDE:
        step.request_id = steps[step.of].request_id
    else:
        step.request_id = webhooks[step.of].request_id
    if step.request_id is None:
        step.failure = f"no Humanos request to work on: {step.of!r} created none"
        return
    before = len(_webhook_lines(stack, step.request_id))
    try:
        if step.action == DECIDE:
            assert step.outcome is not None
            step.deliveries = stack.sandbox.decide(step.request_id, step.outcome)
        else:
            step.deliveries = [stack.sandbox.redeliver(webhooks[step.of].deliveries[0].id)]
    except (DecisionError, IndexError) as exc:
        step.failure = f"the sandbox refused: {exc}"
        return
    step.deliveries = stack.sandbox.wait_for_deliveries(step.deliveries, timeout=WEBHOOK_TIMEOUT_SECONDS)
    statuses = {delivery.status for delivery in step.deliveries}
    step.http = statuses.pop() if len(statuses) == 1 else None
    # The receiver's own word for each webhook, from its log line (written before it answers, read a moment later).
    wanted = before + len(step.deliveries)
    stack.recorder.wait_for(lambda _: len(_webhook_lines(stack, step.request_id)) >= wanted, WEBHOOK_TIMEOUT_SECONDS)
    words = {line.outcome for line in _webhook_lines(stack, step.request_id)[before:]}
    step.answer = ",".join(sorted(words)) or None


def _webhook_lines(stack: LocalStack, request_id: str | None) -> list[FlowEvent]:
    return [e for e in stack.recorder.events if e.stage == WEBHOOK and e.request_id == request_id]


def post_tampered(stack: LocalStack, step: WebhookStep, original: WebhookStep) -> None:
    """POST a webhook the sandbox sent, signed now with the right secret, then one hex digit of the signature
    changed: what someone who copied a webhook, or altered one in transit, would send."""
    assert stack.webhook_secrets is not None
    if not original.deliveries:
        step.failure = f"no webhook to copy: {original.name!r} sent none"
        return
    body = original.deliveries[0].body
    headers = webhook_headers(body, stack.webhook_secrets.signature_secret)
    signature = headers["x-signature"]
    headers["x-signature"] = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    response = urllib3.request("POST", stack.webhook_url, body=body, headers=headers, timeout=15)
    step.http = response.status
    try:
        error = json.loads(response.data or b"{}").get("error", {})
    except (ValueError, AttributeError):
        error = {}
    step.answer = str(error.get("code")) if isinstance(error, dict) and error.get("code") else None


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
        if step.answer.get("status") == "parked":  # parked by ingest: a provider's event it could not route
            error = step.answer.get("error", {})
            say(mask_text(f"                {step.event_id}: {error.get('code')}: {error.get('message')}"))
        if step.dispatch == "parked":
            say(mask_text(f"                {step.event_id}: {step.dispatch_reason}"))
    state = "" if drained else " (not drained)"
    say(f"  queue         {depths['visible']} waiting, {depths['in_flight']} in flight{state}")


def print_webhooks(webhooks: list[WebhookStep], on_bus: list[bus_events.BusEvent]) -> None:
    if not webhooks:
        return
    say("\nWebhooks back from Humanos (the sandbox)")
    say(f"  {'step':<50} {'HTTP':>4}  {'answer':<14} {'on the bus':<20} result")
    for step in webhooks:
        result = "ok" if not step.problems else "UNEXPECTED: " + "; ".join(step.problems)
        bus = str(step.expect.get("bus") or "-")
        say(f"  {step.name:<50} {step.http or '-':>4}  {step.answer or '-':<14} {bus:<20} {result}")
    say(f"\n  on the bus    {len(on_bus)} events (payloads not shown)")
    for event in on_bus:
        say(f"                {bus_events.format_event(event)}")
