"""``humanos-bridge``: the command line for developers and operators.

Each command lives in its own module under ``commands/`` and registers itself on the parser;
this file only assembles them and turns BridgeError into a clean message and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from humanos_bridge import __version__
from humanos_bridge.core.errors import BridgeError

PROG = "humanos-bridge"
#: Command modules, in the order ``--help`` lists them.
COMMAND_MODULES = ("sign", "sandbox", "mappings", "local", "demo", "send", "dlq", "status", "events")


def command_name(argv0: str | None = None, *, search_path: str | None = None, cwd: Path | None = None) -> str:
    """This CLI as the user can type it again in the same shell, for the commands it prints.

    ``humanos-bridge`` only when ``PATH`` (``search_path``) finds this very script: ``make run`` and a fresh
    clone run ``.venv/bin/humanos-bridge``, and a bare name would be "command not found". Otherwise the
    script's path, relative to the working directory when it is inside it.
    """
    script = Path(sys.argv[0] if argv0 is None else argv0)
    if script.name != PROG:
        # ``python -m humanos_bridge_local.cli``, or a caller such as pytest: this interpreter's console script.
        script = Path(sys.executable).parent / PROG
        if not script.is_file():
            return f"{shlex.quote(sys.executable)} -m humanos_bridge_local.cli"
    here = cwd or Path.cwd()
    found = shutil.which(PROG, path=search_path)
    if found is not None and (here / found).resolve() == (here / script).resolve():
        return PROG
    try:
        shown = str((here / script).relative_to(here))
    except ValueError:
        shown = str(script)
    return shlex.quote(shown if "/" in shown else f"./{shown}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
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
    except BrokenPipeError:
        # The reader went away (`status | head`): nothing left to say, and no traceback when Python flushes
        # stdout at exit either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
