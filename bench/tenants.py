"""The ``tenants`` rows: what one tenant's no-change run costs, and how many tenants fit.

That is the cost of a no-change ``moment-to-fortnox`` run, and so how many tenants one machine
sustains at */5 (docs/SCALING.md).

The local three-tenant stack (``moment_fortnox_orchestrator.local``: PostgreSQL, one Fortnox host
with three companies at the real limit, one Moment with three companies) without its daemon. Per
tenant, through the orchestrator's own worker code (``worker.run_job``: a private work dir,
state, tokens and run stores in PostgreSQL):

1. a first run creates everything (set-up, not measured);
2. **ours**: a second run with nothing changed: wall time and CPU (user + system) of ``meltano
   run`` and every process it waited for (discovery, tap, target);
3. **baseline** (the plugins alone): the same no-change work as ``tap-moment --state | target-
   fortnox`` with the configs and state Meltano would hand them, no Meltano;

the difference is Meltano's own start-up, config and catalog discovery. Beside it the CPU a
Dagster run worker spends loading the code location before its op starts (a Python process that
builds the definitions: a proxy, the run worker does that and little else besides the op).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from moment_fortnox_orchestrator import local, worker
from moment_fortnox_orchestrator.settings import OrchestratorSettings
from moment_fortnox_orchestrator.tenants import load_tenants

from bench.scenarios import Row

NEVER = "0 3 1 1 *"  # schedules that do not fire during the bench
CORES = 2
PERIOD_SECONDS = 300  # */5


def _wait4(process: subprocess.Popen[Any]) -> float:
    """Reap ``process``; the CPU seconds of it and of the children it waited for."""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def _meltano(env: dict[str, str], settings: OrchestratorSettings, *args: str) -> str:
    done = subprocess.run(
        [worker.MELTANO, *args],
        cwd=settings.project_dir,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def plugins_alone(settings: OrchestratorSettings, tenant: Any) -> tuple[float, float]:
    """The no-change work of tap-moment | target-fortnox without Meltano: (wall s, CPU s)."""
    with tempfile.TemporaryDirectory(dir=settings.work_dir) as folder:
        work = Path(folder)
        worker.private_sys_dir(settings.plugins_dir, work)
        env = worker.run_environment(settings, tenant, work, "bench")
        flags = ("--environment", tenant.environment)
        paths = {}
        for plugin in ("tap-moment", "target-fortnox"):
            config = _meltano(
                env, settings, *flags, "invoke", "--no-install", "--dump=config", plugin
            )
            paths[plugin] = work / f"{plugin}.json"
            paths[plugin].write_text(config)
        state_id = f"{tenant.environment}:tap-moment-to-target-fortnox"
        state = json.loads(_meltano(env, settings, *flags, "state", "get", state_id))
        paths["state"] = work / "state.json"
        paths["state"].write_text(json.dumps(state["singer_state"]))
        plugins = settings.plugins_dir.resolve()
        tap_bin = plugins / "extractors" / "tap-moment" / "venv" / "bin" / "tap-moment"
        target_bin = plugins / "loaders" / "target-fortnox" / "venv" / "bin" / "target-fortnox"
        started = time.monotonic()
        tap = subprocess.Popen(
            [str(tap_bin), "--config", str(paths["tap-moment"]), "--state", str(paths["state"])],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        target = subprocess.Popen(
            [str(target_bin), "--config", str(paths["target-fortnox"])],
            stdin=tap.stdout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        assert tap.stdout is not None
        tap.stdout.close()
        cpu = _wait4(tap) + _wait4(target)
        wall = time.monotonic() - started
        if tap.returncode or target.returncode:
            raise RuntimeError(f"plugins alone: tap {tap.returncode}, target {target.returncode}")
        return wall, cpu


def code_location_load() -> float:
    """CPU seconds of a Python process that builds the Dagster definitions (run worker start-up)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from moment_fortnox_orchestrator.definitions import build_definitions; "
            "build_definitions()",
        ],
        env=os.environ.copy(),
    )
    return _wait4(process)


