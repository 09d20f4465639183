"""Three tenants on one machine, started from the repo and stopped cleanly.

PostgreSQL, the sandboxes, a Meltano project, Dagster's daemon and one webhook receiver per tenant
are started by ``make tenants-up`` and stopped by ``make tenants-down``. The end-to-end test
(``tests/test_orchestrator_tenants.py``) starts the same stack in its own folder.

- PostgreSQL: a private cluster (``sandbox.postgres``) with three databases: ``meltano``
  (Meltano's system database: state), ``fortnox`` (tokens, rate-limit windows, run stores and
  webhook push requests, a row per tenant) and ``dagster`` (the instance's runs and schedules).
- One Fortnox sandbox host serving the tenants' companies (``--tenant-ids``; the real limit,
  25 requests per 5 s per company) and one Moment sandbox with one company per tenant.
- A Meltano project folder: this repo's ``meltano.yml`` plus one environment ``tenant-<name>``
  per tenant pointing at the sandboxes, and one secrets file per tenant; the plugins are the
  repo's installed ones (``.meltano``), linked into each run.
- ``dagster-daemon`` (schedules, the webhook sensor, the run queue) and, when installed,
  ``dagster-webserver`` (the UI).

Everything lives under one folder (default ``output/tenants``) whose ``stack.json`` names the
processes; ``down`` stops them by their process group and the PostgreSQL cluster by its data dir.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sandbox.postgres import PostgresServer

from moment_fortnox_orchestrator.instance import POSTGRES_URL_ENV, write_instance

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
STATE_FILE = "stack.json"
READY_SANDBOX = "SANDBOX READY"
READY_RECEIVER = "moment-webhooks listening on"
CLIENT_ID, CLIENT_SECRET = "sandbox-client", "sandbox-secret"
# The receivers' path token (a local stack only; real receivers get a random one each).
LOCAL_PATH_TOKEN = "local-tenants-path-token-0123456789"


@dataclass(frozen=True)
class TenantSpec:
    """One local tenant: its Moment company and Fortnox company (TenantId), schedules, data."""

    name: str
    fortnox_tenant_id: int
    timezone: str = "Europe/Stockholm"
    push_schedule: str = "*/5 * * * *"
    expenses_schedule: str = "0 22 * * *"
    moment_seed: int = 1
    moment_sizes: dict[str, int] = field(
        default_factory=lambda: {"customers": 20, "projects": 20, "invoices": 10, "expenses": 0}
    )

    @property
    def api_key(self) -> str:
        return f"{self.name}-moment-key"


DEFAULT_TENANTS = (
    TenantSpec("acme", 1234567, "Europe/Stockholm", moment_seed=11),
    TenantSpec("bravo", 2000002, "Europe/London", moment_seed=12),
    TenantSpec("cedar", 2000003, "America/New_York", moment_seed=13),
)


@dataclass
class Stack:
    """A running local stack (what ``stack.json`` holds)."""

    root: str
    pg_root: str
    pg_port: int
    fortnox_url: str
    moment_url: str
    urls: dict[str, str]
    receivers: dict[str, str] = field(default_factory=dict)
    process_groups: dict[str, int] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """The orchestrator's environment (daemon, webserver, ``request-push``)."""
        root = Path(self.root)
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", "DAGSTER_"))},
            "DAGSTER_HOME": str(root / "dagster"),
            POSTGRES_URL_ENV: self.urls["dagster"],
            "MELTANO_DATABASE_URI": self.urls["meltano"].replace(
                "postgresql://", "postgresql+psycopg://"
            ),
            "MOMENT_FORTNOX_PROJECT_DIR": str(root / "project"),
            "MOMENT_FORTNOX_STORE_URL": self.urls["fortnox"],
            "MOMENT_FORTNOX_SECRETS_DIR": str(root / "secrets"),
            "MOMENT_FORTNOX_PLUGINS_DIR": str(REPO / ".meltano"),
            "MOMENT_FORTNOX_WORK_DIR": str(root / "workers"),
            "MOMENT_FORTNOX_WEBHOOK_POLL_SECONDS": "2",
        }

    def save(self) -> None:
        (Path(self.root) / STATE_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, root: Path) -> Stack:
        return cls(**json.loads((root / STATE_FILE).read_text()))


