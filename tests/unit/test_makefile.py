"""``make run``: options reach ``humanos-bridge local``, and the first run says it is installing.

``make -n`` prints the recipes without running them, so nothing is installed or started here.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import ROOT


def dry_run(*arguments: str) -> list[str]:
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "-C", str(ROOT), *arguments],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    return done.stdout.splitlines()


@pytest.mark.parametrize(
    ("arguments", "command"),
    [
        ([], ".venv/bin/humanos-bridge local"),
        (["PORT=0"], ".venv/bin/humanos-bridge local --port 0"),
        (
            ["ARGS=--port 0 --mapping presets/stripe-checkout.json"],
            ".venv/bin/humanos-bridge local --port 0 --mapping presets/stripe-checkout.json",
        ),
        (["PORT=8090", "ARGS=--show-secrets"], ".venv/bin/humanos-bridge local --port 8090 --show-secrets"),
    ],
)
def test_run_passes_the_port_and_args_on(arguments: list[str], command: str) -> None:
    assert dry_run("run", *arguments)[-1].split() == command.split()


def test_sandbox_passes_the_port_on() -> None:
    assert dry_run("sandbox", "PORT=0")[-1].split() == [".venv/bin/humanos-bridge", "sandbox", "--port", "0"]


def test_installing_the_environment_is_announced_first() -> None:
    """Pretending pyproject.toml changed makes the install recipe due: it starts by saying what takes 30 s."""
    recipe = dry_run("-W", "pyproject.toml", "run")

    assert recipe[0] == (
        'echo "installing the development environment into .venv (first run, or pyproject.toml changed; about 30 s)"'
    )
    assert any("pip install" in line for line in recipe[1:])
