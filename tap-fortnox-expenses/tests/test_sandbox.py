"""The tap's behaviour against the real Fortnox sandbox: what is emitted, what is counted, what a
second run costs, late postings, changed invoices, the window settings, filters and failures.

Every test starts from a reseeded sandbox (fixture ``seeded``) because some change its data.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fortnox_client import (
    FortnoxAuthError,
    FortnoxClient,
    FortnoxDataError,
    FortnoxTransientError,
)

pytestmark = pytest.mark.usefixtures("seeded")

STOCKHOLM = ZoneInfo("Europe/Stockholm")
SINGLE_INVOICE = re.compile(r"^/3/supplierinvoices/\d+$")


def today() -> date:
    return datetime.now(STOCKHOLM).date()


def window_numbers(fortnox: FortnoxClient, days: int = 30) -> list[str]:
    """GivenNumbers of the supplier invoices dated in the window, by their InvoiceDate (the
    sandbox, like Fortnox may, ignores fromdate/todate on supplier invoices by default)."""
    start = (today() - timedelta(days=days)).isoformat()
    return [
        str(item["GivenNumber"])
        for item in fortnox.list("supplierinvoices")
        if start <= item["InvoiceDate"] <= today().isoformat()
    ]


def window_invoices(fortnox: FortnoxClient, days: int = 30) -> list[dict[str, Any]]:
    """The window's supplier invoices read with their rows, independently of the tap."""
    return [fortnox.get("supplierinvoices", n) or {} for n in window_numbers(fortnox, days)]


def cost(row: dict[str, Any]) -> bool:
    """docs/SUPPLIER-INVOICES.md's decision per row Code: no code, freight and fee rows are costs;
    codes without a published meaning only on accounts 4000-7999; the rest never."""
    if row["Code"] in ("", "FRT", "AFE"):
        return True
    return row["Code"] in ("PRE", "GWB", "ACC") and 4000 <= int(row["Account"]) <= 7999


def oracle(invoices: list[dict[str, Any]]) -> tuple[dict[str, Any], Counter[str]]:
    """Expected records by source key and skipped rows by reason, straight from the README."""
    expected: dict[str, Any] = {}
    skipped: Counter[str] = Counter()
    for invoice in invoices:
        for index, row in enumerate(invoice["SupplierInvoiceRows"]):
            if not cost(row):
                continue
            project = row["Project"] or invoice["Project"]
            if invoice["Cancelled"]:
                skipped["cancelled"] += 1
            elif not invoice["Booked"]:
                skipped["unbooked"] += 1
            elif not project:
                skipped["no project"] += 1
            else:
                # By position (the legacy key); the content key is checked in test_expenses.
                expected[f"fortnox-si-{invoice['GivenNumber']}-{index}"] = (invoice, row, project)
    return expected, skipped


def run_summary(config: dict[str, Any]) -> dict[str, Any]:
    """The newest run summary the tap wrote under results_dir."""
    runs = sorted((Path(config["results_dir"]) / "runs").glob("*-tap-fortnox-expenses.json"))
    assert runs, "the tap wrote no run summary"
    return dict(json.loads(runs[-1].read_text()))


def post_supplier_invoice(
    sandbox: Any, *, invoice_date: date, project: str = "5001", amount: int = 1000, **flags: bool
) -> str:
    """Post a supplier invoice the way a Fortnox user would (admin API); returns GivenNumber."""
    vat = amount // 4
    body = {
        "SupplierInvoice": {
            "SupplierNumber": "1",
            "InvoiceNumber": f"LATE-{amount}",
            "InvoiceDate": invoice_date.isoformat(),
            "Project": project,
            "SupplierInvoiceRows": [
                {"Account": 2440, "Code": "TOT", "Credit": amount + vat},
                {"Account": 4010, "Debit": amount, "TransactionInformation": "Sen leverans"},
                {"Account": 2641, "Code": "VAT", "Debit": vat},
            ],
        },
        "booked": flags.get("booked", True),
        "approved": flags.get("approved", True),
    }
    created = sandbox.admin("POST", "supplierinvoices", body)
    return str(created["SupplierInvoice"]["GivenNumber"])


