"""``moment-webhooks run``: one scheduled run of a job, under the tenant lock, retried and alerted.

Owns what cron (or any scheduler calling the command) does not do by itself:

* the tenant lock shared with the webhook receiver, so a scheduled run and a webhook run never
  overlap (``--skip-if-busy`` skips instead of waiting);
* retries of a failed run: ``--retries N`` more tries ``--retry-delay`` seconds apart, with the
  lock released while waiting so webhook runs go on;
* the alert e-mail when the last try failed (a non-zero exit of ``meltano run``, whatever the
  cause: a plugin, Meltano itself, a timeout), sent with the notify/SMTP settings of the job's
  plugins through :mod:`sync_common.mailer`, throttled per job and tenant: one e-mail when the job
  starts failing, a reminder every ``--alert-every-hours`` while it keeps failing, and one when
  it works again. The state of that lives beside the lock (``<lock>.alerts.json``).

The e-mail shows the last lines of the run's output with every secret of the environment (and
``.env``) masked.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import filelock
from dotenv import dotenv_values, find_dotenv
from sync_common.mailer import FailureMailer, SmtpSettings, notify_settings_schema
from sync_common.redaction import redact

from moment_webhooks.runner import CommandRunner

logger = logging.getLogger(__name__)

# The plugins whose notify_email / smtp_* settings the alert uses, in the order they are tried.
NOTIFY_PREFIXES = ("TARGET_FORTNOX", "TARGET_MOMENT", "TAP_MOMENT", "TAP_FORTNOX_EXPENSES")
NOTIFY_SETTINGS = tuple(notify_settings_schema()["properties"])
TAIL_LINES = 40
DEFAULT_ALERT_EVERY_HOURS = 24.0
# Environment variables whose values never reach an e-mail: the plugins' secrets and any URL
# with credentials in it (token_store_url, run_store_url, a database URI).
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|API_KEY|TOKEN|CREDENTIAL|PRIVATE_KEY", re.IGNORECASE)
_URL_WITH_CREDENTIALS = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s]+@", re.IGNORECASE)


def project_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment with ``.env`` (found from the working directory up) beneath it, as
    Meltano sees it: the real environment wins."""
    path = find_dotenv(usecwd=True)
    from_file = {k: v for k, v in dotenv_values(path).items() if v is not None} if path else {}
    return {**from_file, **(os.environ if environ is None else environ)}


def notify_config(
    prefix: str | None, variables: Mapping[str, str]
) -> tuple[str | None, dict[str, str]]:
    """``(prefix, {notify_email: …, smtp_host: …})`` from ``<PREFIX>_NOTIFY_EMAIL`` etc.; without
    ``prefix`` the first of :data:`NOTIFY_PREFIXES` whose ``_NOTIFY_EMAIL`` is set."""
    candidates = [prefix.upper().rstrip("_")] if prefix else list(NOTIFY_PREFIXES)
    for head in candidates:
        config = {
            name: variables[f"{head}_{name.upper()}"]
            for name in NOTIFY_SETTINGS
            if variables.get(f"{head}_{name.upper()}") not in (None, "")
        }
        if config.get("notify_email") or prefix:
            return head, config
    return None, {}


def secrets_in(variables: Mapping[str, str]) -> list[str]:
    """Values of ``variables`` that must not be mailed (see :data:`_SECRET_NAME`)."""
    return [
        value
        for name, value in variables.items()
        if value and (_SECRET_NAME.search(name) or _URL_WITH_CREDENTIALS.match(value))
    ]


@dataclass
class AlertState:
    """Whether the job is failing and when the last alert went out (``<lock>.alerts.json``)."""

    failing_since: str | None = None
    failed_runs: int = 0
    last_exit_code: int | None = None
    last_alert_at: str | None = None

    @classmethod
    def load(cls, path: Path) -> AlertState:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**{k: data.get(k) for k in asdict(cls())})
        except FileNotFoundError:
            return cls()
        except (ValueError, TypeError):
            logger.warning("%s is not readable alert state; starting afresh", path)
            return cls()

    def save(self, path: Path) -> None:
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)


