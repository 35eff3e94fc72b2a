"""``humanos-bridge sandbox``: run the local Humanos sandbox until Ctrl-C; ``sandbox requests``: list what it stores;
``sandbox decide``: decide a stored request, so the sandbox posts the webhooks Humanos would.

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
safe form (``humanos_bridge.core.masking``).

``sandbox decide`` calls the sandbox's own signed route (``POST /_sandbox/requests/{id}/decide``: Humanos has no
route for a person's decision), with the same credentials found the same way, then follows the deliveries
(``GET /_sandbox/deliveries``) until each is delivered or has failed for good, or ``--wait`` runs out. Only
delivery records are shown: event type, outcome, statuses, never the event or a contact.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote

import boto3
import urllib3

from humanos_bridge.core import signing, wire
from humanos_bridge.core.backoff import RetryPolicy
from humanos_bridge.core.client import HumanosClient
from humanos_bridge.core.credentials import CredentialsSource, SecretsManagerCredentials, StaticCredentials
from humanos_bridge.core.errors import BridgeError, ConfigError, SerialisationError
from humanos_bridge.core.masking import mask_contact, safe_id, safe_text
from humanos_bridge_local.answers import masked
from humanos_bridge_local.endpoints import LOCAL_CREDENTIALS, endpoints_path, read_local_endpoints
from humanos_bridge_local.sandbox import OUTCOMES, Delivery, Fault, RecordedCall, Sandbox, WebhookSecrets
from humanos_bridge_local.sandbox.validation import LATEST_VERSION, VersionError
from humanos_bridge_local.sandbox.webhook_events import DEFAULT_OTP_ERROR, OTP_ERRORS, WEBHOOK_VERSIONS
from humanos_bridge_local.sandbox.webhooks import DEFAULT_AUTO_DECIDE_DELAY

#: The faults ``--fault-rate`` mixes, in equal shares.
FAULT_MIX = (Fault.status(500), Fault.status(503), Fault.status(429, retry_after="1"), Fault.drop())
#: ``sandbox requests`` reads pages of the largest size Humanos allows ...
PAGE_SIZE = 100
#: ... and at most this many of them, saying so when more exist.
MAX_PAGES = 50
#: Environment variables for the webhook secrets, read when the flag is not given (flag > variable > generated).
WEBHOOK_SECRET_VARIABLES = {
    "humanos_webhook_signature_secret": "HUMANOS_WEBHOOK_SIGNATURE_SECRET",
    "humanos_webhook_encryption_secret": "HUMANOS_WEBHOOK_ENCRYPTION_SECRET",
    "humanos_webhook_encryption_salt": "HUMANOS_WEBHOOK_ENCRYPTION_SALT",
}
#: How long ``sandbox decide`` follows the deliveries by default: the sandbox's retries take at most about 16 s.
DEFAULT_DECIDE_WAIT_SECONDS = 30.0
#: How often ``sandbox decide`` asks how the deliveries stand.
POLL_SECONDS = 0.2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="run a local server that behaves like Humanos, list what one stores, or decide a stored request",
        description=(
            "Serve the Humanos API locally: signatures, API versions, validation, idempotency, rate limit "
            "and injected faults. Prints its base URL and credentials (generated unless given), then one "
            "line per call received (method, path, status, fault) and per webhook delivery attempt, until Ctrl-C. "
            "`humanos-bridge sandbox requests` lists what a running sandbox stores; `humanos-bridge sandbox decide` "
            "decides a stored request, and the sandbox posts the webhooks Humanos would to --webhook-url."
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
    _register_webhook_options(parser)
    parser.set_defaults(func=run)
    actions = parser.add_subparsers(dest="sandbox_command", metavar="ACTION")
    _register_requests(actions)
    _register_decide(actions)


def _register_webhook_options(parser: argparse.ArgumentParser) -> None:
    webhooks = parser.add_argument_group(
        "webhooks (what the Humanos dashboard's webhook settings hold; `sandbox decide` makes the sandbox send them)"
    )
    webhooks.add_argument(
        "--webhook-url", metavar="URL", help="where to POST webhooks, e.g. a local receiver (default: none)"
    )
    for flag, what, generated in (
        ("signature-secret", "Webhook Signature Secret (HMAC of x-signature)", "random text"),
        ("encryption-secret", "Webhook Encryption Secret, base64 (PBKDF2 password)", "base64 of 32 random bytes"),
        ("encryption-salt", "Webhook Encryption Salt (PBKDF2 salt)", "random text"),
    ):
        variable = WEBHOOK_SECRET_VARIABLES[f"humanos_webhook_{flag.replace('-', '_')}"]
        webhooks.add_argument(
            f"--humanos-webhook-{flag}",
            metavar="SECRET",
            help=f"the {what} (default: ${variable}, else generated: {generated})",
        )
    webhooks.add_argument(
        "--webhook-api-version",
        metavar="DATE",
        help=(
            f"the version webhooks are shaped in, {WEBHOOK_VERSIONS[0]} or later "
            "(default: the --api-version, as Humanos advises keeping both equal)"
        ),
    )
    webhooks.add_argument(
        "--auto-decide",
        choices=OUTCOMES,
        metavar="OUTCOME",
        help=f"decide every new request by itself: {', '.join(OUTCOMES)} (default: only on `sandbox decide`)",
    )
    webhooks.add_argument(
        "--auto-decide-delay",
        type=float,
        default=DEFAULT_AUTO_DECIDE_DELAY,
        metavar="SECONDS",
        help="seconds between a request's creation and its automatic decision (default: %(default)s)",
    )


def _add_target_options(parser: argparse.ArgumentParser) -> None:
    """The sandbox to talk to: the running local stack's by default, or a standalone one named in full."""
    parser.add_argument("--url", help="the sandbox's base URL (default: the running local stack's)")
    parser.add_argument("--api-key", help="the sandbox's API key (with --url)")
    parser.add_argument("--signature-secret", help="the sandbox's signature secret (with --url)")
    parser.add_argument(
        "--endpoints", type=Path, metavar="FILE", help=f"local stack endpoints file (default: {endpoints_path()})"
    )


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
    _add_target_options(listing)
    listing.set_defaults(func=run_requests)