def test_every_qualifying_row_is_emitted_with_its_fields(
    run_tap: Any, fortnox: FortnoxClient, tap_config: dict[str, Any]
) -> None:
    invoices = window_invoices(fortnox)
    expected, skipped = oracle(invoices)
    run = run_tap()

    assert run.error is None
    assert {r["legacy_source_key"] for r in run.expenses} == set(expected)
    assert len({r["source_key"] for r in run.expenses}) == len(expected) > 0
    for record in run.expenses:
        invoice, row, project = expected[record["legacy_source_key"]]
        costs = sum(
            Decimal(str(r["Debit"])) - Decimal(str(r["Credit"]))
            for r in invoice["SupplierInvoiceRows"]
            if cost(r)
        )
        amount = Decimal(str(row["Debit"])) - Decimal(str(row["Credit"]))
        assert record["given_number"] == int(invoice["GivenNumber"])
        assert record["project_number"] == project
        assert record["expense_date"] == invoice["InvoiceDate"]
        assert record["account_number"] == row["Account"]
        assert Decimal(str(record["amount"])) == amount
        expected_vat = Decimal(invoice["VAT"]) * amount / costs
        assert abs(Decimal(str(record["vat_amount"])) - expected_vat) <= Decimal("0.005")
        assert record["currency"] == invoice["Currency"]
        assert record["supplier_number"] == str(invoice["SupplierNumber"])
        assert record["supplier_name"] == invoice["SupplierName"]
        assert record["supplier_invoice_number"] == invoice["InvoiceNumber"]
        assert record["description"] == row["TransactionInformation"]
        assert record["booked"] is True

    # The window meets every row Code Fortnox lists; exactly the cost rows among them went out.
    codes = {r["Code"] for i in invoices for r in i["SupplierInvoiceRows"]}
    assert codes >= {"TOT", "VAT", "FRT", "AFE", "ROV", "CND", "CNC", "PRD", "PRC", "SRD", "SRC"}
    assert codes >= {"PRE", "GWB", "ACC", ""}
    emitted_codes = {
        expected[r["legacy_source_key"]][1]["Code"]
        for r in run.expenses
        if r["legacy_source_key"] in expected
    }
    assert emitted_codes == {"", "FRT", "AFE", "GWB"}

    # Projects come first (target-moment needs them) and carry the start date.
    first_record = next(m for m in run.messages if m["type"] == "RECORD")
    assert first_record["stream"] == "projects"
    projects = {p["project_number"]: p for p in run.records["projects"]}
    assert projects["9001"]["start_date"] is not None
    assert projects["9002"]["start_date"] is None

    # Every reason the seed holds is counted in the run summary, exactly.
    assert set(skipped) == {"cancelled", "unbooked", "no project"}
    counts = run_summary(tap_config)["streams"]["project_expenses"]
    assert counts["skipped_reasons"] == dict(skipped)


def test_second_run_emits_nothing_and_only_lists(run_tap: Any, request_log: Any) -> None:
    first = run_tap()
    assert first.error is None
    assert first.bookmark["replication_key_value"]
    mark = request_log.mark()

    second = run_tap(state=first.final_state)

    assert second.error is None
    assert second.expenses == []
    requests = request_log.since(mark)
    assert requests, "the second run made no requests"
    assert all(method == "GET" and not SINGLE_INVOICE.match(path) for method, path in requests)
    # Window list, late-postings list, projects list: one page each.
    assert Counter(path for _, path in requests) == {"/3/supplierinvoices": 2, "/3/projects": 1}
    assert second.bookmark["invoice_fingerprints"] == first.bookmark["invoice_fingerprints"]
    assert second.bookmark["replication_key_value"] >= first.bookmark["replication_key_value"]


def test_late_posting_dated_before_window_is_emitted_next_run(
    run_tap: Any, request_log: Any, seeded: Any
) -> None:
    first = run_tap()
    late = post_supplier_invoice(seeded, invoice_date=today() - timedelta(days=45))
    mark = request_log.mark()

    second = run_tap(state=first.final_state)

    assert second.error is None
    assert [(r["legacy_source_key"], r["expense_date"]) for r in second.expenses] == [
        (f"fortnox-si-{late}-1", (today() - timedelta(days=45)).isoformat())
    ]
    assert second.expenses[0]["amount"] == 1000.0
    assert second.expenses[0]["vat_amount"] == 250.0
    singles = [p for _, p in request_log.since(mark) if SINGLE_INVOICE.match(p)]
    assert singles == [f"/3/supplierinvoices/{late}"]


def test_booked_invoice_waiting_for_approval_is_an_expense(
    run_tap: Any, seeded: Any, fortnox: FortnoxClient
) -> None:
    """Booked and not cancelled is the rule: Fortnox has no approval state on supplier invoices,
    so an invoice in the ``authorizepending`` list is not held back once it is booked."""
    number = post_supplier_invoice(seeded, invoice_date=today(), amount=700, approved=False)
    pending = fortnox.list("supplierinvoices", {"filter": "authorizepending"})
    assert number in {str(i["GivenNumber"]) for i in pending}

    run = run_tap()

    assert run.error is None
    assert [r["amount"] for r in run.expenses if r["given_number"] == int(number)] == [700.0]


