"""The orchestrator's own settings, shared by all tenants.

They are environment variables of the Dagster daemon (and so of every run it launches). A
tenant's own settings are its Meltano environment and its secrets file (``tenants.py``).

The variables are listed in orchestrator/README.md ("Settings").
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "MOMENT_FORTNOX_"


class SettingsError(ValueError):
    """A setting is missing or wrong; the message names the variable and what to set."""


@dataclass(frozen=True)
class OrchestratorSettings:
    """The orchestrator's settings, read from the environment by ``from_env``."""

    project_dir: Path
    meltano_database_uri: str = field(repr=False)
    store_url: str = field(repr=False)
    secrets_dir: Path
    plugins_dir: Path
    work_dir: Path
    run_timeout_seconds: float = 1800.0
    webhook_poll_seconds: int = 5

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OrchestratorSettings:
        env = os.environ if env is None else env
        project = Path(env.get(ENV_PREFIX + "PROJECT_DIR") or os.getcwd()).resolve()
        database = env.get("MELTANO_DATABASE_URI", "")
        if not database.startswith("postgresql"):
            raise SettingsError(
                "MELTANO_DATABASE_URI must name Meltano's system database in PostgreSQL "
                "(postgresql+psycopg://user:password@host/db): runs on different workers share "
                "state only through it"
            )
        store = env.get(ENV_PREFIX + "STORE_URL", "")
        if not store.startswith("postgresql://") or "?" in store:
            raise SettingsError(
                f"{ENV_PREFIX}STORE_URL must be a postgresql://user:password@host/db URL without "
                "a query (each tenant's rows get ?tenant=<name>): Fortnox tokens, the rate-limit "
                "window and the run stores must outlive every worker"
            )
        return cls(
            project_dir=project,
            meltano_database_uri=database,
            store_url=store,
            secrets_dir=Path(env.get(ENV_PREFIX + "SECRETS_DIR") or project / ".secrets/tenants"),
            plugins_dir=Path(env.get(ENV_PREFIX + "PLUGINS_DIR") or project / ".meltano"),
            work_dir=Path(env.get(ENV_PREFIX + "WORK_DIR") or tempfile.gettempdir()),
            run_timeout_seconds=_number(env, "RUN_TIMEOUT_SECONDS", 1800.0),
            webhook_poll_seconds=int(_number(env, "WEBHOOK_POLL_SECONDS", 5)),
        )

    def tenant_store_url(self, tenant: str) -> str:
        """The URL of the tenant's rows in the shared store.

        They hold its own token chain, rate-limit window and run stores (fortnox-client README,
        "Token store in PostgreSQL").
        """
        return f"{self.store_url}?tenant={tenant}"


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(ENV_PREFIX + name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise SettingsError(f"{ENV_PREFIX}{name}={raw!r} must be a number above 0")
    return value
