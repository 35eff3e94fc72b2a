"""The local stack's secret files: private folders, no write through a planted link (real files in tmp_path)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from humanos_bridge.core.errors import ConfigError
from humanos_bridge_local.private_files import read_json, write_json

SECRETS = {"senders": {"crm": ["local-sender-secret"]}}


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def private_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "state"
    folder.mkdir()
    folder.chmod(0o700)
    return folder


def test_a_new_state_folder_is_created_private_and_the_file_owner_only(tmp_path: Path) -> None:
    """The folder does not exist yet: created 0700; the file is 0600 and reads back."""
    path = tmp_path / "new-state" / "secrets.json"
    write_json(path, SECRETS)
    assert (mode_of(path.parent), mode_of(path)) == (0o700, 0o600)
    assert read_json(path) == SECRETS
    assert [p.name for p in path.parent.iterdir()] == ["secrets.json"]  # no temporary file left behind


def test_planted_links_never_receive_the_secrets(tmp_path: Path) -> None:
    """Links where the file goes and where the old code put its temporary file (``secrets.<pid>.tmp``): the
    secrets land in a new 0600 file that replaces the link, and the links' target is never written."""
    folder = private_folder(tmp_path)
    target = tmp_path / "collected.json"
    target.write_text("{}", encoding="utf-8")
    target.chmod(0o644)
    (folder / "secrets.json").symlink_to(target)
    (folder / f"secrets.{os.getpid()}.tmp").symlink_to(target)

    write_json(folder / "secrets.json", SECRETS)

    assert target.read_text(encoding="utf-8") == "{}"
    written = folder / "secrets.json"
    assert not written.is_symlink() and mode_of(written) == 0o600
    assert json.loads(written.read_text(encoding="utf-8")) == SECRETS


@pytest.mark.parametrize("mode", [0o775, 0o757, 0o777, 0o1777], ids=["group", "others", "everyone", "sticky-tmp"])
def test_a_folder_others_may_write_to_is_refused_and_nothing_is_written(tmp_path: Path, mode: int) -> None:
    """The error says what, where and how to fix it; the folder stays empty."""
    folder = private_folder(tmp_path)
    folder.chmod(mode)
    with pytest.raises(ConfigError) as caught:
        write_json(folder / "secrets.json", SECRETS)
    assert str(caught.value) == (
        f"refusing to keep secrets in {folder}: group or others may write to the folder (mode "
        f"{mode:04o}), so they could plant a link where the secrets are written; run `chmod 700 {folder}`, "
        "or use another folder"
    )
    assert list(folder.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    """Its owner could read or swap the secrets: refused, for writing and for reading."""
    folder = private_folder(tmp_path)
    (folder / "secrets.json").write_text(json.dumps(SECRETS), encoding="utf-8")
    os.chown(folder, 4242, -1)
    for attempt in (lambda: write_json(folder / "secrets.json", SECRETS), lambda: read_json(folder / "secrets.json")):
        with pytest.raises(ConfigError, match=r"the folder belongs to user id 4242, not to you \(0\)"):
            attempt()


def test_reading_refuses_a_link_and_an_open_folder(tmp_path: Path) -> None:
    """Secrets are read only as a plain file from a private folder: a planted link is an error (OSError, which
    the stack reports as a file to delete), as is a folder others may write to."""
    folder = private_folder(tmp_path)
    elsewhere = tmp_path / "chosen-by-someone.json"
    elsewhere.write_text(json.dumps(SECRETS), encoding="utf-8")
    (folder / "secrets.json").symlink_to(elsewhere)
    with pytest.raises(OSError):
        read_json(folder / "secrets.json")
    folder.chmod(0o777)
    with pytest.raises(ConfigError):
        read_json(folder / "secrets.json")


def test_reading_nothing_yet_is_none(tmp_path: Path) -> None:
    """No folder, or no file in it: the first start, with no stored secrets."""
    assert read_json(tmp_path / "absent" / "secrets.json") is None
    assert read_json(private_folder(tmp_path) / "secrets.json") is None
