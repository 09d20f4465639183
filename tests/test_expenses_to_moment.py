"""End to end: the Fortnox → Moment expenses job (`fortnox-expenses-to-moment`), issue 5.

Every test runs `meltano run` against the module's fresh sandboxes (Fortnox seed 1 with its limiter
off, Moment seed 1), after one `moment-to-fortnox` run so that Fortnox knows Moment's projects (the
seed's supplier invoices carry Moment's project numbers). The tests build on each other in file
order, as the job's daily runs do; each needs only the ``first_run`` fixture to hold.

The expected expenses are computed independently of the job: ``FortnoxBooks`` reads the supplier
invoices with their rows over the Fortnox API with plain HTTP (no fortnox-client, no tap code) and
``expected_expenses`` applies the rules of tap-fortnox-expenses/README.md and
docs/SUPPLIER-INVOICES.md (booked, not cancelled, has a project, cost rows only, project known in
Moment, billable from the price model else the default). Moment is
read over its API and its sandbox's request log. Figures (durations, counts) are printed with
``-s`` and collected in ``ExpensesJob.figures``.

Dates follow the tap's window (Stockholm dates, `today − 30`); a module that runs across
midnight in Stockholm could see the window move between the expectation and the run.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

pytestmark = pytest.mark.e2e

# Both Fortnox plugins limit themselves to 25 requests per 5 s by default; the sandbox's limiter
# is off here, so the client's is too, to keep the module fast (bench measures the limited case).
FAST_FORTNOX = {
    "TAP_FORTNOX_EXPENSES_MAX_REQUESTS_PER_5S": "0",
    "TARGET_FORTNOX_MAX_REQUESTS_PER_5S": "0",
}
ROOT = Path(__file__).resolve().parents[1]
MELTANO = str(Path(sys.executable).parent / "meltano")
STOCKHOLM = ZoneInfo("Europe/Stockholm")
JOB = "fortnox-expenses-to-moment"
STATE_ID = "dev:tap-fortnox-expenses-to-target-moment"
# The contract between the tap and target-moment (tap README):
# fortnox-si-{GivenNumber}-{row key}, the row key from the row's content (``row_keys`` below).
SOURCE_KEY_PREFIX = "fortnox-si-"
TENANT_ID = "1234567"  # the Fortnox sandbox company's DatabaseNumber
MOMENT_COMPANY, MOMENT_KEY = "demo", "sandbox-key"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Skip reasons as the run summaries name them (tap: per cost row; target: unknown project).
UNBOOKED, CANCELLED = "unbooked", "cancelled"
NO_PROJECT, FILTERED_ACCOUNT = "no project", "filtered account"
UNKNOWN_PROJECT = "project unknown in Moment"
TAP_REASONS = frozenset({UNBOOKED, CANCELLED, NO_PROJECT, FILTERED_ACCOUNT})


def row_keys(invoice: Mapping[str, Any]) -> dict[int, str]:
    """Source key by row position for the cost rows of a supplier invoice, as the tap README
    defines it (computed here without the tap's code): ``r`` + 12 hex digits of the SHA-256 of
    the compact JSON list [project, account, cost center, article, text, item text, n], n
    counting the earlier cost rows with the same six values."""
    header = str(invoice.get("Project") or "").strip()
    seen: Counter[tuple[str, ...]] = Counter()
    keys = {}
    for index, row in enumerate(invoice["SupplierInvoiceRows"]):
        if str(row.get("Code") or "").upper() in ("TOT", "VAT"):
            continue
        identity = (
            str(row.get("Project") or "").strip() or header,
            str(row.get("Account") or "").strip(),
            *(
                str(row.get(name) or "").strip()
                for name in (
                    "CostCenter",
                    "ArticleNumber",
                    "TransactionInformation",
                    "ItemDescription",
                )
            ),
        )
        material = json.dumps(
            [*identity, seen[identity]], ensure_ascii=False, separators=(",", ":")
        )
        seen[identity] += 1
        digest = hashlib.sha256(material.encode()).hexdigest()[:12]
        keys[index] = f"{SOURCE_KEY_PREFIX}{invoice['GivenNumber']}-r{digest}"
    return keys


def stockholm_today() -> date:
    return datetime.now(STOCKHOLM).date()


def money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class ExpectedExpense:
    """What Moment must hold for one qualifying Fortnox cost row."""

    key: str
    project_number: str
    expense_date: str
    account_number: str
    amount: Decimal
    billable: bool


@dataclass
class Expectation:
    """The expenses a set of supplier invoices must become, and the rows left out per reason."""

    expenses: dict[str, ExpectedExpense] = field(default_factory=dict)
    tap_skips: Counter[str] = field(default_factory=Counter)
    target_skips: Counter[str] = field(default_factory=Counter)


class FortnoxBooks:
    """The Fortnox sandbox's supplier invoices, read over its API as any client would."""

    def __init__(self, url: str) -> None:
        self.api = f"{url}/3"
        answer = requests.post(
            f"{url}/oauth-v1/token",
            data={"grant_type": "client_credentials"},
            auth=("sandbox-client", "sandbox-secret"),
            headers={"TenantId": TENANT_ID},
            timeout=30,
        )
        answer.raise_for_status()
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"

    def _get(self, path: str, **params: Any) -> dict[str, Any]:
        answer = self.session.get(f"{self.api}/{path}", params=params, timeout=30)
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body

    def supplier_invoices(self) -> Iterator[dict[str, Any]]:
        """Every supplier invoice with its rows: list item merged with the single GET."""
        page = 1
        while True:
            listing = self._get("supplierinvoices", page=page, limit=500)
            for item in listing["SupplierInvoices"]:
                detail = self._get(f"supplierinvoices/{item['GivenNumber']}")["SupplierInvoice"]
                yield {**item, **detail}
            if page >= int(listing["MetaInformation"]["@TotalPages"]):
                return
            page += 1


class MomentView:
    """Moment's side of the job, read over the Moment API and the sandbox's admin log."""

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        self.api = f"{sandbox.url}/api/1.0/companies/{MOMENT_COMPANY}"
        self.session = requests.Session()
        self.session.auth = ("apikey", MOMENT_KEY)

    def _all(self, entity: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        page = 0
        while True:
            answer = self.session.get(
                f"{self.api}/{entity}", params={"page": page, "size": 500}, timeout=30
            )
            answer.raise_for_status()
            body = answer.json()
            records += body["content"]
            page += 1
            if page >= body["page"]["totalPages"]:
                return records

    def projects(self) -> dict[str, dict[str, Any]]:
        return {p["projectNumber"]: p for p in self._all("projects")}

    def imported_expenses(self) -> list[dict[str, Any]]:
        """Every project expense that came from Fortnox (externalReference = a source key)."""
        return [
            e
            for e in self._all("projectExpenses")
            if str(e.get("externalReference") or "").startswith(SOURCE_KEY_PREFIX)
        ]

    def last_request(self) -> int:
        return int(self.sandbox.admin("GET", f"requests?since={10**12}")["last"])

    def requests_since(self, seq: int) -> list[dict[str, Any]]:
        return list(self.sandbox.admin("GET", f"requests?since={seq}")["requests"])

    def writes_since(self, seq: int) -> list[dict[str, Any]]:
        return [r for r in self.requests_since(seq) if r["method"] in WRITE_METHODS]


def cost_row(row: Mapping[str, Any]) -> bool:
    """docs/SUPPLIER-INVOICES.md's decision per row Code: no code, freight (FRT) and fee (AFE)
    rows are costs; codes without a published meaning (PRE, GWB, ACC) only on accounts
    4000-7999; payables, VAT, round-off and reverse-charge VAT rows never."""
    code = str(row.get("Code") or "").upper()
    if code in ("", "FRT", "AFE"):
        return True
    return code in ("PRE", "GWB", "ACC") and 4000 <= int(row["Account"]) <= 7999


def expected_expenses(
    invoices: list[dict[str, Any]],
    moment_projects: Mapping[str, Mapping[str, Any]],
    *,
    from_date: date | None = None,
    account_numbers: frozenset[int] | None = None,
    default_billable: bool = True,
) -> Expectation:
    """The tap README's rules applied to Fortnox's supplier invoices dated from ``from_date``.

    A cost row (:func:`cost_row`) of a booked, not cancelled
    invoice that carries a project (row project, else header project) on a project Moment knows
    becomes one expense; billable is the Moment project's price model, else the default.
    """
    expectation = Expectation()
    for invoice in invoices:
        if from_date is not None and date.fromisoformat(invoice["InvoiceDate"]) < from_date:
            continue
        if invoice.get("Cancelled"):
            invoice_reason: str | None = CANCELLED
        elif not invoice.get("Booked"):
            invoice_reason = UNBOOKED
        else:
            invoice_reason = None
        header_project = str(invoice.get("Project") or "").strip()
        keys = row_keys(invoice)
        for index, row in enumerate(invoice["SupplierInvoiceRows"]):
            if not cost_row(row):
                continue
            project = str(row.get("Project") or "").strip() or header_project
            if invoice_reason is not None:
                expectation.tap_skips[invoice_reason] += 1
            elif not project:
                expectation.tap_skips[NO_PROJECT] += 1
            elif account_numbers is not None and int(row["Account"]) not in account_numbers:
                expectation.tap_skips[FILTERED_ACCOUNT] += 1
            elif project not in moment_projects:
                expectation.target_skips[UNKNOWN_PROJECT] += 1
            else:
                setting = (moment_projects[project].get("priceModel") or {}).get("expensesBillable")
                key = keys[index]
                expectation.expenses[key] = ExpectedExpense(
                    key=key,
                    project_number=project,
                    expense_date=invoice["InvoiceDate"],
                    account_number=str(row["Account"]),
                    amount=money(Decimal(str(row["Debit"])) - Decimal(str(row["Credit"]))),
                    billable=setting if isinstance(setting, bool) else default_billable,
                )
    return expectation


def as_expected(expense: Mapping[str, Any]) -> ExpectedExpense:
    """A Moment project expense in the shape of :class:`ExpectedExpense`, to compare whole sets."""
    return ExpectedExpense(
        key=str(expense["externalReference"]),
        project_number=str(expense["project"]["projectNumber"]),
        expense_date=str(expense["expenseDate"]),
        account_number=str(expense["accountNumber"]),
        amount=money(expense["amount"]),
        billable=bool(expense["billable"]),
    )


def references(expenses: list[dict[str, Any]]) -> Counter[str]:
    return Counter(str(e["externalReference"]) for e in expenses)


@dataclass
class RunResult:
    """What one ``meltano run`` of the expenses job did."""

    seconds: float
    tap: dict[str, Any]
    target: dict[str, Any]
    moment_writes: list[dict[str, Any]]
    stderr: str

    @property
    def expenses(self) -> dict[str, Any]:
        stream: dict[str, Any] = self.target["streams"]["project_expenses"]
        return stream

    @property
    def tap_skips(self) -> dict[str, int]:
        reasons: dict[str, int] = self.tap["streams"]["project_expenses"]["skipped_reasons"]
        return reasons

    @property
    def expense_posts(self) -> list[dict[str, Any]]:
        return [
            w
            for w in self.moment_writes
            if w["method"] == "POST" and w["path"].endswith("/projectExpenses")
        ]


class ExpensesJob:
    """Runs the expenses job against the module's sandboxes and measures it."""

    def __init__(self, pipelines: Any) -> None:
        self.pipelines = pipelines
        self.fortnox_url = pipelines.fortnox.url
        self.moment = MomentView(pipelines.moment)
        # Measured figures for the report: "<what>" -> seconds or counts.
        self.figures: dict[str, Any] = {}
        # Billable is decided once, when an expense is created (target-moment README): expenses
        # created under a price model changed since keep the flag they were created with.
        self.billable_at_import: dict[str, bool] = {}
        # GivenNumbers of the supplier invoices the tests posted.
        self.posted: set[str] = set()
        # Set once a backfill imported the seed's invoices dated before the window.
        self.backfilled = False

    def books(self) -> list[dict[str, Any]]:
        return list(FortnoxBooks(self.fortnox_url).supplier_invoices())

    def expectation(self, **kwargs: Any) -> Expectation:
        expectation = expected_expenses(self.books(), self.moment.projects(), **kwargs)
        for key, billable in self.billable_at_import.items():
            if key in expectation.expenses:
                expected = expectation.expenses[key]
                expectation.expenses[key] = ExpectedExpense(
                    **{**expected.__dict__, "billable": billable}
                )
        return expectation

    def expected_imported(self) -> dict[str, ExpectedExpense]:
        """What Moment must hold without a backfill: the 30-day window's expenses plus those of
        the invoices the tests posted (late postings are caught whatever their date); after a
        backfill, everything of the last year."""
        if self.backfilled:
            return self.expectation(from_date=days_ago(365)).expenses
        window_from = days_ago(30).isoformat()
        return {
            key: expense
            for key, expense in self.expectation().expenses.items()
            if expense.expense_date >= window_from or key.split("-")[2] in self.posted
        }

    def note(self, what: str, value: Any) -> None:
        self.figures[what] = value
        print(f"[figure] {what}: {value}")

    def run(self, *args: str, **env: str) -> RunResult:
        """``meltano run <args or the job>``; fails the test with Meltano's log if it fails."""
        runs = self.pipelines.results_dir / "runs"
        before = set(runs.glob("*.json")) if runs.exists() else set()
        seq = self.moment.last_request()
        started = time.monotonic()
        result = self.pipelines.run(*(args or (JOB,)), **env)
        seconds = time.monotonic() - started
        new = {p.name for p in set(runs.glob("*.json")) - before}
        assert any("tap-fortnox-expenses" in n for n in new), f"no tap summary in {new}"
        assert any("target-moment" in n for n in new), f"no target summary in {new}"
        return RunResult(
            seconds=seconds,
            tap=self.pipelines.last_summary("tap-fortnox-expenses"),
            target=self.pipelines.last_summary("target-moment"),
            moment_writes=self.moment.writes_since(seq),
            stderr=result.stderr,
        )

    def post_supplier_invoice(
        self,
        invoice_date: date,
        rows: list[tuple[int, float, str]],
        *,
        header_project: str = "",
    ) -> dict[str, Any]:
        """A booked, approved supplier invoice posted now as a Fortnox user would (admin API).

        ``rows`` are cost rows ``(account, amount excl. VAT, row project)``; VAT is 25 %.
        """
        net = sum(Decimal(str(amount)) for _, amount, _ in rows)
        vat = money(net * Decimal("0.25"))
        body = {
            "SupplierInvoice": {
                "SupplierNumber": "1",
                "InvoiceNumber": f"E2E-{len(rows)}-{invoice_date:%y%m%d}",
                "InvoiceDate": invoice_date.isoformat(),
                "Project": header_project,
                "Total": float(net + vat),
                "VAT": float(vat),
                "SupplierInvoiceRows": [
                    {"Account": account, "Debit": amount, "Project": project}
                    for account, amount, project in rows
                ],
            },
        }
        return self._post(body)

    def post_credit_note(
        self, invoice_date: date, rows: list[tuple[int, float, str]]
    ) -> dict[str, Any]:
        """A booked, approved supplier credit invoice: the cost rows ``(account, amount, project)``
        credited (Credit column), input VAT 25 % credited, the payables debited."""
        net = sum(Decimal(str(amount)) for _, amount, _ in rows)
        vat = money(net * Decimal("0.25"))
        body = {
            "SupplierInvoice": {
                "SupplierNumber": "1",
                "InvoiceNumber": f"E2E-CREDIT-{len(self.posted)}",
                "InvoiceDate": invoice_date.isoformat(),
                "SupplierInvoiceRows": [
                    {"Account": 2440, "Code": "TOT", "Debit": float(net + vat)},
                    *(
                        {"Account": account, "Credit": amount, "Project": project}
                        for account, amount, project in rows
                    ),
                    {"Account": 2641, "Code": "VAT", "Credit": float(vat)},
                ],
            },
        }
        return self._post(body)

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Post ``{"SupplierInvoice": ...}`` booked and approved (admin API); remember it."""
        answer = self.pipelines.fortnox.admin(
            "POST", "supplierinvoices", {**body, "booked": True, "approved": True}
        )
        created: dict[str, Any] = answer["SupplierInvoice"]
        self.posted.add(str(created["GivenNumber"]))
        return dict(created)

    def correct_supplier_invoice(
        self, given_number: Any, rows: list[tuple[int, float, str]]
    ) -> dict[str, Any]:
        """A Fortnox user corrects a booked supplier invoice: its cost rows become ``rows``
        (same shape as :meth:`post_supplier_invoice`), totals and VAT follow (admin API)."""
        net = sum(Decimal(str(amount)) for _, amount, _ in rows)
        vat = money(net * Decimal("0.25"))
        body = {
            "SupplierInvoice": {
                "Total": float(net + vat),
                "VAT": float(vat),
                "SupplierInvoiceRows": [
                    {"Account": account, "Debit": amount, "Project": project}
                    for account, amount, project in rows
                ],
            }
        }
        changed: dict[str, Any] = self.pipelines.fortnox.admin(
            "PUT", f"supplierinvoices/{given_number}", body
        )
        return dict(changed["SupplierInvoice"])


def keys_by_account(invoice: Mapping[str, Any]) -> dict[int, str]:
    """Source key per cost-row account of an invoice whose rows have distinct accounts."""
    rows = invoice["SupplierInvoiceRows"]
    return {int(rows[index]["Account"]): key for index, key in row_keys(invoice).items()}


def wait_for(predicate: Any, what: str, timeout: float = 120.0, interval: float = 0.2) -> None:
    """Poll ``predicate`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def days_ago(days: int) -> date:
    return stockholm_today() - timedelta(days=days)


def assert_matches(actual: list[dict[str, Any]], expected: Mapping[str, ExpectedExpense]) -> None:
    """Moment's imported expenses are exactly ``expected``: each reference once, fields equal."""
    duplicates = {ref: n for ref, n in references(actual).items() if n > 1}
    assert not duplicates, f"externalReferences imported more than once: {duplicates}"
    found = {e["externalReference"]: as_expected(e) for e in actual}
    missing = sorted(set(expected) - set(found))
    # A row that left its Fortnox invoice stays in Moment with amount 0 (target-moment README).
    extra = sorted(k for k in set(found) - set(expected) if found[k].amount != 0)
    assert not missing, f"{len(missing)} qualifying Fortnox rows not in Moment: {missing}"
    assert not extra, f"{len(extra)} Moment expenses no Fortnox row qualifies for: {extra}"
    wrong = {key: (found[key], expected[key]) for key in expected if found[key] != expected[key]}
    assert not wrong, f"expenses differing from Fortnox (Moment, expected): {wrong}"


def nonzero(counts: Mapping[str, int]) -> dict[str, int]:
    return {reason: n for reason, n in counts.items() if n}


@dataclass
class FirstRun:
    result: RunResult
    expectation: Expectation


@pytest.fixture(scope="module")
def job(pipelines: Any) -> ExpensesJob:
    """The module's sandboxes after `moment-to-fortnox`: Fortnox knows Moment's projects."""
    pipelines.extra_env.update(FAST_FORTNOX)
    job = ExpensesJob(pipelines)
    started = time.monotonic()
    pipelines.run("moment-to-fortnox")
    job.note("moment-to-fortnox run (s)", round(time.monotonic() - started, 1))
    return job


@pytest.fixture(scope="module")
def first_run(job: ExpensesJob) -> FirstRun:
    """Run 1 of the expenses job on the seeded data: no state, the default 30-day window."""
    assert job.moment.imported_expenses() == [], "Moment holds imported expenses before run 1"
    expectation = job.expectation(from_date=days_ago(30))
    result = job.run()
    job.note("run 1 (s)", round(result.seconds, 1))
    job.note("run 1 created", result.expenses["created"])
    job.note("run 1 tap skipped_reasons", result.tap_skips)
    job.note("run 1 target skipped_reasons", result.expenses["skipped_reasons"])
    return FirstRun(result=result, expectation=expectation)


def test_run_1_imports_every_qualifying_row_and_counts_the_rest(
    job: ExpensesJob, first_run: FirstRun
) -> None:
    expected, result = first_run.expectation, first_run.result
    # The seed must exercise every rule, or the comparison below proves less than it claims.
    assert {UNBOOKED, CANCELLED, NO_PROJECT} <= set(expected.tap_skips)
    assert expected.target_skips[UNKNOWN_PROJECT] > 0
    assert {e.billable for e in expected.expenses.values()} == {True, False}
    assert len(expected.expenses) >= 20

    assert_matches(job.moment.imported_expenses(), expected.expenses)
    assert result.expenses["created"] == len(expected.expenses)
    assert result.expenses["failed"] == 0, result.target["failures"]
    assert result.expenses["updated"] == result.expenses["unchanged"] == 0
    assert nonzero(result.tap_skips) == dict(expected.tap_skips)
    assert result.expenses["skipped"] == expected.target_skips[UNKNOWN_PROJECT]
    assert nonzero(result.expenses["skipped_reasons"]) == dict(expected.target_skips)
    assert len(result.expense_posts) == len(expected.expenses)


def test_runs_2_to_5_on_the_same_data_write_nothing(job: ExpensesJob, first_run: FirstRun) -> None:
    count = len(job.moment.imported_expenses())
    seconds = []
    for run in range(2, 6):
        result = job.run()
        seconds.append(round(result.seconds, 1))
        assert result.moment_writes == [], f"run {run} wrote to Moment: {result.moment_writes}"
        assert result.expenses["created"] == result.expenses["updated"] == 0, result.expenses
        assert result.expenses["failed"] == 0, result.target["failures"]
        assert len(job.moment.imported_expenses()) == count, f"run {run} changed the count"
    job.note("runs 2-5 (s each)", seconds)
    assert_matches(job.moment.imported_expenses(), first_run.expectation.expenses)


def test_account_filter_rows_are_counted_per_reason(job: ExpensesJob, first_run: FirstRun) -> None:
    accounts = Counter(e.account_number for e in first_run.expectation.expenses.values())
    kept = int(accounts.most_common(1)[0][0])
    expected = job.expectation(from_date=days_ago(30), account_numbers=frozenset({kept}))
    assert expected.tap_skips[FILTERED_ACCOUNT] > 0
    before = job.moment.imported_expenses()

    # A lineage of its own (state id suffix), so the filtered read leaves the daily state alone.
    result = job.run(
        "--state-id-suffix",
        "accounts",
        JOB,
        TAP_FORTNOX_EXPENSES_ACCOUNT_NUMBERS=f"[{kept}]",
    )
    job.note(f"account filter [{kept}] tap skipped_reasons", result.tap_skips)
    assert nonzero(result.tap_skips) == dict(expected.tap_skips)
    # The expenses of run 1 that wait for their Moment project are re-driven by every run,
    # whatever its filter: they are the target's, not the tap's.
    waiting = first_run.expectation.target_skips
    assert expected.target_skips[UNKNOWN_PROJECT] <= waiting[UNKNOWN_PROJECT]
    assert nonzero(result.expenses["skipped_reasons"]) == dict(waiting)
    # Every row that passed the filter is already in Moment from run 1: read, compared, kept.
    assert result.expenses["unchanged"] == len(expected.expenses) > 0
    assert result.expenses["created"] == result.expenses["updated"] == 0
    assert result.moment_writes == []
    assert references(job.moment.imported_expenses()) == references(before)


def known_projects(job: ExpensesJob, count: int | None = None) -> list[str]:
    """Moment projects with no price-model setting (billable = the default), in number order;
    the first ``count`` of them, or all."""
    projects = job.moment.projects()
    free = [
        n
        for n, p in sorted(projects.items())
        if (p.get("priceModel") or {}).get("expensesBillable") is None
    ]
    assert len(free) >= (count or 2), f"too few Moment projects without a price model: {free}"
    return free[:count]


def test_late_posting_arrives_in_the_next_run_without_state_reset(
    job: ExpensesJob, first_run: FirstRun
) -> None:
    first, second = known_projects(job, 2)
    invoice = job.post_supplier_invoice(
        days_ago(45), [(4010, 1234.5, first), (5410, 99.75, second)]
    )
    given = invoice["GivenNumber"]
    assert job.pipelines.state(STATE_ID)["singer_state"]["bookmarks"]["project_expenses"]

    result = job.run()
    job.note("late posting run (s)", round(result.seconds, 1))
    expected = {
        k: e
        for k, e in job.expectation().expenses.items()
        if k.startswith(f"{SOURCE_KEY_PREFIX}{given}-")
    }
    assert len(expected) == 2
    imported = [e for e in job.moment.imported_expenses() if e["externalReference"] in expected]
    assert_matches(imported, expected)
    assert {e.expense_date for e in expected.values()} == {days_ago(45).isoformat()}
    assert result.expenses["created"] == 2
    assert len(result.expense_posts) == 2


def test_price_model_billable_false_overrides_the_default_for_its_project_only(
    job: ExpensesJob, first_run: FirstRun
) -> None:
    imported = job.moment.imported_expenses()
    with_expenses = {e["project"]["projectNumber"] for e in imported}
    # The flipped project already has expenses, to show that they are left alone.
    candidates = known_projects(job)
    flipped = next((n for n in candidates if n in with_expenses), None)
    assert flipped is not None, f"no project of {candidates} has imported expenses"
    control = next(n for n in candidates if n != flipped)
    earlier = {
        e["externalReference"]: e["billable"]
        for e in imported
        if e["project"]["projectNumber"] == flipped
    }
    job.pipelines.moment.admin("PUT", f"projects/{flipped}/priceModel", {"expensesBillable": False})
    try:
        invoice = job.post_supplier_invoice(
            days_ago(1), [(6110, 450.0, flipped), (6110, 550.0, control)]
        )
        result = job.run(TARGET_MOMENT_DEFAULT_BILLABLE="true")
    finally:
        job.pipelines.moment.admin(
            "PUT", f"projects/{flipped}/priceModel", {"expensesBillable": None}
        )
    new = {
        e["project"]["projectNumber"]: e
        for e in job.moment.imported_expenses()
        if e["externalReference"].startswith(f"{SOURCE_KEY_PREFIX}{invoice['GivenNumber']}-")
    }
    assert set(new) == {flipped, control}
    assert new[flipped]["billable"] is False, "price model billable=false was not applied"
    assert new[control]["billable"] is True, "default_billable true was not applied"
    job.billable_at_import[new[flipped]["externalReference"]] = False
    # The project's earlier expenses keep the flag they were imported with: nothing re-written.
    after = {
        e["externalReference"]: e["billable"]
        for e in job.moment.imported_expenses()
        if e["externalReference"] in earlier
    }
    assert after == earlier
    assert [w["method"] for w in result.moment_writes] == ["POST", "POST"]
    assert result.expenses["created"] == 2


def clear_state(job: ExpensesJob, state_id: str = STATE_ID) -> None:
    job.pipelines.meltano("state", "clear", "--force", state_id)
    assert job.pipelines.state(state_id).get("singer_state", {}) == {}


def test_state_clear_and_a_year_of_lookback_imports_nothing_twice(
    job: ExpensesJob, first_run: FirstRun
) -> None:
    before = job.moment.imported_expenses()
    clear_state(job)
    result = job.run(TAP_FORTNOX_EXPENSES_LOOKBACK_DAYS="365")
    job.backfilled = True
    job.note("state clear + lookback 365 run (s)", round(result.seconds, 1))
    expected = job.expectation(from_date=days_ago(365))
    # The seed spreads invoices over 60 days: a year reaches all of them, older than the window too.
    assert len(expected.expenses) > len(before)
    assert_matches(job.moment.imported_expenses(), expected.expenses)
    assert result.expenses["created"] == len(expected.expenses) - len(before)
    assert result.expenses["unchanged"] == len(before)
    assert result.expenses["updated"] == result.expenses["failed"] == 0
    assert {w["method"] for w in result.moment_writes} == {"POST"}
    job.note(
        "lookback 365: created / unchanged",
        (result.expenses["created"], result.expenses["unchanged"]),
    )


def test_readme_backfill_commands_create_nothing_twice(
    job: ExpensesJob, first_run: FirstRun
) -> None:
    """The four ways of the README's "Backfills" section (and the tap README's), each run once
    everything is imported: each reads what it should again and creates nothing twice."""
    everything = job.expectation(from_date=days_ago(365)).expenses
    window = {k for k, e in everything.items() if e.expense_date >= days_ago(30).isoformat()}
    older = len(everything) - len(window)
    before = references(job.moment.imported_expenses())
    assert set(before) == set(everything), "run the lookback-365 backfill test first"
    assert older > 0
    from_date = days_ago(400).isoformat()

    def run_and_check(label: str, *args: str, unchanged: int, **env: str) -> None:
        result = job.run(*args, **env)
        job.note(
            f"backfill '{label}' (s, unchanged)",
            (round(result.seconds, 1), result.expenses["unchanged"]),
        )
        assert result.moment_writes == [], f"{label} wrote to Moment: {result.moment_writes}"
        assert result.expenses["created"] == result.expenses["updated"] == 0, result.expenses
        assert result.expenses["failed"] == 0, result.target["failures"]
        # How many expenses the tap sent again: proves the backfill read what it should.
        assert result.expenses["unchanged"] == unchanged, label
        assert references(job.moment.imported_expenses()) == before, label

    # 1. `meltano state clear --force <id>`: the next run reads the whole window again.
    clear_state(job)
    run_and_check("state clear", unchanged=len(window))
    # 2. A wider window for one run: the invoices dated before the window are read again.
    run_and_check("lookback_days 365", unchanged=older, TAP_FORTNOX_EXPENSES_LOOKBACK_DAYS="365")
    # 3. A fixed from-date (after a state clear, so that every invoice is read again).
    clear_state(job)
    run_and_check(
        "start_date", unchanged=len(everything), TAP_FORTNOX_EXPENSES_START_DATE=from_date
    )
    # 4. A lineage of its own: starts with no state, leaves the daily job's bookmark alone.
    daily = job.pipelines.state(STATE_ID)
    run_and_check(
        "start_date + --state-id-suffix backfill",
        "--state-id-suffix",
        "backfill",
        JOB,
        unchanged=len(everything),
        TAP_FORTNOX_EXPENSES_START_DATE=from_date,
    )
    assert job.pipelines.state(f"{STATE_ID}:backfill")["singer_state"]["bookmarks"]
    assert job.pipelines.state(STATE_ID) == daily
    assert_matches(job.moment.imported_expenses(), everything)


LATE_PROJECT = "E2E-LATE-1"


def test_expense_on_a_project_created_in_moment_later_arrives_the_next_run(
    job: ExpensesJob, first_run: FirstRun
) -> None:
    known = known_projects(job, 1)[0]
    assert LATE_PROJECT not in job.moment.projects()
    invoice = job.post_supplier_invoice(
        days_ago(3), [(4010, 321.0, LATE_PROJECT), (5410, 123.0, known)]
    )
    keys = keys_by_account(invoice)

    result = job.run()
    refs = references(job.moment.imported_expenses())
    assert refs[keys[5410]] == 1
    assert keys[4010] not in refs
    assert result.expenses["failed"] == 0, result.target["failures"]  # waiting: no e-mail

    # The project is created in Moment the next day; the invoice itself does not change, so the
    # tap does not send it again: the waiting expense is re-driven by the target.
    customer = job.moment._all("customers")[0]
    answer = job.moment.session.post(
        f"{job.moment.api}/projects",
        json={
            "projectNumber": LATE_PROJECT,
            "name": "Skapat efter kostnaden",
            "customer": {"id": customer["id"]},
            "startDate": days_ago(10).isoformat(),
        },
        timeout=30,
    )
    answer.raise_for_status()
    result = job.run()

    imported = {e["externalReference"]: e for e in job.moment.imported_expenses()}
    assert imported[keys[4010]]["project"]["projectNumber"] == LATE_PROJECT
    assert money(imported[keys[4010]]["amount"]) == money(321.0)
    assert [w["path"] for w in result.expense_posts] == [
        f"/api/1.0/companies/{MOMENT_COMPANY}/projectExpenses"
    ]
    assert result.expenses["created"] == 1
    assert_matches(job.moment.imported_expenses(), job.expected_imported())


def test_credit_note_leaves_the_net_booked_cost_in_moment(
    job: ExpensesJob, first_run: FirstRun
) -> None:
    project = known_projects(job, 1)[0]
    original = job.post_supplier_invoice(
        days_ago(2), [(6110, 800.0, project), (6540, 150.0, project)]
    )
    job.run()
    credit = job.post_credit_note(days_ago(1), [(6110, 800.0, project)])

    result = job.run()

    numbers = {str(original["GivenNumber"]), str(credit["GivenNumber"])}
    mine = [
        e for e in job.moment.imported_expenses() if e["externalReference"].split("-")[2] in numbers
    ]
    net: Counter[str] = Counter()
    for expense in mine:
        net[str(expense["accountNumber"])] += money(expense["amount"])
    assert net == {"6110": Decimal("0.00"), "6540": Decimal("150.00")}
    assert result.expenses["created"] == 1
    assert len(result.expense_posts) == 1
    assert_matches(job.moment.imported_expenses(), job.expected_imported())


def test_changed_supplier_invoice_updates_in_place_and_zeroes_the_removed_row(
    job: ExpensesJob, first_run: FirstRun
) -> None:
    first, second = known_projects(job, 2)
    invoice = job.post_supplier_invoice(
        days_ago(2), [(4010, 1000.0, first), (5410, 400.0, first), (6110, 200.0, second)]
    )
    job.run()
    keys = keys_by_account(invoice)
    before = {e["externalReference"]: e for e in job.moment.imported_expenses()}

    # Corrected in Fortnox: rows re-ordered, 4010's amount changed, 5410 removed, 6540 added.
    job.correct_supplier_invoice(
        invoice["GivenNumber"], [(6110, 200.0, second), (4010, 1100.0, first), (6540, 50.0, second)]
    )
    result = job.run()

    after = {e["externalReference"]: e for e in job.moment.imported_expenses()}
    changed, removed, kept = after[keys[4010]], after[keys[5410]], after[keys[6110]]
    assert changed["id"] == before[keys[4010]]["id"]
    assert money(changed["amount"]) == money(1100.0)
    assert removed["id"] == before[keys[5410]]["id"]
    assert (money(removed["amount"]), money(removed["vatAmount"])) == (0, 0)
    assert kept == before[keys[6110]]  # re-ordered, not rewritten
    assert sorted(w["method"] for w in result.moment_writes) == ["PATCH", "PATCH", "POST"]
    assert (result.expenses["created"], result.expenses["updated"]) == (1, 2)
    assert result.expenses["failed"] == 0, result.target["failures"]
    assert_matches(job.moment.imported_expenses(), job.expected_imported())


def test_invoiced_expenses_are_left_unchanged_and_reported_as_conflicts(
    job: ExpensesJob, first_run: FirstRun
) -> None:
    project = known_projects(job, 1)[0]
    rows = [(4010, 700.0, project), (5410, 70.0, project)]
    invoice = job.post_supplier_invoice(days_ago(2), rows)
    job.run()
    keys = keys_by_account(invoice)
    before = {e["externalReference"]: e for e in job.moment.imported_expenses()}
    for key in keys.values():
        job.pipelines.moment.admin(
            "POST", f"projectExpenses/{before[key]['id']}/invoiced", {"invoiced": True}
        )

    # Fortnox changes the amount of one row and removes the other.
    job.correct_supplier_invoice(invoice["GivenNumber"], [(4010, 750.0, project)])
    result = job.run()

    assert result.moment_writes == []
    after = {e["externalReference"]: e for e in job.moment.imported_expenses()}
    assert {k: money(after[k]["amount"]) for k in keys.values()} == {
        keys[4010]: money(700.0),
        keys[5410]: money(70.0),
    }
    assert result.expenses["conflict"] == 2
    assert result.expenses["failed"] == 0
    conflicts = {c["key"]: c["message"] for c in result.target["conflicts"]}
    assert set(conflicts) == set(keys.values())
    assert "already invoiced" in conflicts[keys[4010]]
    assert "already invoiced" in conflicts[keys[5410]]

    # The correction is undone in Fortnox: Moment equals Fortnox again, nothing is written.
    job.correct_supplier_invoice(invoice["GivenNumber"], rows)
    result = job.run()
    assert result.moment_writes == []
    assert result.expenses["conflict"] == 0
    assert_matches(job.moment.imported_expenses(), job.expected_imported())


def processes_in_group(pgid: int) -> list[int]:
    """Live processes (not zombies) of a process group, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(stat.parent.name))
    return found


def test_interrupted_run_then_rerun_leaves_one_expense_per_row(
    job: ExpensesJob, first_run: FirstRun
) -> None:
    projects = known_projects(job, 3)
    keys: set[str] = set()
    for i in range(6):
        invoice = job.post_supplier_invoice(
            days_ago(2),
            [
                (4010, 100.0 + i, projects[0]),
                (5010, 200.0 + i, projects[1]),
                (6540, 300.0 + i, projects[2]),
            ],
        )
        keys |= set(row_keys(invoice).values())
    moment = job.moment
    seq = moment.last_request()
    # Every expense POST waits 0.5 s, so the run is still writing when it is killed.
    job.pipelines.moment.admin(
        "POST",
        "faults",
        {"kind": "latency", "seconds": 0.5, "method": "POST", "path": "/projectExpenses$"},
    )

    def posted() -> int:
        return sum(
            1
            for r in moment.requests_since(seq)
            if r["method"] == "POST" and r["path"].endswith("/projectExpenses")
        )

    with (job.pipelines.workdir / "interrupted.log").open("w") as log:
        # Its own session, so that one killpg reaches meltano, the tap and the target.
        process = subprocess.Popen(
            [MELTANO, "run", JOB],
            cwd=ROOT,
            env=job.pipelines.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for(lambda: posted() >= 3 or process.poll() is not None, "3 expense POSTs")
            assert process.poll() is None, "the run ended before it could be interrupted"
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
            job.pipelines.moment.admin("DELETE", "faults")
    wait_for(lambda: not processes_in_group(process.pid), "the killed run's processes to exit")
    landed = len([e for e in moment.imported_expenses() if e["externalReference"] in keys])
    job.note("interrupted run: expenses landed before the kill", landed)
    assert 3 <= landed < len(keys), "the kill did not interrupt the run part-way"

    # Meltano still has the killed run marked as running (stale only after 5 minutes without a
    # heartbeat): `--force` starts the next one anyway. This test is the module's last for that
    # reason: every run of the next 5 minutes would need `--force`.
    result = job.run("--force", JOB)
    job.note("re-run after kill -9 (s)", round(result.seconds, 1))
    job.note("re-run after kill -9 created", result.expenses["created"])
    imported = moment.imported_expenses()
    counts = references(imported)
    assert {k: counts[k] for k in keys} == dict.fromkeys(keys, 1)
    assert_matches(imported, job.expected_imported())
