"""Three tenants on Dagster, end to end (orchestrator/, docs/SCALING.md).

The local stack of `make tenants-up` in a folder of this test: PostgreSQL (Meltano's state, the
Fortnox token chains, rate-limit windows and run stores, Dagster's instance), one Fortnox sandbox
host serving three companies with the real limit (25 requests per 5 s per company), one Moment
sandbox with three companies, a webhook receiver per tenant, and `dagster-daemon`.

1. Both jobs of every tenant are due at one whole minute that has just passed, each as that
   minute's local time in the tenant's own zone. The schedules' state says they started half a
   minute before it, as if the daemon had been up then: its first pass runs that tick (a missed
   tick is caught up), so the test waits for no clock. The run queue takes two runs at a time,
   one per tenant.
2. The first push under way (~30 creates; whichever tenant's the queue started first) is killed
   mid-way (its meltano, tap and target, as a lost worker would be); Dagster retries it as a new
   run in a new work dir.
3. A burst of Moment edits at that tenant fires webhooks; the receiver turns them into one push
   request, the sensor into one run, which brings the edits to that tenant's Fortnox.
4. Then: every Fortnox company holds exactly its own Moment company's customers, projects and
   invoices, each created once; every Moment company holds only expenses of its own Fortnox
   company; state and token chains per tenant; no 429 at any company; runs of one tenant never
   overlapped, never more than two at once; the plugins shared by all runs were not reinstalled.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

psycopg = pytest.importorskip("psycopg")
dg = pytest.importorskip("dagster", reason="dagster (orchestrator/) not installed")

from dagster._core.definitions.run_request import InstigatorType  # noqa: E402
from dagster._core.scheduler.instigation import (  # noqa: E402
    InstigatorState,
    InstigatorStatus,
    ScheduleInstigatorData,
)
from dagster._core.storage.dagster_run import DagsterRunStatus, RunsFilter  # noqa: E402
from dagster._core.storage.tags import (  # noqa: E402
    PARENT_RUN_ID_TAG,
    PARTITION_NAME_TAG,
    SCHEDULED_EXECUTION_TIME_TAG,
)
from dagster._core.workspace.context import WorkspaceProcessContext  # noqa: E402
from dagster._core.workspace.load_target import WorkspaceFileTarget  # noqa: E402
from moment_fortnox_orchestrator import local  # noqa: E402
from moment_fortnox_orchestrator.definitions import TENANT_TAG, schedule_name  # noqa: E402
from sandbox.postgres import find_bindir  # noqa: E402

pytestmark = pytest.mark.e2e

MAX_CONCURRENT_RUNS = 2
SIZES = {"customers": 12, "projects": 12, "invoices": 8, "expenses": 0}
DEADLINE_SECONDS = 300  # every wait below is bounded by this
EDITED = range(1001, 1013)  # the customers the webhook burst edits (each company has them)


def local_cron(due: datetime, timezone: str) -> str:
    """Daily at ``due``'s wall-clock minute in ``timezone``."""
    there = due.astimezone(ZoneInfo(timezone))
    return f"{there.minute} {there.hour} * * *"


@pytest.fixture(scope="module")
def stack(
    meltano_installed: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[local.Stack, datetime]]:
    if find_bindir() is None:
        pytest.skip("PostgreSQL server binaries are not installed (apt-get install postgresql)")
    due = datetime.now(UTC).replace(second=0, microsecond=0)  # the minute just passed
    tenants = tuple(
        local.TenantSpec(
            spec.name,
            spec.fortnox_tenant_id,
            spec.timezone,
            push_schedule=local_cron(due, spec.timezone),
            expenses_schedule=local_cron(due, spec.timezone),
            moment_seed=spec.moment_seed,
            moment_sizes=SIZES,
        )
        for spec in local.DEFAULT_TENANTS
    )
    root = tmp_path_factory.mktemp("tenants")
    started = local.up(root, tenants, max_concurrent_runs=MAX_CONCURRENT_RUNS, orchestrator=False)
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in started.env().items():
                patch.setenv(key, value)
            with dg.DagsterInstance.get() as instance:
                started_at = due - timedelta(seconds=30)
                assert len(start_schedules(instance, root, started_at)) == 6
        local.start_orchestrator(started, tenants, webserver=False)
        yield started, due
    finally:
        local.down(root)


