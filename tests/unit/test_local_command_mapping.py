"""``humanos-bridge local --mapping FILE``: where the file is looked for, and the sample event the banner posts.

A mistyped ``--mapping`` is reported before anything starts, naming every place looked in; and a custom
mapping still gets a "Try it" ``curl`` when one of the sample events is one of its sources' events.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from humanos_bridge.core.errors import ConfigError
from humanos_bridge.mapping import MappingConfig, load_mapping
from humanos_bridge_local.commands.local import MAPPINGS, SAMPLE, SAMPLES, find_mapping, try_it_sample
from tests.support.mappings import one_source

BRIDGE = json.loads((MAPPINGS / "bridge.json").read_text(encoding="utf-8"))


def mapping_file(tmp_path: Path, document: dict[str, Any], name: str = "billing.json") -> MappingConfig:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return load_mapping(str(path))


def test_a_path_that_exists_is_used_as_given(tmp_path: Path) -> None:
    given = tmp_path / "billing.json"
    given.write_text("{}", encoding="utf-8")

    assert find_mapping(given) == given


def test_a_name_inside_mappings_is_found_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """From any working directory, the name of a file of ``mappings/`` (a preset) is enough."""
    monkeypatch.chdir(tmp_path)

    assert find_mapping(Path("presets/stripe-checkout.json")) == MAPPINGS / "presets" / "stripe-checkout.json"


def test_a_missing_file_names_where_it_was_looked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    with pytest.raises(ConfigError) as refused:
        find_mapping(Path("billing.json"))

    message = str(refused.value)
    assert message.startswith(f"--mapping billing.json: no such file (looked for {tmp_path / 'billing.json'} and ")
    assert str(MAPPINGS / "billing.json") in message
    assert "MAPPING_FILE" not in message  # the functions' variable means nothing to someone starting a stack


def test_no_mapping_given_keeps_the_templates() -> None:
    assert find_mapping(None) is None


def test_the_default_mapping_posts_the_crm_sample() -> None:
    assert try_it_sample(load_mapping(str(MAPPINGS / "bridge.json"))) == SAMPLE


def test_a_custom_source_gets_the_sample_its_rules_map(tmp_path: Path) -> None:
    """A ``billing`` source made from the CRM's rules maps the CRM sample: the banner can sign and post it."""
    document = {**BRIDGE, "sources": {"billing": BRIDGE["sources"]["crm"]}}

    assert try_it_sample(mapping_file(tmp_path, document)) == ("billing", SAMPLE[1])


def test_a_preset_gets_its_own_sample() -> None:
    """Sample events of the presets live in ``events/business/presets/``; one of them is the preset's."""
    preset = load_mapping(str(MAPPINGS / "presets" / "hr-employee-hired.json"))

    found = try_it_sample(preset)

    assert found is not None
    source, path = found
    assert source in preset.sources and path.is_relative_to(SAMPLES)
    assert preset.map_requests(source, json.loads(path.read_bytes()))


def test_a_mapping_no_sample_satisfies_gets_none(tmp_path: Path) -> None:
    """No sample is an ``invoice.paid``: the banner then prints the ``send`` command for an event of the user's."""
    rule = {"name": "invoice-consent", "request": {"contacts": ["=data.phone"], "groupIds": ["grp_billing"]}}
    document = one_source([rule], event_type="invoice.paid", source="billing", auth={"scheme": "humanos-hmac"})

    assert try_it_sample(mapping_file(tmp_path, document)) is None
