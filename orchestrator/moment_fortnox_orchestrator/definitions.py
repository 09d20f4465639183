"""The Dagster code location: both jobs for every tenant, their schedules and the webhook sensor.

- Two jobs, ``moment_to_fortnox`` and ``fortnox_expenses_to_moment``, partitioned by tenant (one
  static partition per ``tenant-<name>`` environment). A run is one ``meltano run`` of one tenant
  on a worker that keeps nothing (``worker.py``).
- Every run carries the tag ``moment-fortnox/tenant=<name>``; the instance's run queue allows one
  run per value of that tag (``instance.py``), so a tenant's runs never overlap (its Fortnox limit
  and its bookmarks are one tenant's), and ``max_concurrent_runs`` runs of different tenants at
  once.
- Schedules in the tenant's time zone: one schedule per job, cron and time zone, asking for one
  run per tenant that has them (tenants with the same cron and zone share a schedule, so a
  thousand tenants are a handful of schedules).
- The sensor ``moment_webhooks`` drains the push requests of the webhook receivers
  (``push_requests.py``): a burst is one run, and no second push of a tenant is queued while one
  is waiting.
- A failed run is retried once, as a new run (on any worker): ``dagster/max_retries``.

The tenants are read from the Meltano project when the code location loads; the daemon reloads it
every minute, so a new tenant's schedules start without a restart.

(No ``from __future__ import annotations`` here: Dagster reads the op's context annotation.)
"""

import re
from collections import defaultdict
from collections.abc import Iterable, Iterator

import dagster as dg
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter

from moment_fortnox_orchestrator import push_requests
from moment_fortnox_orchestrator.settings import OrchestratorSettings
from moment_fortnox_orchestrator.tenants import Tenant, load_tenants
from moment_fortnox_orchestrator.worker import run_job

TENANT_TAG = "moment-fortnox/tenant"
# Dagster job name -> Meltano job name.
JOBS = {
    "moment_to_fortnox": "moment-to-fortnox",
    "fortnox_expenses_to_moment": "fortnox-expenses-to-moment",
}
PUSH_JOB = "moment_to_fortnox"
WAITING = [DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING]


def run_tags(tenant: str, settings: OrchestratorSettings) -> dict[str, str]:
    """The tags of a run of ``tenant``: its tenant (one run per tenant), one retry, a time limit."""
    return {
        TENANT_TAG: tenant,
        "dagster/max_retries": "1",
        # Run monitoring fails a run whose worker vanished once this much time has passed.
        "dagster/max_runtime": str(int(settings.run_timeout_seconds) + 120),
    }


def build_definitions(settings: OrchestratorSettings | None = None) -> dg.Definitions:
    """The code location's jobs, schedules and webhook sensor for the tenants of the project."""
    settings = settings or OrchestratorSettings.from_env()
    tenants = {tenant.name: tenant for tenant in load_tenants(settings.project_dir)}
    partitions = dg.StaticPartitionsDefinition(list(tenants))
    jobs = {name: _job(name, meltano, partitions, settings) for name, meltano in JOBS.items()}
    schedules = [
        schedule
        for name, job in jobs.items()
        for schedule in _schedules(job, JOBS[name], tenants.values(), settings)
    ]
    sensor = _webhook_sensor(jobs[PUSH_JOB], set(tenants), settings)
    return dg.Definitions(jobs=list(jobs.values()), schedules=schedules, sensors=[sensor])


