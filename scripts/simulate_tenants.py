"""Simulate N tenants running `moment-to-fortnox` at once on this machine; print the table.

Each tenant is what docs/SCALING.md calls a tenant: its own Fortnox company (a Fortnox sandbox
process with the real limit ON, 25 requests per sliding 5 s — the sandbox is single-tenant per
process, so N tenants are N processes, each with its own limit window), its own Moment company (a
Moment sandbox process), its own Meltano system DB and state, token store and results folder. All
N `meltano run moment-to-fortnox` processes start together, as N parallel orchestrator tasks would.

Every tenant gets the same small workload (a fresh Moment seed of ``--customers``, ``--projects``
and ``--invoices``), and two runs are measured per N: the first run (everything is created: bound
by Fortnox's limit) and a second run with nothing changed (bound by Meltano's and Python's start-up
CPU). Figures: wall time of the batch, records and Fortnox requests per second summed over the
tenants, 429 answers, CPU seconds (user + system of every child process) per tenant run.

    .venv/bin/python scripts/simulate_tenants.py --tenants 1 2 4 8
    .venv/bin/python scripts/simulate_tenants.py --tenants 1 2 4 8 --write docs/SCALING.md

``--write`` replaces the table between the ``<!-- simulation:begin -->`` and
``<!-- simulation:end -->`` markers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sandbox.launcher import SandboxProcess

ROOT = Path(__file__).resolve().parents[1]
MELTANO = str(Path(sys.executable).parent / "meltano")
BEGIN, END = "<!-- simulation:begin -->", "<!-- simulation:end -->"
FORTNOX_LIMIT_PER_SECOND = 25 / 5


@dataclass
class Tenant:
    """One tenant's two sandboxes and its private Meltano folders."""

    name: str
    fortnox: SandboxProcess
    moment: SandboxProcess
    workdir: Path
    sys_dir: Path

    def env(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("TAP_", "TARGET_", "MELTANO_"))
        }
        env.update(
            {
                "MELTANO_ENVIRONMENT": "dev",
                "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
                "MELTANO_SYS_DIR_ROOT": str(self.sys_dir),
                "MELTANO_STATE_BACKEND_URI": (self.workdir / "state").as_uri(),
                "MELTANO_DATABASE_URI": f"sqlite:///{self.workdir / 'meltano.db'}",
                "TAP_MOMENT_API_URL": f"{self.moment.url}/api/1.0",
                "TAP_MOMENT_RESULTS_DIR": str(self.workdir / "results"),
                "TARGET_FORTNOX_API_URL": f"{self.fortnox.url}/3",
                "TARGET_FORTNOX_TOKEN_URL": f"{self.fortnox.url}/oauth-v1/token",
                "TARGET_FORTNOX_TOKEN_STORE_PATH": str(self.workdir / "fortnox-token.json"),
                "TARGET_FORTNOX_RESULTS_DIR": str(self.workdir / "results"),
            }
        )
        if not (self.workdir / "fortnox-token.json").exists():
            minted = self.fortnox.admin("POST", "refresh-tokens", {})
            env["TARGET_FORTNOX_REFRESH_TOKEN"] = minted["refresh_token"]
        return env


@dataclass
class Measurement:
    tenants: int
    run: str
    wall_seconds: float
    records: int
    requests: int
    throttled: int
    cpu_seconds: float
    failed: int

    def row(self) -> str:
        per_tenant_rps = self.requests / self.tenants / self.wall_seconds
        return (
            f"| {self.tenants} | {self.run} | {self.wall_seconds:.1f} | {self.records} | "
            f"{self.records / self.wall_seconds:.1f} | {self.requests} | "
            f"{self.requests / self.wall_seconds:.1f} | {per_tenant_rps:.2f} | {self.throttled} | "
            f"{self.cpu_seconds / self.tenants:.1f} | {self.failed} |"
        )


