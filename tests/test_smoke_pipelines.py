"""Smoke: both jobs run end to end through `meltano run` against fresh sandboxes."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def test_both_jobs_run_and_report(pipelines: Any) -> None:
    pipelines.run("moment-to-fortnox", "fortnox-expenses-to-moment")
    target = pipelines.last_summary("target-fortnox")
    assert target["streams"]["customers"]["created"] == 30
    expenses = pipelines.last_summary("target-moment")
    assert expenses["streams"]["project_expenses"]["created"] > 0
    state = pipelines.state("dev:tap-moment-to-target-fortnox")
    assert state["singer_state"]["bookmarks"]["customers"]["replication_key_value"]
