"""Fixtures for target-moment's tests: config against the Moment sandbox, replay, sandbox reads.

The session's Moment sandbox (root conftest ``moment_sandbox``) is shared with other folders'
tests, so each test here works on its own projects (``TM-…``, created if missing) and deletes
the expenses it made afterwards (``fortnox-si-9…`` source keys), leaving the seed data alone.
"""

from __future__ import annotations

import base64
import io
import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from sandbox.launcher import SandboxProcess
from target_moment.target import TargetMoment

DATA_FILES = Path(__file__).parent / "data_files"
API_KEY = "sandbox-key"
COMPANY = "demo"
# Test projects: TM-100 takes the default, TM-200 has a price model saying "not billable",
# TM-300 exists in Moment but has no start date in Fortnox (the .singer files say so).
TEST_PROJECTS = {
    "TM-100": {"name": "Webbplats Åkesson", "priceModel": {"expensesBillable": None}},
    "TM-200": {"name": "Fastpris Öberg", "priceModel": {"expensesBillable": False}},
    "TM-300": {"name": "Utan startdatum", "priceModel": {"expensesBillable": None}},
}
TEST_KEY_PREFIX = "fortnox-si-9"


class MomentApi:
    """Plain HTTP reads/writes of the sandbox's public API, for arranging and asserting."""

    def __init__(self, sandbox: SandboxProcess) -> None:
        self.sandbox = sandbox
        self.base = f"{sandbox.url}/api/1.0/companies/{COMPANY}"
        token = base64.b64encode(f"apikey:{API_KEY}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        url = f"{self.base}/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method, headers=self.headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def expenses(self, **filters: Any) -> list[dict[str, Any]]:
        return list(self.call("GET", "projectExpenses", size=500, **filters)["content"])

    def test_expenses(self) -> dict[str, dict[str, Any]]:
        """This folder's expenses in Moment, by externalReference."""
        return {
            e["externalReference"]: e
            for e in self.expenses()
            if str(e.get("externalReference") or "").startswith(TEST_KEY_PREFIX)
        }

    def ensure_test_projects(self) -> None:
        customers = self.call("GET", "customers", size=1)["content"]
        for number, fields in TEST_PROJECTS.items():
            if self.call("GET", "projects", projectNumber=number)["content"]:
                continue
            body = {
                "projectNumber": number,
                "customer": {"id": customers[0]["id"]},
                "startDate": "2026-01-01",
                "projectState": "ONGOING",
                **fields,
            }
            self.call("POST", "projects", body)

    def requests_since(self, seq: int) -> list[dict[str, Any]]:
        return list(self.sandbox.admin("GET", f"requests?since={seq}")["requests"])

    def writes_since(self, seq: int) -> list[tuple[str, str]]:
        """(method, path) of every write the target sent since request ``seq``."""
        return [
            (r["method"], r["path"])
            for r in self.requests_since(seq)
            if r["method"] in {"POST", "PUT", "PATCH", "DELETE"}
        ]

    def set_invoiced(self, expense_id: int, *, invoiced: bool = True) -> None:
        """Mark an expense invoiced, as invoicing it in Moment would (sandbox admin API)."""
        self.sandbox.admin("POST", f"projectExpenses/{expense_id}/invoiced", {"invoiced": invoiced})

    def last_request_seq(self) -> int:
        return int(self.sandbox.admin("GET", "requests?since=999999999")["last"])


@pytest.fixture
def moment(moment_sandbox: SandboxProcess) -> Iterator[MomentApi]:
    """The sandbox with the test projects present; this test's expenses removed afterwards."""
    api = MomentApi(moment_sandbox)
    moment_sandbox.admin("DELETE", "faults")
    api.ensure_test_projects()
    yield api
    moment_sandbox.admin("DELETE", "faults")
    for expense in api.test_expenses().values():
        if expense.get("invoiced"):
            api.set_invoiced(expense["id"], invoiced=False)
        api.call("DELETE", f"projectExpenses/{expense['id']}")


@pytest.fixture
def target_config(moment_sandbox: SandboxProcess, tmp_path: Path) -> dict[str, Any]:
    return {
        "api_url": f"{moment_sandbox.url}/api/1.0",
        "company_code": COMPANY,
        "api_key": API_KEY,
        "results_dir": str(tmp_path / "output"),
        # moment-client settings (not target settings): fail fast in fault tests.
        "max_tries": 2,
        "backoff_factor": 0.01,
        "timeout": 10,
    }


class Replay:
    """Feeds ``tests/data_files/*.singer`` to fresh targets and reads what they left behind."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.stdout = ""  # what the last run printed on stdout (STATE only), even if it failed

    def __call__(self, singer_file: str, **overrides: Any) -> list[dict[str, Any]]:
        """Run a fresh target on the file; return the STATE messages it emitted."""
        target = TargetMoment(config={**self.config, **overrides})
        stdout = io.StringIO()
        path = DATA_FILES / singer_file
        try:
            with path.open(encoding="utf-8") as messages, redirect_stdout(stdout):
                target.listen(messages)
        finally:
            self.stdout = stdout.getvalue()
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]

    @property
    def results_dir(self) -> Path:
        return Path(self.config["results_dir"])

    def summary(self) -> dict[str, Any]:
        """The newest run summary JSON the target wrote."""
        runs = sorted((self.results_dir / "runs").glob("*-target-moment.json"))
        assert runs, f"no run summary under {self.results_dir}"
        summary: dict[str, Any] = json.loads(runs[-1].read_text(encoding="utf-8"))
        return summary

    def dead_letter_lines(self) -> list[dict[str, Any]]:
        path = self.results_dir / "dead-letters" / "target-moment.singer"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def replay(target_config: dict[str, Any]) -> Replay:
    return Replay(target_config)