def start_schedules(instance: Any, root: Path, started_at: datetime) -> list[str]:
    """Write each schedule's state as the daemon's first pass would, but started at
    ``started_at``: the daemon then runs the ticks due since, in each schedule's time zone."""
    target = WorkspaceFileTarget(paths=[str(root / "dagster" / "workspace.yaml")])
    names = []
    with WorkspaceProcessContext(instance, target) as workspace:
        location = workspace.create_request_context().get_code_location("moment-fortnox")
        for repository in location.get_repositories().values():
            for schedule in repository.get_schedules():
                data = ScheduleInstigatorData(schedule.cron_schedule, started_at.timestamp())
                instance.add_instigator_state(
                    InstigatorState(
                        schedule.get_remote_origin(),
                        InstigatorType.SCHEDULE,
                        InstigatorStatus.DECLARED_IN_CODE,
                        data,
                    )
                )
                names.append(schedule.name)
    return names


@pytest.fixture(scope="module")
def instance(stack: tuple[local.Stack, datetime]) -> Iterator[Any]:
    env = stack[0].env()
    with pytest.MonkeyPatch.context() as patch:
        for key in ("DAGSTER_HOME", local.POSTGRES_URL_ENV):
            patch.setenv(key, env[key])
        with dg.DagsterInstance.get() as found:
            yield found


def runs(instance: Any, tenant: str | None = None, job: str | None = None) -> list[Any]:
    tags = {TENANT_TAG: tenant} if tenant else {}
    return list(instance.get_run_records(filters=RunsFilter(job_name=job, tags=tags)))


