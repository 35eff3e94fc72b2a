"""``humanos-bridge local``: the whole bridge on this machine until Ctrl-C (the README's run command)."""

from __future__ import annotations

import argparse
import errno
import json
import os
import shlex
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from humanos_bridge.core.errors import BridgeError, ConfigError
from humanos_bridge.mapping import MappingConfig
from humanos_bridge_local import endpoints
from humanos_bridge_local.cli import command_name
from humanos_bridge_local.commands.sandbox import WEBHOOK_SECRET_VARIABLES
from humanos_bridge_local.flow import SOURCE_WIDTH, FlowEvent, format_event, header, source_width
from humanos_bridge_local.sandbox import OUTCOMES
from humanos_bridge_local.senders import curl_command, signed_headers
from humanos_bridge_local.stack import ROOT, LocalStack, StackOptions

MAPPINGS = ROOT / "mappings"
SAMPLES = ROOT / "events" / "business"
#: The sample event the printed ``curl`` posts with the default mapping; other mappings get the first sample
#: of ``SAMPLES`` that one of their sources maps (see ``try_it_sample``).
SAMPLE = ("crm", SAMPLES / "crm-contact-created.json")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "local",
        help="run the whole bridge locally (moto, Humanos sandbox, ingest API, dispatcher, webhook receiver)",
        description=(
            "Start on 127.0.0.1 moto with the resources of template.yaml, the Humanos sandbox (or a real "
            "Humanos), and the functions as sam build packages them (python3.13 under Lambda's runtime interface "
            "client): the ingest function and the webhook receiver behind one local HTTP API, the dispatcher fed "
            "from the queue. The sandbox sends its webhooks to the receiver, which publishes them to the event "
            "bus (`events tail` reads it). Prints the endpoints, where the local secrets are and a signed curl, "
            "then one line per event and webhook. Ctrl-C stops it."
        ),
    )
    add_stack_arguments(parser, default_port=8080)
    parser.add_argument(
        "--show-secrets",
        action="store_true",
        help="print the sender and webhook secrets' values too (by default only where they are: output is often "
        "kept in files)",
    )
    parser.add_argument(
        "--auto-decide",
        choices=OUTCOMES,
        metavar="OUTCOME",
        help=f"the sandbox decides every new request by itself, a second after its creation: {', '.join(OUTCOMES)} "
        "(default: only on `sandbox decide`)",
    )
    parser.set_defaults(func=run)


def add_stack_arguments(parser: argparse.ArgumentParser, *, default_port: int) -> None:
    parser.add_argument(
        "--port", type=int, default=default_port, help=f"HTTP port, 0 = any free one (default: {default_port})"
    )
    parser.add_argument("--state-dir", type=Path, help="keep generated secrets here across restarts (default: memory)")
    parser.add_argument(
        "--mapping",
        type=Path,
        metavar="FILE",
        help="mapping file: a path, or a file in mappings/ such as presets/stripe-checkout.json (default: the "
        "template's MappingFile in mappings/)",
    )
    parser.add_argument("--batch-size", type=int, help="dispatcher batch size (default: the template's BatchSize)")
    parser.add_argument(
        "--batching-window", type=float, metavar="S", help="seconds to fill a batch (default: the template's)"
    )
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a template parameter, as sam deploy --parameter-overrides does (repeatable)",
    )
    humanos = parser.add_argument_group("real Humanos instead of the sandbox (all three, or the HUMANOS_* env vars)")
    humanos.add_argument(
        "--humanos-url", default=os.environ.get("HUMANOS_BASE_URL"), help="e.g. https://api.humanos.id"
    )
    humanos.add_argument("--humanos-api-key", default=os.environ.get("HUMANOS_API_KEY"))
    humanos.add_argument("--humanos-signature-secret", default=os.environ.get("HUMANOS_SIGNATURE_SECRET"))
    webhooks = parser.add_argument_group(
        "webhook secrets (the Humanos dashboard's Webhook settings; the sandbox seals and signs with them, the "
        "receiver verifies and decrypts)"
    )
    for flag, what in (
        ("signature-secret", "Webhook Signature Secret"),
        ("encryption-secret", "Webhook Encryption Secret (base64)"),
        ("encryption-salt", "Webhook Encryption Salt"),
    ):
        variable = WEBHOOK_SECRET_VARIABLES[f"humanos_webhook_{flag.replace('-', '_')}"]
        webhooks.add_argument(
            f"--humanos-webhook-{flag}",
            metavar="SECRET",
            help=f"the {what} (default: ${variable}; else, with the sandbox, the one kept in --state-dir, else "
            "generated; with a real Humanos, give all three or none)",
        )


