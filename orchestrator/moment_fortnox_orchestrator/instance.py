"""The Dagster instance: ``dagster.yaml`` and ``workspace.yaml`` in ``DAGSTER_HOME``.

- Storage (runs, event logs, schedules, sensor cursors) in PostgreSQL (``dagster-postgres``),
  so the daemon, the web UI and any worker see one instance.
- The queued run coordinator: at most ``max_concurrent_runs`` runs at once, and **one per
  tenant** (``tag_concurrency_limits`` on ``moment-fortnox/tenant``, one slot per value).
- Run retries on (each job asks for one retry, ``dagster/max_retries``), run monitoring on (a
  run past its ``dagster/max_runtime`` is failed, so a vanished worker does not hold its tenant's
  slot for ever).
- The scheduler catches up one missed tick at most (a daemon down for an hour starts one push per
  tenant, not twelve).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from moment_fortnox_orchestrator.definitions import TENANT_TAG

POSTGRES_URL_ENV = "DAGSTER_POSTGRES_URL"


def instance_config(max_concurrent_runs: int, dequeue_interval_seconds: int = 2) -> dict[str, Any]:
    """The content of ``dagster.yaml``: PostgreSQL storage, the run queue, retries, monitoring."""
    if max_concurrent_runs < 1:
        raise ValueError(f"max_concurrent_runs must be 1 or more, got {max_concurrent_runs}")
    return {
        "storage": {"postgres": {"postgres_url": {"env": POSTGRES_URL_ENV}}},
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {
                "max_concurrent_runs": max_concurrent_runs,
                "tag_concurrency_limits": [
                    {"key": TENANT_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
                ],
                "dequeue_interval_seconds": dequeue_interval_seconds,
            },
        },
        "run_retries": {"enabled": True, "max_retries": 0},
        "run_monitoring": {"enabled": True, "poll_interval_seconds": 30},
        "scheduler": {
            "module": "dagster._core.scheduler",
            "class": "DagsterDaemonScheduler",
            "config": {"max_catchup_runs": 1},
        },
        "telemetry": {"enabled": False},
    }


def write_instance(
    dagster_home: Path, project_dir: Path, max_concurrent_runs: int
) -> tuple[Path, Path]:
    """Write ``dagster.yaml`` and ``workspace.yaml``; returns their paths."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance = dagster_home / "dagster.yaml"
    instance.write_text(yaml.safe_dump(instance_config(max_concurrent_runs), sort_keys=False))
    workspace = dagster_home / "workspace.yaml"
    location = {
        "module_name": "moment_fortnox_orchestrator.definitions",
        "attribute": "defs",
        "working_directory": str(project_dir),
        "location_name": "moment-fortnox",
    }
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_module": location}]}))
    return instance, workspace
