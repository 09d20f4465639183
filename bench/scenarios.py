"""The bench's scenarios (docs/ARCHITECTURE.md, issue 7): ours against the baseline.

Each one sets the sandboxes up, runs the real plugins for our settings and for the baseline, and
returns table rows.

Owns the work each goal is measured on (sizes, which records change, which invoices are new) and
the arithmetic from request logs and run summaries to figures. A :class:`Row` holds one figure: its
goal, our value, the baseline's value and whether ours meets the goal.
"""

from __future__ import annotations

import json
import math
import time
import urllib.request
from base64 import b64encode
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import date
from itertools import cycle, islice
from pathlib import Path
from typing import Any

from bench.harness import (
    BASELINE,
    OURS,
    WINDOW_SECONDS,
    AtOnce,
    Bench,
    Contender,
    RunResult,
    busiest_window,
    overlap_seconds,
    sustained_rate,
    windows_at_the_limit,
)

PAGE = 500
HANDFUL = 5  # "a handful of requests" on top of list pages
MB = 1024 * 1024


@dataclass
class Row:
    """One line of the bench table."""

    scenario: str
    figure: str
    goal: str
    ours: str
    baseline: str
    passed: bool | None  # None: informational, no goal
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _pct(value: float) -> str:
    return f"{value:.1f} %"


# --- 1. first load


FIRST_LOAD = {"customers": 2000, "projects": 500, "invoices": 2223}  # 2,001 finalised invoices
PUSH_CUSTOMERS = range(1001, 1201)  # 200 customers get a new e-mail
PUSH_PROJECTS = range(5001, 5051)  # 50 projects get a new name


@dataclass
class LoadRuns:
    """One contender's runs of the first-load scenario: load, push, again, rerun."""

    load: RunResult
    push: RunResult
    again: RunResult
    rerun: RunResult


def _load_push_again(bench: Bench, contender: Contender) -> LoadRuns:
    """First load on an empty Fortnox, a push of 250 changes, then a run that changes nothing."""
    bench.seed_moment(**FIRST_LOAD)
    bench.seed_fortnox()
    bench.server_limit(on=True)
    results = bench.workdir / f"load-{contender.name}"
    config = bench.fortnox_config(results, contender)
    fails = contender is BASELINE  # a naive plugin may give up: recorded, not fatal
    load = bench.pipeline(f"load-{contender.name}", config, allow_failure=fails)
    # Started at once, while the load's last 5 s of requests are still in Fortnox's window (as a
    # webhook-triggered run right after another would): ours sees them in the shared window.
    rerun = bench.pipeline(
        f"rerun-{contender.name}", config, state=load.state, settle=False, allow_failure=fails
    )
    for number in PUSH_CUSTOMERS:
        email = f"faktura{number}@bench.se"
        bench.moment.admin("PATCH", f"customers/{number}", {"email": email})
    for number in PUSH_PROJECTS:
        bench.moment.admin(
            "PATCH", f"projects/{number}", {"name": f"Bench-projekt {number} ändrat"}
        )
    push = bench.pipeline(f"push-{contender.name}", config, state=load.state, allow_failure=fails)
    # The tap's lookback re-reads the records just changed: all unchanged for Fortnox now.
    again = bench.pipeline(f"again-{contender.name}", config, state=push.state, allow_failure=fails)
    return LoadRuns(load, push, again, rerun)


def baseline_failures(*runs: RunResult) -> str:
    """A note naming the baseline runs that failed (SDK retries on 429 ran out)."""
    failed = [r.error.split(";")[0] for r in runs if r.error]
    return (
        f"; baseline run(s) FAILED, retries on 429 ran out: {', '.join(failed)}" if failed else ""
    )