def _register_decide(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    decide = actions.add_parser(
        "decide",
        help="decide a stored request, so the sandbox posts the webhooks Humanos would",
        description=(
            "Decide a request a running Humanos sandbox stores, as its people would: the sandbox then POSTs the "
            "webhooks Humanos sends (encrypted and signed with the webhook secrets) to its --webhook-url, retrying "
            "on non-2xx, and this command follows them until each is delivered or has failed. By default the "
            "running local stack's sandbox; a standalone one with --url, --api-key and --signature-secret as "
            "`humanos-bridge sandbox` prints them (give them after `decide`). Exits 1 when a webhook could not be "
            "delivered."
        ),
    )
    decide.add_argument(
        "request_id", metavar="REQUEST_ID", help="the Humanos request id (`sandbox requests` lists them)"
    )
    outcome = decide.add_mutually_exclusive_group(required=True)
    for flag, what in (
        ("accept", "every person accepts every credential (credential webhooks, ACTIVE once all have)"),
        ("reject", "every person rejects every credential (credential webhooks)"),
        ("kyc-pass", "every person's identity check passes (identity webhooks; KYC security levels only)"),
        ("kyc-fail", "every person's identity check fails (identity webhooks; KYC security levels only)"),
        ("otp-fail", "the SMS with the code could not be delivered (otp.failed webhooks; phone numbers only)"),
    ):
        outcome.add_argument(f"--{flag}", dest="outcome", action="store_const", const=flag, help=what)
    decide.add_argument(
        "--otp-error",
        choices=tuple(OTP_ERRORS),
        default=DEFAULT_OTP_ERROR,
        metavar="CODE",
        help=f"with --otp-fail, the error code: {', '.join(OTP_ERRORS)} (default: %(default)s)",
    )
    decide.add_argument(
        "--wait",
        type=float,
        default=DEFAULT_DECIDE_WAIT_SECONDS,
        metavar="SECONDS",
        help="how long to follow the deliveries, 0 to only queue them (default: %(default)s)",
    )
    _add_target_options(decide)
    decide.set_defaults(func=run_decide)


# ------------------------------------------------------------------------------------------- serve


def run(args: argparse.Namespace) -> int:
    if not 0.0 <= args.fault_rate <= 1.0:
        raise ConfigError(f"--fault-rate must be between 0 and 1, got {args.fault_rate}")
    if args.rate_limit is not None and args.rate_limit < 1:
        raise ConfigError(f"--rate-limit must be at least 1 per minute, got {args.rate_limit}")
    if args.auto_decide_delay < 0:
        raise ConfigError(f"--auto-decide-delay must not be negative, got {args.auto_decide_delay}")
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
            webhook_url=args.webhook_url,
            webhook_secrets=webhook_secrets_of(args),
            webhook_api_version=args.webhook_api_version,
            auto_decide=args.auto_decide,
            auto_decide_delay=args.auto_decide_delay,
            on_delivery=_print_delivery,
        )
    except VersionError as exc:
        flag = "--api-version" if args.webhook_api_version is None else "--api-version or --webhook-api-version"
        raise ConfigError(f"{flag}: {exc}") from exc
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
    _print_webhook_settings(sandbox)
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


