"""Fixtures for the infrastructure tests: template.yaml (as written and after the SAM transform) and
samconfig.toml, parsed once per session."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from cfn_template import Template

from humanos_bridge_local import packaging

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


@pytest.fixture(scope="session")
def transformed() -> dict[str, Any]:
    """template.yaml after the SAM transform, as CloudFormation receives it: the IAM roles with the policies
    SAM generates (managed ones included), the functions' event sources, every resource's Metadata.

    Made by the SAM translator in .sam-venv (the SAM CLI's, installed on first use), with no AWS call.
    """
    return packaging.sam_transform(ROOT / "template.yaml", say=lambda text: None)
