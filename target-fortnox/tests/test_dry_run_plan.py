"""What an operator sees: a dry-run plan with only the fields that change; progress lines."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from target_fortnox.sinks import FortnoxSink

DATA_FILES = Path(__file__).parent / "data_files"
SCHEMA = (DATA_FILES / "customers_update.singer").read_text(encoding="utf-8").splitlines()[0]


def customer_record(**changes: Any) -> dict[str, Any]:
    return {
        "id": 19311,
        "customerNumber": "71931",
        "name": "Nordfjord Rådgivning AS",
        "organizationNumber": None,
        "email": "post@nordfjord.no",
        "address1": "Strandgata 3",
        "address2": None,
        "postalCode": "5003",
        "city": "Bergen",
        # Not in Fortnox's customer list: compared through the ledger or a single GET.
        "countryCode": "NO",
        "createdDate": "2026-01-10T08:00:00+01:00",
        "lastModifiedDate": "2026-03-01T09:00:00+01:00",
        **changes,
    }


def customer_lines(**changes: Any) -> str:
    """Customer 71931 with ``changes`` and an unchanged 71932: two keys, so the target lists
    the register (whose rows lack CountryCode) instead of reading each customer."""
    records = [
        customer_record(**changes),
        customer_record(id=19312, customerNumber="71932", name="Fjell Konsult AS"),
    ]
    lines = [SCHEMA]
    lines += [
        json.dumps({"type": "RECORD", "stream": "customers", "record": r}, ensure_ascii=False)
        for r in records
    ]
    return "\n".join(lines) + "\n"


def test_plan_of_an_update_names_only_the_changed_fields(replay: Callable[..., Any]) -> None:
    replay(text=customer_lines())
    run = replay(text=customer_lines(email="ekonomi@nordfjord.no"), dry_run=True)
    assert run.writes == 0
    actions = [
        {"key": a["key"], "action": a["action"], "changes": a["changes"]}
        for a in run.target.plan.entries
    ]
    # CountryCode is not in the list row; it did not change, so the plan must not show it.
    assert actions == [
        {"key": "71931", "action": "update", "changes": {"Email": "ekonomi@nordfjord.no"}},
        {"key": "71932", "action": "unchanged", "changes": {}},
    ]


def test_progress_lines_count_the_records_of_each_batch(
    replay: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Every batch passes the interval (the default is one line per 10 s).
    monkeypatch.setattr(FortnoxSink, "progress_interval_seconds", 0.0)
    with caplog.at_level(logging.INFO):
        replay(text=customer_lines(), dry_run=True)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("customers: ")]
    assert len(lines) == 1
    assert lines[0].startswith("customers: 2 done, ")
    assert lines[0].endswith("/s")