def webhook_secrets_of(args: argparse.Namespace) -> WebhookSecrets:
    """The webhook secrets: each from its flag, else its environment variable, else generated."""
    given = {
        name: getattr(args, name) or os.environ.get(variable) for name, variable in WEBHOOK_SECRET_VARIABLES.items()
    }
    return WebhookSecrets.generate(
        signature_secret=given["humanos_webhook_signature_secret"],
        encryption_secret=given["humanos_webhook_encryption_secret"],
        encryption_salt=given["humanos_webhook_encryption_salt"],
    )


def _print_webhook_settings(sandbox: Sandbox) -> None:
    # As for the API key: a receiver needs these three to verify and decrypt what the sandbox sends.
    secrets = sandbox.webhook_secrets
    print(f"Webhook URL:      {sandbox.webhook_url or '(none: give --webhook-url to send webhooks)'}")
    print(f"Webhook signature secret:  {secrets.signature_secret}")
    print(f"Webhook encryption secret: {secrets.encryption_secret}")
    print(f"Webhook encryption salt:   {secrets.encryption_salt}")
    print(f"Webhook API version:       {sandbox.webhook_api_version}")
    auto = sandbox.auto_decide
    print(f"Auto-decide:      {f'{auto[0]}, {auto[1]:g} s after each creation' if auto else 'off'}")


def _print_delivery(delivery: Delivery) -> None:
    print(f"webhook {describe_delivery(delivery.summary())}", file=sys.stdout, flush=True)


def describe_delivery(summary: dict[str, Any]) -> str:
    """One line for a delivery record as the admin route shows it: no event, no contact."""
    statuses = ",".join(str(s or "no-answer") for s in summary.get("statuses") or []) or "-"
    error = f" ({safe_text(str(summary['error']))})" if summary.get("error") else ""
    # Ids, the URL and the outcome are the sandbox's own: escaped, but their digit runs are no phone numbers.
    shown = {key: safe_id(str(summary.get(key)), mask=False) for key in ("eventType", "outcome", "requestId", "url")}
    return (
        f"{summary.get('id')}  {shown['eventType']}  {shown['outcome']}  request {shown['requestId']}  "
        f"-> {shown['url']}  {summary.get('state')} after {summary.get('attempts')} attempt(s): {statuses}{error}"
    )


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
        return args.url, StaticCredentials(args.api_key, args.signature_secret), f"the Humanos sandbox at {args.url}"
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
    credentials = SecretsManagerCredentials(secret_id, boto3_client=secrets_client)
    return base_url, credentials, f"the Humanos sandbox at {base_url}"


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
    # Names are shown as `send` shows answers: contacts masked, identifiers such as INV-2026-0043 kept.
    asks = ", ".join(safe_id(masked(str(c.get("name") or "-")), mask=False) for c in credentials) or "-"
    shown_name = safe_id(masked(name), mask=False) if isinstance(name, str) else "-"
    return (
        f"{request_id}  {created}  {state:<8}  internalId {shown_internal}  {level}\n"
        f"    name: {shown_name}  subjects: {people}  credentials: {asks}"
    )


