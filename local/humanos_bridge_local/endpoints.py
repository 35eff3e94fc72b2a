"""Where the operator commands find a bridge: the running local stack, a deployed stack, or given queues.

``humanos-bridge local`` writes its endpoints to ``~/.humanos-bridge/local.json`` (or
``$HUMANOS_BRIDGE_HOME/local.json``) while it runs and removes the file when it stops. The
operator commands read it by default; ``--stack NAME`` reads a deployed stack's outputs through
CloudFormation (``DescribeStacks``) with the usual AWS credentials (or ``--profile``), and
``--queue-url``/``--dlq-url`` name the queues directly. The file holds URLs and names only: no secret values.

A stack that is killed (``kill -9``, a crash, a reboot) leaves its file behind. A file whose process is gone, or
whose ingest API refuses connections, is stale: the commands remove it and say so, instead of failing later on a
connection to a moto that no longer exists. A second stack never takes over a live stack's file: it writes
``local-<port>.json`` next to it (see ``file_for_new_stack``), and each stack removes only the file it wrote.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from humanos_bridge.core.errors import ConfigError
from humanos_bridge_local.cli import command_name
from humanos_bridge_local.private_files import write_json as write_json  # the stack writes its files through it

HOME_ENV = "HUMANOS_BRIDGE_HOME"
ENDPOINTS_FILE = "local.json"
#: Seconds to wait for a recorded ingest API to accept a connection. Only a refusal proves it gone: a slow
#: answer (a loaded machine) is no reason to delete a running stack's file.
PROBE_SECONDS = 1.0
#: Credentials for moto: any value works, and these can never reach a real account.
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def home() -> Path:
    """``$HUMANOS_BRIDGE_HOME`` or ``~/.humanos-bridge``."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".humanos-bridge")


def endpoints_path() -> Path:
    return home() / ENDPOINTS_FILE


def outcomes_path(endpoints_file: Path) -> Path:
    """The recent outcomes kept next to an endpoints file: ``outcomes.json`` beside ``local.json``,
    ``outcomes-8081.json`` beside ``local-8081.json``."""
    stem = endpoints_file.stem
    suffix = stem.removeprefix("local") if stem.startswith("local") else f"-{stem}"
    return endpoints_file.with_name(f"outcomes{suffix}.json")


def read_local_endpoints(path: Path | None = None) -> dict[str, Any]:
    """The running local stack's endpoints; ConfigError when none is running (a stale file is removed)."""
    where = path or endpoints_path()
    data = _read_endpoints_file(where)
    reason = stale_reason(data)
    if reason is not None:
        done = "was removed" if remove_stale(where, data) else f"could not be removed (rm {where})"
        raise ConfigError(
            f"no local stack is running: {where} is stale ({reason}: the stack was killed, crashed, or the "
            f"machine restarted) and {done}; {_start_hint()}"
        )
    return data


def _start_hint() -> str:
    return (
        f"start `{command_name()} local` (or `make run`), or name a deployed stack with --stack NAME "
        "or its queues with --queue-url/--dlq-url"
    )


def _read_endpoints_file(where: Path) -> dict[str, Any]:
    try:
        data = json.loads(where.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no local stack is running ({where} not found); {_start_hint()}") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {where}: {exc}; delete it and restart `{command_name()} local`") from exc
    if not isinstance(data, dict) or "requestQueueUrl" not in data:
        raise ConfigError(
            f"{where} is not a local stack's endpoints file; delete it and restart `{command_name()} local`"
        )
    return data


def stale_reason(data: dict[str, Any]) -> str | None:
    """Why the stack an endpoints file describes is gone, or None when it may still be running."""
    pid = data.get("pid")
    if isinstance(pid, int) and not isinstance(pid, bool) and not pid_alive(pid):
        return f"its process, pid {pid}, is not running"
    api_url = data.get("apiUrl")
    if isinstance(api_url, str) and refuses_connections(api_url):
        # The pid alone is no proof: after a reboot another process may have been given it.
        return f"nothing listens at its ingest API {api_url}"
    return None


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 checks without sending anything)."""
    if pid <= 0:
        return False  # 0 and negative ids name process groups, not a stack
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: it exists
    except (OSError, OverflowError):
        return False
    return True


def refuses_connections(url: str, timeout: float = PROBE_SECONDS) -> bool:
    """True when nothing listens at ``url``'s host and port: the connection is refused there and then."""
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        return False
    if not host or port is None:
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False  # a timeout or an unreachable network proves nothing about the stack


def remove_stale(where: Path, data: dict[str, Any]) -> bool:
    """Remove a stale endpoints file and its outcomes file; False when it could not be removed.

    Only if the file still holds what was judged stale: a stack that started since has written its own.
    """
    try:
        if json.loads(where.read_text(encoding="utf-8")) != data:
            return True  # replaced by a live stack: nothing stale left to remove
        where.unlink()
        outcomes_path(where).unlink(missing_ok=True)
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False
    return True


def file_for_new_stack(port: int) -> tuple[Path, str | None]:
    """Where a stack that has just started on ``port`` writes its endpoints, and a note for its banner.

    The default file, unless a live stack holds it: that one keeps it (the operator commands go on reaching
    it), and this one writes ``local-<port>.json`` beside it. A stale default file is replaced.
    """
    default = endpoints_path()
    try:
        data = _read_endpoints_file(default)
    except ConfigError:
        return default, None  # none, or not one a stack could use: ours to write
    reason = stale_reason(data)
    if reason is not None:
        remove_stale(default, data)
        return default, f"replaced a stale {default.name} ({reason})"
    own = default.with_name(f"local-{port}.json")
    return (
        own,
        f"{default.name} stays with the stack already running (pid {data.get('pid', '?')}, {data.get('apiUrl')})",
    )


def live_stack_on_port(port: int) -> tuple[Path, dict[str, Any]] | None:
    """The endpoints file and endpoints of a running stack of this home whose ingest API has ``port``."""
    for where in (endpoints_path(), home() / f"local-{port}.json"):
        try:
            data = _read_endpoints_file(where)
        except ConfigError:
            continue
        api_url = data.get("apiUrl")
        try:
            held = isinstance(api_url, str) and urlsplit(api_url).port == port
        except ValueError:
            held = False
        if held and stale_reason(data) is None:
            return where, data
    return None


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


def add_target_arguments(parser: argparse.ArgumentParser, *, sending: bool = False) -> None:
    """The options naming a bridge. ``sending``: for ``send``, which needs no dead-letter queue, and whose
    ``--queue-url`` is where ``--via sqs|eventbridge|sns`` puts the event."""
    group = parser.add_argument_group("which bridge (default: the running local stack)")
    group.add_argument("--stack", metavar="NAME", help="a deployed stack: read its outputs with AWS credentials")
    if sending:
        group.add_argument(
            "--queue-url",
            help="with --via sqs|eventbridge|sns: the request queue to put the event on (deployed; with AWS "
            "credentials); not used by --via http",
        )
    else:
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
        return Target("the given queues", aws_session(args), None, queue_url, getattr(args, "dlq_url", None))
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
