"""`make demo`: both sandboxes seeded with demo data, both jobs run by `meltano run`, results shown.

Everything lives under output/demo/ (sandbox databases, Meltano state, token store, run summaries),
so the second `make demo` continues where the first stopped and transfers nothing new; delete that
folder to start over. In a terminal the sandboxes stay up until Ctrl-C so you can look around;
otherwise (CI, a pipe) they stop as soon as the jobs are done. No process is left behind.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from base64 import b64encode
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moment_webhooks import meltano_files
from sandbox.launcher import SandboxProcess

ROOT = Path(__file__).resolve().parents[1]
JOBS = ("moment-to-fortnox", "fortnox-expenses-to-moment")
PLUGINS = ("tap-moment", "target-fortnox", "tap-fortnox-expenses", "target-moment")


def _get(url: str, headers: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(url, headers={"Accept": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=30) as response:
        return json.loads(response.read())


def show_sandboxes(fortnox: SandboxProcess, moment: SandboxProcess) -> None:
    """Print what the seeded sandboxes hold, read through their public APIs."""
    basic = "Basic " + b64encode(b"apikey:sandbox-key").decode()
    base = f"{moment.url}/api/1.0/companies/demo"
    print(f"\nMoment sandbox   {moment.url}  (company demo, API key sandbox-key)")
    for entity in ("customers", "projects", "invoices", "projectExpenses"):
        page = _get(f"{base}/{entity}?size=1", {"Authorization": basic})["page"]
        print(f"  {entity:<18} {page['totalElements']:>6}")
    print(f"Fortnox sandbox  {fortnox.url}  (OAuth client sandbox-client / sandbox-secret)")
    counts = fortnox.admin("GET", "counts")
    for entity, count in counts.items():
        print(f"  {entity:<18} {count:>6}")


def meltano_env(workdir: Path, fortnox: SandboxProcess, moment: SandboxProcess) -> dict[str, str]:
    env = {**os.environ, "MELTANO_ENVIRONMENT": "dev"}
    env["MELTANO_STATE_BACKEND_URI"] = (workdir / "state").as_uri()
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    token_store = str(workdir / "fortnox-token.json")
    results = str(workdir / "results")
    for plugin in ("TARGET_FORTNOX", "TAP_FORTNOX_EXPENSES"):
        env[f"{plugin}_API_URL"] = f"{fortnox.url}/3"
        env[f"{plugin}_TOKEN_URL"] = f"{fortnox.url}/oauth-v1/token"
        env[f"{plugin}_TOKEN_STORE_PATH"] = token_store
        env[f"{plugin}_RESULTS_DIR"] = results
    for plugin in ("TAP_MOMENT", "TARGET_MOMENT"):
        env[f"{plugin}_API_URL"] = f"{moment.url}/api/1.0"
    env["TARGET_MOMENT_RESULTS_DIR"] = results
    env["TAP_MOMENT_RESULTS_DIR"] = results
    if not Path(token_store).exists():
        # Stands in for the one-time browser consent (`meltano invoke target-fortnox:authorize`):
        # the sandbox mints the first refresh token, the token store rotates it from then on.
        minted = fortnox.admin("POST", "refresh-tokens", {})
        for plugin in ("TARGET_FORTNOX", "TAP_FORTNOX_EXPENSES"):
            env[f"{plugin}_REFRESH_TOKEN"] = minted["refresh_token"]
    return env


def meltano(*args: str, env: dict[str, str]) -> int:
    """Run Meltano as the project's launchers do: umask 077 (the plugin config files it writes
    hold the demo's secrets) and config files of runs that are over removed (README
    "Hardening")."""
    exe = shutil.which("meltano", path=str(Path(sys.executable).parent)) or "meltano"
    print(f"\n$ meltano {' '.join(args)}", flush=True)
    with meltano_files.launching(ROOT, env):
        return subprocess.call([exe, *args], cwd=ROOT, env=env, umask=meltano_files.PRIVATE_UMASK)


def show_results(workdir: Path, since: datetime) -> None:
    """The run summaries the plugins wrote during this demo, as one table."""
    from sync_common import load_runs, render_runs_table

    runs = [
        run
        for run in load_runs(workdir / "results")
        if datetime.fromisoformat(run["started_at"]) >= since
    ]
    print("\nWhat moved (this run):")
    print(render_runs_table(runs) if runs else "  (no run summaries written)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-wait", action="store_true", help="stop the sandboxes when done")
    parser.add_argument("--workdir", type=Path, default=ROOT / "output" / "demo")
    parser.add_argument("--fortnox-port", type=int, default=8081, help="0 = any free port")
    parser.add_argument("--moment-port", type=int, default=8082, help="0 = any free port")
    args = parser.parse_args()
    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    with (
        SandboxProcess(
            "fortnox", workdir / "fortnox.db", seed=1, port=args.fortnox_port
        ) as fortnox,
        SandboxProcess("moment", workdir / "moment.db", seed=1, port=args.moment_port) as moment,
    ):
        show_sandboxes(fortnox, moment)
        env = meltano_env(workdir, fortnox, moment)
        started = datetime.now(UTC)
        status = meltano("install", env=env) or meltano("run", *JOBS, env=env)
        show_results(workdir, started)
        show_sandboxes(fortnox, moment)
        if status == 0 and sys.stdin.isatty() and not args.no_wait:
            print("\nSandboxes running. Press Ctrl-C to stop them.", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                if fortnox.process is not None:
                    fortnox.process.wait()
        print("Stopping the sandboxes.")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