def first_load_and_push(bench: Bench) -> list[Row]:
    """The first load and push rows: request rate, 429s, wall time, requests per record."""
    runs = {c.name: _load_push_again(bench, c) for c in (OURS, BASELINE)}
    ours, base = runs["ours"], runs["baseline"]
    ceiling = bench.limit / 5.0
    rate = {n: sustained_rate(r.load.requests) / ceiling * 100 for n, r in runs.items()}
    peak = {n: busiest_window(r.load.api_requests) for n, r in runs.items()}
    full, whole = windows_at_the_limit(ours.load.api_requests, bench.limit)
    records = ours.load.summary_total("created")
    rows = [
        Row(
            "first load",
            f"sustained request rate, % of {bench.limit}/5 s",
            "≥ 95 %",
            _pct(rate["ours"]),
            _pct(rate["baseline"]),
            rate["ours"] >= 95.0,
            f"{records} records created; slope of accepted requests over time; busiest 5 s "
            f"window ours {peak['ours']}, baseline {peak['baseline']} (limit {bench.limit}); "
            f"ours held ≥ 95 % of the limit in {full} of {whole} back-to-back 5 s windows "
            "(few: the machine set the pace, not the limiter)",
        ),
        Row(
            "first load",
            "429 received (sandbox log / run summary)",
            "0",
            f"{ours.load.refused} / {ours.load.summary_429s()}",
            f"{base.load.refused} / {base.load.summary_429s()}",
            ours.load.refused == 0 and ours.load.summary_429s() == 0,
        ),
        Row(
            "first load",
            "wall time, s",
            "—",
            f"{ours.load.seconds:.1f}",
            f"{base.load.seconds:.1f}",
            None,
            f"{ours.load.total} requests ours, {base.load.total} baseline (429s included)",
        ),
    ]
    changed = {
        n: r.push.summary_total("updated") + r.push.summary_total("created")
        for n, r in runs.items()
    }
    per_changed = {n: r.push.total / max(1, changed[n]) for n, r in runs.items()}
    rows.append(
        Row(
            "push",
            "Fortnox requests per changed record",
            "≤ 1.05",
            f"{per_changed['ours']:.3f}",
            f"{per_changed['baseline']:.3f}",
            per_changed["ours"] <= 1.05
            and changed["ours"] == len(PUSH_CUSTOMERS) + len(PUSH_PROJECTS),
            f"{changed['ours']} changed records, {ours.push.total} requests "
            f"({ours.push.writes} writes, {ours.push.reads} reads); baseline "
            f"{base.push.total} requests incl. {base.push.refused} × 429",
        )
    )
    unchanged = {n: r.again.summary_total("unchanged") for n, r in runs.items()}
    rows.append(
        Row(
            "push",
            "write requests per unchanged record",
            "0",
            f"{ours.again.writes}/{unchanged['ours']}",
            f"{base.again.writes}/{unchanged['baseline']}",
            ours.again.writes == 0
            and unchanged["ours"] > 0
            and ours.push.writes == changed["ours"],
            f"the run after the push re-reads the {unchanged['ours']} records the tap's lookback "
            f"covers; the push itself wrote {ours.push.writes} times for {changed['ours']} changes",
        )
    )
    rows.append(
        Row(
            "back to back",
            "429 received by a run started right after the load",
            "—",
            f"{ours.rerun.refused} of {ours.rerun.total}",
            f"{base.rerun.refused} of {base.rerun.total}",
            None,
            "ours: the window shared between processes (fortnox-client) shows the new process "
            "the load's requests still in Fortnox's 5 s window, so it waits for them; the "
            "baseline has its limiter off (a 429 is retried, nothing lost; see README)",
        )
    )
    return rows + failed_baseline_row(
        "first load / push", base.load, base.rerun, base.push, base.again
    )


def failed_baseline_row(scenario: str, *runs: RunResult) -> list[Row]:
    """One row when baseline runs failed (its figures then cover a run that stopped early)."""
    failed = [r for r in runs if r.error]
    if not failed:
        return []
    return [
        Row(
            scenario,
            "baseline runs that failed",
            "—",
            "0",
            f"{len(failed)} of {len(runs)}",
            None,
            baseline_failures(*runs).lstrip("; "),
        )
    ]


# --- 2. no-change run over 10,000 customers


NO_CHANGE_CUSTOMERS = 10_000


