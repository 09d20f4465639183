"""``moment-fortnox-orchestrator``: tenants, Dagster instance files, push requests, local stack.

It lists the tenants, writes the Dagster instance files, queues webhook push requests and starts
or stops the local three-tenant stack.

    moment-fortnox-orchestrator tenants                  # the tenants and their schedules
    moment-fortnox-orchestrator init --max-concurrent-runs 4   # dagster.yaml + workspace.yaml
    moment-fortnox-orchestrator request-push acme        # the webhook receiver's --command
    moment-fortnox-orchestrator local up|down [--root output/tenants]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from moment_fortnox_orchestrator import push_requests
from moment_fortnox_orchestrator.settings import ENV_PREFIX, OrchestratorSettings, SettingsError
from moment_fortnox_orchestrator.tenants import TenantError, load_tenants

EXIT_SETTINGS = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="moment-fortnox-orchestrator",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keep the usage examples as lines
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("tenants", help="list the tenants (tenant-* environments) and schedules")
    init = commands.add_parser("init", help="write dagster.yaml and workspace.yaml")
    init.add_argument("--dagster-home", type=Path, default=os.environ.get("DAGSTER_HOME"))
    init.add_argument(
        "--max-concurrent-runs",
        type=int,
        default=4,
        help="runs at once over all tenants (one per tenant at most, always)",
    )
    push = commands.add_parser("request-push", help="queue a push of TENANT (webhook receiver)")
    push.add_argument("tenant")
    local = commands.add_parser("local", help="three tenants on this machine (make tenants-up)")
    local.add_argument("action", choices=("up", "down"))
    local.add_argument("--root", type=Path, default=Path("output/tenants"))
    local.add_argument("--max-concurrent-runs", type=int, default=2)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command of ``moment-fortnox-orchestrator``; the exit code (2 for a bad setting)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "local":
            return _local(args)
        if args.command == "init":
            return _init(args)
        settings_env = dict(os.environ)
        if args.command == "tenants":
            project = Path(settings_env.get(ENV_PREFIX + "PROJECT_DIR") or os.getcwd())
            for tenant in load_tenants(project):
                print(
                    f"{tenant.name}\tenvironment {tenant.environment}\t{tenant.timezone}\t"
                    f"push {tenant.push_schedule!r}\texpenses {tenant.expenses_schedule!r}"
                )
            return 0
        settings = OrchestratorSettings.from_env(settings_env)
        known = {tenant.name for tenant in load_tenants(settings.project_dir)}
        if args.tenant not in known:
            print(
                f"moment-fortnox-orchestrator: no tenant {args.tenant!r} (no environment "
                f"tenant-{args.tenant} in {settings.project_dir / 'meltano.yml'})",
                file=sys.stderr,
            )
            return EXIT_SETTINGS
        request = push_requests.request_push(settings.store_url, args.tenant)
        print(f"push of tenant {args.tenant} requested (#{request})")
        return 0
    except (SettingsError, TenantError) as error:
        print(f"moment-fortnox-orchestrator: {error}", file=sys.stderr)
        return EXIT_SETTINGS


def _init(args: argparse.Namespace) -> int:
    from moment_fortnox_orchestrator.instance import POSTGRES_URL_ENV, write_instance

    if args.dagster_home is None:
        raise SettingsError("set DAGSTER_HOME (or --dagster-home): where dagster.yaml goes")
    project = Path(os.environ.get(ENV_PREFIX + "PROJECT_DIR") or os.getcwd()).resolve()
    written = write_instance(args.dagster_home, project, args.max_concurrent_runs)
    print("wrote " + " and ".join(map(str, written)))
    print(f"start the orchestrator with {POSTGRES_URL_ENV}, MELTANO_DATABASE_URI and ")
    print(f"{ENV_PREFIX}STORE_URL set: dagster-daemon run -w {written[1]}")
    return 0


def _local(args: argparse.Namespace) -> int:
    from moment_fortnox_orchestrator import local

    root = args.root.resolve()
    if args.action == "down":
        local.down(root)
        print(f"stopped the local tenants in {root}")
        return 0
    stack = local.up(root, max_concurrent_runs=args.max_concurrent_runs)
    print(f"three tenants up in {root} (processes and URLs: {root / local.STATE_FILE})")
    print(f"  Fortnox sandbox (one host, three companies): {stack.fortnox_url}")
    print(f"  Moment sandbox (companies acme, bravo, cedar): {stack.moment_url}")
    for name, url in stack.receivers.items():
        print(f"  webhook receiver of {name}: {url}")
    if "dagster-webserver" in stack.process_groups:
        print("  Dagster UI: http://127.0.0.1:3000")
    print(f"  logs: {root / 'logs'}; stop with: make tenants-down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