HEADER = (
    "| tenants | run | wall s | records | records/s | Fortnox requests | requests/s | "
    "requests/s per tenant | 429s | CPU s per tenant run | failed runs |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


@contextmanager
def tenants(
    count: int, root: Path, sizes: dict[str, int], installed: Path
) -> Iterator[list[Tenant]]:
    with ExitStack() as stack:
        made = []
        for i in range(count):
            workdir = root / f"tenant-{i}"
            workdir.mkdir()
            fortnox = stack.enter_context(
                SandboxProcess("fortnox", workdir / "fortnox.db", seed=1)  # limiter ON (25 / 5 s)
            )
            moment = stack.enter_context(SandboxProcess("moment", workdir / "moment.db"))
            moment.admin("POST", "seed", {"seed": i + 1, **sizes})
            sys_dir = _private_sys_dir(installed, workdir / ".meltano")
            made.append(Tenant(f"tenant-{i}", fortnox, moment, workdir, sys_dir))
        yield made


def _private_sys_dir(installed: Path, target: Path) -> Path:
    """A Meltano system dir sharing the installed plugin venvs but with its own ``run/``.

    Measured, not assumed: concurrent `meltano run`s of one plugin in one system dir share
    ``run/<plugin>/tap.properties.json`` (the catalog) and race on it ("Invalid catalog"), so every
    concurrently running task needs its own run directory (a container per task has one anyway).
    """
    target.mkdir()
    for entry in installed.iterdir():
        if entry.name in ("extractors", "loaders", "utilities", "mappers", "orchestrators"):
            (target / entry.name).symlink_to(entry.resolve(), target_is_directory=True)
    return target


def run_batch(group: list[Tenant], label: str) -> Measurement:
    """Start every tenant's `meltano run` at once; wait for all; read the sandboxes' logs."""
    marks = [t.fortnox.admin("GET", "requests?since=0")["last"] for t in group]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [MELTANO, "run", "moment-to-fortnox"],
            cwd=ROOT,
            env=t.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for t in group
    ]
    errors = [p.communicate()[1] for p in procs]
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    failed = 0
    for t, p, err in zip(group, procs, errors, strict=True):
        if p.returncode != 0:
            failed += 1
            print(f"{t.name}: meltano run failed:\n{err[-3000:]}", file=sys.stderr)
    requests = throttled = 0
    for t, mark in zip(group, marks, strict=True):
        log = t.fortnox.admin("GET", f"requests?since={mark}")["requests"]
        api = [r for r in log if r["path"].startswith("/3/")]
        requests += len(api)
        throttled += sum(1 for r in api if r["status"] == 429)
    records = sum(_records_written(t) for t in group)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measurement(len(group), label, wall, records, requests, throttled, cpu, failed)


def _records_written(tenant: Tenant) -> int:
    """Records the last run created or updated (from target-fortnox's run summary)."""
    runs = sorted((tenant.workdir / "results" / "runs").glob("*target-fortnox*.json"))
    if not runs:
        return 0
    streams = json.loads(runs[-1].read_text())["streams"]
    return sum(int(s.get("created", 0)) + int(s.get("updated", 0)) for s in streams.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tenants", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--projects", type=int, default=10)
    parser.add_argument("--invoices", type=int, default=10)
    parser.add_argument("--write", type=Path, help="replace the table in this Markdown file")
    parser.add_argument(
        "--sys-dir",
        type=Path,
        help="a Meltano system dir to install the plugins into first (default: the project's "
        ".meltano, already installed); keeps the runs apart from other `meltano install`s on a "
        "shared checkout. Each tenant links its venvs and gets its own run directory.",
    )
    args = parser.parse_args(argv)
    sizes = {
        "customers": args.customers,
        "projects": args.projects,
        "invoices": args.invoices,
        "expenses": 0,
    }
    installed = (args.sys_dir or ROOT / ".meltano").resolve()
    if args.sys_dir:
        env = {**os.environ, "MELTANO_SYS_DIR_ROOT": str(installed)}
        subprocess.run([MELTANO, "install"], cwd=ROOT, env=env, check=True, capture_output=True)
    rows = []
    for count in args.tenants:
        root = Path(tempfile.mkdtemp(prefix=f"simulate-{count}-"))
        try:
            with tenants(count, root, sizes, installed) as group:
                for label in ("first (creates)", "second (no change)"):
                    measured = run_batch(group, label)
                    print(measured.row(), flush=True)
                    rows.append(measured.row())
        finally:
            shutil.rmtree(root, ignore_errors=True)
    counts = " ".join(map(str, args.tenants))
    table = "\n".join(
        [
            f"Produced by `scripts/simulate_tenants.py --tenants {counts}`"
            f" on {datetime.now(UTC):%Y-%m-%d}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}; workload per tenant: {args.customers} customers, "
            f"{args.projects} projects, {args.invoices} Moment invoices (the finalised ones are "
            f"pushed); Fortnox limit {FORTNOX_LIMIT_PER_SECOND:.0f} requests/s per tenant.",
            "",
            HEADER,
            *rows,
        ]
    )
    print()
    print(table)
    if args.write:
        text = args.write.read_text(encoding="utf-8")
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        args.write.write_text(f"{head}{BEGIN}\n{table}\n{END}{tail}", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