@dataclass(frozen=True)
class Attempt:
    started_at: datetime
    seconds: float
    exit_code: int


@dataclass
class ScheduledRun:
    """Run ``command`` once for ``tenant`` (plus retries); alert on the final failure."""

    command: str
    tenant: str
    lock_path: Path
    retries: int = 0
    retry_delay: float = 0.0
    timeout_seconds: float | None = None
    skip_if_busy: bool = False
    notify_prefix: str | None = None
    alert_every: timedelta = timedelta(hours=DEFAULT_ALERT_EVERY_HOURS)
    environ: Mapping[str, str] | None = None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep

    @property
    def alert_state_path(self) -> Path:
        return self.lock_path.with_name(self.lock_path.name + ".alerts.json")

    @property
    def job(self) -> str:
        """A short name for subjects: the job after ``run`` (``fortnox-expenses-to-moment``)."""
        argv = shlex.split(self.command)
        if "run" in argv:
            names = [a for a in argv[argv.index("run") + 1 :] if not a.startswith("-")]
            if names:
                return " ".join(names)
        return Path(argv[0]).name if argv else "job"

    def run(self) -> int:
        """Run, retry, alert; the exit code of the last try (0 when skipped as busy)."""
        lock = filelock.FileLock(str(self.lock_path))
        runner = CommandRunner(
            self.command, timeout_seconds=self.timeout_seconds, tail_lines=TAIL_LINES
        )
        attempts: list[Attempt] = []
        tries = self.retries + 1
        while True:
            if not self._acquire(lock, first=not attempts):
                return 0
            try:
                started, clock = self.clock(), time.monotonic()
                exit_code = runner.run()
                attempts.append(Attempt(started, time.monotonic() - clock, exit_code))
                last = exit_code == 0 or len(attempts) == tries
                if last:
                    self._record(attempts, list(runner.tail))
            finally:
                lock.release()
            if last:
                break
            logger.warning(
                "tenant %s: %s failed with exit_code=%s (try %d of %d); trying again in %g s",
                self.tenant,
                self.job,
                exit_code,
                len(attempts),
                tries,
                self.retry_delay,
            )
            self.sleep(self.retry_delay)
        log = logger.info if exit_code == 0 else logger.error
        log(
            "tenant %s: run finished with exit_code=%s after %d tr%s",
            self.tenant,
            exit_code,
            len(attempts),
            "y" if len(attempts) == 1 else "ies",
        )
        return exit_code

    def _acquire(self, lock: filelock.FileLock, *, first: bool) -> bool:
        try:
            lock.acquire(timeout=0)
            return True
        except filelock.Timeout:
            if first and self.skip_if_busy:
                logger.info(
                    "tenant %s: another run holds %s; skipping this one (--skip-if-busy)",
                    self.tenant,
                    self.lock_path,
                )
                return False
        logger.info("tenant %s: another run holds %s; waiting for it", self.tenant, self.lock_path)
        lock.acquire()
        return True

    # -- alerts ---------------------------------------------------------------------------------

    def _record(self, attempts: Sequence[Attempt], tail: Sequence[str]) -> None:
        """Update the alert state with this run's outcome and send the e-mail it calls for."""
        path = self.alert_state_path
        state = AlertState.load(path)
        now = self.clock()
        final = attempts[-1]
        message: EmailMessage | None = None
        if final.exit_code == 0:
            if state.failed_runs and state.last_alert_at:
                message = self._recovered(state, now)
            state = AlertState()
        else:
            first_failure = not state.failed_runs
            state.failed_runs += 1
            state.failing_since = state.failing_since or attempts[0].started_at.isoformat()
            state.last_exit_code = final.exit_code
            due = first_failure or _since(state.last_alert_at, now) >= self.alert_every
            if due:
                message = self._failed(state, attempts, tail)
            else:
                logger.info(
                    "tenant %s: %s is still failing (%d runs); the alert went out at %s, the "
                    "next reminder after %s",
                    self.tenant,
                    self.job,
                    state.failed_runs,
                    state.last_alert_at,
                    (_parse(state.last_alert_at) + self.alert_every).isoformat(timespec="minutes"),
                )
        if message is not None and self._send(message):
            state.last_alert_at = now.isoformat() if state.failed_runs else None
        state.save(path)

    def _send(self, message: EmailMessage) -> bool:
        variables = project_environment(self.environ)
        prefix, config = notify_config(self.notify_prefix, variables)
        try:
            settings = SmtpSettings.from_config(config)
        except ValueError as exc:
            logger.error("tenant %s: no alert e-mail: %s", self.tenant, exc)
            return False
        if not settings.recipients or not settings.host:
            where = (
                f"{prefix}_NOTIFY_EMAIL and {prefix}_SMTP_HOST"
                if prefix
                else (
                    " or ".join(f"{p}_NOTIFY_EMAIL" for p in NOTIFY_PREFIXES) + " (and _SMTP_HOST)"
                )
            )
            logger.error(
                "tenant %s: %s — but no alert e-mail is set up: set %s in .env or the environment",
                self.tenant,
                message["Subject"],
                where,
            )
            return False
        body = message.get_content()
        message.set_content(redact(body, [*secrets_in(variables), settings.password]))
        message["From"] = settings.sender
        message["To"] = ", ".join(settings.recipients)
        return FailureMailer(settings).send(message)

    def _failed(
        self, state: AlertState, attempts: Sequence[Attempt], tail: Sequence[str]
    ) -> EmailMessage:
        final = attempts[-1]
        tries = f"{len(attempts)} tr{'y' if len(attempts) == 1 else 'ies'}"
        reminder = state.failed_runs > 1
        lines = [
            f"The scheduled run of {self.job} for tenant {self.tenant} on {socket.gethostname()} "
            f"failed: exit code {final.exit_code} after {tries}.",
            f"Command: {self.command}",
            f"Working directory: {Path.cwd()}",
            "",
            "Tries:",
            *(
                f"  {n}. {_stamp(a.started_at)}: exit code {a.exit_code} after {a.seconds:.1f} s"
                for n, a in enumerate(attempts, 1)
            ),
            "",
            f"Failing since {_stamp(_parse(state.failing_since))}: {state.failed_runs} failed "
            f"run{'s' if state.failed_runs != 1 else ''} in a row.",
        ]
        if tail:
            lines += ["", "Last lines of its output (secrets masked):", *(f"  {t}" for t in tail)]
        lines += [
            "",
            "What to do: the lines above (and the whole log, where the scheduler writes this",
            "command's output) say why. A failed run saves no state past what it wrote, so",
            "nothing is lost: the next scheduled run starts from the same place. To run it now:",
            f"  cd {Path.cwd()} && {self.command}",
            "",
            f"You get one e-mail when {self.job} starts failing, a reminder every "
            f"{_hours(self.alert_every)} while it keeps failing, and one when it works again.",
        ]
        subject = "still failing" if reminder else "failed"
        return _message(
            f"[{self.job}] scheduled run {subject} (exit code {final.exit_code}), tenant "
            f"{self.tenant}",
            lines,
        )

    def _recovered(self, state: AlertState, now: datetime) -> EmailMessage:
        return _message(
            f"[{self.job}] scheduled run works again, tenant {self.tenant}",
            [
                f"The scheduled run of {self.job} for tenant {self.tenant} on "
                f"{socket.gethostname()} succeeded at {_stamp(now)}, after "
                f"{state.failed_runs} failed run{'s' if state.failed_runs != 1 else ''} since "
                f"{_stamp(_parse(state.failing_since))} (last exit code {state.last_exit_code}).",
                f"Command: {self.command}",
            ],
        )


def _message(subject: str, lines: Sequence[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="moment-fortnox-sync")
    message.set_content("\n".join(lines) + "\n")
    return message


def _parse(stamp: str | None) -> datetime:
    if not stamp:
        return datetime.min.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(stamp)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _since(stamp: str | None, now: datetime) -> timedelta:
    return now - _parse(stamp)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _hours(span: timedelta) -> str:
    hours = span / timedelta(hours=1)
    return f"{hours:g} h"
