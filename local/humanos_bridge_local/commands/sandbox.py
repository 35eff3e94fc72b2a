"""``humanos-bridge sandbox``: run the local Humanos sandbox until Ctrl-C; ``sandbox requests``: list what it stores.

``sandbox requests`` reads through the signed API (``GET /request``, every page), signing for the user with
the sandbox's own credentials, rather than through an inspection route of the sandbox's own:

- the sandbox then answers only what Humanos answers, so nothing built or tested against it can come to rely
  on a route Humanos does not have;
- a server that stores contacts gets no unsigned way to read them, even when it listens beyond loopback
  (``--host``);
- with ``--internal-id`` the list is what the bridge's own look-up after an ambiguous failure reads, through
  the same client code (``HumanosClient.find_requests``).

The credentials are ``--url``, ``--api-key`` and ``--signature-secret`` as ``humanos-bridge sandbox`` prints
them, or by default the running local stack's: its Humanos URL from the endpoints file and the key pair from
its HumanosSecret (in the stack's moto, never AWS). Contacts are masked and every other value is shown in its
safe form (``humanos_bridge.masking``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
import urllib3

from humanos_bridge.backoff import RetryPolicy
from humanos_bridge.client import HumanosClient
from humanos_bridge.credentials import CredentialsSource, SecretsManagerCredentials, StaticCredentials
from humanos_bridge.errors import ConfigError
from humanos_bridge.masking import mask_contact, safe_id
from humanos_bridge_local.endpoints import LOCAL_CREDENTIALS, endpoints_path, read_local_endpoints
from humanos_bridge_local.sandbox import Fault, RecordedCall, Sandbox
from humanos_bridge_local.sandbox.validation import LATEST_VERSION, VersionError

#: The faults ``--fault-rate`` mixes, in equal shares.
FAULT_MIX = (Fault.status(500), Fault.status(503), Fault.status(429, retry_after="1"), Fault.drop())
#: ``sandbox requests`` reads pages of the largest size Humanos allows ...
PAGE_SIZE = 100
#: ... and at most this many of them, saying so when more exist.
MAX_PAGES = 50


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="run a local server that behaves like Humanos, or list what one stores",
        description=(
            "Serve the Humanos API locally: signatures, API versions, validation, idempotency, rate limit "
            "and injected faults. Prints its base URL and credentials (generated unless given), then one "
            "line per call received (method, path, status, fault), until Ctrl-C. "
            "`humanos-bridge sandbox requests` lists what a running sandbox stores."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    # Not 8080: that is `humanos-bridge local`'s, and the two are often run side by side.
    parser.add_argument(
        "--port", type=int, default=8081, help="port to listen on, 0 for any free one (default: %(default)s)"
    )
    parser.add_argument("--api-key", help="API key to accept (default: generated)")
    parser.add_argument("--signature-secret", help="signature secret to accept (default: generated)")
    parser.add_argument(
        "--api-version",
        metavar="DATE",
        help=(
            "the version pinned to the API key, which calls without an API-Version header get "
            f"(default: the latest, {LATEST_VERSION}, as Humanos gives new keys)"
        ),
    )
    parser.add_argument(
        "--rate-limit", type=int, metavar="N", help="request creations admitted per minute (default: no limit)"
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="probability (0-1) that a call meets a fault: 500, 503, 429 or a dropped connection",
    )
    parser.add_argument("--seed", type=int, help="seed for the fault dice, for repeatable runs")
    parser.set_defaults(func=run)
    actions = parser.add_subparsers(dest="sandbox_command", metavar="ACTION")
    _register_requests(actions)


def _register_requests(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    listing = actions.add_parser(
        "requests",
        help="list the requests a running sandbox stores (contacts masked)",
        description=(
            "List the requests a running Humanos sandbox stores, contacts masked: the signed GET /request, "
            "every page, signed for you. By default the running local stack's sandbox; a standalone one with "
            "--url, --api-key and --signature-secret as `humanos-bridge sandbox` prints them (give them after "
            "`requests`)."
        ),
    )
    listing.add_argument(
        "--internal-id", metavar="ID", help="only the requests created with this internalId, as the bridge looks up"
    )
    listing.add_argument("--url", help="the sandbox's base URL (default: the running local stack's)")
    listing.add_argument("--api-key", help="the sandbox's API key (with --url)")
    listing.add_argument("--signature-secret", help="the sandbox's signature secret (with --url)")
    listing.add_argument(
        "--endpoints", type=Path, metavar="FILE", help=f"local stack endpoints file (default: {endpoints_path()})"
    )
    listing.set_defaults(func=run_requests)


# ------------------------------------------------------------------------------------------- serve


def run(args: argparse.Namespace) -> int:
    if not 0.0 <= args.fault_rate <= 1.0:
        raise ConfigError(f"--fault-rate must be between 0 and 1, got {args.fault_rate}")
    if args.rate_limit is not None and args.rate_limit < 1:
        raise ConfigError(f"--rate-limit must be at least 1 per minute, got {args.rate_limit}")
    try:
        sandbox = Sandbox(
            api_key=args.api_key,
            signature_secret=args.signature_secret,
            host=args.host,
            port=args.port,
            rate_limit_per_minute=args.rate_limit,
            seed=args.seed,
            on_call=_print_call,
            pinned_api_version=args.api_version,
        )
    except VersionError as exc:
        raise ConfigError(f"--api-version: {exc}") from exc
    _inject_fault_mix(sandbox, args.fault_rate)
    try:
        sandbox.start()
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}; choose another --port") from exc
    # This is a local test server: showing its own credentials is how the developer gets them.
    print(f"Humanos sandbox listening on {sandbox.base_url}")
    print(f"API key:          {sandbox.api_key}")
    print(f"Signature secret: {sandbox.signature_secret}")
    print(f"API version:      {sandbox.pinned_api_version} (pinned to the key: calls without API-Version get it)")
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


# ------------------------------------------------------------------------------------------- requests


def run_requests(args: argparse.Namespace) -> int:
    base_url, credentials, where = _humanos_of(args)
    # One attempt: a person is waiting at the terminal, and a sandbox that is not running will not start by waiting.
    client = HumanosClient(
        base_url, LATEST_VERSION, credentials, policy=RetryPolicy(max_attempts=1), pool=urllib3.PoolManager()
    )
    if args.internal_id is not None:
        found, more = client.find_requests(args.internal_id, page_size=PAGE_SIZE), False
        print(f"{len(found)} request(s) with internalId {safe_id(args.internal_id)} stored by {where}")
    else:
        found, more = _every_request(client)
        print(f"{len(found)} request(s) stored by {where}")
    for request in found:
        print(describe(request))
    if more:
        print(f"(only the first {MAX_PAGES * PAGE_SIZE} are shown; narrow the list with --internal-id)")
    return 0


def _humanos_of(args: argparse.Namespace) -> tuple[str, CredentialsSource, str]:
    """The base URL, credentials and a description of the Humanos to read."""
    given = [args.url, args.api_key, args.signature_secret]
    if any(given):
        if not all(given):
            raise ConfigError(
                "give --url, --api-key and --signature-secret together (as `humanos-bridge sandbox` prints them), "
                "or none of them to read the running local stack's sandbox"
            )
        return args.url, StaticCredentials(args.api_key, args.signature_secret), f"the Humanos at {args.url}"
    path = args.endpoints or endpoints_path()
    if not path.exists():
        raise ConfigError(
            f"no local stack is running ({path} not found); start `humanos-bridge local`, or name a standalone "
            "sandbox with --url, --api-key and --signature-secret as `humanos-bridge sandbox` prints them"
        )
    data = read_local_endpoints(path)
    base_url, secret_id = data.get("humanosBaseUrl"), data.get("humanosSecretArn")
    if not base_url or not secret_id:
        raise ConfigError(f"{path} names no Humanos URL or secret; restart `humanos-bridge local`")
    session = boto3.session.Session(region_name=data["region"], **LOCAL_CREDENTIALS)
    secrets_client = session.client("secretsmanager", endpoint_url=data["awsEndpointUrl"])
    return base_url, SecretsManagerCredentials(secret_id, boto3_client=secrets_client), f"the Humanos at {base_url}"


def _every_request(client: HumanosClient) -> tuple[list[dict[str, Any]], bool]:
    """Every stored request, page after page (at most ``MAX_PAGES``), and whether more were left unread."""
    found: list[dict[str, Any]] = []
    page, pages = 0, 1
    while page < min(pages, MAX_PAGES):
        query = {"pageIndex": str(page), "pageSize": str(PAGE_SIZE)}
        data = client.call("GET", "/request", query=query).data
        items = data.get("data") if isinstance(data, dict) else None
        found.extend(item for item in items or [] if isinstance(item, dict))
        total = data.get("totalPages") if isinstance(data, dict) else None
        pages = total if isinstance(total, int) and not isinstance(total, bool) else page + 1
        page += 1
    return found, pages > MAX_PAGES


def describe(request: dict[str, Any]) -> str:
    """Two lines for one listed request: ids, time and state, then what it asks of whom (contacts masked)."""
    # Request ids and times are Humanos's: their digit runs are no phone numbers, so they are not masked.
    request_id = safe_id(str(request.get("id", "-")), mask=False)
    created = safe_id(str(request.get("createdAt", "-")), mask=False)
    state = "canceled" if request.get("canceledAt") else "open"
    internal_id = request.get("internalId")
    shown_internal = safe_id(internal_id) if isinstance(internal_id, str) else "-"
    level = safe_id(str(request.get("securityLevel", "-")))
    name = request.get("name")
    subjects = [s for s in request.get("subjects") or [] if isinstance(s, dict)]
    credentials = [c for c in request.get("credentials") or [] if isinstance(c, dict)]
    # A contact is masked as a contact first (a form the patterns would miss stays hidden), then escaped.
    people = ", ".join(safe_id(mask_contact(str(s.get("contact", ""))), mask=False) for s in subjects) or "-"
    asks = ", ".join(safe_id(str(c.get("name") or "-")) for c in credentials) or "-"
    return (
        f"{request_id}  {created}  {state:<8}  internalId {shown_internal}  {level}\n"
        f"    name: {safe_id(name) if isinstance(name, str) else '-'}  subjects: {people}  credentials: {asks}"
    )