def no_change_10k(bench: Bench) -> list[Row]:
    """The no-change rows: what a run costs when none of 10,000 customers changed."""
    bench.seed_moment(customers=NO_CHANGE_CUSTOMERS)
    bench.seed_fortnox()
    bench.server_limit(on=False)
    results = bench.workdir / "nochange"
    setup = bench.pipeline("nochange-setup", bench.fortnox_config(results, OURS, limiter=False))
    assert setup.summary_total("created") == NO_CHANGE_CUSTOMERS, setup.summary
    bench.server_limit(on=True)
    runs = {
        c.name: bench.pipeline(
            f"nochange-{c.name}", bench.fortnox_config(results, c), allow_failure=c is BASELINE
        )
        for c in (OURS, BASELINE)
    }
    pages = math.ceil(NO_CHANGE_CUSTOMERS / PAGE)
    ours = runs["ours"]
    unchanged = ours.summary_total("unchanged")
    return [
        Row(
            "no change, 10,000 customers",
            "Fortnox requests",
            f"≤ {pages} list pages + {HANDFUL}",
            f"{ours.total}",
            f"{runs['baseline'].total}",
            ours.total <= pages + HANDFUL and ours.writes == 0 and unchanged == NO_CHANGE_CUSTOMERS,
            f"{unchanged} unchanged, {ours.writes} writes, "
            f"{ours.count('GET', '/3/customers', single=False)} list requests (probe included), "
            f"{ours.count('GET', '/3/customers', single=True)} single GETs; set-up load "
            f"{setup.seconds:.0f} s with limits off",
        ),
        *failed_baseline_row("no change, 10,000 customers", runs["baseline"]),
    ]


# --- 3. daily expenses run


SUPPLIER_INVOICES = 10_000  # spread over 60 days: about 5,000 in the 30-day window
NEW_INVOICES = 50


def _new_supplier_invoice(bench: Bench, index: int) -> None:
    amount = 1000 + index
    vat = amount // 4
    body = {
        "SupplierInvoice": {
            "SupplierNumber": "1",
            "InvoiceNumber": f"BENCH-{index}",
            "InvoiceDate": date.today().isoformat(),
            "Project": "5001",
            "SupplierInvoiceRows": [
                {"Account": 2440, "Code": "TOT", "Credit": amount + vat},
                {"Account": 4010, "Debit": amount, "TransactionInformation": "Bench-leverans"},
                {"Account": 2641, "Code": "VAT", "Debit": vat},
            ],
        },
        "booked": True,
        "approved": True,
    }
    bench.fortnox.admin("POST", "supplierinvoices", body)


def daily_expenses(bench: Bench) -> list[Row]:
    """The expenses rows: the first run without state, then a day's new supplier invoices."""
    bench.seed_fortnox(supplierinvoices=SUPPLIER_INVOICES, moment_projects=50)
    bench.server_limit(on=False)
    results = bench.workdir / "expenses"
    day1 = bench.expenses_tap("expenses-day1", bench.fortnox_config(results, OURS, limiter=False))
    for index in range(NEW_INVOICES):
        _new_supplier_invoice(bench, index)
    bench.server_limit(on=True)
    runs = {
        c.name: bench.expenses_tap(
            f"expenses-day2-{c.name}",
            bench.fortnox_config(results, c),
            day1.state,
            allow_failure=c is BASELINE,
        )
        for c in (OURS, BASELINE)
    }
    ours = runs["ours"]
    details = ours.count("GET", "/3/supplierinvoices", single=True)
    lists = ours.count("GET", "/3/supplierinvoices", single=False)
    projects = ours.count("GET", "/3/projects")
    # New to the tap: the 50 new invoices, plus late postings older than the window that the
    # first run (no state, so no "modified since" list) could not see.
    unread = set(_fingerprints(ours.state)) - set(_fingerprints(day1.state))
    day1_details = day1.count("GET", "/3/supplierinvoices", single=True)
    return [
        Row(
            "expenses day 1",
            "Fortnox requests (first run, no state)",
            "—",
            f"{day1.total}",
            "—",
            None,
            f"{len(_fingerprints(day1.state))} invoices in the 30-day window of "
            f"{SUPPLIER_INVOICES}: {day1.total - day1_details} list pages + {day1_details} "
            f"detail reads (set-up, limits off, {day1.seconds:.0f} s)",
        ),
        Row(
            "expenses day 2",
            f"Fortnox requests with {NEW_INVOICES} new invoices",
            f"list pages + {NEW_INVOICES} details",
            f"{lists + projects} + {details}",
            f"{runs['baseline'].total - details} + {details}",
            details == len(unread)
            and details <= NEW_INVOICES + HANDFUL
            and ours.total == lists + details + projects,
            f"{lists} supplier-invoice list pages (window and modified-since lists) + "
            f"{projects} project list page(s) + {details} detail reads; "
            f"{details - NEW_INVOICES} of the reads are late postings (dated before the window, "
            f"posted later) the first run could not see; {ours.records_out} records out",
        ),
        *failed_baseline_row("expenses day 2", runs["baseline"]),
    ]