def test_window_is_right_whether_fortnox_applies_fromdate_or_not(
    run_tap: Any, request_log: Any, seeded: Any, fortnox: FortnoxClient
) -> None:
    """Fortnox documents fromdate/todate only for invoices, orders, offers and vouchers. With the
    sandbox ignoring them (its default) and applying them, the tap emits the same records, reads
    details only of invoices dated in the window, and still catches a late posting."""
    in_window = set(window_numbers(fortnox))
    runs: dict[bool, list[dict[str, Any]]] = {}
    try:
        for applied in (False, True):
            seeded.admin("POST", "seed", {"seed": 1})  # the same books for both ways
            seeded.admin("PATCH", "settings", {"supplier_invoice_date_filter": applied})
            listed = {
                str(i["GivenNumber"])
                for i in fortnox.list(
                    "supplierinvoices",
                    {
                        "fromdate": (today() - timedelta(days=30)).isoformat(),
                        "todate": today().isoformat(),
                    },
                )
            }
            assert (listed == in_window) is applied  # the switch really changes the answer
            mark = request_log.mark()

            first = run_tap()

            assert first.error is None
            singles = [p for _, p in request_log.since(mark) if SINGLE_INVOICE.match(p)]
            assert sorted(singles) == sorted(f"/3/supplierinvoices/{n}" for n in in_window)
            assert {str(r["given_number"]) for r in first.expenses} <= in_window
            assert set(first.bookmark["invoice_fingerprints"]) == in_window
            runs[applied] = first.expenses

            late = post_supplier_invoice(seeded, invoice_date=today() - timedelta(days=45))
            mark = request_log.mark()
            second = run_tap(state=first.final_state)
            assert second.error is None
            assert [r["given_number"] for r in second.expenses] == [int(late)]
            singles = [p for _, p in request_log.since(mark) if SINGLE_INVOICE.match(p)]
            assert singles == [f"/3/supplierinvoices/{late}"]
    finally:
        seeded.admin("PATCH", "settings", {"supplier_invoice_date_filter": False})

    assert runs[False] == runs[True]
    assert len(runs[False]) > 0


def test_changed_invoices_are_read_again(
    run_tap: Any, request_log: Any, fortnox: FortnoxClient, tap_config: dict[str, Any]
) -> None:
    first = run_tap()
    unbooked = [i["GivenNumber"] for i in window_invoices(fortnox) if not i["Booked"]]
    unbooked = [n for n in unbooked if not fortnox.get("supplierinvoices", n)["Cancelled"]]
    to_book, to_cancel = unbooked[0], unbooked[1]
    fortnox.action("supplierinvoices", to_book, "approvalbookkeep")
    fortnox.action("supplierinvoices", to_cancel, "cancel")
    mark = request_log.mark()

    second = run_tap(state=first.final_state)

    assert second.error is None
    assert {r["given_number"] for r in second.expenses} == {int(to_book)}
    assert all(
        r["source_key"] not in {e["source_key"] for e in first.expenses} for r in second.expenses
    )
    singles = sorted(p for _, p in request_log.since(mark) if SINGLE_INVOICE.match(p))
    assert singles == sorted([f"/3/supplierinvoices/{to_book}", f"/3/supplierinvoices/{to_cancel}"])
    assert run_summary(tap_config)["streams"]["project_expenses"]["skipped_reasons"] == {
        "cancelled": len(
            [
                r
                for r in fortnox.get("supplierinvoices", to_cancel)["SupplierInvoiceRows"]
                if cost(r)
            ]
        )
    }


def test_lookback_days_and_start_date_widen_the_window(run_tap: Any) -> None:
    default = run_tap()
    wide = run_tap(lookback_days=60)
    backfill = run_tap(start_date=(today() - timedelta(days=60)).isoformat())

    cutoff = (today() - timedelta(days=30)).isoformat()
    assert min(r["expense_date"] for r in default.expenses) >= cutoff
    assert min(r["expense_date"] for r in wide.expenses) < cutoff
    assert {r["source_key"] for r in default.expenses} < {r["source_key"] for r in wide.expenses}
    assert {r["source_key"] for r in backfill.expenses} == {r["source_key"] for r in wide.expenses}


def test_account_and_project_filters(run_tap: Any, tap_config: dict[str, Any]) -> None:
    everything = run_tap().expenses
    account = Counter(r["account_number"] for r in everything).most_common(1)[0][0]
    project = Counter(r["project_number"] for r in everything).most_common(1)[0][0]

    by_account = run_tap(account_numbers=[account])
    assert by_account.expenses
    assert {r["account_number"] for r in by_account.expenses} == {account}
    reasons = run_summary(tap_config)["streams"]["project_expenses"]["skipped_reasons"]
    assert reasons["filtered account"] == sum(
        1 for r in everything if r["account_number"] != account
    )

    by_project = run_tap(include_projects=[project])
    assert by_project.expenses
    assert {r["project_number"] for r in by_project.expenses} == {project}
    reasons = run_summary(tap_config)["streams"]["project_expenses"]["skipped_reasons"]
    assert reasons["filtered project"] == sum(
        1 for r in everything if r["project_number"] != project
    )


