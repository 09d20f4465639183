"""The one atomic write: whole file or the old one, fsync unless asked not to, no temp left."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sync_common import atomic_files
from sync_common.atomic_files import write_bytes_atomically, write_json_atomically


def test_replaces_the_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state.json"
    write_json_atomically(path, {"a": "å"})
    write_json_atomically(path, {"b": 2})
    assert path.read_text(encoding="utf-8") == '{\n  "b": 2\n}\n'
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]


@pytest.mark.parametrize(("fsync", "expected_syncs"), [(True, 1), (False, 0)])
def test_fsync_of_the_file_can_be_skipped_for_files_written_very_often(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: bool, expected_syncs: int
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(atomic_files.os, "fsync", counting_fsync)
    path = tmp_path / "window.json"
    write_bytes_atomically(path, b"{}", fsync=fsync)
    assert path.read_bytes() == b"{}"
    assert len(synced) == expected_syncs


def test_mode_is_set_from_creation_on(tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    write_bytes_atomically(path, b"x", mode=0o600, sync_directory=True)
    assert path.stat().st_mode & 0o777 == 0o600