def tenant_run_cost(workdir: Path) -> list[Row]:
    """Measure a no-change run per tenant on the local stack under ``workdir``: the rows."""
    specs = tuple(
        local.TenantSpec(
            t.name,
            t.fortnox_tenant_id,
            t.timezone,
            NEVER,
            NEVER,
            t.moment_seed,
            {"customers": 20, "projects": 20, "invoices": 10, "expenses": 0},
        )
        for t in local.DEFAULT_TENANTS
    )
    stack = local.up(workdir, specs, orchestrator=False)
    try:
        env = stack.env()
        settings = OrchestratorSettings.from_env(env)
        ours: list[tuple[float, float]] = []
        alone: list[tuple[float, float]] = []
        saved = dict(os.environ)
        os.environ.update(env)  # code_location_load builds the definitions from these
        try:
            for tenant in load_tenants(settings.project_dir):
                log = logging.getLogger("bench.tenants")
                first = worker.run_job(
                    settings, tenant, "moment-to-fortnox", "bench-1", log, echo=False
                )
                again = worker.run_job(
                    settings, tenant, "moment-to-fortnox", "bench-2", log, echo=False
                )
                if not (first.succeeded and again.succeeded):
                    failed = f"{first.describe()}; {again.describe()}"
                    raise RuntimeError(f"{failed}\n{again.output_tail}")
                ours.append((again.wall_seconds, again.cpu_seconds))
                alone.append(plugins_alone(settings, tenant))
            dagster_cpu = statistics.median(code_location_load() for _ in range(3))
        finally:
            os.environ.clear()
            os.environ.update(saved)
    finally:
        local.down(workdir)
    return rows(ours, alone, dagster_cpu)


def rows(
    ours: list[tuple[float, float]], alone: list[tuple[float, float]], dagster_cpu: float
) -> list[Row]:
    """The rows from the measured (wall, CPU) pairs: medians and the tenants a machine sustains."""
    wall, cpu = (statistics.median(x[i] for x in ours) for i in (0, 1))
    wall_alone, cpu_alone = (statistics.median(x[i] for x in alone) for i in (0, 1))
    meltano_own = cpu - cpu_alone
    per_run = cpu + dagster_cpu
    sustained = int(CORES * PERIOD_SECONDS / per_run)
    sustained_alone = int(CORES * PERIOD_SECONDS / cpu_alone)
    scenario = "tenants (*/5)"
    return [
        Row(
            scenario,
            "no-change moment-to-fortnox run per tenant: wall s / CPU s",
            "—",
            f"{wall:.1f} / {cpu:.1f}",
            f"{wall_alone:.1f} / {cpu_alone:.1f}",
            None,
            f"median of 3 tenants; ours = `meltano run` (discovery, tap, target); baseline = "
            f"tap-moment --state | target-fortnox alone, same configs and state; per tenant "
            f"ours {', '.join(f'{w:.1f}/{c:.1f}' for w, c in ours)}",
        ),
        Row(
            scenario,
            "of which Meltano's own start-up, config and discovery: CPU s",
            "—",
            f"{meltano_own:.1f}",
            "0",
            None,
            f"{meltano_own / cpu:.0%} of the run's CPU; the plugins' work is {cpu_alone:.1f} CPU s",
        ),
        Row(
            scenario,
            "Dagster run worker start-up (code location load): CPU s",
            "—",
            f"{dagster_cpu:.1f}",
            "—",
            None,
            "median of 3 processes building the definitions, as each run worker does first",
        ),
        Row(
            scenario,
            f"tenants one {CORES}-core machine sustains at */5 (CPU-bound)",
            "—",
            str(sustained),
            str(sustained_alone),
            None,
            f"{CORES} × {PERIOD_SECONDS} s / ({cpu:.1f} + {dagster_cpu:.1f}) CPU s per run; "
            f"baseline: the plugins alone, {cpu_alone:.1f} CPU s (one long-lived process per "
            "tenant group would approach it); webhook-triggered runs instead of polling cut the "
            "runs of quiet tenants instead",
        ),
    ]
