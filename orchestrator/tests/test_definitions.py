"""The code location built from a Meltano project's tenant environments (no daemon, no runs)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import yaml
from moment_fortnox_orchestrator.definitions import TENANT_TAG, build_definitions, schedule_name
from moment_fortnox_orchestrator.instance import instance_config
from moment_fortnox_orchestrator.settings import OrchestratorSettings, SettingsError
from moment_fortnox_orchestrator.tenants import TenantError, load_tenants

ENVIRONMENTS = [
    {"name": "dev"},
    {"name": "tenant-acme"},  # every default
    {
        "name": "tenant-bravo",
        "annotations": {"dagster": {"timezone": "America/New_York"}},
    },
    {
        "name": "tenant-cedar",
        "annotations": {
            "dagster": {"push_schedule": "*/10 * * * *", "expenses_schedule": "30 6 * * 1-5"}
        },
    },
]


def project(tmp_path: Path, environments: list[dict[str, object]]) -> Path:
    (tmp_path / "meltano.yml").write_text(yaml.safe_dump({"environments": environments}))
    return tmp_path


def settings(project_dir: Path) -> OrchestratorSettings:
    return OrchestratorSettings.from_env(
        {
            "MOMENT_FORTNOX_PROJECT_DIR": str(project_dir),
            "MELTANO_DATABASE_URI": "postgresql+psycopg://u:p@127.0.0.1/meltano",
            "MOMENT_FORTNOX_STORE_URL": "postgresql://u:p@127.0.0.1/fortnox",
        }
    )


def test_tenants_are_the_tenant_environments_with_their_schedules(tmp_path: Path) -> None:
    found = load_tenants(project(tmp_path, ENVIRONMENTS))
    assert [(t.name, t.timezone, t.push_schedule, t.expenses_schedule) for t in found] == [
        ("acme", "Europe/Stockholm", "*/5 * * * *", "0 22 * * *"),
        ("bravo", "America/New_York", "*/5 * * * *", "0 22 * * *"),
        ("cedar", "Europe/Stockholm", "*/10 * * * *", "30 6 * * 1-5"),
    ]


def test_tenants_in_included_files_count(tmp_path: Path) -> None:
    (tmp_path / "tenants").mkdir()
    (tmp_path / "meltano.yml").write_text(
        yaml.safe_dump({"include_paths": ["./tenants/*.meltano.yml"], "environments": []})
    )
    (tmp_path / "tenants" / "delta.meltano.yml").write_text(
        yaml.safe_dump({"environments": [{"name": "tenant-delta"}]})
    )
    assert [t.name for t in load_tenants(tmp_path)] == ["delta"]


@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({"timezone": "Europe/Stockholmm"}, "timezone 'Europe/Stockholmm' is not an IANA"),
        ({"push_schedule": "every 5 minutes"}, "push_schedule 'every 5 minutes' is not a cron"),
        ({"push_schedul": "*/5 * * * *"}, "unknown annotations.dagster field(s) ['push_schedul']"),
    ],
)
def test_a_wrong_tenant_setting_names_the_environment_and_field(
    tmp_path: Path, annotations: dict[str, str], message: str
) -> None:
    environments = [{"name": "tenant-acme", "annotations": {"dagster": annotations}}]
    with pytest.raises(TenantError, match="environment 'tenant-acme'") as raised:
        load_tenants(project(tmp_path, environments))
    assert message in str(raised.value)


def test_a_tenant_name_that_cannot_name_a_store_row_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TenantError, match="tenant name 'Acme AB'"):
        load_tenants(project(tmp_path, [{"name": "tenant-Acme AB"}]))


def test_both_jobs_partitioned_by_tenant_and_schedules_in_each_time_zone(tmp_path: Path) -> None:
    defs = build_definitions(settings(project(tmp_path, ENVIRONMENTS)))
    for name in ("moment_to_fortnox", "fortnox_expenses_to_moment"):
        job = defs.resolve_job_def(name)
        assert job.partitions_def is not None
        assert job.partitions_def.get_partition_keys() == ["acme", "bravo", "cedar"]

    schedules = {s.name: s for s in defs.schedules or []}
    expected = {
        ("moment_to_fortnox", "*/5 * * * *", "Europe/Stockholm"): ["acme"],
        ("moment_to_fortnox", "*/5 * * * *", "America/New_York"): ["bravo"],
        ("moment_to_fortnox", "*/10 * * * *", "Europe/Stockholm"): ["cedar"],
        ("fortnox_expenses_to_moment", "0 22 * * *", "Europe/Stockholm"): ["acme"],
        ("fortnox_expenses_to_moment", "0 22 * * *", "America/New_York"): ["bravo"],
        ("fortnox_expenses_to_moment", "30 6 * * 1-5", "Europe/Stockholm"): ["cedar"],
    }
    assert set(schedules) == {schedule_name(*key) for key in expected}
    assert "moment_to_fortnox__every_5_min__Europe_Stockholm" in schedules
    instance = dg.DagsterInstance.ephemeral()
    for (job, cron, zone), tenants in expected.items():
        schedule = schedules[schedule_name(job, cron, zone)]
        assert (schedule.job_name, schedule.cron_schedule, schedule.execution_timezone) == (
            job,
            cron,
            zone,
        )
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2026, 1, 5, 21, tzinfo=UTC),
            repository_def=defs.get_repository_def(),
        )
        requests = list(schedule.evaluate_tick(context).run_requests or [])
        assert [(r.partition_key, r.tags[TENANT_TAG]) for r in requests] == [
            (t, t) for t in tenants
        ]
        assert all(r.tags["dagster/max_retries"] == "1" for r in requests)


def test_tenants_with_one_schedule_share_it(tmp_path: Path) -> None:
    many = [{"name": f"tenant-t{i}"} for i in range(50)]
    defs = build_definitions(settings(project(tmp_path, many)))
    assert len(list(defs.schedules or [])) == 2  # one per job, for all fifty


def test_the_run_queue_allows_one_run_per_tenant() -> None:
    config = instance_config(max_concurrent_runs=3)["run_coordinator"]["config"]
    assert config["max_concurrent_runs"] == 3
    assert config["tag_concurrency_limits"] == [
        {"key": TENANT_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    ]


def test_state_and_stores_must_be_in_postgresql(tmp_path: Path) -> None:
    env = {"MOMENT_FORTNOX_PROJECT_DIR": str(tmp_path), "MELTANO_DATABASE_URI": "sqlite:///x.db"}
    with pytest.raises(SettingsError, match="MELTANO_DATABASE_URI must name"):
        OrchestratorSettings.from_env(env)
    env["MELTANO_DATABASE_URI"] = "postgresql+psycopg://u:p@h/meltano"
    env["MOMENT_FORTNOX_STORE_URL"] = "postgresql://u:p@h/fortnox?tenant=acme"
    with pytest.raises(SettingsError, match="without a query"):
        OrchestratorSettings.from_env(env)