def _job(
    name: str, meltano_job: str, partitions: dg.PartitionsDefinition, settings: OrchestratorSettings
) -> dg.JobDefinition:
    @dg.op(name=f"{name}_run", out=dg.Out(dict))
    def run_meltano(context: dg.OpExecutionContext) -> dg.Output[dict[str, object]]:
        tenants = {t.name: t for t in load_tenants(settings.project_dir)}
        tenant = tenants.get(context.partition_key)
        if tenant is None:
            raise dg.Failure(
                f"tenant {context.partition_key!r} has no environment tenant-"
                f"{context.partition_key} in {settings.project_dir / 'meltano.yml'} any more"
            )
        result = run_job(settings, tenant, meltano_job, context.run_id, context.log)
        summary: dict[str, object] = {
            "tenant": result.tenant,
            "job": result.job,
            "exit_code": result.exit_code,
            "wall_seconds": round(result.wall_seconds, 2),
            "cpu_seconds": round(result.cpu_seconds, 2),
            "work_dir": result.work_dir,
        }
        if not result.succeeded:
            raise dg.Failure(
                description=f"{result.describe()}\n{result.output_tail[-3000:]}",
                metadata=summary,  # type: ignore[arg-type]
            )
        context.log.info(result.describe())
        return dg.Output(summary, metadata=summary)  # type: ignore[arg-type]

    @dg.job(
        name=name,
        partitions_def=partitions,
        tags={"moment-fortnox/job": meltano_job},
        executor_def=dg.in_process_executor,  # one op: no second Python process per run
    )
    def tenant_job() -> None:
        run_meltano()

    return tenant_job


def schedule_name(job: str, cron: str, timezone: str) -> str:
    """A readable, stable name: ``moment_to_fortnox__every_5_min__Europe_Stockholm``."""
    every = re.fullmatch(r"\*/(\d+) \* \* \* \*", cron)
    when = f"every_{every.group(1)}_min" if every else "at_" + re.sub(r"\W+", "_", cron)
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{job}__{when}__{timezone}").strip("_")


def _schedules(
    job: dg.JobDefinition,
    meltano_job: str,
    tenants: Iterable[Tenant],
    settings: OrchestratorSettings,
) -> list[dg.ScheduleDefinition]:
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for tenant in tenants:
        groups[tenant.schedule(meltano_job), tenant.timezone].append(tenant.name)
    return [
        _schedule(job, cron, timezone, names, settings)
        for (cron, timezone), names in sorted(groups.items())
    ]


def _schedule(
    job: dg.JobDefinition,
    cron: str,
    timezone: str,
    names: list[str],
    settings: OrchestratorSettings,
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=schedule_name(job.name, cron, timezone),
        cron_schedule=cron,
        execution_timezone=timezone,
        job=job,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"{job.name} for {', '.join(names)} ({cron}, {timezone})",
    )
    def tenants_schedule(context: dg.ScheduleEvaluationContext) -> Iterator[dg.RunRequest]:
        for name in names:
            yield dg.RunRequest(run_key=name, partition_key=name, tags=run_tags(name, settings))

    return tenants_schedule


def _webhook_sensor(
    push_job: dg.JobDefinition, tenants: set[str], settings: OrchestratorSettings
) -> dg.SensorDefinition:
    @dg.sensor(
        name="moment_webhooks",
        job=push_job,
        minimum_interval_seconds=settings.webhook_poll_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="one push per tenant for the webhook bursts its receiver queued",
    )
    def moment_webhooks(context: dg.SensorEvaluationContext) -> Iterator[dg.RunRequest]:
        found = push_requests.pending(settings.store_url, int(context.cursor or 0))
        for tenant, count in sorted(found.by_tenant.items()):
            if tenant not in tenants:
                context.log.warning(f"push requested for unknown tenant {tenant!r}; ignored")
            elif _push_waiting(context.instance, tenant):
                context.log.info(f"tenant {tenant}: {count} request(s); a push is already queued")
            else:
                context.log.info(f"tenant {tenant}: {count} request(s) -> one push")
                yield dg.RunRequest(
                    run_key=f"webhook-{tenant}-{found.cursor}",
                    partition_key=tenant,
                    tags={**run_tags(tenant, settings), "moment-fortnox/trigger": "webhook"},
                )
        context.update_cursor(str(found.cursor))

    return moment_webhooks


def _push_waiting(instance: dg.DagsterInstance, tenant: str) -> bool:
    runs = instance.get_run_records(
        filters=RunsFilter(job_name=PUSH_JOB, statuses=WAITING, tags={TENANT_TAG: tenant}),
        limit=1,
    )
    return bool(runs)


# What `dagster-daemon run -w workspace.yaml` loads (instance.py writes the workspace); built
# when the code location loads, so the tenants are those of meltano.yml at that moment.
@dg.definitions
def defs() -> dg.Definitions:
    """The code location, built from the environment's settings (``build_definitions``)."""
    return build_definitions()
