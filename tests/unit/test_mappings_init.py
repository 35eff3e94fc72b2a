"""``humanos-bridge mappings init --preset NAME``: a preset to start from, and what to do next, runnable as printed.

Through the CLI's entry point; files are written under pytest's tmp_path only.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from humanos_bridge_local.cli import main
from humanos_bridge_local.commands.mappings import PRESET_SAMPLES, PRESETS, PRESETS_DIR


def init(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["mappings", "init", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def step(out: str, label: str) -> list[str]:
    """The arguments of the command printed after ``label``, without the CLI's own name (which varies)."""
    [line] = [line for line in out.splitlines() if label in line]
    words = shlex.split(line.split(label, 1)[1])
    first = next(i for i, word in enumerate(words) if word in ("mappings", "local", "send"))
    return words[first:]


def test_every_preset_file_and_sample_can_be_started_from() -> None:
    """A new preset in mappings/presets/ needs its name here, with its sample event."""
    assert sorted(file for file, _ in PRESETS.values()) == sorted(p.name for p in PRESETS_DIR.glob("*.json"))
    assert all((PRESET_SAMPLES / sample).is_file() for _, sample in PRESETS.values())


@pytest.mark.parametrize("name", list(PRESETS))
def test_init_writes_the_preset_and_its_check_and_preview_commands_run_as_printed(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a preset name; the file is the preset, byte for byte; the printed check and preview both exit 0."""
    output = tmp_path / "mapping.json"
    code, out, err = init(capsys, "--preset", name, "--output", str(output))
    assert (code, err) == (0, "")
    assert output.read_bytes() == (PRESETS_DIR / PRESETS[name][0]).read_bytes()
    assert out.splitlines()[0] == f"wrote {output} (the {name} preset, from mappings/presets/{PRESETS[name][0]})"
    assert main(step(out, "then check it:")) == 0
    assert main(step(out, "preview its sample event:")) == 0
    preview = capsys.readouterr().out
    assert "body (" in preview and "ignored:" not in preview  # the sample becomes a request
    assert step(out, "run it locally:") == ["local", "--mapping", str(output)]
    assert f"the secret under {name!r} in the bridge's sender secret" in out


def test_a_shopify_preset_says_which_headers_the_sample_needs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The topic (from the preset's rules) for preview and send; a delivery id for preview (send makes its own)."""
    output = tmp_path / "shop.json"
    out = init(capsys, "--preset", "shopify", "--output", str(output))[1]
    preview = step(out, "preview its sample event:")
    assert preview[preview.index("--header") :][:2] == ["--header", "X-Shopify-Topic: orders/paid"]
    assert any(word.startswith("X-Shopify-Webhook-Id: ") for word in preview)
    send = step(out, "signed as the provider signs:")
    assert send[:2] == ["send", "shopify"] and send[-2:] == ["--header", "X-Shopify-Topic: orders/paid"]


def test_an_existing_file_is_kept_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "mine.json"
    output.write_text("{}", encoding="utf-8")
    code, out, err = init(capsys, "--preset", "stripe", "--output", str(output))
    assert (code, out) == (1, "")
    assert err == f"humanos-bridge: {output} exists; choose another --output FILE, or pass --force to overwrite it\n"
    assert output.read_text(encoding="utf-8") == "{}"
    assert init(capsys, "--preset", "stripe", "--output", str(output), "--force")[0] == 0
    assert output.read_bytes() == (PRESETS_DIR / "stripe-checkout.json").read_bytes()


@pytest.mark.parametrize(
    ("given", "hint"),
    [("shopfy", "; did you mean 'shopify'?"), ("HubSpot-v3", "; did you mean 'hubspot'?"), ("zendesk", "")],
)
def test_an_unknown_preset_lists_the_valid_ones(
    given: str, hint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = init(capsys, "--preset", given, "--output", str(tmp_path / "x.json"))
    assert (code, out) == (1, "")
    valid = "stripe, shopify, typeform, hubspot, hr"
    assert err == f"humanos-bridge: --preset {given}: no such preset; use one of: {valid}{hint}\n"
    assert not (tmp_path / "x.json").exists()


def test_the_preset_files_name_works_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert init(capsys, "--preset", "stripe-checkout.json", "--output", str(tmp_path / "s.json"))[0] == 0
    assert (tmp_path / "s.json").read_bytes() == (PRESETS_DIR / "stripe-checkout.json").read_bytes()
