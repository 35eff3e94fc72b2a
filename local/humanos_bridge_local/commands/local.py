"""``humanos-bridge local``: the whole bridge on this machine until Ctrl-C (the README's run command)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from humanos_bridge.errors import ConfigError
from humanos_bridge_local import endpoints
from humanos_bridge_local.flow import HEADER, FlowEvent, format_event
from humanos_bridge_local.senders import curl_command, signed_headers
from humanos_bridge_local.stack import ROOT, LocalStack, StackOptions

#: The sample event the printed ``curl`` posts.
SAMPLE = ("crm", ROOT / "events" / "business" / "crm-contact-created.json")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "local",
        help="run the whole bridge locally (moto, Humanos sandbox, ingest API, dispatcher)",
        description=(
            "Start on 127.0.0.1 moto with the resources of template.yaml, the Humanos sandbox (or a real "
            "Humanos), and the functions as sam build packages them (python3.13 under Lambda's runtime interface "
            "client): the ingest function behind a local HTTP API, the dispatcher fed from the queue. Prints the "
            "endpoints, where the local sender secrets are and a signed curl, then one line per event. Ctrl-C "
            "stops it."
        ),
    )
    add_stack_arguments(parser, default_port=8080)
    parser.add_argument(
        "--show-secrets",
        action="store_true",
        help="print the generated sender secrets' values too (by default only where they are: output is often "
        "kept in files)",
    )
    parser.set_defaults(func=run)


def add_stack_arguments(parser: argparse.ArgumentParser, *, default_port: int) -> None:
    parser.add_argument(
        "--port", type=int, default=default_port, help=f"HTTP port, 0 = any free one (default: {default_port})"
    )
    parser.add_argument("--state-dir", type=Path, help="keep generated secrets here across restarts (default: memory)")
    parser.add_argument("--mapping", type=Path, help="mapping file (default: the template's MappingFile in mappings/)")
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
    return StackOptions(
        port=args.port,
        parameters=parameters,
        mapping=args.mapping,
        state_dir=args.state_dir,
        batch_size=args.batch_size,
        batching_window=args.batching_window,
        humanos_url=args.humanos_url,
        humanos_api_key=args.humanos_api_key,
        humanos_signature_secret=args.humanos_signature_secret,
        write_endpoints=write_endpoints,
    )


def say(text: str) -> None:
    print(text, flush=True)


def print_event(event: FlowEvent) -> None:
    say(format_event(event))


def run(args: argparse.Namespace) -> int:
    stack = LocalStack(stack_options(args, write_endpoints=True), on_event=print_event, on_message=say)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    in_main = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    try:
        say("starting the local bridge ...")
        stack.start()
        print_banner(stack, show_secrets=args.show_secrets)
        while not stop.wait(0.5):
            pass
        say("stopping ...")
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    say("stopped.")
    return 0


def print_banner(stack: LocalStack, *, show_secrets: bool = False) -> None:
    assert stack.ready_seconds is not None
    humanos = f"sandbox {stack.humanos_base_url}" if stack.sandbox is not None else stack.humanos_base_url
    say(f"humanos-bridge local: ready in {stack.ready_seconds:.1f} s")
    say(f"  ingest API      {stack.api_url}  (POST /events/<source>, POST /requests/<source>, GET /health)")
    say(f"  Humanos         {humanos}")
    say(f"  functions       {stack.runs}")
    say(f"  AWS (moto)      {stack.endpoint_url}")
    say(f"  request queue   {stack.request_queue_url}")
    say(f"  dead letters    {stack.dead_letter_queue_url}")
    if stack.options.write_endpoints:
        say(f"  endpoints file  {endpoints.endpoints_path()}  (read by send, dlq and status)")
    print_sender_secrets(stack, show_secrets=show_secrets)
    source, path = SAMPLE
    if stack.mapping is not None and source in stack.mapping.sources and path.exists():
        body = path.read_bytes()
        auth = stack.mapping.source(source).auth
        if auth is not None and auth.secret_key in stack.sender_secrets:
            headers = signed_headers(auth.scheme, stack.sender_secrets[auth.secret_key][0], body)
            tolerance = stack.resources.parameter("SignatureToleranceSeconds") if stack.resources else "300"
            say(f"\nTry it (signed now; the signature is accepted for {tolerance} s):")
            shown = _shown_path(path)
            say(curl_command(f"{stack.api_url}/events/{source}", headers, shown))
            say(f"or: humanos-bridge send {source} {shown}")
    say("\nEvents as they flow (contacts masked). Ctrl-C to stop.")
    say(HEADER)
    sys.stdout.flush()


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
    say(f"  sender secrets  {keys}: generated, in moto's SenderSecret (`humanos-bridge send` signs with them)")
    say(f"                  {also}--show-secrets prints them")


def _shown_path(path: Path) -> Path:
    """``path`` relative to the working directory when it is inside it (``make run`` runs from the root)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path