def stack_options(args: argparse.Namespace, *, write_endpoints: bool) -> StackOptions:
    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.batching_window is not None and not 0 <= args.batching_window <= 20:
        raise ConfigError(f"--batching-window must be between 0 and 20 seconds, got {args.batching_window}")
    parameters = {}
    for item in args.parameter:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise ConfigError(f"--parameter takes NAME=VALUE (e.g. RateLimitPerMinute=600), got {item!r}")
        parameters[name] = value
    # Flag, else environment variable; the stack then falls back to --state-dir, then to generating them.
    webhooks = {
        name: getattr(args, name) or os.environ.get(variable) for name, variable in WEBHOOK_SECRET_VARIABLES.items()
    }
    return StackOptions(
        port=args.port,
        parameters=parameters,
        mapping=find_mapping(args.mapping),
        state_dir=args.state_dir,
        batch_size=args.batch_size,
        batching_window=args.batching_window,
        humanos_url=args.humanos_url,
        humanos_api_key=args.humanos_api_key,
        humanos_signature_secret=args.humanos_signature_secret,
        humanos_webhook_signature_secret=webhooks["humanos_webhook_signature_secret"],
        humanos_webhook_encryption_secret=webhooks["humanos_webhook_encryption_secret"],
        humanos_webhook_encryption_salt=webhooks["humanos_webhook_encryption_salt"],
        auto_decide=getattr(args, "auto_decide", None),
        write_endpoints=write_endpoints,
    )


def find_mapping(given: Path | None) -> Path | None:
    """``--mapping FILE``: the path as given, else the same name inside ``mappings/``; ConfigError naming both.

    Checked before anything starts, so a typo costs no build, and the message says where it looked.
    """
    if given is None or given.is_file():
        return given
    inside = None if given.is_absolute() else MAPPINGS / given
    if inside is not None and inside.is_file():
        return inside
    looked = str(given.absolute()) + ("" if inside is None else f" and {inside}")
    raise ConfigError(
        f"--mapping {given}: no such file (looked for {looked}); give the mapping file's path from {Path.cwd()} "
        "or an absolute one, or the name of a file in mappings/ (e.g. --mapping presets/stripe-checkout.json)"
    )


def say(text: str) -> None:
    print(text, flush=True)


def print_event(event: FlowEvent) -> None:
    say(format_event(event))


class FlowTable:
    """The live flow table: its source column as wide as the mapping's longest source name (within bounds)."""

    def __init__(self) -> None:
        self.source_width = SOURCE_WIDTH

    def print_header(self, sources: tuple[str, ...]) -> None:
        self.source_width = source_width(sources)
        say(header(source_width=self.source_width))

    def print_event(self, event: FlowEvent) -> None:
        say(format_event(event, source_width=self.source_width))


def refuse_taken_port(host: str, port: int) -> None:
    """ConfigError now, before the build, when ``port`` is taken: by a stack of this home (named), or by another
    program. The gateway's own bind stays the final word; this only spares a doomed start-up."""
    if port == 0:
        return
    how = 'choose another port: --port 0 for any free one (with make: make run ARGS="--port 0")'
    holder = endpoints.live_stack_on_port(port)
    if holder is not None:
        where, data = holder
        raise ConfigError(
            f"port {port} is held by the humanos-bridge local already running (pid {data.get('pid', '?')}, "
            f"{data.get('apiUrl')}, endpoints file {where}); use that one (send, dlq and status reach it), stop "
            f"it, or to run a second stack next to it, {how}"
        )
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the gateway binds (http.server sets SO_REUSEADDR): a port in TIME_WAIT is free for both.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                return  # not ours to judge (a bad host, say): the gateway's bind reports it
            raise ConfigError(
                f"cannot listen on {host}:{port}: another program holds it (not a humanos-bridge local with its "
                f"endpoints file in {endpoints.home()}); {how}"
            ) from exc


