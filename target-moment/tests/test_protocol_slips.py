"""Singer protocol slips fail one record, not the run (``data_files/protocol_slips.singer``):
an expense before its stream's SCHEMA is counted failed with an ERROR naming the stream, its key
and the fix; an expense without ``source_key`` is dead-lettered under a key naming the field and
kept (not retried) on the next run; the good expense after them is written."""

from __future__ import annotations

from typing import Any

import pytest


def test_slips_fail_alone(moment: Any, replay: Any, caplog: pytest.LogCaptureFixture) -> None:
    states = replay("protocol_slips.singer")

    assert set(moment.test_expenses()) == {"fortnox-si-9101-2"}
    summary = replay.summary()
    counts = summary["streams"]["project_expenses"]
    assert counts["failed"] == 2
    assert counts["created"] == 1
    early = next(f for f in summary["failures"] if f["key"] == "fortnox-si-9101-0")
    assert "before any SCHEMA" in early["message"]
    records = [m for m in replay.dead_letter_lines() if m["type"] == "RECORD"]
    assert len(records) == 1
    keyless = records[0]["error"]
    assert keyless["key"].startswith("(no source_key)")
    assert "'source_key' is missing" in keyless["message"]
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("project_expenses" in e and "fortnox-si-9101-0" in e for e in errors)
    assert "Traceback" not in caplog.text
    del states  # the file carries no STATE; the run's end is what matters

    # Next run: the keyless letter cannot succeed, so it stays and counts failed again.
    replay("create.singer")
    assert replay.summary()["streams"]["project_expenses"]["failed"] == 1
    kept = [m for m in replay.dead_letter_lines() if m["type"] == "RECORD"]
    assert [m["error"]["key"] for m in kept] == [keyless["key"]]