# ------------------------------------------------------------------------------------------- decide


class SandboxRefused(BridgeError):
    """The sandbox answered an admin call with an error (its NestJS message says why), or could not be reached."""

    code = "sandbox_refused"


def run_decide(args: argparse.Namespace) -> int:
    if args.wait < 0:
        raise ConfigError(f"--wait must not be negative, got {args.wait}")
    base_url, credentials, where = _humanos_of(args)
    admin = _Admin(base_url, credentials)
    request_id = safe_id(args.request_id, mask=False)
    answer = admin.call(
        "POST",
        f"/_sandbox/requests/{quote(args.request_id, safe='')}/decide",
        {"outcome": args.outcome, "otpError": args.otp_error},
    )
    queued = [d for d in answer.get("deliveries") or [] if isinstance(d, dict)]
    print(f"{args.outcome}: {len(queued)} webhook(s) queued by {where} for request {request_id}")
    deliveries = _follow(admin, queued, args.wait)
    for delivery in deliveries:
        print(f"  {describe_delivery(delivery)}")
    pending = sum(d.get("state") == "pending" for d in deliveries)
    if pending:
        print(f"({pending} still being retried by the sandbox after {args.wait:g} s; `sandbox` prints each attempt)")
    return 1 if any(d.get("state") == "failed" for d in deliveries) else 0


def _follow(admin: _Admin, queued: list[dict[str, Any]], wait: float) -> list[dict[str, Any]]:
    """The deliveries as they stand once none is pending, or when ``wait`` seconds have passed."""
    ids = ",".join(str(d.get("id")) for d in queued)
    deliveries = queued
    deadline = time.monotonic() + wait
    while ids and any(d.get("state") == "pending" for d in deliveries) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        data = admin.call("GET", f"/_sandbox/deliveries?ids={ids}", None).get("data")
        deliveries = [d for d in data or [] if isinstance(d, dict)]
    return deliveries


class _Admin:
    """Signed calls to the sandbox's own ``/_sandbox/`` routes, with the credentials it accepts."""

    def __init__(self, base_url: str, credentials: CredentialsSource) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        # One attempt: the admin routes are not idempotent (a second decide is refused), and a person is waiting.
        self.pool = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=2.0, read=10.0))

    def call(self, method: str, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        data = None if body is None else wire.dump_bytes(body)
        pair = self.credentials.get()
        headers = signing.signed_headers(pair.api_key, pair.signature_secret, data)
        try:
            response = self.pool.request(method, self.base_url + path, body=data, headers=headers)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise SandboxRefused(
                f"cannot reach the sandbox at {self.base_url} ({type(exc).__name__}); is it running?"
            ) from exc
        try:
            answer = wire.loads(response.data) if response.data else {}
        except SerialisationError:
            answer = {}
        if not 200 <= response.status <= 299:
            message = answer.get("message") if isinstance(answer, dict) else None
            shown = "; ".join(map(str, message)) if isinstance(message, list) else message or "no message"
            raise SandboxRefused(f"the sandbox answered {response.status}: {safe_text(str(shown))}")
        return answer if isinstance(answer, dict) else {}
