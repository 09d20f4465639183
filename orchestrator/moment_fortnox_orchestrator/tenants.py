"""The tenants: every Meltano environment ``tenant-<name>`` of the project is one tenant.

A tenant is one consultancy (one Moment company, one Fortnox company; docs/SCALING.md). Its plugin
settings are the environment's ``config``, its secrets a file ``<secrets dir>/<name>.env``, and
how the orchestrator runs it the environment's ``annotations.dagster`` (Meltano keeps annotations
for other tools and ignores them itself):

    environments:
      - name: tenant-acme
        annotations:
          dagster:
            timezone: Europe/Stockholm          # default
            push_schedule: "*/5 * * * *"        # moment-to-fortnox (default)
            expenses_schedule: "0 22 * * *"     # fortnox-expenses-to-moment (default)
        config:
          plugins: ...

Environments from the files of the project's ``include_paths`` count too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from dagster._utils.schedules import is_valid_cron_string

PREFIX = "tenant-"
ANNOTATION = "dagster"
NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
DEFAULT_TIMEZONE = "Europe/Stockholm"
DEFAULT_PUSH_SCHEDULE = "*/5 * * * *"
DEFAULT_EXPENSES_SCHEDULE = "0 22 * * *"
_KNOWN = {"timezone", "push_schedule", "expenses_schedule"}


class TenantError(ValueError):
    """A tenant's environment is not usable; the message names the environment and the field."""


@dataclass(frozen=True)
class Tenant:
    """One tenant as the orchestrator runs it."""

    name: str
    timezone: str = DEFAULT_TIMEZONE
    push_schedule: str = DEFAULT_PUSH_SCHEDULE
    expenses_schedule: str = DEFAULT_EXPENSES_SCHEDULE

    @property
    def environment(self) -> str:
        return PREFIX + self.name

    def schedule(self, meltano_job: str) -> str:
        return self.push_schedule if meltano_job == "moment-to-fortnox" else self.expenses_schedule


def load_tenants(project_dir: Path) -> list[Tenant]:
    """The tenants of the Meltano project in ``project_dir``, in file order."""
    tenants: list[Tenant] = []
    for environment in _environments(project_dir):
        name = str(environment.get("name", ""))
        if name.startswith(PREFIX):
            tenants.append(_tenant(name, environment))
    seen: set[str] = set()
    for tenant in tenants:
        if tenant.name in seen:
            raise TenantError(f"environment {tenant.environment!r} is defined twice")
        seen.add(tenant.name)
    return tenants


def _environments(project_dir: Path) -> list[dict[str, Any]]:
    main = project_dir / "meltano.yml"
    if not main.is_file():
        raise TenantError(f"no Meltano project at {project_dir} (meltano.yml not found)")
    files = [main]
    document = _read(main)
    for pattern in document.get("include_paths") or []:
        files += sorted(project_dir.glob(str(pattern).removeprefix("./")))
    environments: list[dict[str, Any]] = []
    for path in files:
        content = document if path == main else _read(path)
        environments += [e for e in content.get("environments") or [] if isinstance(e, dict)]
    return environments


def _read(path: Path) -> dict[str, Any]:
    content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(content, dict):
        raise TenantError(f"{path} is not a YAML mapping")
    return content


def _tenant(environment: str, document: dict[str, Any]) -> Tenant:
    name = environment.removeprefix(PREFIX)
    if not NAME.fullmatch(name):
        raise TenantError(
            f"environment {environment!r}: the tenant name {name!r} must be 1-63 characters of "
            "a-z 0-9 _ - starting with a letter or digit (it names runs, tags and store rows)"
        )
    annotations = (document.get("annotations") or {}).get(ANNOTATION) or {}
    if not isinstance(annotations, dict):
        raise TenantError(
            f"environment {environment!r}: annotations.{ANNOTATION} must be a mapping"
        )
    unknown = sorted(set(annotations) - _KNOWN)
    if unknown:
        raise TenantError(
            f"environment {environment!r}: unknown annotations.{ANNOTATION} field(s) {unknown}; "
            f"known: {sorted(_KNOWN)}"
        )
    tenant = Tenant(name, **{key: str(value) for key, value in annotations.items()})
    try:
        ZoneInfo(tenant.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise TenantError(
            f"environment {environment!r}: annotations.{ANNOTATION}.timezone "
            f"{tenant.timezone!r} is not an IANA time zone such as 'Europe/Stockholm'"
        ) from None
    for field in ("push_schedule", "expenses_schedule"):
        value = getattr(tenant, field)
        if not is_valid_cron_string(value):
            raise TenantError(
                f"environment {environment!r}: annotations.{ANNOTATION}.{field} {value!r} is not "
                "a cron expression such as '*/5 * * * *'"
            )
    return tenant
