"""Fixtures for the infrastructure tests: template.yaml and samconfig.toml, parsed once per session."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from cfn_template import Template

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def template() -> Template:
    """The application's SAM template, short tags resolved to their long forms."""
    return Template(ROOT / "template.yaml")


@pytest.fixture(scope="session")
def samconfig() -> dict[str, Any]:
    """samconfig.toml as a dict of environments."""
    with (ROOT / "samconfig.toml").open("rb") as handle:
        return tomllib.load(handle)
