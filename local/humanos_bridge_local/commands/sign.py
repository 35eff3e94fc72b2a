"""``humanos-bridge sign``: print the signed headers (or a curl command) for a Humanos call."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from humanos_bridge.core import signing
from humanos_bridge.core.errors import ConfigError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sign",
        help="print signed Humanos request headers",
        description=(
            "Sign a body (or a bodyless call) the way Humanos checks it. The signature secret comes from "
            "HUMANOS_SIGNATURE_SECRET and the API key, for the Authorization line, from HUMANOS_API_KEY."
        ),
    )
    parser.add_argument("--timestamp", type=int, help="Unix time in milliseconds (default: now)")
    body = parser.add_mutually_exclusive_group()
    body.add_argument("--body-file", type=Path, help="file whose exact bytes are the body")
    body.add_argument("--body", help="the body text, used as given")
    parser.add_argument("--curl", metavar="URL", help="print a ready-to-run curl command for URL instead")
    parser.add_argument("--api-version", default=None, help="add an API-Version header (for --curl)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    secret = os.environ.get("HUMANOS_SIGNATURE_SECRET", "")
    if not secret:
        raise ConfigError("HUMANOS_SIGNATURE_SECRET is not set; export the Signature Secret from the Humanos dashboard")
    api_key = os.environ.get("HUMANOS_API_KEY", "")
    if args.body_file is not None:
        try:
            body: bytes | None = args.body_file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read --body-file {args.body_file}: {exc.strerror}") from exc
    else:
        body = args.body.encode("utf-8") if args.body is not None else None
    headers = signing.signed_headers(api_key, secret, body, timestamp=args.timestamp)
    if not api_key:
        headers.pop("Authorization")
    if args.api_version:
        headers["API-Version"] = args.api_version
    if args.curl:
        print(_curl(args.curl, headers, args.body_file, body))
    else:
        for name, value in headers.items():
            print(f"{name}: {value}")
    return 0


def _curl(url: str, headers: dict[str, str], body_file: Path | None, body: bytes | None) -> str:
    parts = ["curl", "-sS", "-X", "POST" if body else "GET", shlex.quote(url)]
    for name, value in headers.items():
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    if body_file is not None:
        # --data-binary keeps the bytes exactly as signed (plain -d would strip newlines).
        parts += ["--data-binary", shlex.quote(f"@{body_file}")]
    elif body:
        parts += ["--data-binary", shlex.quote(body.decode("utf-8"))]
    return " ".join(parts)