def _fingerprints(state: dict[str, Any]) -> dict[str, str]:
    bookmarks = state.get("bookmarks", {}).get("project_expenses", {})
    found: dict[str, str] = bookmarks.get("invoice_fingerprints", {})
    return found


# --- 4. a push and the expenses job at once


# Both jobs on one client and tenant at the same moment (the daily expenses job starting while a
# push runs). Sized so that together they need ~4 windows' budget and run side by side for ~3
# windows (at 200 per 5 s): a push of 400 changed customers (~400 PUTs) and an expenses read without
# state (~420 invoices in the 30-day window, one detail read each).
AT_ONCE_CUSTOMERS = 500
AT_ONCE_CHANGED = range(1001, 1401)  # 400 customers get a new e-mail, per contender
AT_ONCE_SUPPLIER_INVOICES = 800
# Each process's resources, to split the shared request log (same client and tenant for both).
PUSH_PATHS = ("/3/customers",)
EXPENSES_PATHS = ("/3/supplierinvoices", "/3/projects")


def _push_and_expenses(bench: Bench, contender: Contender, state: dict[str, Any]) -> AtOnce:
    """Change customers in Moment, then start the push and the expenses read at one moment."""
    for number in AT_ONCE_CHANGED:
        email = f"{contender.name}{number}@bench.se"
        bench.moment.admin("PATCH", f"customers/{number}", {"email": email})
    results = bench.workdir / f"atonce-{contender.name}"
    config = bench.fortnox_config(results, contender)
    push, expenses = f"atonce-push-{contender.name}", f"atonce-expenses-{contender.name}"
    return bench.at_once(
        f"atonce-{contender.name}",
        lambda: bench.pipeline(
            push, config, state=state, settle=False, paths=PUSH_PATHS, allow_failure=True
        ),
        lambda: bench.expenses_tap(
            expenses, config, settle=False, paths=EXPENSES_PATHS, allow_failure=True
        ),
    )


def at_once(bench: Bench) -> list[Row]:
    """The at-once rows: a push and the expenses job started together, sharing the limit."""
    bench.seed_fortnox(supplierinvoices=AT_ONCE_SUPPLIER_INVOICES, moment_projects=50)
    bench.seed_moment(customers=AT_ONCE_CUSTOMERS)
    bench.server_limit(on=False)
    setup = bench.pipeline(
        "atonce-setup", bench.fortnox_config(bench.workdir / "atonce", OURS, limiter=False)
    )
    assert setup.summary_total("created") == AT_ONCE_CUSTOMERS, setup.summary
    bench.server_limit(on=True)
    runs = {c.name: _push_and_expenses(bench, c, setup.state) for c in (OURS, BASELINE)}
    return at_once_rows(runs["ours"], runs["baseline"], bench.limit)


