"""Reliability fixtures: the oracle that says what must be in each destination, background runs
that can be killed, and the figures file the reliability report is built from.

The lead's `tests/conftest.py` gives each module its `pipelines` (fresh sandboxes, own state
backend, token store and results dir). This file adds what the "nothing lost, nothing duplicated"
checks need on top of it, without touching those fixtures:

- `Oracle`: reads both systems independently of the plugins (Fortnox through a client-credentials
  token in its own store, so it never touches the pipelines' refresh-token chain; Moment through
  the sandbox's admin list) and asserts the invariants after a scenario.
- `BackgroundRun`: a `meltano run` in its own process group, so a test can kill -9 the whole run
  (meltano, tap and target) the way a crashed container or an OOM kill does.
- `Figures`: what each scenario ran and measured, merged into `output/reliability/figures.json`;
  `scripts/reliability_report.py` renders `docs/RELIABILITY.md` from it.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from filelock import FileLock
from fortnox_client import FortnoxClient, FortnoxSettings
from tap_fortnox_expenses.expenses import project_expense_rows

ROOT = Path(__file__).resolve().parents[2]
MELTANO = str(Path(sys.executable).parent / "meltano")
FIGURES = ROOT / "output" / "reliability" / "figures.json"
MOMENT_TO_FORTNOX = "dev:tap-moment-to-target-fortnox"
EXPENSES_TO_MOMENT = "dev:tap-fortnox-expenses-to-target-moment"
SANDBOX_CLIENT = ("sandbox-client", "sandbox-secret")
SANDBOX_TENANT = "1234567"
# Fortnox resource -> (Moment entity, Moment number field, Fortnox number field)
MIRRORED = {
    "customers": ("customers", "customerNumber", "CustomerNumber"),
    "projects": ("projects", "projectNumber", "ProjectNumber"),
    "invoices": ("invoices", "invoiceNumber", "DocumentNumber"),
}


# --- figures ---------------------------------------------------------------------------------
class Figures:
    """Scenario rows per section, merged into figures.json under a lock (xdist-safe)."""

    def __init__(self, path: Path = FIGURES) -> None:
        self.path = path
        self.last_row_at: float | None = None  # time.monotonic() of the newest row

    def add(self, section: str, scenario: str, **data: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock"):
            current: dict[str, Any] = (
                json.loads(self.path.read_text()) if self.path.exists() else {"sections": {}}
            )
            rows = current["sections"].setdefault(section, {})
            rows[scenario] = {**data, "recorded_at": datetime.now().isoformat(timespec="seconds")}
            self.last_row_at = time.monotonic()
            self._write(current)

    def start_session(self, session_id: str) -> None:
        """Start the file afresh unless another worker of this same session already did (the
        xdist workers of one `make test` share ``session_id``, xdist's test-run id)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock"):
            current = json.loads(self.path.read_text()) if self.path.exists() else {}
            if current.get("session") != session_id:
                self._write({"session": session_id, "sections": {}})

    def stamp_run(self, *, failed: bool, **run: Any) -> None:
        """Mark the file as one complete, green run of the whole suite (read by the report).

        Each worker that ran reliability tests stamps its part: the earliest start, the longest
        span; a worker with a failed test removes the stamp for good (``failed``)."""
        with FileLock(str(self.path) + ".lock"):
            current = json.loads(self.path.read_text()) if self.path.exists() else {}
            if failed or current.get("failed"):
                current.pop("run", None)
                current["failed"] = True
            else:
                earlier = current.get("run") or {}
                current["run"] = {
                    "started_at": min(run["started_at"], earlier.get("started_at", "9999")),
                    "seconds": max(run["seconds"], earlier.get("seconds", 0)),
                    "modules": sorted(RELIABILITY_MODULES),
                }
            self._write(current)

    def _write(self, current: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(current, indent=2, sort_keys=True, ensure_ascii=False))
        os.replace(tmp, self.path)


RELIABILITY_MODULES = frozenset(p.name for p in Path(__file__).parent.glob("test_*.py"))


@pytest.fixture(scope="session", autouse=True)
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    """The figures file; a session that runs every reliability module starts it afresh and
    stamps it with the run's duration, so the report always comes from one full run (autouse:
    the clock starts before the first module's fixtures). Under pytest-xdist the modules run on
    several workers of one session: they share the file through xdist's test-run id."""
    collected = {Path(str(item.path)).name for item in request.session.items}
    full_run = RELIABILITY_MODULES.issubset(collected)
    worker = getattr(request.config, "workerinput", None)
    session_id = worker["testrunuid"] if worker else f"pid-{os.getpid()}-{time.time()}"
    fig = Figures()
    if full_run:
        fig.start_session(session_id)
    started, wall = time.monotonic(), datetime.now().isoformat(timespec="seconds")
    yield fig
    if full_run and fig.last_row_at is not None:
        # Up to the last reliability row: in `make test` other folders' tests run in the session.
        fig.stamp_run(
            failed=bool(request.session.testsfailed),
            started_at=wall,
            seconds=round(fig.last_row_at - started, 1),
        )


# --- the oracle ------------------------------------------------------------------------------
def moment_records(pipelines: Any, entity: str, **params: str) -> list[dict[str, Any]]:
    """Every record of a Moment entity, read through the sandbox's admin list (all pages)."""
    records: list[dict[str, Any]] = []
    page = 0
    while True:
        query = "&".join([f"page={page}", "size=500", *(f"{k}={v}" for k, v in params.items())])
        body = pipelines.moment.admin("GET", f"{entity}?{query}")
        records += body["content"]
        page += 1
        if page >= body["page"]["totalPages"]:
            return records


def _parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def read_state(pipelines: Any, state_id: str) -> dict[str, Any]:
    """The singer state Meltano would hand the next run, read straight from the file backend.

    Faster than `meltano state get` (seconds per call under load), and it sees partial state of a
    killed run the same way Meltano merges it (partial over completed).
    """
    for path in (pipelines.workdir / "state").rglob("state.json"):
        try:
            decoded = base64.b64decode(path.parent.name).decode()
        except (ValueError, UnicodeDecodeError):
            decoded = path.parent.name
        if decoded != state_id and path.parent.name != state_id:
            continue
        stored = json.loads(path.read_text() or "{}")
        merged = dict(stored.get("completed", {}).get("singer_state") or {})
        partial = stored.get("partial", {}).get("singer_state") or {}
        bookmarks = {**merged.get("bookmarks", {}), **partial.get("bookmarks", {})}
        return {"bookmarks": bookmarks}
    return {"bookmarks": {}}


@dataclass
class Oracle:
    """Reads both systems without the plugins and asserts "nothing lost, nothing duplicated"."""

    pipelines: Any
    fortnox: FortnoxClient

    # Fortnox ⇐ Moment -------------------------------------------------------------------------
    def moment_numbers(self, resource: str) -> dict[str, dict[str, Any]]:
        entity, number_field, _ = MIRRORED[resource]
        params = {"invoiceState": "FINALIZED"} if resource == "invoices" else {}
        rows = moment_records(self.pipelines, entity, **params)
        return {str(r[number_field]): r for r in rows if r.get(number_field) is not None}

    def fortnox_numbers(self, resource: str) -> list[str]:
        _, _, number_field = MIRRORED[resource]
        return [str(r[number_field]) for r in self.fortnox.list(resource)]

    def assert_fortnox_mirrors_moment(self) -> dict[str, int]:
        """Customers, projects and invoices in Fortnox are exactly Moment's, each once."""
        sizes: dict[str, int] = {}
        for resource in MIRRORED:
            expected = set(self.moment_numbers(resource))
            listed = self.fortnox_numbers(resource)
            twice = [n for n, c in Counter(listed).items() if c > 1]
            assert not twice, f"{resource} in Fortnox more than once: {twice}"
            # Fortnox-only seed rows (projects 9001/9002) are not Moment's; ignore numbers Moment
            # never had only when they are those seeded ones.
            extra = set(listed) - expected - {"9001", "9002"}
            missing = expected - set(listed)
            assert not missing, f"{resource} missing in Fortnox: {sorted(missing)[:20]}"
            assert not extra, f"{resource} in Fortnox that Moment does not have: {sorted(extra)}"
            sizes[resource] = len(expected)
        return sizes

    def assert_bookmarks_not_past_unwritten(self) -> dict[str, str]:
        """Every Moment record at or before the stored bookmark of its stream is in Fortnox."""
        bookmarks = read_state(self.pipelines, MOMENT_TO_FORTNOX)["bookmarks"]
        seen: dict[str, str] = {}
        for resource in MIRRORED:
            value = (bookmarks.get(resource) or {}).get("replication_key_value")
            if not value:
                continue
            seen[resource] = value
            bookmark = _parse_ts(value)
            behind = {
                number
                for number, row in self.moment_numbers(resource).items()
                if _parse_ts(row["lastModifiedDate"]) <= bookmark
            }
            missing = behind - set(self.fortnox_numbers(resource))
            assert not missing, (
                f"bookmark of {resource} ({value}) is past records not in Fortnox: "
                f"{sorted(missing)[:20]}"
            )
        return seen

    # Moment ⇐ Fortnox -------------------------------------------------------------------------
    def expense_refs(self) -> Counter[str]:
        """externalReference of every imported expense in Moment, with how often it occurs."""
        rows = moment_records(self.pipelines, "projectExpenses")
        return Counter(r["externalReference"] for r in rows if r.get("externalReference"))

    def assert_expenses_once(self) -> set[str]:
        refs = self.expense_refs()
        twice = [ref for ref, n in refs.items() if n > 1]
        assert not twice, f"expenses imported more than once: {twice}"
        return set(refs)


@pytest.fixture(scope="module")
def oracle(pipelines: Any) -> Oracle:
    settings = FortnoxSettings.from_config(
        {
            "client_id": SANDBOX_CLIENT[0],
            "client_secret": SANDBOX_CLIENT[1],
            "api_url": f"{pipelines.fortnox.url}/3",
            "token_url": f"{pipelines.fortnox.url}/oauth-v1/token",
            # A service-account token in a store of its own: the pipelines' chain stays theirs.
            "tenant_id": SANDBOX_TENANT,
            "token_store_path": str(pipelines.workdir / "oracle-token.json"),
            "max_requests_per_5s": 0,
        }
    )
    return Oracle(pipelines, FortnoxClient(settings))


# --- data that gives a run something to write -----------------------------------------------
@dataclass
class MomentChanges:
    """New and changed Moment records, numbered from a counter so every batch is distinct."""

    pipelines: Any
    counter: int = 0

    def add(self, customers: int = 2, projects: int = 1, invoices: int = 1) -> list[str]:
        numbers: list[str] = []
        for _ in range(customers):
            self.counter += 1
            number = str(8000 + self.counter)
            self.pipelines.moment.admin(
                "POST",
                "customers",
                {
                    "customerNumber": number,
                    "name": f"Tillförlitlighet {number} AB",
                    "email": f"kund{number}@example.se",
                    "countryCode": "SE",
                    "city": "Örebro",
                    "postalCode": "702 10",
                },
            )
            numbers.append(number)
        for i in range(projects):
            self.pipelines.moment.admin(
                "POST",
                "projects",
                {
                    "projectNumber": f"R-{self.counter}-{i}",
                    "name": f"Återställning {self.counter}-{i}",
                    "customer": {"customerNumber": numbers[-1] if numbers else "1001"},
                    "startDate": date.today().isoformat(),
                    "projectState": "ONGOING",
                },
            )
        for _ in range(invoices):
            self.pipelines.moment.admin(
                "POST",
                "invoices",
                {
                    "customer": {"customerNumber": numbers[-1] if numbers else "1001"},
                    "invoiceLines": [
                        {
                            "description": "Konsulttimmar",
                            "quantity": 3,
                            "unitPrice": 1250,
                            "vatRate": 25,
                            "accountNumber": "3001",
                        }
                    ],
                    "finalize": True,
                },
            )
        return numbers


@pytest.fixture(scope="module")
def moment_changes(pipelines: Any) -> MomentChanges:
    return MomentChanges(pipelines)


_SUPPLIER_INVOICE_SERIAL = itertools.count(1)


def post_supplier_invoice(
    pipelines: Any, project: str, amount: int, text: str = "Resa"
) -> tuple[str, str]:
    """A booked, approved supplier invoice with one cost row on `project`; (GivenNumber, key)."""
    vat = amount // 4
    # Fortnox refuses a supplier's invoice number twice: a serial keeps equal amounts apart.
    serial = next(_SUPPLIER_INVOICE_SERIAL)
    body = {
        "SupplierInvoice": {
            "SupplierNumber": "1",
            "InvoiceNumber": f"REL-{serial}-{amount}",
            "InvoiceDate": date.today().isoformat(),
            "Project": project,
            "SupplierInvoiceRows": [
                {"Account": 2440, "Code": "TOT", "Credit": amount + vat},
                {"Account": 4010, "Debit": amount, "TransactionInformation": text},
                {"Account": 2641, "Code": "VAT", "Debit": vat},
            ],
        },
        "booked": True,
        "approved": True,
    }
    invoice = pipelines.fortnox.admin("POST", "supplierinvoices", body)["SupplierInvoice"]
    given = str(invoice["GivenNumber"])
    # The cost row's key, derived from its content as the tap does (tap README, "Row keys").
    (outcome,) = project_expense_rows(invoice)
    return given, outcome.source_key


# --- runs that can be killed -----------------------------------------------------------------
@dataclass
class BackgroundRun:
    """`meltano run <jobs>` in its own session (process group), output captured to files."""

    pipelines: Any
    jobs: tuple[str, ...]
    overrides: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    log_dir: Path | None = None

    def start(self, name: str) -> BackgroundRun:
        self.log_dir = self.pipelines.workdir / "logs"
        self.log_dir.mkdir(exist_ok=True)
        self._out = open(self.log_dir / f"{name}.out", "wb")  # noqa: SIM115
        self._err = open(self.log_dir / f"{name}.err", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [MELTANO, "run", *self.jobs],
            cwd=ROOT,
            env=self.pipelines.env(**self.overrides),
            stdout=self._out,
            stderr=self._err,
            start_new_session=True,
        )
        return self

    def kill9(self) -> None:
        """SIGKILL to meltano, the tap and the target at once: nothing gets to clean up."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        self._close()

    def wait(self, timeout: float = 300) -> int:
        assert self.process is not None
        try:
            code = self.process.wait(timeout)
        finally:
            self._close()
        return code

    def _close(self) -> None:
        self._out.close()
        self._err.close()

    @property
    def stderr(self) -> str:
        assert self.log_dir is not None
        return (self.log_dir / Path(self._err.name).name).read_text(errors="replace")


def wait_for(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    """Poll `predicate` until it is truthy or `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@dataclass
class Kit:
    """Everything a reliability test module uses, as one fixture (test files cannot import)."""

    pipelines: Any
    oracle: Oracle
    changes: MomentChanges
    figures: Figures

    def background(self, *jobs: str, **overrides: str) -> BackgroundRun:
        return BackgroundRun(self.pipelines, jobs, overrides)

    def state(self, state_id: str) -> dict[str, Any]:
        return read_state(self.pipelines, state_id)

    def post_supplier_invoice(
        self, project: str, amount: int, text: str = "Resa"
    ) -> tuple[str, str]:
        return post_supplier_invoice(self.pipelines, project, amount, text)

    def fault(self, sandbox: str, **body: Any) -> dict[str, Any]:
        target = self.pipelines.fortnox if sandbox == "fortnox" else self.pipelines.moment
        return target.admin("POST", "faults", body)  # type: ignore[no-any-return]

    def log_mark(self) -> dict[str, int]:
        """Where both sandboxes' request logs are now, for ``injected_since``."""
        return {
            "fortnox": int(self.pipelines.fortnox.admin("GET", "requests?since=999999999")["last"]),
            "moment": int(self.pipelines.moment.admin("GET", "requests?since=999999999")["last"]),
        }

    def injected_since(self, mark: dict[str, int]) -> int:
        """Answers the sandboxes faulted since ``mark`` (injected status, dropped, dropped after
        commit), as their request logs note them: the faults a scenario really injected."""
        total = 0
        for name, sandbox in (
            ("fortnox", self.pipelines.fortnox),
            ("moment", self.pipelines.moment),
        ):
            log = sandbox.admin("GET", f"requests?since={mark[name]}")["requests"]
            total += sum(1 for r in log if r.get("note"))
        return total

    def clear_faults(self) -> None:
        self.pipelines.fortnox.admin("DELETE", "faults")
        self.pipelines.moment.admin("DELETE", "faults")

    def summaries(self, plugin: str) -> list[dict[str, Any]]:
        files = sorted((self.pipelines.results_dir / "runs").glob(f"*{plugin}*.json"))
        return [json.loads(f.read_text()) for f in files]

    def dead_letters(self, plugin: str) -> list[dict[str, Any]]:
        path = self.pipelines.dead_letters_file(plugin)
        if not path.exists():
            return []
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [m for m in lines if m.get("type") == "RECORD"]

    @staticmethod
    def wait_for(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
        return wait_for(predicate, timeout, interval)

    def spend_refresh_token(self) -> None:
        """Another process rotates the chain: the refresh token in the store is used once (the
        new pair thrown away) and every access token is expired, so the next run must refresh
        with a spent token."""
        grant = json.loads(self.pipelines.token_store.read_text())["refresh_token_grant"]
        auth = base64.b64encode(f"{SANDBOX_CLIENT[0]}:{SANDBOX_CLIENT[1]}".encode()).decode()
        request = urllib.request.Request(
            f"{self.pipelines.fortnox.url}/oauth-v1/token",
            data=f"grant_type=refresh_token&refresh_token={grant['refresh_token']}".encode(),
            headers={
                "Authorization": f"Basic {auth}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
        self.pipelines.fortnox.admin("POST", "tokens/expire")

    @staticmethod
    def reseed_small(fortnox: Any = None, moment: Any = None) -> None:
        """Seed another sandbox (e.g. a reference Moment) exactly as the kit seeded its own."""
        reseed_small(fortnox, moment)


def isolate_meltano_run_dir(pipelines: Any) -> None:
    """Give this module's runs their own `.meltano` (plugins shared by symlink, `run/` private).

    Meltano writes each plugin's config and catalog to `.meltano/run/<plugin>/` of the project;
    runs of other test modules (or engineers) in the same project at the same moment overwrite
    those files, and a run then reads another run's half-written catalog ("Invalid catalog").
    """
    sys_dir = pipelines.workdir / "meltano-sys"
    sys_dir.mkdir(exist_ok=True)
    for shared in ("extractors", "loaders", "utilities"):
        link = sys_dir / shared
        if (ROOT / ".meltano" / shared).exists() and not link.exists():
            link.symlink_to(ROOT / ".meltano" / shared)
    (sys_dir / "run").mkdir(exist_ok=True)
    pipelines.extra_env["MELTANO_SYS_DIR_ROOT"] = str(sys_dir)


# The data every fault and kill scenario starts from: each kind of record the pipelines move
# (Swedish and foreign customers, projects, finalised and draft invoices, Moment's own expenses,
# supplier invoices on every Moment project), a few of each. A scenario's cost is then Meltano's
# start-up and its faults, not volume; volume is `make bench`'s job.
MOMENT_SIZES = {"customers": 8, "projects": 5, "invoices": 8, "expenses": 4}
FORTNOX_SIZES = {"supplierinvoices": 10, "moment_projects": MOMENT_SIZES["projects"]}


def reseed_small(fortnox: Any, moment: Any) -> None:
    """Seed 1 at the small sizes (Fortnox keeps its OAuth client and tokens on a reseed)."""
    if fortnox is not None:
        fortnox.admin("POST", "seed", {"seed": 1, **FORTNOX_SIZES})
    if moment is not None:
        moment.admin("POST", "seed", {"seed": 1, **MOMENT_SIZES})


@pytest.fixture(scope="module")
def kit(pipelines: Any, oracle: Oracle, moment_changes: MomentChanges, figures: Figures) -> Kit:
    isolate_meltano_run_dir(pipelines)
    reseed_small(pipelines.fortnox, pipelines.moment)
    return Kit(pipelines, oracle, moment_changes, figures)