def run(args: argparse.Namespace) -> int:
    options = stack_options(args, write_endpoints=True)
    refuse_taken_port(options.host, options.port)
    table = FlowTable()
    stack = LocalStack(options, on_event=table.print_event, on_message=say)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    in_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    try:
        say("starting the local bridge ...")
        stack.start()
        print_banner(stack, show_secrets=args.show_secrets, table=table)
        while not stop.wait(0.5):
            pass
        say("stopping ...")
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    say("stopped.")
    return 0


def print_banner(stack: LocalStack, *, show_secrets: bool = False, table: FlowTable | None = None) -> None:
    assert stack.ready_seconds is not None and stack.mapping is not None
    humanos = f"sandbox {stack.humanos_base_url}" if stack.sandbox is not None else stack.humanos_base_url
    say(f"humanos-bridge local: ready in {stack.ready_seconds:.1f} s")
    say(f"  ingest API      {stack.api_url}  (POST /events/<source>, POST /requests/<source>, GET /health)")
    say(f"  webhooks        {stack.webhook_url}  (the receiver: {_webhooks_from(stack)})")
    say(f"  event bus       {stack.event_bus_name}  (in moto; `{command_name()} events tail` reads it)")
    say(f"  Humanos         {humanos}")
    say(f"  functions       {stack.runs}")
    say(f"  mapping         {_mapping_shown(stack)}")
    say(f"  AWS (moto)      {stack.endpoint_url}")
    say(f"  request queue   {stack.request_queue_url}")
    say(f"  dead letters    {stack.dead_letter_queue_url}")
    if stack.endpoints_file is not None:
        if _reached_by_default(stack):
            say(f"  endpoints file  {stack.endpoints_file}  (read by send, dlq, status and events)")
        else:
            say(
                f"  endpoints file  {stack.endpoints_file}  (send, dlq, status and events read it with --endpoints "
                "FILE)"
            )
        if stack.endpoints_note:
            say(f"                  {stack.endpoints_note}")
    print_sender_secrets(stack, show_secrets=show_secrets)
    print_webhook_secrets(stack, show_secrets=show_secrets)
    print_try_it(stack)
    say("\nEvents and webhooks as they flow (contacts masked). Ctrl-C to stop.")
    (table or FlowTable()).print_header(stack.mapping.sources)
    sys.stdout.flush()


def print_try_it(stack: LocalStack) -> None:
    """A signed ``curl`` of a sample event the mapping maps, and the same through ``send``, runnable as printed."""
    assert stack.mapping is not None
    cli = command_name()
    reach = "" if _reached_by_default(stack) else f" --endpoints {shlex.quote(str(stack.endpoints_file))}"
    found = try_it_sample(stack.mapping)
    if found is None:
        say(
            f"\nTry it: no sample event in {_shown_path(SAMPLES)} maps with this mapping; sign and post one of "
            f"yours:\n{cli} send {stack.mapping.sources[0]} EVENT.json{reach}"
        )
        return
    source, path = found
    auth = stack.mapping.source(source).auth
    if auth is None or auth.secret_key not in stack.sender_secrets:
        return
    url = f"{stack.api_url}/events/{source}"
    headers = signed_headers(auth, stack.sender_secrets[auth.secret_key][0], path.read_bytes(), url=url)
    tolerance = stack.resources.parameter("SignatureToleranceSeconds") if stack.resources else "300"
    say(f"\nTry it (signed now; the signature is accepted for {tolerance} s):")
    shown = _shown_path(path)
    say(curl_command(url, headers, shown))
    say(f"or: {cli} send {source} {shlex.quote(str(shown))}{reach}")
    if stack.sandbox is None:
        return
    auto = stack.sandbox.auto_decide
    if auto is not None:
        say(f"The sandbox decides each new request ({auto[0]}) and sends its webhook; read the bus with:")
    else:
        say("Then decide its request (the Humanos request id of the dispatch line) and read the bus:")
        say(f"{cli} sandbox decide REQUEST_ID --accept{reach}")
    say(f"{cli} events tail --follow{reach}")


