"""``humanos-bridge``: the command line for developers and operators.

Each command lives in its own module under ``commands/`` and registers itself on the parser;
this file only assembles them and turns BridgeError into a clean message and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from humanos_bridge import __version__
from humanos_bridge.errors import BridgeError

#: Command modules, in the order ``--help`` lists them.
COMMAND_MODULES = ("sign", "sandbox", "mappings", "local", "demo", "send", "dlq", "status")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="humanos-bridge",
        description="Turn business events into signed Humanos requests: local stack, sandbox and operator tools.",
    )
    parser.add_argument("--version", action="version", version=f"humanos-bridge {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"humanos_bridge_local.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BridgeError as exc:
        print(f"humanos-bridge: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
