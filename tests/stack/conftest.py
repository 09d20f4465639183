"""Fixtures for the data-stack tests: a real PostgreSQL server for MeltanoLabs target-postgres.

The server is Debian's PostgreSQL (`initdb` + `pg_ctl`) on a temporary data directory and a free
port, started once per session and stopped at the end. PostgreSQL refuses to run as root, so under
root (CI, containers) the cluster belongs to the `postgres` system user and its commands run through
`runuser`. Authentication is `trust` on 127.0.0.1 only: the server lives as long as the session.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TENANT_ID = "1234567"  # the Fortnox sandbox company's DatabaseNumber
DATABASE = "warehouse"
USER = "postgres"
ROOT = Path(__file__).resolve().parents[2]


def _postgres_bindir() -> Path | None:
    """Newest Debian PostgreSQL with initdb and pg_ctl, or whatever `pg_config` points at."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name)
    )
    if shutil.which("pg_config"):
        found = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.insert(0, found.stdout.strip())
    for bindir in reversed(candidates):
        if (Path(bindir) / "initdb").exists() and (Path(bindir) / "pg_ctl").exists():
            return Path(bindir)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Warehouse:
    """Where the test's PostgreSQL listens, and how target-postgres and psycopg reach it."""

    host: str
    port: int
    user: str
    database: str

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname=self.database, autocommit=True
        )

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.connect() as conn:
            return list(conn.execute(sql, params).fetchall())

    def target_env(self) -> dict[str, str]:
        """Meltano overrides (`TARGET_POSTGRES_*`) pointing meltano.yml's target-postgres here."""
        return {
            "TARGET_POSTGRES_HOST": self.host,
            "TARGET_POSTGRES_PORT": str(self.port),
            "TARGET_POSTGRES_USER": self.user,
            # target-postgres insists on a password; the test server trusts 127.0.0.1.
            "TARGET_POSTGRES_PASSWORD": "not-checked",
            "TARGET_POSTGRES_DATABASE": self.database,
        }


@pytest.fixture(scope="session")
def warehouse() -> Iterator[Warehouse]:
    """A fresh PostgreSQL cluster with an empty `warehouse` database, stopped after the session."""
    pytest.importorskip(
        "psycopg", reason="psycopg is not installed in .venv: add psycopg[binary] to it"
    )
    bindir = _postgres_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
        )
    # Not under pytest's basetemp: that is private to the user running pytest (mode 0700), and
    # under root the server runs as `postgres`, which must reach its data directory.
    root = Path(tempfile.mkdtemp(prefix="stack-postgres-"))
    data, log = root / "data", root / "server.log"
    prefix: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses root; the cluster and its socket directory belong to `postgres`.
        try:
            owner = pwd.getpwnam(USER)
        except KeyError:
            pytest.fail(f"running as root, PostgreSQL needs the system user {USER!r} to run as")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        prefix = ["runuser", "-u", USER, "--"]

    def run(*cmd: str) -> None:
        done = subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}{tail}")

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", USER, "--auth=trust", "-E", "UTF8",
            "--no-locale", "--no-sync")  # fmt: skip
        # A free port can be taken by another process before the server binds it: a few tries.
        for attempt in range(3):
            port = _free_port()
            # fsync off: a test cluster need not survive a crash, and runs are faster without it.
            options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
            try:
                run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
                    "-w", "start")  # fmt: skip
                break
            except RuntimeError:
                if attempt == 2:
                    raise
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        server = Warehouse(host="127.0.0.1", port=port, user=USER, database="postgres")
        with server.connect() as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        yield Warehouse(host="127.0.0.1", port=port, user=USER, database=DATABASE)
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def fortnox_reader(pipelines: Any) -> Any:
    """A client-credentials FortnoxClient on the module's Fortnox sandbox, to check what arrived."""
    from fortnox_client import FortnoxClient, FortnoxSettings

    config = {
        "api_url": f"{pipelines.fortnox.url}/3",
        "token_url": f"{pipelines.fortnox.url}/oauth-v1/token",
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "tenant_id": TENANT_ID,
        "token_store_path": str(pipelines.workdir / "reader-token.json"),
        "max_requests_per_5s": 0,
    }
    return FortnoxClient(FortnoxSettings.from_config(config))