def try_it_sample(mapping: MappingConfig) -> tuple[str, Path] | None:
    """The source and sample event the banner posts: the first of ``events/business/`` that a signed source
    of ``mapping`` turns into a request (``SAMPLE`` first), or None when none does."""
    candidates = [SAMPLE[1], *sorted(p for p in SAMPLES.rglob("*.json") if p != SAMPLE[1])]
    events: list[tuple[Path, Any]] = []
    for path in candidates:
        try:
            events.append((path, json.loads(path.read_bytes())))
        except (OSError, ValueError):
            continue
    for source in mapping.sources:
        if mapping.source(source).auth is None:
            continue
        for path, event in events:
            try:
                mapping.map_requests(source, event)
            except BridgeError:  # not this source's event, ignored by it, or missing what a rule needs
                continue
            return source, path
    return None


def _reached_by_default(stack: LocalStack) -> bool:
    """Whether the operator commands find this stack without ``--endpoints`` (a second stack's file is not read)."""
    return stack.endpoints_file in (None, endpoints.endpoints_path())


def _mapping_shown(stack: LocalStack) -> str:
    """``mappings/bridge.json  (the template's MappingFile; sources: crm, shop)``, or the ``--mapping`` file."""
    assert stack.mapping is not None
    sources = f"sources: {', '.join(stack.mapping.sources)}"
    if stack.options.mapping is not None:
        return f"{_shown_path(stack.options.mapping.absolute())}  ({sources})"
    name = stack.resources.parameter("MappingFile") if stack.resources else "bridge.json"
    return f"{_shown_path(MAPPINGS / name)}  (the template's MappingFile; {sources})"


def print_sender_secrets(stack: LocalStack, *, show_secrets: bool) -> None:
    """Where the generated sender secrets are, or (``--show-secrets``) their values.

    Values only on request: this output is often redirected to a file or a CI log, and anyone holding a sender
    secret can sign events. ``send`` and the printed curl sign without them being shown.
    """
    if show_secrets:
        say("  sender secrets (local only, generated):")
        for key, values in stack.sender_secrets.items():
            say(f"    {key:<14} {values[0]}")
        return
    keys = ", ".join(stack.sender_secrets)
    also = "" if stack.state_file is None else f"and in {stack.state_file} (--state-dir); "
    say(f"  sender secrets  {keys}: generated, in moto's SenderSecret (`{command_name()} send` signs with them)")
    say(f"                  {also}--show-secrets prints them")


def _webhooks_from(stack: LocalStack) -> str:
    if stack.sandbox is not None:
        return "the sandbox posts here"
    return "give this URL's public address to the Humanos dashboard, e.g. through a tunnel"


def print_webhook_secrets(stack: LocalStack, *, show_secrets: bool) -> None:
    """Where the webhook secrets are (or, ``--show-secrets``, their values): they verify and decrypt webhooks."""
    secrets = stack.webhook_secrets
    if secrets is None:
        say(
            "  webhook secrets none given: the receiver answers 503 to every webhook; give the Humanos dashboard's "
            "with --humanos-webhook-signature-secret, --humanos-webhook-encryption-secret and "
            "--humanos-webhook-encryption-salt"
        )
        return
    if show_secrets:
        say("  webhook secrets (the receiver's and the sandbox's):")
        say(f"    signature      {secrets.signature_secret}")
        say(f"    encryption     {secrets.encryption_secret}")
        say(f"    salt           {secrets.encryption_salt}")
        return
    shared = "shared with the sandbox" if stack.sandbox is not None else "the Humanos dashboard's"
    kept = "" if stack.state_file is None or stack.sandbox is None else f"and in {stack.state_file}; "
    say(f"  webhook secrets in moto's WebhookSecret ({shared})")
    say(f"                  {kept}--show-secrets prints them")


def _shown_path(path: Path) -> Path:
    """``path`` relative to the working directory when it is inside it (``make run`` runs from the root)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