@dataclass
class AtOnceFigures:
    """What the request log says about a push and an expenses read started together."""

    push: int  # requests of each (429s included)
    expenses: int
    push_refused: int  # 429s of each
    expenses_refused: int
    total: int  # every request of the period, whoever made it
    refused: int
    overlap: float  # seconds during which both were sending
    busiest: int  # most accepted requests in any 5 s
    summary_429s: int  # as the two run summaries count them
    succeeded: int  # runs that exited 0
    runs: int

    @classmethod
    def of(cls, run: AtOnce) -> AtOnceFigures:
        push, expenses = run.runs
        return cls(
            push=push.total,
            expenses=expenses.total,
            push_refused=push.refused,
            expenses_refused=expenses.refused,
            total=run.period.total,
            refused=run.period.refused,
            overlap=overlap_seconds(push.api_requests, expenses.api_requests),
            busiest=busiest_window(run.period.api_requests),
            summary_429s=push.summary_429s() + expenses.summary_429s(),
            succeeded=run.succeeded,
            runs=len(run.runs),
        )

    def proves(self, limit: int) -> bool:
        """Whether the runs could have met 429s.

        They must run side by side for at least one window, need at least 1.5 windows' budget
        between them, and every request of the period must be attributed.
        """
        return (
            self.total >= 1.5 * limit
            and self.overlap >= WINDOW_SECONDS
            and self.push + self.expenses == self.total
        )

    def meets_goal(self, limit: int) -> bool:
        """Ours: no 429, both runs succeeded, on a load that proves it."""
        return self.refused == 0 and self.succeeded == self.runs and self.proves(limit)

    def cell(self) -> str:
        return f"{self.push_refused} + {self.expenses_refused}, {self.succeeded} of {self.runs} ok"

    def evidence(self, limit: int) -> str:
        return (
            f"{self.push} + {self.expenses} requests (push + expenses), {self.overlap:.1f} s "
            f"overlap, busiest 5 s window {self.busiest} of {limit}, 429s in the run summaries "
            f"{self.summary_429s}"
        )


def at_once_rows(ours: AtOnce, base: AtOnce, limit: int) -> list[Row]:
    """429s while both ran (ours: none and both runs ok), with the evidence.

    The evidence that the figure means something: the overlap, the requests of each and the
    busiest window against the limit.
    """
    mine, theirs = AtOnceFigures.of(ours), AtOnceFigures.of(base)
    caveat = (
        ""
        if mine.proves(limit)
        else f"; PROVES NOTHING: needs ≥ {1.5 * limit:.0f} requests, ≥ {WINDOW_SECONDS:.0f} s "
        "overlap and every request attributed to one of the runs"
    )

    def wall(run: AtOnce) -> str:
        push, expenses = run.runs
        return f"{push.seconds:.1f} / {expenses.seconds:.1f} / {run.period.seconds:.1f}"

    return [
        Row(
            "at once",
            "429 received by a push and the expenses job started together",
            "0 + 0, both ok",
            mine.cell(),
            theirs.cell(),
            mine.meets_goal(limit),
            f"push of {len(AT_ONCE_CHANGED)} changed customers (tap-moment | target-fortnox) and "
            f"tap-fortnox-expenses without state ({AT_ONCE_SUPPLIER_INVOICES} supplier invoices "
            f"over 60 days) started at one moment, one client and tenant, limit {limit}/5 s; "
            f"ours {mine.evidence(limit)}, {mine.total / limit:.1f} × the limit in all; baseline "
            f"{theirs.evidence(limit)}{caveat}{baseline_failures(*base.runs)}",
        ),
        Row(
            "at once",
            "wall time, s (push / expenses / both)",
            "—",
            wall(ours),
            wall(base),
            None,
            f"requests incl. 429s: ours {mine.total}, baseline {theirs.total}",
        ),
    ]


# --- 5. tap-moment memory


