"""A deployment for workers on several machines: Meltano's system DB (state) and the Fortnox token
store both in PostgreSQL, shown through real `meltano run` / `meltano state get` processes.

Meltano 4.4 keeps state in its system database with the default `systemdb` state backend; with
`MELTANO_DATABASE_URI=postgresql+psycopg://…` (SQLAlchemy's psycopg 3 dialect) that database is
PostgreSQL. The token store row comes from `TARGET_FORTNOX_TOKEN_STORE_URL`. The PostgreSQL server
is a private cluster this module starts (skipped, saying why, when its binaries are missing).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sandbox.postgres import PASSWORD, PostgresServer, find_bindir

psycopg = pytest.importorskip("psycopg", reason="psycopg (fortnox-client[postgres]) not installed")

pytestmark = pytest.mark.e2e

STATE_ID = "dev:tap-moment-to-target-fortnox"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    if find_bindir() is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl under /usr/lib/postgresql/*/bin) are not "
            "installed: apt-get install postgresql"
        )
    with PostgresServer() as server:
        yield server


def test_state_and_tokens_live_in_postgres(pipelines: Any, postgres: PostgresServer) -> None:
    meltano_db = postgres.create_database("meltano")
    tokens_url = postgres.create_database("fortnox_tokens") + "?tenant=acme"
    env = {
        "MELTANO_DATABASE_URI": meltano_db.replace("postgresql://", "postgresql+psycopg://"),
        "MELTANO_STATE_BACKEND_URI": "systemdb",
        "TARGET_FORTNOX_TOKEN_STORE_URL": tokens_url,
        "TAP_FORTNOX_EXPENSES_TOKEN_STORE_URL": tokens_url,
    }
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
