"""End-to-end proof of the `moment-to-fortnox` job (issue 4's "Must show").

Every test drives real `meltano run moment-to-fortnox` processes against the sandboxes, with state
in Meltano's state backend. The runs build on each other, so they are chained as module fixtures
(run 1 → run 2 → run 3 → ...) and a test asked for alone still gets its predecessors:

1. run 1 creates every Moment customer, project and finalised invoice in Fortnox (compared field
   by field: Moment read through Moment's API, Fortnox through Fortnox's API); drafts stay out;
2. run 2, with nothing changed in Moment, sends no write to Fortnox (the sandbox request log);
3. three customers and one project edited in Moment: run 3 writes exactly those four;
4. a project without start date gets its create date; a 60-character name is cut to 50;
5. a 2-second access-token lifetime: runs survive many refreshes, the refresh token rotates;
6. a customer number reserved by a deleted Fortnox customer fails that record alone, with a
   message naming the number and the fix, and the run still exits 0.

The rate-limit proof (limiter on, > 200 writes) needs bigger, fresh sandboxes and lives in
`tests/moment_to_fortnox/test_rate_limit.py`.

Our own reads go through fortnox-client with a separate token chain minted from the sandbox
(`POST /_sandbox/refresh-tokens`, then the token endpoint) and through moment-client; writes are
counted from the Fortnox sandbox's request log, on `/3/` paths only (token POSTs are not writes
to the books).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fortnox_client import FortnoxClient, FortnoxSettings
from moment_client import MomentClient, MomentSettings

pytestmark = pytest.mark.e2e

JOB = "moment-to-fortnox"
ROOT = Path(__file__).resolve().parents[1]
STOCKHOLM = ZoneInfo("Europe/Stockholm")
# Moment projectState → Fortnox Status (target-fortnox/README.md, docs/MOMENT-API.md).
STATUS = {"PLANNED": "NOTSTARTED", "ONGOING": "ONGOING", "FINISHED": "COMPLETED"}
WRITE_METHODS = ("POST", "PUT", "DELETE")


# -- readers ---------------------------------------------------------------------------------------


def fortnox_reader(pipelines: Any, workdir: Path) -> FortnoxClient:
    """A Fortnox API client on its own token chain, minted from the sandbox as a user would."""
    minted = pipelines.fortnox.admin("POST", "refresh-tokens", {})
    settings = FortnoxSettings.from_config(
        {
            "api_url": f"{pipelines.fortnox.url}/3",
            "token_url": f"{pipelines.fortnox.url}/oauth-v1/token",
            "client_id": "sandbox-client",
            "client_secret": "sandbox-secret",
            "refresh_token": minted["refresh_token"],
            "token_store_path": str(workdir / "reader-token.json"),
            "max_requests_per_5s": 0,
        }
    )
    return FortnoxClient(settings)


def moment_reader(pipelines: Any) -> MomentClient:
    return MomentClient(
        MomentSettings.from_config(
            {
                "api_url": f"{pipelines.moment.url}/api/1.0",
                "company_code": "demo",
                "api_key": "sandbox-key",
            }
        )
    )


def api_writes(pipelines: Any, since: int) -> list[tuple[str, str, int]]:
    """(method, path, status) of every write to the books (`/3/...`) after log entry ``since``."""
    return [
        (r["method"], r["path"], r["status"])
        for r in pipelines.fortnox.admin("GET", f"requests?since={since}")["requests"]
        if r["method"] in WRITE_METHODS and r["path"].startswith("/3/")
    ]


def last_seq(pipelines: Any) -> int:
    return int(pipelines.fortnox.admin("GET", "requests?since=999999999")["last"])


def stockholm_date(timestamp: str) -> str:
    return datetime.fromisoformat(timestamp).astimezone(STOCKHOLM).date().isoformat()


def text(value: Any) -> str:
    """Moment text as Fortnox shows it: null is "", letters of any language (ß too) as written."""
    return "" if value is None else str(value)


def number(value: Any) -> float:
    return float(value)


# -- expected Fortnox records from Moment records (target-fortnox/README.md) ---------------------


def expected_customer(c: dict[str, Any]) -> dict[str, str]:
    return {
        "CustomerNumber": c["customerNumber"],
        "Name": c["name"],
        "OrganisationNumber": text(c["organizationNumber"]),
        "Email": text(c["email"]),
        "Address1": text(c["address1"]),
        "Address2": text(c["address2"]),
        "ZipCode": text(c["postalCode"]),
        "City": text(c["city"]),
        "CountryCode": text(c["countryCode"]),
    }


def expected_project(p: dict[str, Any]) -> dict[str, str]:
    return {
        "ProjectNumber": p["projectNumber"],
        "Description": p["name"][:50].rstrip(),
        "StartDate": p["startDate"] or stockholm_date(p["createdDate"]),
        "EndDate": text(p["endDate"]),
        "Status": STATUS[p["projectState"]],
    }


def expected_invoice(i: dict[str, Any]) -> dict[str, Any]:
    return {
        "DocumentNumber": str(i["invoiceNumber"]),
        "CustomerNumber": i["customer"]["customerNumber"],
        "Project": text((i["project"] or {}).get("projectNumber")),
        "InvoiceDate": i["invoiceDate"],
        "DueDate": i["dueDate"],
        "OCR": i["ocr"],
        "Currency": i["currency"],
        "InvoiceRows": [
            {
                "AccountNumber": str(line["accountNumber"]),
                "Description": line["description"],
                "DeliveredQuantity": number(line["quantity"]),
                "Price": number(line["unitPrice"]),
                "VAT": number(line["vatRate"]),
            }
            for line in i["invoiceLines"]
        ],
    }


def actual(record: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """The Fortnox record reduced to the expected fields, in the expected representation."""
    out: dict[str, Any] = {}
    for name, want in expected.items():
        if name == "InvoiceRows":
            out[name] = [
                {
                    "AccountNumber": str(row["AccountNumber"]),
                    "Description": row["Description"],
                    "DeliveredQuantity": number(row["DeliveredQuantity"]),
                    "Price": number(row["Price"]),
                    "VAT": number(row["VAT"]),
                }
                for row in record.get("InvoiceRows") or []
            ]
        else:
            out[name] = text(record.get(name)) if isinstance(want, str) else record.get(name)
    return out


def mismatches(
    fortnox: FortnoxClient, resource: str, expected: dict[str, dict[str, Any]]
) -> list[str]:
    """One line per record that is missing in Fortnox or differs in any expected field."""
    problems = []
    for key, want in expected.items():
        record = fortnox.get(resource, key)
        if record is None:
            problems.append(f"{resource} {key}: missing in Fortnox")
            continue
        got = actual(record, want)
        for name in want:
            if got[name] != want[name]:
                problems.append(f"{resource} {key}.{name}: Fortnox {got[name]!r} != {want[name]!r}")
    return problems


def secret_digest(path: Path) -> str:
    """A digest of the stored refresh token, so assertion messages never show the token."""
    chain = json.loads(path.read_text())["refresh_token_grant"]
    return hashlib.sha256(chain["refresh_token"].encode()).hexdigest()[:12]


# -- the chained runs ----------------------------------------------------------------------------


@dataclass
class Run:
    """One `meltano run` and the Fortnox request-log window it produced."""

    result: Any
    since: int
    until: int
    summary: dict[str, Any]
    seconds: float

    def stream(self, name: str) -> dict[str, Any]:
        return dict(self.summary["streams"].get(name, {}))


def run_job(pipelines: Any, *, check: bool = True, **env: str) -> Run:
    since = last_seq(pipelines)
    started = time.monotonic()
    result = pipelines.run(JOB, check=check, **env)
    seconds = time.monotonic() - started
    return Run(
        result, since, last_seq(pipelines), pipelines.last_summary("target-fortnox"), seconds
    )


@pytest.fixture(scope="module")
def fortnox(pipelines: Any, tmp_path_factory: pytest.TempPathFactory) -> FortnoxClient:
    return fortnox_reader(pipelines, tmp_path_factory.mktemp("reader"))


@pytest.fixture(scope="module")
def moment(pipelines: Any) -> MomentClient:
    return moment_reader(pipelines)


@pytest.fixture(scope="module")
def run1(pipelines: Any) -> Run:
    return run_job(pipelines)


@pytest.fixture(scope="module")
def run2(pipelines: Any, run1: Run) -> Run:
    return run_job(pipelines)


EDITED_CUSTOMERS = {
    "1003": {"email": "faktura@nya-domanen.se"},
    "1010": {"address1": "Storgatan 1", "city": "Östersund", "postalCode": "831 30"},
    "1021": {"name": "Bergström & Söner Konsult AB"},
}
EDITED_PROJECT = ("5007", {"name": "Ny etapp: drift och förvaltning", "projectState": "FINISHED"})


@pytest.fixture(scope="module")
def run3(pipelines: Any, run2: Run) -> Run:
    for number_, change in EDITED_CUSTOMERS.items():
        pipelines.moment.admin("PATCH", f"customers/{number_}", change)
    pipelines.moment.admin("PATCH", f"projects/{EDITED_PROJECT[0]}", EDITED_PROJECT[1])
    return run_job(pipelines)


# A 60-character project name whose first 50 characters end in a letter, so the cut is exact.
LONG_NAME = "Införande av nytt affärssystem och e-handel Norrland etapp 2"
NEW_PROJECT = "5090"


@pytest.fixture(scope="module")
def run4(pipelines: Any, run3: Run) -> Run:
    pipelines.moment.admin(
        "POST",
        "projects",
        {
            "projectNumber": NEW_PROJECT,
            "name": LONG_NAME,
            "customer": {"customerNumber": "1001"},
            "startDate": None,
            "projectState": "ONGOING",
        },
    )
    return run_job(pipelines)


# -- 1. run 1 creates everything ----------------------------------------------------------------


def test_run1_creates_every_customer_project_and_finalised_invoice_field_by_field(
    run1: Run, fortnox: FortnoxClient, moment: MomentClient
) -> None:
    customers = list(moment.list("customers"))
    projects = list(moment.list("projects"))
    invoices = list(moment.list("invoices"))
    finalised = [i for i in invoices if i["invoiceState"] == "FINALIZED"]
    drafts = [i for i in invoices if i["invoiceState"] == "DRAFT"]
    # The seed must exercise what the comparison claims to cover.
    assert len(customers) == 30
    assert len(projects) == 20
    assert drafts
    assert finalised
    assert any(i["creditedInvoiceNumber"] for i in finalised), "seed lost its credit note"
    assert any(p["startDate"] is None for p in projects)
    assert any(len(p["name"]) > 50 for p in projects)
    assert any(c["countryCode"] != "SE" for c in customers)

    assert run1.result.returncode == 0
    assert run1.stream("customers")["created"] == len(customers)
    assert run1.stream("projects")["created"] == len(projects)
    assert run1.stream("invoices")["created"] == len(finalised)
    assert run1.summary["totals"]["failed"] == 0
    assert run1.summary["totals"]["conflict"] == 0

    problems = mismatches(
        fortnox, "customers", {c["customerNumber"]: expected_customer(c) for c in customers}
    )
    problems += mismatches(
        fortnox, "projects", {p["projectNumber"]: expected_project(p) for p in projects}
    )
    problems += mismatches(
        fortnox, "invoices", {str(i["invoiceNumber"]): expected_invoice(i) for i in finalised}
    )
    assert not problems, "\n".join(problems)

    # The credit note arrives under Moment's number as a credit invoice of the original: negative
    # rows (compared above) and ExternalInvoiceReference1 naming the credited invoice
    # (docs/FORTNOX-WRITES.md); Credit is a string, as Fortnox answers it.
    notes = [i for i in finalised if i["creditedInvoiceNumber"]]
    assert notes, "the seed has a credit note"
    for note in notes:
        got = fortnox.get("invoices", note["invoiceNumber"])
        assert got is not None
        assert got["ExternalInvoiceReference1"] == str(note["creditedInvoiceNumber"])
        assert got["Credit"] == "true"
        assert all(float(row["DeliveredQuantity"]) < 0 for row in got["InvoiceRows"])
    # Letters of any language are valid in Fortnox (docs/FORTNOX-WRITES.md): ß arrives as written,
    # with no warning (the fields were compared above).
    for customer in customers:
        if any("ß" in str(value) for value in customer.values()):
            assert f"customers {customer['customerNumber']}: replaced" not in run1.result.stderr

    # Nothing else arrived: Fortnox holds exactly Moment's numbers (plus its own seeded projects),
    # so no draft became an invoice.
    assert {c["CustomerNumber"] for c in fortnox.list("customers")} == {
        c["customerNumber"] for c in customers
    }
    assert {i["DocumentNumber"] for i in fortnox.list("invoices")} == {
        str(i["invoiceNumber"]) for i in finalised
    }
    fortnox_only = {p["ProjectNumber"] for p in fortnox.list("projects")} - {
        p["projectNumber"] for p in projects
    }
    assert fortnox_only == {"9001", "9002"}


def test_run1_state_is_in_meltanos_backend(run1: Run, pipelines: Any) -> None:
    bookmarks = pipelines.state("dev:tap-moment-to-target-fortnox")["singer_state"]["bookmarks"]
    for stream in ("customers", "projects", "invoices"):
        assert bookmarks[stream]["replication_key_value"], stream


# -- 2. no change, no write ---------------------------------------------------------------------


def test_run2_without_changes_makes_no_write_request(run2: Run, pipelines: Any) -> None:
    assert run2.result.returncode == 0
    assert api_writes(pipelines, run2.since) == []
    for outcome in ("created", "updated", "failed", "conflict"):
        assert run2.summary["totals"][outcome] == 0, outcome
    # The run did talk to Fortnox (it checked), it just had nothing to write.
    reads = pipelines.fortnox.admin("GET", f"requests?since={run2.since}")["requests"]
    assert len([r for r in reads if r["path"].startswith("/3/")]) <= 10


# -- 3. exactly the edited records are updated ---------------------------------------------------


def test_run3_updates_exactly_the_three_customers_and_one_project(
    run3: Run, pipelines: Any, fortnox: FortnoxClient, moment: MomentClient
) -> None:
    assert run3.result.returncode == 0
    expected_writes = sorted(
        [("PUT", f"/3/customers/{n}", 200) for n in EDITED_CUSTOMERS]
        + [("PUT", f"/3/projects/{EDITED_PROJECT[0]}", 200)]
    )
    assert sorted(api_writes(pipelines, run3.since)) == expected_writes

    assert run3.stream("customers")["updated"] == 3
    assert run3.stream("projects")["updated"] == 1
    totals = run3.summary["totals"]
    assert (totals["created"], totals["updated"], totals["failed"], totals["conflict"]) == (
        0,
        4,
        0,
        0,
    )

    edited = {c["customerNumber"]: c for c in moment.list("customers")}
    assert (
        mismatches(
            fortnox, "customers", {n: expected_customer(edited[n]) for n in EDITED_CUSTOMERS}
        )
        == []
    )
    project = next(iter(moment.list("projects", params={"projectNumber": EDITED_PROJECT[0]})))
    assert project["name"] == EDITED_PROJECT[1]["name"]
    assert mismatches(fortnox, "projects", {EDITED_PROJECT[0]: expected_project(project)}) == []
    assert fortnox.get("projects", EDITED_PROJECT[0])["Status"] == "COMPLETED"  # type: ignore[index]


# -- 4. start date fallback and the 50-character cut -----------------------------------------------


def test_project_without_start_date_gets_its_stockholm_create_date_and_long_name_is_cut(
    run4: Run, fortnox: FortnoxClient, moment: MomentClient
) -> None:
    assert len(LONG_NAME) == 60
    assert LONG_NAME[49] != " "
    assert run4.result.returncode == 0
    assert run4.stream("projects")["created"] == 1

    created = next(iter(moment.list("projects", params={"projectNumber": NEW_PROJECT})))
    assert created["startDate"] is None
    assert created["name"] == LONG_NAME
    in_fortnox = fortnox.get("projects", NEW_PROJECT)
    assert in_fortnox is not None
    assert in_fortnox["Description"] == LONG_NAME[:50]
    assert len(in_fortnox["Description"]) == 50
    assert in_fortnox["StartDate"] == stockholm_date(created["createdDate"])
    # The cut is announced, naming the project (target-fortnox/README.md: cut with a warning).
    assert f"projects {NEW_PROJECT}: name is 60 characters" in run4.result.stderr

    # The seed's projects without a start date got theirs the same way in run 1.
    seeded = [p for p in moment.list("projects") if p["startDate"] is None]
    assert len(seeded) >= 4
    for project in seeded:
        got = fortnox.get("projects", project["projectNumber"])
        assert got is not None
        assert got["StartDate"] == stockholm_date(project["createdDate"]), project["projectNumber"]


# -- 5. short-lived access tokens ------------------------------------------------------------------


@pytest.fixture
def short_tokens(pipelines: Any, run4: Run) -> Iterator[None]:
    """Access tokens that live 2 s, and every token issued so far expired."""
    pipelines.fortnox.admin("PATCH", "settings", {"token_lifetime": 2})
    pipelines.fortnox.admin("POST", "tokens/expire", {})
    try:
        yield
    finally:
        pipelines.fortnox.admin("DELETE", "faults")
        pipelines.fortnox.admin("PATCH", "settings", {"token_lifetime": 3600})


def token_calls(pipelines: Any, since: int) -> list[dict[str, Any]]:
    return [
        r
        for r in pipelines.fortnox.admin("GET", f"requests?since={since}")["requests"]
        if r["path"] == "/oauth-v1/token"
    ]


def test_runs_survive_many_token_refreshes_and_rotate_the_refresh_token(
    short_tokens: None, pipelines: Any, fortnox: FortnoxClient, record_property: Any
) -> None:
    # Round 0: latency on every API request stretches the run over several token lifetimes.
    # Round 1: a separate, ordinary run later on must carry the chain on from the store.
    pipelines.fortnox.admin("POST", "faults", {"kind": "latency", "seconds": 0.7, "path": "^/3/"})
    rounds = (("1011", "1012", "1013", "1014", "1015", "1016"), ("1022", "1023"))
    for round_, numbers in enumerate(rounds):
        before = secret_digest(pipelines.token_store)
        for n in numbers:
            pipelines.moment.admin("PATCH", f"customers/{n}", {"city": f"Kiruna {round_}"})
        run = run_job(pipelines)

        assert run.result.returncode == 0
        assert run.summary["totals"]["failed"] == 0
        assert run.stream("customers")["updated"] == len(numbers)
        calls = token_calls(pipelines, run.since)
        api = [
            r
            for r in pipelines.fortnox.admin("GET", f"requests?since={run.since}")["requests"]
            if r["path"].startswith("/3/")
        ]
        span = api[-1]["time"] - api[0]["time"]
        record_property(f"round{round_}", f"{len(api)} API requests, {len(calls)} token calls")
        # Every refresh was accepted: a reused refresh token would get 400 invalid_grant.
        assert {c["status"] for c in calls} == {200}
        assert secret_digest(pipelines.token_store) != before, "refresh token did not rotate"
        if round_ == 0:
            # Each access token lives 2 s and the API traffic spans more than two lifetimes,
            # so the target had to refresh again and again within the one run.
            assert span > 4.0, f"{len(api)} API requests over {span:.1f} s"
            assert len(calls) >= 3, f"only {len(calls)} token refreshes"
            pipelines.fortnox.admin("DELETE", "faults")
        for n in numbers:
            assert fortnox.get("customers", n)["City"] == f"Kiruna {round_}"  # type: ignore[index]


# -- 6. a customer number reserved by a deleted Fortnox customer ----------------------------------

RESERVED = "1031"


def test_reserved_customer_number_fails_only_that_record_with_the_fix(
    run4: Run, pipelines: Any, fortnox: FortnoxClient
) -> None:
    # Someone created customer 1031 directly in Fortnox and deleted it: the number stays taken.
    fortnox.create("customers", {"CustomerNumber": RESERVED, "Name": "Felregistrerad kund AB"})
    assert fortnox.delete("customers", RESERVED)
    # Then Moment gets a customer 1031, another new customer, and an edit.
    for n, name in ((RESERVED, "Nybyggarna i Umeå AB"), ("1032", "Fjällvind Konsult AB")):
        pipelines.moment.admin(
            "POST", "customers", {"customerNumber": n, "name": name, "countryCode": "SE"}
        )
    pipelines.moment.admin("PATCH", "customers/1004", {"email": "ny@adress.se"})

    run = run_job(pipelines, check=False)

    assert run.result.returncode == 0, run.result.stderr[-3000:]
    customers = run.stream("customers")
    assert (customers["created"], customers["updated"], customers["failed"]) == (1, 1, 1)
    [failure] = run.summary["failures"]
    assert failure["key"] == RESERVED
    assert failure["stream"] == "customers"
    message = failure["message"]
    assert RESERVED in message
    assert "2000637" in message
    assert "another number" in message.lower() or "fortnox support" in message.lower(), message

    # The dead-letter file holds the record, replayable, with the same message.
    letters = [
        json.loads(line)
        for line in pipelines.dead_letters_file("target-fortnox").read_text().splitlines()
    ]
    records = [m for m in letters if m["type"] == "RECORD"]
    assert [m["record"]["customerNumber"] for m in records] == [RESERVED]
    assert records[0]["error"]["message"] == message
    # And the log says it too.
    assert RESERVED in run.result.stderr
    assert "2000637" in run.result.stderr

    # The rest of the run went through.
    assert fortnox.get("customers", RESERVED) is None
    assert fortnox.get("customers", "1032")["Name"] == "Fjällvind Konsult AB"  # type: ignore[index]
    assert fortnox.get("customers", "1004")["Email"] == "ny@adress.se"  # type: ignore[index]
