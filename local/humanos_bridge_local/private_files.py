"""Files only their owner can read, in folders only their owner can write: the local stack's state.

``--state-dir`` holds the generated sender secrets and sandbox credentials, and the bridge's home
(``~/.humanos-bridge``) the endpoints and outcomes files. Whoever can write to such a folder can plant a
symbolic link where a file is about to be written (and receive the secrets) or replace a file the stack
reads (and choose the secrets). So a folder is created 0700, and an existing one is used only when it is
the user's own and neither group nor others may write to it; it is checked on the opened folder itself,
and the files are then opened relative to it, so the folder checked is the folder used. A file is written
to a new temporary file (``O_CREAT | O_EXCL | O_NOFOLLOW``, mode 0600) that then replaces it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from humanos_bridge.core.errors import ConfigError

#: Opening a folder: it must be one (a link to one is followed; what it leads to is what gets checked).
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY
#: Creating a temporary file: never an existing file, never through a link.
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` to ``path`` atomically, readable by its owner only, in a private folder (created 0700).

    ConfigError when the folder is not private (see the module docstring).
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder = _open_private_folder(path.parent)
    try:
        # Not guessable, so nothing can wait at this name; O_EXCL refuses it if something does all the same.
        temporary = f"{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp"
        descriptor = os.open(temporary, _NEW_FILE_FLAGS, 0o600, dir_fd=folder)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2)
            os.replace(temporary, path.name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary, dir_fd=folder)
            raise
    finally:
        os.close(folder)


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when there is no such file; ConfigError when its folder is not private.

    A symbolic link at ``path`` is refused (OSError), as are unreadable files and malformed JSON (ValueError).
    """
    try:
        folder = _open_private_folder(path.parent)
    except FileNotFoundError:
        return None
    try:
        try:
            descriptor = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
        except FileNotFoundError:
            return None
        with os.fdopen(descriptor, encoding="utf-8") as handle:
            return json.load(handle)
    finally:
        os.close(folder)


def _open_private_folder(folder: Path) -> int:
    descriptor = os.open(folder, _FOLDER_FLAGS)
    try:
        _check_private(folder, os.fstat(descriptor))
    except BaseException:
        os.close(descriptor)
        raise
    return descriptor


def _check_private(folder: Path, info: os.stat_result) -> None:
    me = os.geteuid()
    if info.st_uid != me:
        raise ConfigError(
            f"refusing to keep secrets in {folder}: the folder belongs to user id {info.st_uid}, not to you ({me}), "
            "so its owner could read or replace them; use a folder of your own (--state-dir DIR, or "
            "HUMANOS_BRIDGE_HOME for the bridge's home)"
        )
    writable_by_others = info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable_by_others:
        raise ConfigError(
            f"refusing to keep secrets in {folder}: group or others may write to the folder (mode "
            f"{stat.S_IMODE(info.st_mode):04o}), so they could plant a link where the secrets are written; "
            f"run `chmod 700 {folder}`, or use another folder"
        )