def test_exhausted_retries_fail_the_run_without_moving_the_bookmark(
    run_tap: Any, seeded: Any
) -> None:
    first = run_tap()
    late = post_supplier_invoice(seeded, invoice_date=today() - timedelta(days=50))
    seeded.admin(
        "POST",
        "faults",
        {"kind": "status", "status": 503, "count": 20, "path": r"^/3/supplierinvoices/\d+$"},
    )
    try:
        failed = run_tap(state=first.final_state)
    finally:
        seeded.admin("DELETE", "faults")

    assert isinstance(failed.error, FortnoxTransientError)
    assert failed.expenses == []
    # Whatever state went out still holds the first run's bookmark and fingerprints.
    assert failed.bookmark == first.bookmark

    retried = run_tap(state=failed.final_state)
    assert retried.error is None
    assert {r["given_number"] for r in retried.expenses} == {int(late)}


def test_auth_error_fails_the_run_and_is_summarised(
    run_tap: Any, tap_config: dict[str, Any]
) -> None:
    run = run_tap(client_secret="wrong-secret")

    assert isinstance(run.error, FortnoxAuthError)
    assert run.records == {}
    # No bookmark: the only STATE messages are the run's marks (sync_common.tap_run), carrying
    # the state it started from.
    marks = [(m["value"], m["tap_run"]["event"]) for m in run.messages if m["type"] == "STATE"]
    assert marks == [({}, "started"), ({}, "failed")]
    summary = run_summary(tap_config)
    assert summary["failures"]
    assert "wrong-secret" not in json.dumps(summary)


def test_unreadable_invoice_stops_the_run_and_names_it(
    run_tap: Any, seeded: Any, tap_config: dict[str, Any]
) -> None:
    seeded.admin(
        "POST",
        "faults",
        {"kind": "status", "status": 400, "count": 1, "path": r"^/3/supplierinvoices/\d+$"},
    )
    run = run_tap()

    assert isinstance(run.error, FortnoxDataError)
    assert run.bookmark.get("replication_key_value") is None  # no mark: the next run reads all
    (failure,) = run_summary(tap_config)["failures"]
    assert re.fullmatch(r"supplier invoice \d+", failure["key"])
    assert any(failure["key"] in note for note in run.error.__notes__)


def supplier_invoice_rows(rows: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """Balanced rows for cost rows ``(text, amount)`` on account 4010: payables, costs, 25 % VAT."""
    net = sum(amount for _, amount in rows)
    return [
        {"Account": 2440, "Code": "TOT", "Credit": net * 5 // 4},
        *(
            {"Account": 4010, "Debit": amount, "TransactionInformation": text}
            for text, amount in rows
        ),
        {"Account": 2641, "Code": "VAT", "Debit": net // 4},
    ]


def test_a_changed_invoice_keeps_its_keys_and_sends_removals_for_rows_it_lost(
    run_tap: Any, seeded: Any
) -> None:
    body = {
        "SupplierInvoice": {
            "SupplierNumber": "1",
            "InvoiceNumber": "CHANGED-1",
            "InvoiceDate": today().isoformat(),
            "Project": "5001",
            "SupplierInvoiceRows": supplier_invoice_rows([("A", 1000), ("B", 400), ("C", 200)]),
        },
        "booked": True,
        "approved": True,
    }
    given = int(seeded.admin("POST", "supplierinvoices", body)["SupplierInvoice"]["GivenNumber"])
    first = run_tap()
    keys = {r["description"]: r["source_key"] for r in first.expenses if r["given_number"] == given}
    assert len(set(keys.values())) == 3

    # The user corrects it: rows re-ordered, A's amount changed, B removed.
    correction = {"SupplierInvoiceRows": supplier_invoice_rows([("C", 200), ("A", 1100)])}
    seeded.admin("PUT", f"supplierinvoices/{given}", {"SupplierInvoice": correction})
    second = run_tap(state=first.final_state)

    assert second.error is None
    mine = [r for r in second.expenses if r["given_number"] == given]
    assert {r["description"]: (r["source_key"], r["amount"]) for r in mine if not r["removed"]} == {
        "C": (keys["C"], 200.0),
        "A": (keys["A"], 1100.0),
    }
    removals = [r for r in mine if r["removed"]]
    assert [(r["source_key"], r["given_number"]) for r in removals] == [(keys["B"], given)]
    # The state remembers what was emitted, so a third run has nothing more to remove.
    suffixes = second.bookmark["invoice_row_keys"][str(given)]
    assert sorted(f"fortnox-si-{given}-{s}" for s in suffixes) == sorted([keys["A"], keys["C"]])
    third = run_tap(state=second.final_state)
    assert [r for r in third.expenses if r["given_number"] == given] == []
