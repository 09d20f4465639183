"""A throwaway PostgreSQL server for tests and simulations: initdb + pg_ctl on a temp directory.

Owns finding Debian's PostgreSQL binaries, starting a private cluster on a free local port with
password authentication, and removing it again. Used by the Postgres token-store and Meltano
state tests; not part of either sandbox API.

PostgreSQL refuses to run as root, so under root (containers, CI) the cluster runs as the
``postgres`` system user (or ``nobody``), in a directory that user owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from sandbox.managed import ManagedServer

PASSWORD = "sandbox-pg-secret"
USER = "sandbox"


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl, or $PG_BINDIR."""
    candidates = [os.environ.get("PG_BINDIR", "")]
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True
    )
    for candidate in candidates:
        if candidate and all((Path(candidate) / tool).exists() for tool in ("initdb", "pg_ctl")):
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer(ManagedServer):
    """``with PostgresServer() as pg: pg.url()`` — a private cluster, stopped on exit."""

    def __init__(self, bindir: Path | None = None) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise FileNotFoundError(
                "PostgreSQL server binaries not found (initdb, pg_ctl under "
                "/usr/lib/postgresql/*/bin); install Debian's postgresql package or set PG_BINDIR"
            )
        self.bindir = found
        self.port = 0
        self.root: Path | None = None
        self._run_as: pwd.struct_passwd | None = None

    @classmethod
    def attach(cls, root: Path, port: int) -> PostgresServer:
        """A cluster another process started (``make tenants-up``), to stop it."""
        server = cls()
        server.root, server.port = root, port
        owner = root.stat().st_uid if root.exists() else os.geteuid()
        if os.geteuid() == 0 and owner != 0:
            server._run_as = pwd.getpwuid(owner)
        return server

    @property
    def data_dir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    def url(self, scheme: str = "postgresql", database: str = "postgres") -> str:
        return f"{scheme}://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresServer:
        self.root = Path(tempfile.mkdtemp(prefix="sandbox-pg-"))
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self._run_as = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            assert self._run_as is not None, "no unprivileged user to run PostgreSQL as"
            os.chown(self.root, self._run_as.pw_uid, self._run_as.pw_gid)
        password_file = self.root / "pwfile"
        password_file.write_text(PASSWORD + "\n")
        if self._run_as is not None:
            os.chown(password_file, self._run_as.pw_uid, self._run_as.pw_gid)
        self._pg(
            "initdb", "-D", str(self.data_dir), "-U", USER, "--pwfile", str(password_file),
            "-A", "scram-sha-256", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        self.port = _free_port()
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        log = self.root / "postgres.log"
        self._pg("pg_ctl", "-D", str(self.data_dir), "-o", options, "-l", str(log), "-w", "start")
        return self

    def create_database(self, name: str) -> str:
        """Create database ``name`` (createdb) and return its postgresql:// URL."""
        self._pg(
            "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name,
            env={"PGPASSWORD": PASSWORD},
        )  # fmt: skip
        return self.url(database=name)

    def stop(self) -> None:
        if self.root is None:
            return
        if (self.data_dir / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def _pg(self, tool: str, *args: str, env: dict[str, str] | None = None) -> None:
        run_as = self._run_as
        result = subprocess.run(
            [str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.root,
            env={**os.environ, **(env or {})},
            user=run_as.pw_uid if run_as else None,
            group=run_as.pw_gid if run_as else None,
        )
        if result.returncode != 0:
            log = self.root / "postgres.log" if self.root else None
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"{tool} failed: {result.stderr[-2000:]}\n{tail}")
