"""One run of one tenant's Meltano job on a worker that keeps nothing.

Every run gets a private working directory, made at its start and removed at its end, as a fresh
container would: Meltano's run files (``.meltano/run``, catalogs, plugin configs, logs), the
plugins' results folders. The plugins themselves were installed once (``meltano install`` at image
build time) and are linked, read only. Everything that must outlive the run is in PostgreSQL:
Meltano's state (its system database), the Fortnox token chain, the rate-limit window and the run
stores (the tenant's ``?tenant=`` rows of ``MOMENT_FORTNOX_STORE_URL``). So the next run of the
tenant may be on any worker, and a worker that dies takes nothing with it that a run relies on.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

from moment_fortnox_orchestrator.settings import OrchestratorSettings
from moment_fortnox_orchestrator.tenants import Tenant

MELTANO = str(Path(sys.executable).parent / "meltano")
# Variables of the orchestrator that a run must not inherit: plugin settings are the tenant's
# (its environment and secrets), never the daemon's.
_NOT_INHERITED = ("TAP_", "TARGET_", "MELTANO_", "DAGSTER_", "MOMENT_FORTNOX_")
_PLUGIN_KINDS = ("extractors", "loaders", "mappers", "utilities")
_STOP_GRACE_SECONDS = 10.0


class WorkerError(RuntimeError):
    """A run could not start (missing secrets, plugins not installed)."""


@dataclass(frozen=True)
class RunResult:
    """How one ``meltano run`` ended and what it cost."""

    tenant: str
    job: str
    exit_code: int
    wall_seconds: float
    cpu_seconds: float  # user + system of meltano and every plugin process it waited for
    work_dir: str
    output_tail: str

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0

    def describe(self) -> str:
        if self.exit_code < 0:
            ended = f"was killed by signal {-self.exit_code}"
        else:
            ended = f"exited {self.exit_code}"
        return (
            f"tenant {self.tenant}: meltano run {self.job} {ended} after "
            f"{self.wall_seconds:.1f} s ({self.cpu_seconds:.1f} CPU s) in {self.work_dir}"
        )


def tenant_secrets(settings: OrchestratorSettings, tenant: Tenant) -> dict[str, str]:
    """The tenant's secrets file (``<secrets dir>/<name>.env``, KEY=VALUE lines)."""
    path = settings.secrets_dir / f"{tenant.name}.env"
    if not path.is_file():
        raise WorkerError(
            f"tenant {tenant.name}: no secrets file {path}; create it with the tenant's "
            "TAP_MOMENT_API_KEY, TARGET_MOMENT_API_KEY, TARGET_FORTNOX_CLIENT_SECRET, "
            "TAP_FORTNOX_EXPENSES_CLIENT_SECRET (and TARGET_FORTNOX_REFRESH_TOKEN for the first "
            "run); orchestrator/README.md, 'Adding a tenant'"
        )
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def run_environment(
    settings: OrchestratorSettings, tenant: Tenant, work_dir: Path, run_id: str
) -> dict[str, str]:
    """The environment of the tenant's ``meltano run``.

    It names the shared PostgreSQL stores under the tenant's name, this run's private folders,
    then the tenant's secrets (which win).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    store = settings.tenant_store_url(tenant.name)
    results = str(work_dir / "results")
    env.update(
        {
            "MELTANO_DATABASE_URI": settings.meltano_database_uri,
            "MELTANO_STATE_BACKEND_URI": "systemdb",
            "MELTANO_SYS_DIR_ROOT": str(work_dir / ".meltano"),
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
            "TARGET_FORTNOX_TOKEN_STORE_URL": store,
            "TAP_FORTNOX_EXPENSES_TOKEN_STORE_URL": store,
            "TARGET_MOMENT_RUN_STORE_URL": store,
            "TAP_MOMENT_RESULTS_DIR": results,
            "TARGET_FORTNOX_RESULTS_DIR": results,
            "TAP_FORTNOX_EXPENSES_RESULTS_DIR": results,
            "TARGET_MOMENT_RESULTS_DIR": results,
            # Names the processes of this run (for operators, and for tests that stop a worker).
            "MOMENT_FORTNOX_TENANT": tenant.name,
            "MOMENT_FORTNOX_RUN_ID": run_id,
        }
    )
    env.update(tenant_secrets(settings, tenant))
    return env


def private_sys_dir(plugins_dir: Path, work_dir: Path) -> Path:
    """Make this run's Meltano system directory: its own ``run/`` and logs, the plugins linked.

    Two runs in one system directory race on ``run/<plugin>/`` (docs/SCALING.md).
    """
    if not (plugins_dir / "extractors").is_dir():
        raise WorkerError(
            f"no installed plugins under {plugins_dir}: run `meltano install` in the project "
            "once (at image build time) or set MOMENT_FORTNOX_PLUGINS_DIR"
        )
    sys_dir = work_dir / ".meltano"
    sys_dir.mkdir()
    for kind in _PLUGIN_KINDS:
        if (plugins_dir / kind).is_dir():
            (sys_dir / kind).symlink_to((plugins_dir / kind).resolve(), target_is_directory=True)
    return sys_dir


def run_job(
    settings: OrchestratorSettings,
    tenant: Tenant,
    job: str,
    run_id: str,
    log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    *,
    echo: bool = True,
) -> RunResult:
    """``meltano --environment tenant-<name> run <job>`` in a private working directory.

    Its output goes to stdout (``echo``), its last lines into the result.
    """
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix=f"{tenant.name}-{job}-", dir=settings.work_dir))
    try:
        private_sys_dir(settings.plugins_dir, work_dir)
        env = run_environment(settings, tenant, work_dir, run_id)
        # --force: the run queue already allows one run per tenant, and Meltano's own guard would
        # refuse every run of the tenant for minutes after a worker was lost mid-run ("Another
        # '…' pipeline is already running", until its heartbeat goes stale). --no-install: the
        # plugins are installed once, at build time, never by a run.
        argv = [MELTANO, "--environment", tenant.environment, "run", "--no-install", "--force", job]
        log.info("tenant %s: %s (work dir %s)", tenant.name, " ".join(argv[1:]), work_dir)
        exit_code, wall, cpu, tail = _run(argv, env, settings, log, echo)
        return RunResult(tenant.name, job, exit_code, wall, cpu, str(work_dir), tail)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _run(
    argv: list[str],
    env: dict[str, str],
    settings: OrchestratorSettings,
    log: logging.Logger | logging.LoggerAdapter[logging.Logger],
    echo: bool,
) -> tuple[int, float, float, str]:
    """Run to the end (or the timeout); the exit code, wall and CPU seconds, the output's tail."""
    started = time.monotonic()
    process = subprocess.Popen(
        argv,
        cwd=settings.project_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a timeout stops tap and target too
    )
    timer = threading.Timer(settings.run_timeout_seconds, _stop_group, (process.pid, log))
    timer.start()
    tail: deque[str] = deque(maxlen=60)
    assert process.stdout is not None
    for line in process.stdout:
        tail.append(line.rstrip())
        # Meltano's log goes to the run's captured stdout (Dagster's compute log), not one
        # event row per line in the instance's database.
        if echo:
            sys.stdout.write(line)
    # wait4: the CPU of meltano and of every plugin process it waited for.
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    timer.cancel()
    cpu = usage.ru_utime + usage.ru_stime
    return process.returncode, time.monotonic() - started, cpu, "\n".join(tail)


def _stop_group(pid: int, log: logging.Logger | logging.LoggerAdapter[logging.Logger]) -> None:
    log.error("the run took longer than its timeout; stopping it")
    try:
        os.killpg(pid, signal.SIGTERM)
        time.sleep(_STOP_GRACE_SECONDS)
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
