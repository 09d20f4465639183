"""Faults and request economy against the Fortnox sandbox: ambiguous creates, fatal errors before
STATE, refresh-token auth, and the number of requests a push and a no-change run cost."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fortnox_client import FortnoxAuthError, FortnoxClient, FortnoxTransientError
from sandbox.launcher import SandboxProcess
from sync_common import DeadLetters

Replay = Callable[..., Any]
TS = "2026-03-01T09:00:00+01:00"


@pytest.fixture(autouse=True)
def _no_faults_left(fortnox_sandbox: SandboxProcess) -> Iterator[None]:
    yield
    fortnox_sandbox.admin("DELETE", "faults")


def customers_text(numbers: list[str], *, cities: dict[str, str] | None = None) -> str:
    schema = {
        "type": "SCHEMA",
        "stream": "customers",
        "key_properties": ["customerNumber"],
        "schema": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "customerNumber": {"type": "string"},
                "name": {"type": ["string", "null"]},
                "city": {"type": ["string", "null"]},
                "countryCode": {"type": ["string", "null"]},
                "lastModifiedDate": {"type": "string", "format": "date-time"},
            },
        },
    }
    lines = [json.dumps(schema)]
    for index, number in enumerate(numbers):
        record = {
            "id": index,
            "customerNumber": number,
            "name": f"Kund {number} AB",
            "city": (cities or {}).get(number, "Malmö"),
            "countryCode": "SE",
            "lastModifiedDate": TS,
        }
        lines.append(json.dumps({"type": "RECORD", "stream": "customers", "record": record}))
    state = {"bookmarks": {"customers": {"replication_key_value": TS}}}
    lines.append(json.dumps({"type": "STATE", "value": state}))
    return "\n".join(lines) + "\n"


def test_ambiguous_create_is_looked_up_not_blindly_retried(
    replay: Replay, fortnox_sandbox: SandboxProcess, fortnox_api: FortnoxClient
) -> None:
    # The POST is committed, then the connection is dropped before the answer.
    fortnox_sandbox.admin(
        "POST",
        "faults",
        {"kind": "drop_after_commit", "method": "POST", "path": "^/3/customers$", "count": 1},
    )
    run = replay(text=customers_text(["72001"]))

    assert run.count("POST") == 1, "a create must never be re-sent after an ambiguous failure"
    # One GET before (a one-record batch looks its key up) and one after the dropped answer.
    assert run.count("GET", "/3/customers/72001") == 2
    assert fortnox_api.get("customers", "72001") is not None
    summary = json.loads(
        next(Path(run.target.config["results_dir"]).glob("runs/*.json")).read_text()
    )
    assert summary["streams"]["customers"]["created"] == 1


def test_transient_errors_after_retries_fail_the_run_before_state(
    replay: Replay, fortnox_sandbox: SandboxProcess, fortnox_api: FortnoxClient
) -> None:
    fortnox_sandbox.admin(
        "POST", "faults", {"kind": "status", "status": 503, "path": "^/3/customers", "count": 50}
    )
    with pytest.raises(FortnoxTransientError):
        replay(text=customers_text(["72101"]))

    assert replay.last.states == [], "STATE must not be emitted when a record was not written"  # type: ignore[attr-defined]
    fortnox_sandbox.admin("DELETE", "faults")
    assert fortnox_api.get("customers", "72101") is None


def test_auth_error_fails_the_run_before_state(
    replay: Replay, fortnox_config: dict[str, Any]
) -> None:
    with pytest.raises(FortnoxAuthError):
        replay(
            text=customers_text(["72201"]),
            tenant_id=None,
            refresh_token="not-a-valid-refresh-token",
        )
    assert replay.last.states == []  # type: ignore[attr-defined]


def test_refresh_token_seed_authenticates(
    replay: Replay, fortnox_sandbox: SandboxProcess, fortnox_api: FortnoxClient
) -> None:
    minted = fortnox_sandbox.admin("POST", "refresh-tokens", {"scope": "customer project invoice"})
    run = replay(
        text=customers_text(["72301"]), tenant_id=None, refresh_token=minted["refresh_token"]
    )
    assert run.count("POST") == 1
    assert fortnox_api.get("customers", "72301") is not None


def test_push_and_no_change_run_request_economy(
    replay: Replay, fortnox_sandbox: SandboxProcess
) -> None:
    numbers = [f"73{i:03d}" for i in range(120)]
    push = replay(text=customers_text(numbers))
    total = fortnox_sandbox.admin("GET", "counts")
    customers_now = int(total.get("customers", total.get("counts", {}).get("customers", 0)))
    pages = math.ceil(customers_now / 500)

    # One probe, at most the list pages, then one POST per new customer.
    assert push.count("POST") == 120
    assert len(push.requests) <= 120 * 1.05 + 1 + pages
    # No change: the probe and the list pages, nothing else (no single GET, no write).
    again = replay(text=customers_text(numbers))
    assert again.writes == 0
    assert len(again.requests) <= 1 + pages

    # One changed customer among many unchanged: one PUT, reads within list pages.
    once = replay(text=customers_text(numbers, cities={"73005": "Lund"}))
    assert once.count("PUT") == 1
    assert once.count("POST") == 0
    assert len(once.requests) <= 1 + pages + 1


def _invoice_line(number: int, customer: str) -> str:
    record = {
        "id": number,
        "invoiceNumber": number,
        "invoiceState": "FINALIZED",
        "customer": {"id": 1, "customerNumber": customer},
        "project": None,
        "invoiceDate": "2026-03-02",
        "dueDate": "2026-04-01",
        "ocr": None,
        "currency": "SEK",
        "creditedInvoiceNumber": None,
        "invoiceLines": [
            {
                "description": "Konsult",
                "quantity": 2,
                "unitPrice": 900,
                "vatRate": 25,
                "accountNumber": "3001",
            }
        ],
        "lastModifiedDate": TS,
    }
    return json.dumps({"type": "RECORD", "stream": "invoices", "record": record})


INVOICE_SCHEMA = json.dumps(
    {
        "type": "SCHEMA",
        "stream": "invoices",
        "key_properties": ["invoiceNumber"],
        "schema": {"type": "object", "properties": {"invoiceNumber": {"type": "integer"}}},
    }
)


def test_full_invoice_batch_waits_for_pending_customers(
    replay: Replay, fortnox_api: FortnoxClient
) -> None:
    # Batches of 2: customers 74001-74002 drain, 74003 waits in its sink when the invoice batch
    # fills; the invoices refer to 74003, so the customers must be drained first.
    customers = customers_text(["74001", "74002", "74003"]).splitlines()[:-1]
    lines = [*customers, INVOICE_SCHEMA, _invoice_line(7400001, "74003")]
    lines.append(_invoice_line(7400002, "74003"))
    run = replay(text="\n".join(lines) + "\n", batch_size_rows=2)

    assert run.count("POST", "/3/invoices") == 2
    invoice = fortnox_api.get("invoices", "7400002")
    assert invoice is not None
    assert invoice["CustomerNumber"] == "74003"


def test_invoice_of_a_customer_that_failed_in_the_run_fails_naming_it(
    replay: Replay, fortnox_api: FortnoxClient, fortnox_config: dict[str, Any]
) -> None:
    bad_customer = customers_text(["74101"]).replace('"countryCode": "SE"', '"countryCode": "XYZ"')
    lines = [*bad_customer.splitlines()[:-1], INVOICE_SCHEMA, _invoice_line(7410001, "74101")]
    run = replay(text="\n".join(lines) + "\n")

    assert run.count("POST") == 0
    assert fortnox_api.get("invoices", "7410001") is None
    letters = {
        (letter.stream, letter.key): letter.error
        for letter in DeadLetters(fortnox_config["results_dir"], "target-fortnox").pending()
    }
    assert "countryCode" in letters[("customers", "74101")]
    assert "customer 74101" in letters[("invoices", "7410001")]
    assert "failed in this run" in letters[("invoices", "7410001")]


def test_repeated_ambiguous_creates_are_looked_up_each_time_then_written(
    replay: Replay, fortnox_sandbox: SandboxProcess, fortnox_api: FortnoxClient
) -> None:
    # Two 500 answers in a row (nothing committed): look-up, POST, look-up, POST — never stop.
    fortnox_sandbox.admin(
        "POST",
        "faults",
        {"kind": "status", "status": 500, "method": "POST", "path": "^/3/customers$", "count": 2},
    )
    run = replay(text=customers_text(["72101"]))

    assert run.count("POST") == 3
    assert run.states, "an ambiguous create resolved by look-ups must not stop the run"
    assert fortnox_api.get("customers", "72101") is not None
    summary = json.loads(
        next(Path(run.target.config["results_dir"]).glob("runs/*.json")).read_text()
    )
    assert summary["streams"]["customers"]["created"] == 1


def test_create_unanswered_every_time_fails_that_record_alone(
    replay: Replay, fortnox_sandbox: SandboxProcess, fortnox_api: FortnoxClient
) -> None:
    fortnox_sandbox.admin(
        "POST",
        "faults",
        {"kind": "status", "status": 502, "method": "POST", "path": "^/3/customers$", "count": 3},
    )
    run = replay(text=customers_text(["72201", "72202"]))

    assert run.count("POST") == 4  # three for 72201 (each looked up after), one for 72202
    assert run.states, "one record's unanswered creates must not stop the run"
    assert fortnox_api.get("customers", "72201") is None
    assert fortnox_api.get("customers", "72202") is not None
    (letter,) = DeadLetters(run.target.config["results_dir"], "target-fortnox").pending()
    assert letter.key == "72201"
    assert "did not answer 3 creates" in letter.error
    assert "retries it from the dead letters" in letter.error
