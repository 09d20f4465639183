"""The ``moment-webhooks`` command: ``serve`` (the receiver) and ``run`` (one locked job run).

``serve`` receives Moment webhooks and triggers the job; ``run`` is for the scheduler (cron,
``meltano schedule``, Airflow): it runs the job once under the same per-tenant lock, so that a
scheduled run and a webhook run never overlap, retries it if asked and e-mails when it fails
(:mod:`moment_webhooks.scheduled`). Every option falls back to an environment variable
``MOMENT_WEBHOOKS_<OPTION>`` (e.g. ``MOMENT_WEBHOOKS_PATH_TOKEN``), then to its default.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

from moment_webhooks import settings as s
from moment_webhooks.app import create_app
from moment_webhooks.runner import CommandRunner
from moment_webhooks.scheduled import DEFAULT_ALERT_EVERY_HOURS, NOTIFY_PREFIXES, ScheduledRun
from moment_webhooks.server import serve
from moment_webhooks.trigger import JobTrigger

logger = logging.getLogger("moment_webhooks")
T = TypeVar("T")
EXIT_SETTINGS = 2


def _env(name: str, default: T, parse: Callable[[str], T]) -> T:
    raw = os.environ.get(s.ENV_PREFIX + name)
    if raw is None or raw == "":
        return default
    try:
        return parse(raw)
    except ValueError:
        raise s.SettingsError(
            f"environment variable {s.ENV_PREFIX}{name}={raw!r} is not a valid value"
        ) from None


def _entity_types(raw: str) -> frozenset[str]:
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def _timeout(raw: str) -> float | None:
    value = float(raw)
    return None if value == 0 else value


def _count(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(raw)
    return value


def _non_negative(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError(raw)
    return value


def _positive(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError(raw)
    return value


def _add_job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--command",
        default=_env("COMMAND", s.DEFAULT_COMMAND, str),
        help=f'job to run, split like a shell would (default "{s.DEFAULT_COMMAND}")',
    )
    parser.add_argument(
        "--tenant",
        default=_env("TENANT", s.DEFAULT_TENANT, str),
        help="tenant name: one lock and one run at a time per tenant (default %(default)s)",
    )
    parser.add_argument(
        "--lock-dir",
        type=Path,
        default=_env("LOCK_DIR", Path(s.DEFAULT_LOCK_DIR), Path),
        help="directory of the per-tenant lock files, shared by serve and run "
        "(default %(default)s, relative to the working directory)",
    )
    parser.add_argument(
        "--run-timeout-seconds",
        type=_timeout,
        default=_env("RUN_TIMEOUT_SECONDS", _timeout(str(s.DEFAULT_RUN_TIMEOUT_SECONDS)), _timeout),
        help="stop a run that takes longer (0 = no limit; default %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="moment-webhooks",
        description="Trigger the moment-to-fortnox Meltano job from Moment webhooks.",
    )
    parser.add_argument(
        "--log-level",
        default=_env("LOG_LEVEL", "INFO", str),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
    )
    commands = parser.add_subparsers(dest="action", required=True)

    serve_p = commands.add_parser("serve", help="receive webhooks and trigger the job")
    serve_p.add_argument("--host", default=_env("HOST", s.DEFAULT_HOST, str))
    serve_p.add_argument("--port", type=int, default=_env("PORT", s.DEFAULT_PORT, int))
    serve_p.add_argument(
        "--path-token",
        default=_env("PATH_TOKEN", "", str),
        help="secret path segment of the webhook URL; prefer the environment variable "
        f"{s.ENV_PREFIX}PATH_TOKEN (command lines are visible to other users)",
    )
    serve_p.add_argument(
        "--debounce-seconds",
        type=float,
        default=_env("DEBOUNCE_SECONDS", s.DEFAULT_DEBOUNCE_SECONDS, float),
        help="start a run once no webhook came for this long (default %(default)s)",
    )
    serve_p.add_argument(
        "--max-wait-seconds",
        type=float,
        default=_env("MAX_WAIT_SECONDS", s.DEFAULT_MAX_WAIT_SECONDS, float),
        help="start a run at the latest this long after its first webhook (default %(default)s)",
    )
    serve_p.add_argument(
        "--max-body-bytes",
        type=int,
        default=_env("MAX_BODY_BYTES", s.DEFAULT_MAX_BODY_BYTES, int),
    )
    serve_p.add_argument(
        "--entity-types",
        type=_entity_types,
        default=_env("ENTITY_TYPES", frozenset(s.DEFAULT_ENTITY_TYPES), _entity_types),
        help="comma-separated webhook types that trigger the job "
        f"(default {','.join(s.DEFAULT_ENTITY_TYPES)}); others get 202 and are ignored",
    )
    serve_p.add_argument(
        "--shutdown-grace-seconds",
        type=float,
        default=_env("SHUTDOWN_GRACE_SECONDS", 60.0, float),
        help="on SIGTERM, let a run in flight finish this long before stopping it",
    )
    _add_job_options(serve_p)

    run_p = commands.add_parser(
        "run", help="run the job once under the tenant lock (for cron / the scheduler)"
    )
    run_p.add_argument(
        "--skip-if-busy",
        action="store_true",
        help="exit 0 at once when another run holds the lock, instead of waiting for it",
    )
    run_p.add_argument(
        "--retries",
        type=_count,
        default=_env("RETRIES", 0, _count),
        help="when the job fails, run it again up to this many times (default %(default)s)",
    )
    run_p.add_argument(
        "--retry-delay",
        type=_non_negative,
        default=_env("RETRY_DELAY", 600.0, _non_negative),
        help="seconds between a failed try and the next, the lock released meanwhile "
        "(default %(default)g)",
    )
    run_p.add_argument(
        "--notify-settings",
        metavar="PREFIX",
        default=_env("NOTIFY_SETTINGS", None, str),
        help="e-mail the failure with <PREFIX>_NOTIFY_EMAIL, <PREFIX>_SMTP_HOST, ... from the "
        "environment or .env (default: the first of "
        f"{', '.join(NOTIFY_PREFIXES)} whose _NOTIFY_EMAIL is set)",
    )
    run_p.add_argument(
        "--alert-every-hours",
        type=_positive,
        default=_env("ALERT_EVERY_HOURS", DEFAULT_ALERT_EVERY_HOURS, _positive),
        help="while the job keeps failing, a reminder e-mail at most this often "
        "(default %(default)g)",
    )
    _add_job_options(run_p)
    return parser


def _serve(args: argparse.Namespace) -> int:
    settings = s.ReceiverSettings(
        path_token=args.path_token,
        host=args.host,
        port=args.port,
        command=args.command,
        tenant=args.tenant,
        debounce_seconds=args.debounce_seconds,
        max_wait_seconds=args.max_wait_seconds,
        lock_dir=args.lock_dir,
        max_body_bytes=args.max_body_bytes,
        run_timeout_seconds=args.run_timeout_seconds,
        entity_types=args.entity_types,
    ).validated()
    runner = CommandRunner(settings.command, timeout_seconds=settings.run_timeout_seconds)
    trigger = JobTrigger(
        runner,
        lock_path=settings.lock_path,
        tenant=settings.tenant,
        debounce_seconds=settings.debounce_seconds,
        max_wait_seconds=settings.max_wait_seconds,
    )
    app = create_app(
        trigger,
        path_token=settings.path_token,
        entity_types=settings.entity_types,
        max_body_bytes=settings.max_body_bytes,
    )
    logger.info(
        "tenant %s: job %r, debounce %.1fs, lock %s, webhook types %s",
        settings.tenant,
        runner,
        settings.debounce_seconds,
        settings.lock_path,
        ",".join(sorted(settings.entity_types)),
    )
    serve(app, trigger, settings.host, settings.port, args.shutdown_grace_seconds)
    return 0


def _run_once(args: argparse.Namespace) -> int:
    if not args.command.strip():
        raise s.SettingsError(f"--command ({s.ENV_PREFIX}COMMAND) is empty")
    lock_path = s.tenant_lock_path(args.lock_dir, args.tenant)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    return ScheduledRun(
        command=args.command,
        tenant=args.tenant,
        lock_path=lock_path,
        retries=args.retries,
        retry_delay=args.retry_delay,
        timeout_seconds=args.run_timeout_seconds,
        skip_if_busy=args.skip_if_busy,
        notify_prefix=args.notify_settings,
        alert_every=timedelta(hours=args.alert_every_hours),
    ).run()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``moment-webhooks`` console script; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except s.SettingsError as exc:
        print(f"moment-webhooks: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.action == "serve":
            return _serve(args)
        return _run_once(args)
    except s.SettingsError as exc:
        print(f"moment-webhooks: {exc}", file=sys.stderr)
        return EXIT_SETTINGS