def wait_for(what: str, check: Any, stack: local.Stack, timeout: float = DEADLINE_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    daemon = (Path(stack.root) / "logs" / "dagster-daemon.log").read_text(errors="replace")
    pytest.fail(f"timed out waiting for {what}; daemon log tail:\n{daemon[-6000:]}")


def fortnox_writes(stack: local.Stack, tenant_id: int, since: int = 0) -> list[dict[str, Any]]:
    log = local.admin(stack.fortnox_url, "GET", f"requests?since={since}&tenant={tenant_id}")
    return [r for r in log["requests"] if r["method"] == "POST" and r["path"].startswith("/3/")]


def meltano_process(stack: local.Stack, tenant: str) -> tuple[int, str] | None:
    """The process group and Dagster run id of the tenant's running `meltano run` (of this
    stack: its work dir is under the stack's, whatever other sessions run on the machine)."""
    workers = f"MELTANO_SYS_DIR_ROOT={Path(stack.root) / 'workers'}/".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # `meltano` is a Python script: [python, .../meltano, --environment, …]
        if (
            f"MOMENT_FORTNOX_TENANT={tenant}".encode() in environ
            and any(v.startswith(workers) for v in environ)
            and any(part.endswith(b"/meltano") for part in cmdline[:2])
        ):
            run_id = next(
                (v.split(b"=", 1)[1] for v in environ if v.startswith(b"MOMENT_FORTNOX_RUN_ID=")),
                b"",
            )
            return os.getpgid(int(entry.name)), run_id.decode()
    return None


def plugin_venvs() -> dict[str, tuple[int, str, tuple[str, ...]]]:
    """Each installed plugin's venv (shared by every run): its inode, fingerprint, executables."""
    found = {}
    for venv in sorted((local.REPO / ".meltano").glob("*/*/venv")):
        fingerprint = venv / ".meltano_plugin_fingerprint"
        found[str(venv)] = (
            venv.stat().st_ino,
            fingerprint.read_text() if fingerprint.exists() else "",
            tuple(sorted(p.name for p in (venv / "bin").iterdir())),
        )
    return found


def test_three_tenants_on_dagster(stack: tuple[local.Stack, datetime], instance: Any) -> None:
    started, due = stack
    venvs = plugin_venvs()
    assert any(v.endswith("extractors/tap-moment/venv") for v in venvs), venvs

    # 1.-2. The tick of the minute just passed; the first push under way is killed after 8 of
    # its ~30 creates (it needs 5 s more at the limit), SIGKILL to meltano, tap and target.
    victim = wait_for(
        "a tenant's first creates",
        lambda: next(
            (
                t
                for t in local.DEFAULT_TENANTS
                if len(fortnox_writes(started, t.fortnox_tenant_id)) >= 8
            ),
            None,
        ),
        started,
    ).name
    group, run_id = wait_for(
        f"{victim}'s meltano process", lambda: meltano_process(started, victim), started
    )
    os.killpg(group, signal.SIGKILL)
    killed = instance.get_run_by_id(run_id)
    assert killed.job_name == "moment_to_fortnox", killed.tags

    def retried() -> Any:
        done = [
            r
            for r in runs(instance, victim, "moment_to_fortnox")
            if r.dagster_run.tags.get(PARENT_RUN_ID_TAG) == killed.run_id
        ]
        return done if done and done[0].dagster_run.status == DagsterRunStatus.SUCCESS else None

    retry = wait_for("the retry of the killed run", retried, started)[0].dagster_run
    assert instance.get_run_by_id(killed.run_id).status == DagsterRunStatus.FAILURE
    dirs = [work_dir(instance, r) for r in (killed, retry)]
    assert all(dirs), dirs
    assert dirs[0] != dirs[1]  # another worker's disk
    assert not any(Path(d).exists() for d in dirs)  # and neither kept anything

    # 3. A burst of edits at that tenant: 12 webhooks, one push request, one run (no push of
    # the tenant waits any more; the other tenants' runs may still be going).
    for number in EDITED:
        local.admin(
            started.moment_url,
            "PATCH",
            f"customers/{number}?company={victim}",
            {"email": f"ny{number}@{victim}.se"},
        )

    def pushed() -> list[Any]:
        return [
            r
            for r in runs(instance, victim)
            if r.dagster_run.tags.get("moment-fortnox/trigger") == "webhook"
        ]

    wait_for(f"the webhook push of {victim}", lambda: [r for r in pushed() if r.end_time], started)
    assert [r.dagster_run.status for r in pushed()] == [DagsterRunStatus.SUCCESS]
    assert pushed()[0].dagster_run.tags[PARTITION_NAME_TAG] == victim
    deliveries = local.admin(started.moment_url, "GET", f"webhooks/deliveries?company={victim}")
    assert len(deliveries["deliveries"]) >= 12

    def ticked() -> list[Any]:
        return [
            r
            for r in runs(instance)
            if r.dagster_run.tags.get("dagster/schedule_name")
            and PARENT_RUN_ID_TAG not in r.dagster_run.tags
        ]

    wait_for(
        "six scheduled runs to finish",
        lambda: len(ticked()) == 6 and all(r.dagster_run.is_finished for r in ticked()),
        started,
    )
    scheduled = ticked()
    assert sorted((r.dagster_run.tags[TENANT_TAG], r.dagster_run.job_name) for r in scheduled) == [
        (t.name, job) for t in local.DEFAULT_TENANTS for job in sorted(JOBS)
    ]
    assert all(
        r.dagster_run.status == DagsterRunStatus.SUCCESS
        for r in scheduled
        if r.dagster_run.run_id != killed.run_id
    ), [(r.dagster_run.tags, r.dagster_run.status) for r in scheduled]
    for record in scheduled:  # the tenant's schedule in its zone, due at that local minute
        tags = record.dagster_run.tags
        spec = next(t for t in local.DEFAULT_TENANTS if t.name == tags[TENANT_TAG])
        cron = local_cron(due, spec.timezone)
        assert tags["dagster/schedule_name"] == schedule_name(
            record.dagster_run.job_name, cron, spec.timezone
        )
        assert tags[SCHEDULED_EXECUTION_TIME_TAG] == due.isoformat(), tags
        assert tags[PARTITION_NAME_TAG] == spec.name, tags

    # One run per tenant at a time; never more than the configured concurrency.
    every = [r for r in runs(instance) if r.start_time and r.end_time]
    assert len(every) == 8, [r.dagster_run.tags for r in every]  # 6 ticks, 1 retry, 1 push
    intervals = [(r.start_time, r.end_time, r.dagster_run.tags[TENANT_TAG]) for r in every]
    for tenant in {t for _, _, t in intervals}:
        mine = sorted((s, e) for s, e, t in intervals if t == tenant)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(mine)), (tenant, mine)
    for start, _, _ in intervals:
        running = sum(1 for s, e, _ in intervals if s <= start < e)
        assert running <= MAX_CONCURRENT_RUNS, intervals

    # 4. What each company holds; the shared plugins as installed.
    for spec in local.DEFAULT_TENANTS:
        check_tenant(started, spec, edited=spec.name == victim)
    assert plugin_venvs() == venvs


