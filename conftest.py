"""Fixtures shared by every test folder: the sandboxes, started once per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sandbox.launcher import SandboxProcess
from sandbox.postgres import PostgresServer, find_bindir


@pytest.fixture(scope="session")
def fortnox_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """A seeded Fortnox sandbox (seed 1), rate limit off; tests reseed or arm limits as needed."""
    db = Path(tmp_path_factory.mktemp("fortnox")) / "fortnox.db"
    with SandboxProcess("fortnox", db, seed=1, extra_args=["--max-requests-per-5s", "0"]) as proc:
        yield proc


@pytest.fixture(scope="session")
def moment_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """A seeded Moment sandbox (seed 1)."""
    db = Path(tmp_path_factory.mktemp("moment")) / "moment.db"
    with SandboxProcess("moment", db, seed=1) as proc:
        yield proc


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster for the session (skipped, saying why, without the binaries)."""
    if find_bindir() is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl under /usr/lib/postgresql/*/bin) are not "
            "installed: apt-get install postgresql"
        )
    with PostgresServer() as server:
        yield server
