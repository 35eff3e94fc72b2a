"""Where the operator commands find a bridge: the running local stack, a deployed stack, or given queues.

``humanos-bridge local`` writes its endpoints to ``~/.humanos-bridge/local.json`` (or
``$HUMANOS_BRIDGE_HOME/local.json``) while it runs and removes the file when it stops. The
operator commands read it by default; ``--stack NAME`` reads a deployed stack's outputs through
CloudFormation (``DescribeStacks``) with the usual AWS credentials (or ``--profile``), and
``--queue-url``/``--dlq-url`` name the queues directly. The file holds URLs and names only: no secret values.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from humanos_bridge.errors import ConfigError
from humanos_bridge_local.private_files import write_json as write_json  # the stack writes its files through it

HOME_ENV = "HUMANOS_BRIDGE_HOME"
ENDPOINTS_FILE = "local.json"
OUTCOMES_FILE = "outcomes.json"
#: Credentials for moto: any value works, and these can never reach a real account.
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def home() -> Path:
    """``$HUMANOS_BRIDGE_HOME`` or ``~/.humanos-bridge``."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".humanos-bridge")


def endpoints_path() -> Path:
    return home() / ENDPOINTS_FILE


def read_local_endpoints(path: Path | None = None) -> dict[str, Any]:
    """The running local stack's endpoints; ConfigError when none is running."""
    where = path or endpoints_path()
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no local stack is running ({where} not found); start `humanos-bridge local`, "
            "or name a deployed stack with --stack NAME or its queues with --queue-url/--dlq-url"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {where}: {exc}; delete it and restart `humanos-bridge local`") from exc
    if not isinstance(data, dict) or "requestQueueUrl" not in data:
        raise ConfigError(
            f"{where} is not a local stack's endpoints file; delete it and restart `humanos-bridge local`"
        )
    return data


@dataclass
class Target:
    """A bridge to operate on: its clients and the URLs the commands need."""

    description: str
    session: Any
    endpoint_url: str | None
    request_queue_url: str
    dead_letter_queue_url: str | None = None
    api_url: str | None = None
    sender_secret_id: str | None = None
    mapping_file: str | None = None
    #: Recent per-event outcomes (local stack only).
    outcomes_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    def require_dlq(self) -> str:
        if not self.dead_letter_queue_url:
            raise ConfigError(f"{self.description} has no dead-letter queue URL; pass --dlq-url")
        return self.dead_letter_queue_url


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("which bridge (default: the running local stack)")
    group.add_argument("--stack", metavar="NAME", help="a deployed stack: read its outputs with AWS credentials")
    group.add_argument("--queue-url", help="the request queue URL (deployed; with AWS credentials)")
    group.add_argument("--dlq-url", help="the dead-letter queue URL (deployed; with AWS credentials)")
    group.add_argument("--region", help="AWS region of --stack or the queues (default: the AWS CLI's)")
    group.add_argument("--profile", help="AWS CLI profile for --stack or the queues (default: the AWS CLI's)")
    group.add_argument(
        "--endpoints", type=Path, metavar="FILE", help=f"local stack endpoints file (default: {endpoints_path()})"
    )


def resolve_target(args: argparse.Namespace) -> Target:
    """The bridge that ``args`` name; ConfigError saying what to pass when none can be found."""
    if getattr(args, "stack", None):
        return stack_target(args.stack, aws_session(args))
    if getattr(args, "queue_url", None) or getattr(args, "dlq_url", None):
        queue_url = args.queue_url or ""
        return Target("the given queues", aws_session(args), None, queue_url, args.dlq_url)
    return local_target(read_local_endpoints(getattr(args, "endpoints", None)))


def aws_session(args: argparse.Namespace) -> Any:
    """A boto3 session for a deployed bridge, from ``--region`` and ``--profile`` (else the AWS CLI's own)."""
    try:
        return boto3.session.Session(region_name=args.region, profile_name=getattr(args, "profile", None))
    except ProfileNotFound as exc:
        raise ConfigError(f"{exc}: check --profile (`aws configure list-profiles` lists them)") from exc


def local_target(data: dict[str, Any]) -> Target:
    session = boto3.session.Session(region_name=data["region"], **LOCAL_CREDENTIALS)
    return Target(
        f"the local stack at {data['apiUrl']}",
        session,
        data["awsEndpointUrl"],
        data["requestQueueUrl"],
        data.get("deadLetterQueueUrl"),
        data.get("apiUrl"),
        data.get("senderSecretArn"),
        data.get("mappingFile"),
        data.get("outcomesFile"),
    )


def stack_target(name: str, session: Any, endpoint_url: str | None = None) -> Target:
    """A deployed stack, from its CloudFormation outputs (RequestQueueUrl, DeadLetterQueueUrl, ApiUrl ...)."""
    try:
        stacks = session.client("cloudformation", endpoint_url=endpoint_url).describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", "")
        raise ConfigError(
            f"cannot describe stack {name!r}: {message}; check --stack, --region and credentials"
        ) from exc
    except BotoCoreError as exc:
        raise ConfigError(
            f"cannot reach CloudFormation for stack {name!r}: {exc}; check --region and credentials"
        ) from exc
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    if "RequestQueueUrl" not in outputs:
        raise ConfigError(f"stack {name!r} has no RequestQueueUrl output; is it a humanos-bridge stack?")
    return Target(
        f"stack {name}",
        session,
        endpoint_url,
        outputs["RequestQueueUrl"],
        outputs.get("DeadLetterQueueUrl"),
        outputs.get("ApiUrl"),
        outputs.get("SenderSecretArn"),
    )
