"""``humanos-bridge sandbox``: run the local Humanos sandbox until Ctrl-C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from humanos_bridge.errors import ConfigError
from humanos_bridge_local.sandbox import Fault, RecordedCall, Sandbox

#: The faults ``--fault-rate`` mixes, in equal shares.
FAULT_MIX = (Fault.status(500), Fault.status(503), Fault.status(429, retry_after="1"), Fault.drop())


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="run a local server that behaves like Humanos",
        description=(
            "Serve the Humanos API locally: signatures, API versions, validation, idempotency, rate limit "
            "and injected faults. Prints its base URL and credentials (generated unless given), then one "
            "line per call received (method, path, status, fault), until Ctrl-C."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on, 0 for any free one (default: 8080)")
    parser.add_argument("--api-key", help="API key to accept (default: generated)")
    parser.add_argument("--signature-secret", help="signature secret to accept (default: generated)")
    parser.add_argument("--rate-limit", type=int, metavar="N", help="request creations admitted per minute")
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="probability (0-1) that a call meets a fault: 500, 503, 429 or a dropped connection",
    )
    parser.add_argument("--seed", type=int, help="seed for the fault dice, for repeatable runs")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0.0 <= args.fault_rate <= 1.0:
        raise ConfigError(f"--fault-rate must be between 0 and 1, got {args.fault_rate}")
    if args.rate_limit is not None and args.rate_limit < 1:
        raise ConfigError(f"--rate-limit must be at least 1 per minute, got {args.rate_limit}")
    sandbox = Sandbox(
        api_key=args.api_key,
        signature_secret=args.signature_secret,
        host=args.host,
        port=args.port,
        rate_limit_per_minute=args.rate_limit,
        seed=args.seed,
        on_call=_print_call,
    )
    _inject_fault_mix(sandbox, args.fault_rate)
    try:
        sandbox.start()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}; choose another --port") from exc
    # This is a local test server: showing its own credentials is how the developer gets them.
    print(f"Humanos sandbox listening on {sandbox.base_url}")
    print(f"API key:          {sandbox.api_key}")
    print(f"Signature secret: {sandbox.signature_secret}")
    print("Press Ctrl-C to stop.", flush=True)
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # SIGTERM stops as cleanly as Ctrl-C (signal handlers can only be set from the main thread).
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_signal) if in_main else None
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        sandbox.stop()
        print("Humanos sandbox stopped.", flush=True)
    return 0


def _inject_fault_mix(sandbox: Sandbox, rate: float) -> None:
    if rate <= 0:
        return
    # Rules are tried one after another, so each gets the share that makes the total chance `rate`.
    share = 1.0 - (1.0 - rate) ** (1.0 / len(FAULT_MIX))
    for fault in FAULT_MIX:
        sandbox.inject(fault, probability=share, method=None, path_prefix="/")


def _print_call(call: RecordedCall) -> None:
    # Path only: the query can hold a contact (resend), and bodies hold contacts too.
    print(f"{call.method} {call.path} {call.status} {call.fault or '-'}", file=sys.stdout, flush=True)