def tap_memory(bench: Bench) -> tuple[list[Row], list[dict[str, Any]]]:
    """The tap-moment memory rows: peak RSS streaming 10,000 and 100,000 customers."""
    peaks: dict[int, tuple[int, float, int]] = {}
    for size in (10_000, 100_000):
        bench.seed_moment(customers=size)
        peaks[size] = bench.tap_moment_rss(f"rss-{size}", bench.moment_config())
    small, big = peaks[10_000], peaks[100_000]
    growth = big[0] / small[0] - 1
    rows = [
        Row(
            "tap-moment memory",
            "peak RSS streaming 100,000 records",
            "< 200 MB",
            f"{big[0] / MB:.0f} MB",
            "—",
            big[0] < 200 * MB and big[2] == 100_000,
            f"{big[2]} records in {big[1]:.1f} s ({big[2] / big[1]:.0f} records/s)",
        ),
        Row(
            "tap-moment memory",
            "peak RSS 100,000 vs 10,000 records",
            "within 20 %",
            f"{growth * 100:+.1f} %",
            "—",
            abs(growth) <= 0.20,
            f"10,000: {small[0] / MB:.0f} MB; 100,000: {big[0] / MB:.0f} MB",
        ),
    ]
    return rows, moment_customers(bench, 10_000)


def moment_customers(bench: Bench, count: int) -> list[dict[str, Any]]:
    """Real Moment customer records (what tap-moment emits) for the in-process CPU bench."""
    auth = "Basic " + b64encode(b"apikey:sandbox-key").decode()
    found: list[dict[str, Any]] = []
    for page in range(math.ceil(count / PAGE)):
        url = f"{bench.moment.url}/api/1.0/companies/demo/customers?size={PAGE}&page={page}"
        request = urllib.request.Request(url, headers={"Authorization": auth})
        with urllib.request.urlopen(request, timeout=60) as response:
            found += json.loads(response.read())["content"]
    return found


# --- 6. mapping and diffing CPU cost


CPU_RECORDS = 100_000
# The baseline validates like a straightforward target: ``jsonschema.validate`` per record (what
# target-fortnox did before the bench), which re-checks the schema each time; fewer records keep
# it short, the rate is per record either way.
CPU_BASELINE_RECORDS = 2_000


def mapping_cpu(customers: list[dict[str, Any]]) -> list[Row]:
    """target-fortnox's per-record work without the network, in this process, on 100k records."""
    import jsonschema
    from target_fortnox.mapping import CUSTOMER_FIELDS, changed_fields, fingerprint, map_customer
    from target_fortnox.sinks import contract_schema, jsonable_record, validate_contract

    listed = [f for f in CUSTOMER_FIELDS if f != "CountryCode"]  # what a Fortnox list row carries

    def records(count: int) -> Iterator[dict[str, Any]]:
        for index, record in enumerate(islice(cycle(customers), count)):
            yield {**record, "customerNumber": str(100_000 + index)}

    def per_cpu_second(count: int, validate: Callable[[dict[str, Any]], None]) -> float:
        started = time.process_time()
        for record in records(count):
            # The sink's path: plain JSON, contract check, mapping, diff against the list row,
            # fingerprint for the ledger. Every other record differs in one listed field.
            plain = jsonable_record(record)
            validate(plain)
            item = map_customer(plain)
            row = {name: item.payload.get(name) for name in listed}
            if int(item.key) % 2:
                row["Email"] = "old@example.se"
            changed_fields(item.payload, row, listed)
            fingerprint(item.payload)
        return count / (time.process_time() - started)

    schema = contract_schema("customers")
    ours = per_cpu_second(CPU_RECORDS, lambda plain: validate_contract("customers", plain))
    base = per_cpu_second(CPU_BASELINE_RECORDS, lambda plain: jsonschema.validate(plain, schema))
    return [
        Row(
            "target-fortnox CPU",
            "customers validated + mapped + diffed per CPU second",
            "—",
            f"{ours:,.0f} /s",
            f"{base:,.0f} /s",
            None,
            f"in process, no network: {CPU_RECORDS:,} records ours ({1e6 / ours:.0f} µs each), "
            f"{CPU_BASELINE_RECORDS:,} baseline (jsonschema.validate per record)",
        )
    ]


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False))
