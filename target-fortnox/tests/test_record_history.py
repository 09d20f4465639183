"""A record's history: ``sync-report --record invoices N`` says when the record was sent, with
what outcome and what Fortnox answered, from the run summaries the target writes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fortnox_client import FortnoxClient
from sync_common.report import main as report_main

DATA_FILES = Path(__file__).parent / "data_files"
Replay = Callable[..., Any]


def _renumbered(name: str, old: str, new: str) -> str:
    """A data file with its keys moved to a series of its own (the sandbox is shared)."""
    return (DATA_FILES / name).read_text(encoding="utf-8").replace(old, new)


def _history(
    results_dir: str, stream: str, key: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[dict[str, Any]], str]:
    argv = ["--results-dir", results_dir, "--record", stream, key]
    code = report_main([*argv, "--json"])
    events: list[dict[str, Any]] = json.loads(capsys.readouterr().out)
    assert report_main(argv) == code
    return code, events, capsys.readouterr().out


def test_report_record_says_when_an_invoice_was_sent_the_outcome_and_fortnoxs_answer(
    replay: Replay,
    fortnox_api: FortnoxClient,
    fortnox_config: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    results = fortnox_config["results_dir"]
    replay(text=_renumbered("invoice_identical.singer", "7180", "7410"))  # created
    replay(text=_renumbered("invoice_identical.singer", "7180", "7410"))  # unchanged: not sent
    replay(text=_renumbered("invoice_different.singer", "7180", "7410"))  # conflict
    invoice = fortnox_api.get("invoices", "7410001")
    assert invoice is not None

    code, events, text = _history(results, "invoices", "7410001", capsys)

    assert code == 0
    assert [e["outcome"] for e in events] == ["created", "conflict"]
    created, conflict = events
    assert created["plugin"] == "target-fortnox"
    assert created["answer"] == (
        f"created: DocumentNumber 7410001, CustomerNumber 74101, InvoiceDate "
        f"{invoice['InvoiceDate']}, Total {invoice['Total']}, OCR 741000117, Booked false, "
        "Cancelled false"
    )
    assert "already exists in Fortnox with different content" in conflict["detail"]
    assert conflict["answer"].startswith("Fortnox holds: DocumentNumber 7410001")
    assert created["time"] < conflict["time"]
    assert created["run_id"] != conflict["run_id"]
    assert text.splitlines()[0] == "invoices 7410001: 2 event(s)"
    assert f"    answer: {created['answer']}" in text
    # The credit note names the invoice it credits, as Fortnox saved it.
    _, [credit], _ = _history(results, "invoices", "7410002", capsys)
    assert "ExternalInvoiceReference1 7410001" in credit["answer"]


def test_report_record_of_a_refused_record_gives_fortnoxs_error(
    replay: Replay,
    fortnox_api: FortnoxClient,
    fortnox_config: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fortnox_api.create("customers", {"CustomerNumber": "74301", "Name": "Borttagen AB"})
    assert fortnox_api.delete("customers", "74301")
    replay(text=_renumbered("reserved_number.singer", "715", "743"))

    code, [event], _ = _history(fortnox_config["results_dir"], "customers", "74301", capsys)

    assert code == 0
    assert event["outcome"] == "failed"
    assert "another number in Moment" in event["detail"]
    assert event["answer"].startswith("HTTP 400 error 2000637: ")
    assert "Fortnox error" not in event["answer"]  # Fortnox's own text, not our advice

    code, events, text = _history(fortnox_config["results_dir"], "customers", "99999", capsys)
    assert (code, events) == (1, [])
    assert "mentions customers 99999" in text
