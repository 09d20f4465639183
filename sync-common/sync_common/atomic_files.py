"""Files that readers see whole or not at all: write a temporary file beside, fsync, rename.

Owns the one way every sync-common writer replaces a file (run summaries, run-store documents,
the monthly archives of run summaries), so a reader or a killed writer never sees half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def write_json_atomically(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    write_text_atomically(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_text_atomically(path: Path, text: str) -> None:
    """``text`` (UTF-8) to ``path``, atomically (see :func:`write_bytes_atomically`)."""
    write_bytes_atomically(path, text.encode("utf-8"))


def write_bytes_atomically(
    path: Path, data: bytes, *, mode: int | None = None, sync_directory: bool = False
) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over ``path``.

    ``mode``: the file's permissions from its creation on (e.g. 0o600 for secrets), else
    ``mkstemp``'s; ``sync_directory``: fsync the directory after the rename too, so the rename
    itself survives a crash (the token store, whose refresh token works only once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    if sync_directory:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