JOBS = ("moment_to_fortnox", "fortnox_expenses_to_moment")


def work_dir(instance: Any, run: Any) -> str:
    """The work dir the run's op reported (its output's metadata, or the failure's)."""
    for event in instance.all_logs(run.run_id):
        data = event.dagster_event.event_specific_data if event.dagster_event else None
        metadata = getattr(data, "metadata", None) or getattr(
            getattr(data, "user_failure_data", None), "metadata", None
        )
        if metadata and "work_dir" in metadata:
            return str(metadata["work_dir"].value)
    return ""


def check_tenant(stack: local.Stack, spec: local.TenantSpec, *, edited: bool) -> None:
    from fortnox_client import FortnoxClient, FortnoxSettings

    moment = {
        kind: local.admin(stack.moment_url, "GET", f"{kind}?company={spec.name}&size=500")[
            "content"
        ]
        for kind in ("customers", "projects", "invoices", "projectExpenses")
    }
    writes = fortnox_writes(stack, spec.fortnox_tenant_id)
    log = local.admin(stack.fortnox_url, "GET", f"requests?since=0&tenant={spec.fortnox_tenant_id}")
    assert [r for r in log["requests"] if r["status"] == 429] == [], spec.name
    client = FortnoxClient(
        FortnoxSettings.from_config(
            {
                "client_id": local.CLIENT_ID,
                "client_secret": local.CLIENT_SECRET,
                "tenant_id": str(spec.fortnox_tenant_id),
                "api_url": f"{stack.fortnox_url}/3",
                "token_url": f"{stack.fortnox_url}/oauth-v1/token",
                "token_store_path": str(Path(stack.root) / f"reader-{spec.name}.json"),
            }
        )
    )
    listed = list(client.list("customers"))
    customers = {c["CustomerNumber"]: c["Name"] for c in listed}
    assert customers == {c["customerNumber"]: c["name"] for c in moment["customers"]}, spec.name
    # The webhook push brought the edits to the edited tenant's Fortnox; no other has any.
    found = {c["CustomerNumber"]: c["Email"] for c in listed if c.get("Email", "").startswith("ny")}
    expected = {str(n): f"ny{n}@{spec.name}.se" for n in EDITED} if edited else {}
    assert found == expected, spec.name
    projects = {p["ProjectNumber"] for p in client.list("projects")} - {"9001", "9002"}
    assert projects == {p["projectNumber"] for p in moment["projects"]}, spec.name
    finalised = {str(i["invoiceNumber"]) for i in moment["invoices"] if i.get("invoiceNumber")}
    invoices = {str(i["DocumentNumber"]) for i in client.list("invoices")}
    assert invoices == finalised, spec.name
    # Each created once, none refused: a killed run and its retry doubled nothing.
    created = Counter(r["path"].split("/")[2] for r in writes if r["status"] == 201)
    assert created == Counter(
        {"customers": len(customers), "projects": len(projects), "invoices": len(invoices)}
    ), (spec.name, created)
    assert [r for r in writes if r["status"] >= 400] == [], spec.name

    # Moment holds only its own Fortnox company's expenses, each once.
    suppliers = {str(s["GivenNumber"]): s["SupplierName"] for s in client.list("supplierinvoices")}
    expenses = moment["projectExpenses"]
    assert expenses, spec.name
    references = [e["externalReference"] for e in expenses]
    assert len(references) == len(set(references)), spec.name
    for expense in expenses:
        given = expense["externalReference"].split("-")[2]
        assert suppliers.get(given) == expense["supplierName"], (spec.name, expense)

    # State and the token chain are the tenant's own rows.
    with psycopg.connect(stack.urls["meltano"]) as conn:
        states = {
            row[0]
            for row in conn.execute(
                "SELECT state_id FROM state WHERE state_id LIKE %s", (f"tenant-{spec.name}:%",)
            )
        }
    assert states == {
        f"tenant-{spec.name}:tap-moment-to-target-fortnox",
        f"tenant-{spec.name}:tap-fortnox-expenses-to-target-moment",
    }
    with psycopg.connect(stack.urls["fortnox"]) as conn:
        row = conn.execute(
            "SELECT document FROM fortnox_tokens WHERE tenant = %s", (spec.name,)
        ).fetchone()
    assert row is not None
    assert row[0]["refresh_token_grant"]["tenant_id"] == str(spec.fortnox_tenant_id)
