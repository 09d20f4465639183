"""A deployment for workers on several machines: Meltano's system DB (state) and the Fortnox token
store both in PostgreSQL, shown through real `meltano run` / `meltano state get` processes.

Meltano 4.4 keeps state in its system database with the default `systemdb` state backend; with
`MELTANO_DATABASE_URI=postgresql+psycopg://…` (SQLAlchemy's psycopg 3 dialect) that database is
PostgreSQL. The token store row comes from `TARGET_FORTNOX_TOKEN_STORE_URL`. The PostgreSQL server
is a private cluster this module starts (skipped, saying why, when its binaries are missing).
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import date, datetime
from typing import Any

import pytest
from sandbox.postgres import PASSWORD, PostgresServer

psycopg = pytest.importorskip("psycopg", reason="psycopg (fortnox-client[postgres]) not installed")

pytestmark = pytest.mark.e2e

STATE_ID = "dev:tap-moment-to-target-fortnox"


@pytest.fixture(scope="module")
def databases(postgres_server: PostgresServer) -> tuple[str, str]:
    """(Meltano's system DB URL, the token store URL with ?tenant=acme), in the session's
    PostgreSQL (the root conftest.py)."""
    meltano_db = postgres_server.create_database("meltano")
    tokens_url = postgres_server.create_database("fortnox_tokens") + "?tenant=acme"
    return meltano_db, tokens_url


@pytest.fixture
def env(databases: tuple[str, str]) -> dict[str, str]:
    """State in Meltano's system DB on PostgreSQL; tokens and run stores in PostgreSQL too."""
    meltano_db, tokens_url = databases
    return {
        "MELTANO_DATABASE_URI": meltano_db.replace("postgresql://", "postgresql+psycopg://"),
        "MELTANO_STATE_BACKEND_URI": "systemdb",
        "TARGET_FORTNOX_TOKEN_STORE_URL": tokens_url,
        "TAP_FORTNOX_EXPENSES_TOKEN_STORE_URL": tokens_url,
        # target-moment has no token store: its run store is named on its own.
        "TARGET_MOMENT_RUN_STORE_URL": tokens_url,
    }


def test_state_and_tokens_live_in_postgres(
    pipelines: Any, databases: tuple[str, str], env: dict[str, str]
) -> None:
    meltano_db, tokens_url = databases
    pipelines.run("moment-to-fortnox", **env)
    assert pipelines.last_summary("target-fortnox")["streams"]["customers"]["created"] == 30

    # Read back through Meltano (`meltano state get`), from the Postgres system DB...
    out = pipelines.meltano("state", "get", STATE_ID, "--format", "json", **env).stdout
    bookmarks = json.loads(out)["singer_state"]["bookmarks"]
    assert bookmarks["customers"]["replication_key_value"], out
    # ...and straight from the database: Meltano's `state` table holds the job's row.
    with psycopg.connect(meltano_db) as conn:
        rows = conn.execute("SELECT state_id FROM state").fetchall()
    assert (STATE_ID,) in rows

    # The token pair is a row, not a file; no password ever reached the run's output.
    assert not pipelines.token_store.exists()
    with psycopg.connect(tokens_url.split("?")[0]) as conn:
        row = conn.execute(
            "SELECT document FROM fortnox_tokens WHERE client_id = %s AND tenant = %s",
            ("sandbox-client", "acme"),
        ).fetchone()
    assert row is not None
    assert row[0]["refresh_token_grant"]["tenant_id"] == "1234567"
    results = "".join(p.read_text() for p in (pipelines.results_dir / "runs").glob("*.json"))
    assert PASSWORD not in results


# -- the run store: what state relies on survives a worker whose disk does not ----------------


def test_a_run_store_on_local_disk_is_refused_when_state_is_in_postgres(
    pipelines: Any, env: dict[str, str]
) -> None:
    """Meltano's state outlives the worker, so dead letters on the worker's disk would be lost
    with a bookmark already past them: both targets refuse to start and say what to set."""
    del env["TARGET_MOMENT_RUN_STORE_URL"]
    result = pipelines.run("fortnox-expenses-to-moment", check=False, **env)
    assert result.returncode != 0
    assert "Refusing to start" in result.stderr, result.stderr[-3000:]
    assert "run_store_url" in result.stderr
    assert "MELTANO_DATABASE_URI" in result.stderr
    assert PASSWORD not in result.stderr + result.stdout

    # target-fortnox's run store follows the token store: a token store file means a folder.
    del env["TARGET_FORTNOX_TOKEN_STORE_URL"]
    result = pipelines.run("moment-to-fortnox", check=False, **env)
    assert result.returncode != 0
    assert "Refusing to start" in result.stderr, result.stderr[-3000:]
    assert str(pipelines.workdir / "run-store") in result.stderr

    # Saying the folder is on a kept disk is accepted.
    result = pipelines.run(
        "moment-to-fortnox", check=False, TARGET_FORTNOX_RUN_STORE_PATH_PERSISTS="true", **env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert pipelines.last_summary("target-fortnox")["totals"]["failed"] == 0


def parse_instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def fresh_worker_disk(pipelines: Any) -> None:
    """What a new container starts with: no results_dir, no run-store folder, no token file."""
    shutil.rmtree(pipelines.results_dir, ignore_errors=True)
    shutil.rmtree(pipelines.workdir / "run-store", ignore_errors=True)
    pipelines.token_store.unlink(missing_ok=True)


def stored(databases: tuple[str, str], table: str, name: str) -> str:
    with psycopg.connect(databases[1].split("?")[0]) as conn:
        row = conn.execute(
            f"SELECT content FROM {table} WHERE tenant = 'acme' AND name = %s", (name,)
        ).fetchone()
    return str(row[0]) if row else ""


def test_target_fortnox_dead_letter_is_delivered_from_a_fresh_disk(
    pipelines: Any, databases: tuple[str, str], env: dict[str, str]
) -> None:
    fresh_worker_disk(pipelines)  # the folder store of the test before
    customer = {"customerNumber": "8950", "name": "Färsk Disk AB", "countryCode": "SE"}
    pipelines.moment.admin("POST", "customers", customer)
    # A later edit of another customer takes the bookmark past 8950. Without a lookback (as if
    # the next run came more than lookback_minutes later) the tap never sends 8950 again.
    edit_later_than(pipelines, "8950", other="1004")
    env["TAP_MOMENT_LOOKBACK_MINUTES"] = "0"
    # Fortnox refuses the create once (a cause outside Moment, say a register setting).
    pipelines.fortnox.admin(
        "POST", "faults", {"kind": "status", "status": 400, "method": "POST", "path": "customers$"}
    )
    pipelines.run("moment-to-fortnox", **env)
    summary = pipelines.last_summary("target-fortnox")
    assert [f["key"] for f in summary["failures"]] == ["8950"], summary["failures"]
    letters = stored(databases, "fortnox_tokens_run_store", "dead-letters/target-fortnox.singer")
    assert "8950" in letters
    assert not (pipelines.results_dir / "dead-letters").exists()
    assert not (pipelines.workdir / "run-store").exists(), list(
        (pipelines.workdir / "run-store").rglob("*")
    )
    # The bookmark moved past the customer: the tap will not send it again.
    bookmarks = json.loads(
        pipelines.meltano("state", "get", STATE_ID, "--format", "json", **env).stdout
    )["singer_state"]["bookmarks"]
    assert bookmarks["customers"]["replication_key_value"]

    # The cause is removed; the next run is on a new worker with an empty disk.
    pipelines.fortnox.admin("DELETE", "faults")
    fresh_worker_disk(pipelines)
    pipelines.run("moment-to-fortnox", **env)

    summary = pipelines.last_summary("target-fortnox")
    assert summary["totals"]["failed"] == 0, summary["failures"]
    assert summary["streams"]["customers"]["created"] == 1
    assert stored(databases, "fortnox_tokens_run_store", "dead-letters/target-fortnox.singer") == ""
    assert fortnox_customer(pipelines, "8950")["Name"] == "Färsk Disk AB"


def edit_later_than(pipelines: Any, number: str, other: str) -> None:
    """Edit Moment customer ``other`` until it is stamped later than customer ``number``."""
    stamp = pipelines.moment.admin("GET", f"customers/{number}")["lastModifiedDate"]
    for attempt in range(100):
        edited = pipelines.moment.admin(
            "PATCH", f"customers/{other}", {"email": f"ny{attempt}@adress.se"}
        )
        if parse_instant(edited["lastModifiedDate"]) > parse_instant(stamp):
            return
        time.sleep(0.02)  # Moment's clock has to tick: nothing to poll but the clock itself
    pytest.fail(f"customer {other} never got a lastModifiedDate later than {stamp}")


def fortnox_customer(pipelines: Any, number: str) -> dict[str, Any]:
    from fortnox_client import FortnoxClient, FortnoxSettings

    client = FortnoxClient(
        FortnoxSettings.from_config(
            {
                "client_id": "sandbox-client",
                "client_secret": "sandbox-secret",
                "tenant_id": "1234567",
                "api_url": f"{pipelines.fortnox.url}/3",
                "token_url": f"{pipelines.fortnox.url}/oauth-v1/token",
                "token_store_path": str(pipelines.workdir / "reader-token.json"),
                "max_requests_per_5s": 0,
            }
        )
    )
    found = client.get("customers", number)
    assert found is not None, f"customer {number} is not in Fortnox"
    return found


def test_target_moment_dead_letter_is_delivered_from_a_fresh_disk(
    pipelines: Any, databases: tuple[str, str], env: dict[str, str]
) -> None:
    pipelines.run("fortnox-expenses-to-moment", **env)  # the first import, nothing failing
    given = pipelines.fortnox.admin(
        "POST",
        "supplierinvoices",
        {
            "SupplierInvoice": {
                "SupplierNumber": "1",
                "InvoiceNumber": "FRESH-DISK-1",
                "InvoiceDate": date.today().isoformat(),
                "Project": "5001",
                "SupplierInvoiceRows": [
                    {"Account": 2440, "Code": "TOT", "Credit": 1250},
                    {"Account": 4010, "Debit": 1000, "TransactionInformation": "Färsk disk"},
                    {"Account": 2641, "Code": "VAT", "Debit": 250},
                ],
            },
            "booked": True,
            "approved": True,
        },
    )["SupplierInvoice"]["GivenNumber"]
    # Moment refuses the expense once (a cause in Moment, say a locked project).
    pipelines.moment.admin(
        "POST",
        "faults",
        {"kind": "status", "status": 400, "method": "POST", "path": "projectExpenses"},
    )
    pipelines.run("fortnox-expenses-to-moment", **env)
    summary = pipelines.last_summary("target-moment")
    # One cost row, keyed by its content (tap-fortnox-expenses README, "Source keys").
    (key,) = [f["key"] for f in summary["failures"]]
    assert key.startswith(f"fortnox-si-{given}-r"), summary["failures"]
    assert key in stored(databases, "run_store", "dead-letters/target-moment.singer")
    assert not (pipelines.results_dir / "dead-letters").exists()

    pipelines.moment.admin("DELETE", "faults")
    fresh_worker_disk(pipelines)
    pipelines.run("fortnox-expenses-to-moment", **env)

    summary = pipelines.last_summary("target-moment")
    assert summary["totals"]["failed"] == 0, summary["failures"]
    letters = stored(databases, "run_store", "dead-letters/target-moment.singer")
    kept = [json.loads(line) for line in letters.splitlines()]
    errors = {m["error"]["key"]: m["error"]["message"] for m in kept if m["type"] == "RECORD"}
    # Delivered, so no longer kept; what stays are expenses waiting for their Moment project.
    assert key not in errors
    assert all(message.startswith("waiting:") for message in errors.values()), errors
    assert moment_references(pipelines).count(key) == 1


def moment_references(pipelines: Any) -> list[str]:
    """The externalReference of every project expense in Moment (all admin pages)."""
    references: list[str] = []
    page, pages = 0, 1
    while page < pages:
        body = pipelines.moment.admin("GET", f"projectExpenses?page={page}&size=500")
        references += [e.get("externalReference") for e in body["content"]]
        page, pages = page + 1, body["page"]["totalPages"]
    return references