def admin(url: str, method: str, path: str, body: Any = None) -> Any:
    """A sandbox admin call (``/_sandbox/...``), the decoded JSON answer."""
    request = urllib.request.Request(
        f"{url}/_sandbox/{path.lstrip('/')}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"null")


def up(
    root: Path,
    tenants: tuple[TenantSpec, ...] = DEFAULT_TENANTS,
    *,
    fortnox_limit: int = 25,
    max_concurrent_runs: int = 2,
    webserver: bool = True,
    orchestrator: bool = True,
) -> Stack:
    """Start the stack under ``root``, which must not hold a running one.

    Without ``orchestrator``, only PostgreSQL, the sandboxes and the project are started (the bench
    runs the worker itself).
    """
    if (root / STATE_FILE).exists():
        raise RuntimeError(f"a stack is already up in {root} (stop it: make tenants-down)")
    if not (REPO / ".meltano" / "extractors").is_dir():
        raise RuntimeError("the plugins are not installed: run `meltano install` in the repo once")
    root.mkdir(parents=True, exist_ok=True)
    for folder in ("logs", "secrets", "workers", "project", "dagster"):
        (root / folder).mkdir(exist_ok=True)
    os.chmod(root / "secrets", 0o700)
    pg = PostgresServer().start()
    urls = {name: pg.create_database(name) for name in ("meltano", "fortnox", "dagster")}
    stack = Stack(str(root), str(pg.root), pg.port, "", "", urls)
    stack.save()
    try:
        _start_sandboxes(stack, tenants, fortnox_limit)
        _write_project(stack, tenants)
        write_instance(root / "dagster", root / "project", max_concurrent_runs)
        stack.save()
        if orchestrator:
            start_orchestrator(stack, tenants, webserver=webserver)
    except BaseException:
        down(root)
        raise
    return stack


def start_orchestrator(
    stack: Stack, tenants: tuple[TenantSpec, ...] = DEFAULT_TENANTS, *, webserver: bool = True
) -> None:
    """Start ``dagster-daemon`` (and the web UI) and the tenants' webhook receivers.

    They join a stack that ``up(..., orchestrator=False)`` started; ``down`` stops them with the
    rest.
    """
    root = Path(stack.root)
    env = stack.env()
    # The instance's tables first: the daemon and a client creating them at once race
    # ("type secondary_indexes already exists").
    subprocess.run(
        [str(BIN / "dagster"), "instance", "migrate"], env=env, check=True, capture_output=True
    )
    workspace = str(root / "dagster" / "workspace.yaml")
    stack.process_groups["dagster-daemon"] = _spawn(
        [str(BIN / "dagster-daemon"), "run", "-w", workspace], root, "dagster-daemon", env
    )
    if webserver and (BIN / "dagster-webserver").exists():
        stack.process_groups["dagster-webserver"] = _spawn(
            [str(BIN / "dagster-webserver"), "-w", workspace, "-h", "127.0.0.1", "-p", "3000"],
            root,
            "dagster-webserver",
            env,
        )
    stack.save()
    for tenant in tenants:
        _start_receiver(stack, tenant, env)
    stack.save()


def down(root: Path) -> None:
    """Stop what ``up`` started (receivers and daemon first, PostgreSQL last)."""
    if not (root / STATE_FILE).exists():
        return
    stack = Stack.load(root)
    for name, group in reversed(list(stack.process_groups.items())):
        _stop_group(group, name)
    PostgresServer.attach(Path(stack.pg_root), stack.pg_port).stop()
    (root / STATE_FILE).unlink()


def _start_sandboxes(stack: Stack, tenants: tuple[TenantSpec, ...], fortnox_limit: int) -> None:
    root = Path(stack.root)
    ids = ",".join(str(t.fortnox_tenant_id) for t in tenants)
    fortnox = [sys.executable, "-m", "sandbox", "fortnox", "--port", "0"]
    fortnox += ["--db", str(root / "fortnox.db"), "--seed", "1", "--tenant-ids", ids]
    fortnox += ["--max-requests-per-5s", str(fortnox_limit)]
    stack.process_groups["fortnox"] = _spawn(fortnox, root, "fortnox")
    stack.fortnox_url = _ready_url(root / "logs" / "fortnox.log", READY_SANDBOX)
    moment = [sys.executable, "-m", "sandbox", "moment", "--port", "0"]
    moment += ["--db", str(root / "moment.db")]
    stack.process_groups["moment"] = _spawn(moment, root, "moment")
    stack.moment_url = _ready_url(root / "logs" / "moment.log", READY_SANDBOX)
    for tenant in tenants:
        admin(
            stack.moment_url,
            "POST",
            "companies",
            {
                "code": tenant.name,
                "apiKey": tenant.api_key,
                "name": f"{tenant.name.title()} Konsult AB",
                "seed": tenant.moment_seed,
                **tenant.moment_sizes,
            },
        )
    stack.save()


def tenant_environment(stack: Stack, tenant: TenantSpec) -> dict[str, Any]:
    """The Meltano environment ``tenant-<name>``: the tenant's settings (no secrets)."""
    fortnox = {
        "api_url": f"{stack.fortnox_url}/3",
        "token_url": f"{stack.fortnox_url}/oauth-v1/token",
        "client_id": CLIENT_ID,
    }
    moment = {"api_url": f"{stack.moment_url}/api/1.0", "company_code": tenant.name}
    return {
        "name": f"tenant-{tenant.name}",
        "annotations": {
            "dagster": {
                "timezone": tenant.timezone,
                "push_schedule": tenant.push_schedule,
                "expenses_schedule": tenant.expenses_schedule,
            }
        },
        "config": {
            "plugins": {
                "extractors": [
                    {
                        "name": "tap-moment",
                        "config": {**moment, "start_date": "2000-01-01T00:00:00Z"},
                    },
                    {"name": "tap-fortnox-expenses", "config": fortnox},
                ],
                "loaders": [
                    {"name": "target-fortnox", "config": fortnox},
                    {"name": "target-moment", "config": moment},
                ],
            }
        },
    }


def tenant_secrets(stack: Stack, tenant: TenantSpec) -> str:
    """The tenant's secrets file: Moment API key, Fortnox client secret and a refresh token.

    The refresh token is one of its Fortnox company, to start the token chain (the sandbox's
    stand-in for the consent).
    """
    minted = admin(stack.fortnox_url, "POST", f"refresh-tokens?tenant={tenant.fortnox_tenant_id}")
    values = {
        "TAP_MOMENT_API_KEY": tenant.api_key,
        "TARGET_MOMENT_API_KEY": tenant.api_key,
        "TARGET_FORTNOX_CLIENT_SECRET": CLIENT_SECRET,
        "TAP_FORTNOX_EXPENSES_CLIENT_SECRET": CLIENT_SECRET,
        "TARGET_FORTNOX_REFRESH_TOKEN": minted["refresh_token"],
        "TAP_FORTNOX_EXPENSES_REFRESH_TOKEN": minted["refresh_token"],
    }
    return "".join(f"{key}={value}\n" for key, value in values.items())


def add_tenant(stack: Stack, tenant: TenantSpec) -> None:
    """The one step of adding a tenant: its environment in the project, its secrets file."""
    root = Path(stack.root)
    project = root / "project" / "meltano.yml"
    document = yaml.safe_load(project.read_text())
    document["environments"] = [
        e for e in document.get("environments") or [] if e["name"] != f"tenant-{tenant.name}"
    ] + [tenant_environment(stack, tenant)]
    project.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    secrets = root / "secrets" / f"{tenant.name}.env"
    secrets.write_text(tenant_secrets(stack, tenant))
    secrets.chmod(0o600)


def write_project(project_dir: Path, repo: Path = REPO) -> Path:
    """The project's ``meltano.yml``: the repo's, its plugins' ``pip_url`` pinned to the repo.

    The plugins are the repo's installed ones, linked into every run of every tenant. Meltano
    fingerprints an installed plugin by its expanded ``pip_url``; here ``${MELTANO_PROJECT_ROOT}``
    would expand to this folder, not the repo, so any Meltano command without ``--no-install``
    would find the shared plugins stale and rebuild their venvs under the running plugins (an
    empty venv when the install fails). Pinned, the project names the plugins as installed.
    """
    document = yaml.safe_load((repo / "meltano.yml").read_text())
    for plugins in (document.get("plugins") or {}).values():
        for plugin in plugins:
            if "pip_url" in plugin:
                plugin["pip_url"] = plugin["pip_url"].replace("${MELTANO_PROJECT_ROOT}", str(repo))
    path = project_dir / "meltano.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return path


def _write_project(stack: Stack, tenants: tuple[TenantSpec, ...]) -> None:
    write_project(Path(stack.root) / "project")
    for tenant in tenants:
        add_tenant(stack, tenant)


def _start_receiver(stack: Stack, tenant: TenantSpec, env: dict[str, str]) -> None:
    root = Path(stack.root)
    command = shlex.join([str(BIN / "moment-fortnox-orchestrator"), "request-push", tenant.name])
    argv = [str(BIN / "moment-webhooks"), "serve", "--port", "0", "--tenant", tenant.name]
    argv += ["--command", command, "--lock-dir", str(root / "locks"), "--debounce-seconds", "1"]
    name = f"receiver-{tenant.name}"
    receiver_env = {**env, "MOMENT_WEBHOOKS_PATH_TOKEN": LOCAL_PATH_TOKEN}
    stack.process_groups[name] = _spawn(argv, root, name, receiver_env)
    url = _ready_url(root / "logs" / f"{name}.log", READY_RECEIVER)
    stack.receivers[tenant.name] = url
    for webhook_type in ("customers", "projects", "invoices"):
        admin(
            stack.moment_url,
            "POST",
            f"webhooks?company={tenant.name}",
            {"type": webhook_type, "url": f"{url}/hooks/{LOCAL_PATH_TOKEN}/{webhook_type}"},
        )


# The processes this Python process started, so that stopping one also reaps it (a test keeps
# running after `down`; `make tenants-down` is another process and only signals).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _spawn(argv: list[str], root: Path, name: str, env: dict[str, str] | None = None) -> int:
    """Start a detached process (its own session) logging to ``logs/<name>.log``."""
    log = (root / "logs" / f"{name}.log").open("ab")
    process = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**(env or os.environ), "PYTHONUNBUFFERED": "1"},
        cwd=root,
        start_new_session=True,
    )
    log.close()
    _CHILDREN[process.pid] = process
    return process.pid


def _ready_url(log: Path, marker: str, timeout: float = 60.0) -> str:
    """The URL on the process's ready line (a sandbox's, a receiver's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text(errors="replace").splitlines():
            if marker in line:
                words = line.split(marker, 1)[1].split()
                return next(word for word in words if word.startswith("http"))
        time.sleep(0.1)
    raise RuntimeError(f"{log.stem} did not start:\n{log.read_text(errors='replace')[-3000:]}")


def _stop_group(group: int, name: str, grace: float = 15.0) -> None:
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return
    child = _CHILDREN.pop(group, None)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if child is not None:
            child.poll()  # reap the leader, so that only live members keep the group
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    print(f"{name} did not stop within {grace:.0f} s; killing it", file=sys.stderr)
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        return
