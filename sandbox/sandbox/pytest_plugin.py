"""Session fixtures for tests: the two sandboxes and a private PostgreSQL cluster.

A pytest plugin (the sandbox package's ``pytest11`` entry point), so every test folder has them,
whether the whole suite runs or one package's ``tests`` alone; each is started once per test
session (once per pytest-xdist worker) and shared by all the folders' tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # imported when a fixture starts a server, not when pytest loads the plugin
    from sandbox.launcher import SandboxProcess
    from sandbox.postgres import PostgresServer


@pytest.fixture(scope="session")
def fortnox_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """A seeded Fortnox sandbox (seed 1), rate limit off; tests reseed or arm limits as needed."""
    from sandbox.launcher import SandboxProcess

    db = Path(tmp_path_factory.mktemp("fortnox")) / "fortnox.db"
    with SandboxProcess("fortnox", db, seed=1, extra_args=["--max-requests-per-5s", "0"]) as proc:
        yield proc


@pytest.fixture(scope="session")
def moment_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """A seeded Moment sandbox (seed 1)."""
    from sandbox.launcher import SandboxProcess

    db = Path(tmp_path_factory.mktemp("moment")) / "moment.db"
    with SandboxProcess("moment", db, seed=1) as proc:
        yield proc


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster for the session (skipped, saying why, without the binaries)."""
    from sandbox.postgres import PostgresServer, find_bindir

    if find_bindir() is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl under /usr/lib/postgresql/*/bin) are not "
            "installed: apt-get install postgresql"
        )
    with PostgresServer() as server:
        yield server
