"""``humanos-bridge send``: sign a business event with its source's scheme and post it to the ingest API.

The answer is printed with contacts masked by a rule narrower than ``masking.mask_text`` (see ``masked``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import urllib3

from humanos_bridge.core.errors import ConfigError
from humanos_bridge.core.queue_messages import is_fifo
from humanos_bridge.ingest.sender_secrets import parse_sender_secret
from humanos_bridge.mapping import load_mapping
from humanos_bridge_local.answers import masked
from humanos_bridge_local.aws_envelopes import VIAS, queue_message
from humanos_bridge_local.commands.local import find_mapping
from humanos_bridge_local.endpoints import Target, add_target_arguments, resolve_target
from humanos_bridge_local.senders import identity_headers, parse_headers, sender_auth, signed_headers
from humanos_bridge_local.stack import ROOT

DEFAULT_MAPPING = ROOT / "mappings" / "bridge.json"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "send",
        help="sign an event as its sender would and post it",
        description=(
            "Sign EVENT (a JSON file, sent byte for byte) with SOURCE's scheme from the mapping file and POST it "
            "to <URL>/events/SOURCE. The secret is --secret, or the first one stored for the source in the "
            "bridge's sender secret (local stack, or --stack with AWS credentials). With --via sqs, eventbridge "
            "or sns the event is not signed nor POSTed: it is put on the bridge's request queue (the local "
            "stack's, --stack's, or --queue-url) as that AWS service would deliver it."
        ),
    )
    parser.add_argument("source", help="the source, as named in the mapping file (crm, shop, hr ...)")
    parser.add_argument("event", type=Path, help="JSON file with the business event")
    parser.add_argument("--url", help="the ingest API's base URL (default: the local stack's, or --stack's ApiUrl)")
    parser.add_argument("--secret", help="the sender secret (default: read from the bridge's sender secret)")
    parser.add_argument(
        "--mapping",
        type=Path,
        metavar="FILE",
        help="mapping file naming the source's scheme: a path, or a file in mappings/ (default: the bridge's, "
        "else mappings/bridge.json)",
    )
    parser.add_argument("--route", choices=("events", "requests"), default="events", help="queued (events) or sync")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help=(
            "a header the sender adds, such as the topic a Shopify or GitHub source reads its event type from "
            "('X-Shopify-Topic: orders/paid'); repeat it. A delivery id the source reads (X-Shopify-Webhook-Id, "
            "X-GitHub-Delivery) is made fresh unless given"
        ),
    )
    parser.add_argument(
        "--via",
        choices=("http", *VIAS),
        default="http",
        help=(
            "http: sign and POST (default); sqs, eventbridge, sns: put the event on the request queue as that AWS "
            "service would deliver it (a source attribute, an EventBridge event, an SNS notification)"
        ),
    )
    add_target_arguments(parser, sending=True)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        body = args.event.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {args.event}: {exc.strerror}") from exc
    if args.via != "http":
        return _enqueue(args, body)
    given_mapping = find_mapping(args.mapping)
    target = None if (args.url and args.secret and given_mapping) else _target_or_none(args)
    mapping_file = given_mapping or (Path(target.mapping_file) if target and target.mapping_file else DEFAULT_MAPPING)
    mapping = load_mapping(mapping_file)
    auth = sender_auth(mapping, args.source)
    given = identity_headers(mapping.source(args.source), parse_headers(args.header))
    secret = args.secret or _stored_secret(target, auth.secret_key)
    base = args.url or (target.api_url if target else None)
    if not base:
        raise ConfigError("no ingest URL: pass --url, start `humanos-bridge local`, or name a deployed --stack")
    url = base.rstrip("/")
    if not url.endswith(f"/{args.route}/{args.source}"):
        url = f"{url}/{args.route}/{args.source}"
    headers = signed_headers(auth.config or auth.scheme, secret, body, url=url, headers=given)
    try:
        response = urllib3.request("POST", url, body=body, headers=headers, timeout=30, retries=False)
    except urllib3.exceptions.HTTPError as exc:
        raise ConfigError(f"cannot reach {url}: {type(exc).__name__}; is the bridge running?") from exc
    print(f"POST {url} ({auth.scheme}) -> {response.status}")
    text = response.data.decode("utf-8", "replace")
    try:
        print(json.dumps(masked(json.loads(text)), indent=2, ensure_ascii=False))
    except ValueError:
        print(masked(text))
    return 0 if response.status < 400 else 1


def _enqueue(args: argparse.Namespace, body: bytes) -> int:
    """Put the event on the request queue as EventBridge, SNS or a plain SQS sender would."""
    given_mapping = find_mapping(args.mapping)
    target = resolve_target(args)
    mapping_file = given_mapping or (Path(target.mapping_file) if target.mapping_file else DEFAULT_MAPPING)
    fifo = is_fifo(target.request_queue_url)
    message = queue_message(load_mapping(mapping_file), args.source, body, args.via, fifo=fifo)
    answer = target.client("sqs").send_message(QueueUrl=target.request_queue_url, **message)
    print(f"queued via {args.via} on {target.request_queue_url}: message {answer['MessageId']}")
    return 0


def _target_or_none(args: argparse.Namespace) -> Target | None:
    try:
        return resolve_target(args)
    except ConfigError:
        if args.url and args.secret:
            return None
        raise


def _stored_secret(target: Target | None, key: str) -> str:
    if target is None or not target.sender_secret_id:
        raise ConfigError("no sender secret: pass --secret, or name a bridge whose sender secret can be read")
    value = target.client("secretsmanager").get_secret_value(SecretId=target.sender_secret_id)["SecretString"]
    secrets = parse_sender_secret(target.sender_secret_id, value).get(key)
    if not secrets:
        raise ConfigError(f"the sender secret {target.sender_secret_id} has no entry {key!r}; pass --secret")
    return secrets[0]
