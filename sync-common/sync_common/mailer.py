"""Failure e-mail: plain-text messages about runs that had failed records.

Owns the SMTP settings (``notify_email``, ``smtp_host``, ``smtp_port``, ``smtp_username``,
``smtp_password``, ``smtp_from``, ``smtp_starttls``; the digest's ``notify_digest_time`` and
``notify_digest_timezone`` are read by :mod:`sync_common.alerts`, which decides when to mail),
composing the message from a ``RunSummary`` (failures per stream with keys and messages, where
the run JSON and the dead-letter file are, how to replay) and sending it. Sending never raises:
an e-mail that cannot be delivered must not fail a sync whose data already went through; the
error is logged, password masked.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from itertools import groupby
from pathlib import Path
from typing import Any, Final

from sync_common.dead_letters import dead_letters_path
from sync_common.meltano_command import meltano_command
from sync_common.redaction import redact
from sync_common.run_summary import OUTCOMES, RecordIssue, RunSummary

logger = logging.getLogger(__name__)

PORT_WITH_STARTTLS: Final = 587
PORT_WITHOUT_STARTTLS: Final = 25
DEFAULT_SENDER: Final = "moment-fortnox-sync@localhost"
DEFAULT_TIMEOUT_SECONDS: Final = 30.0
DEFAULT_DIGEST_TIME: Final = "07:00"
DEFAULT_DIGEST_TIMEZONE: Final = "Europe/Stockholm"
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off", ""})


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send; ``recipients`` empty means e-mail is off."""

    recipients: tuple[str, ...]
    host: str | None = None
    port: int = PORT_WITH_STARTTLS
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sender: str = DEFAULT_SENDER
    starttls: bool = True
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmtpSettings:
        """The notify/SMTP settings of a plugin config; ValueError names a bad setting."""
        starttls = _as_bool("smtp_starttls", config.get("smtp_starttls", True))
        port_value = config.get("smtp_port")
        default_port = PORT_WITH_STARTTLS if starttls else PORT_WITHOUT_STARTTLS
        try:
            port = int(port_value) if port_value not in (None, "") else default_port
        except (TypeError, ValueError):
            raise ValueError(
                f"setting smtp_port={port_value!r} is not a port number: use e.g. 587 or 25"
            ) from None
        try:
            timeout = float(config.get("smtp_timeout") or DEFAULT_TIMEOUT_SECONDS)
        except (TypeError, ValueError):
            raise ValueError(
                f"setting smtp_timeout={config.get('smtp_timeout')!r} is not a number of seconds"
            ) from None
        username = config.get("smtp_username") or None
        sender = config.get("smtp_from") or (
            username if username and "@" in username else DEFAULT_SENDER
        )
        return cls(
            recipients=_recipients(config.get("notify_email")),
            host=config.get("smtp_host") or None,
            port=port,
            username=username,
            password=config.get("smtp_password") or None,
            sender=sender,
            starttls=starttls,
            timeout=timeout,
        )


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"setting {name}={value!r} is not a boolean: use true or false")


def _recipients(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return tuple(address.strip() for address in items if str(address).strip())


class FailureMailer:
    """Sends the failure e-mail of a run; a no-op when ``notify_email`` is not set."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> FailureMailer:
        """Read the notify/SMTP settings of a plugin config.

        Never raises: with a bad value the mailer is off and the error, naming the setting, is
        logged (use ``SmtpSettings.from_config`` in a pre-flight check to fail on it instead).
        """
        try:
            return cls(SmtpSettings.from_config(config))
        except ValueError as exc:
            logger.error("failure e-mail is off: %s", exc)
            return cls(SmtpSettings(recipients=()))

    @property
    def enabled(self) -> bool:
        return bool(self.settings.recipients)

    def send_if_failed(self, summary: RunSummary, *, conflicts: bool = False) -> bool:
        """Send one e-mail if the run had failures and ``notify_email`` is set; True if sent.

        With ``conflicts``, a run with conflicts is mailed too.
        """
        has_conflicts = conflicts and summary.conflict_count > 0
        if not (summary.has_failures or has_conflicts) or not self.ready(summary):
            return False
        return self.send(self.compose(summary))

    def ready(self, summary: RunSummary) -> bool:
        """Whether e-mail can go out: ``notify_email`` set and, if so, ``smtp_host`` too.

        The absence of ``smtp_host`` is logged with what to set.
        """
        if not self.enabled:
            return False
        if not self.settings.host:
            logger.error(
                "%s: %d failed record(s), %d conflict(s), but no failure e-mail sent: "
                "notify_email is set and smtp_host is not; set smtp_host (and smtp_port, "
                "smtp_username, smtp_password)",
                summary.plugin,
                summary.failure_count,
                summary.conflict_count,
            )
            return False
        return True

    def compose(self, summary: RunSummary, body: str | None = None) -> EmailMessage:
        """The failure e-mail for ``summary``, in plain text.

        ``body``, when given, is used instead of ``failure_report(summary)``.
        """
        if summary.stopped:
            what = f"run {summary.run_id} stopped: {_first_line(summary.stopped)}"
        else:
            if summary.failure_count or not summary.conflict_count:
                what = f"{summary.failure_count} failed record(s)"
            else:
                what = f"{summary.conflict_count} conflict(s)"
            what += f" in run {summary.run_id}"
        return self.message(f"[{summary.plugin}] {what}", body or failure_report(summary))

    def message(self, subject: str, body: str) -> EmailMessage:
        """A plain-text e-mail from ``smtp_from`` to ``notify_email``."""
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = self.settings.sender
        message["To"] = ", ".join(self.settings.recipients)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="moment-fortnox-sync")
        message.set_content(body)
        return message

    def send(self, message: EmailMessage) -> bool:
        """Deliver ``message``; log (password masked) and return False on any SMTP/network error."""
        s = self.settings
        assert s.host is not None  # send_if_failed checks this with a clear message
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout) as smtp:
                smtp.ehlo()
                if s.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                    smtp.ehlo()
                if s.username:
                    smtp.login(s.username, s.password or "")
                refused = smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            logger.error(
                "failure e-mail to %s via %s:%d not sent: %s; check smtp_host, smtp_port, "
                "smtp_starttls and the SMTP credentials",
                ", ".join(s.recipients),
                s.host,
                s.port,
                redact(f"{type(exc).__name__}: {exc}", [s.password]),
            )
            return False
        if refused:
            logger.warning("failure e-mail refused for: %s", ", ".join(sorted(refused)))
        logger.info("failure e-mail sent to %s", ", ".join(s.recipients))
        return True


def failure_report(
    summary: RunSummary,
    *,
    new: Collection[RecordIssue] | None = None,
    reported_before: int = 0,
    digest: str = "",
) -> str:
    """The body of the failure e-mail: what failed, where the files are, how to replay.

    With ``new`` (``sync_common.alerts``): the issues not e-mailed before are marked NEW, and a
    line says how many others were reported before and go to the daily ``digest`` instead.
    """
    data = summary.to_dict()
    plugin = summary.plugin
    # The stop's own failure (key none, the stop's message) is told first, not listed again.
    failures = [i for i in summary.failures if i.key is not None or i.message != summary.stopped]
    counted = summary.failure_count - (len(summary.failures) - len(failures))
    conflicts = f", {summary.conflict_count} conflict(s)" if summary.conflict_count else ""
    if summary.stopped:
        first = f"{plugin}: the run {summary.run_id} STOPPED before its end"
        first += f"; {counted} record(s) failed{conflicts}." if counted or conflicts else "."
    else:
        first = f"{plugin}: {summary.failure_count} record(s) failed{conflicts}"
        first += f" in run {summary.run_id}."
    lines = [
        first,
        f"Started {data['started_at']}, ended {data['ended_at'] or '(not finished)'}, "
        f"{data['duration_seconds']:.1f} s.",
    ]
    if summary.stopped:
        lines += ["", f"Why it stopped, and what to do: {summary.stopped}"]
    if new is not None:
        lines += ["", f"New since the last e-mail: {len(new)} (marked NEW below)."]
        if reported_before:
            lines.append(f"Reported before and still failing: {reported_before}.")
        lines += [
            "A failure that persists is not e-mailed again on every run: the daily digest",
            f"{f'({digest}) ' if digest else ''}lists it until it is fixed.",
        ]
    lines += ["", "Per stream:"]
    for name, counts in data["streams"].items():
        lines.append(f"  {name}: " + " ".join(f"{o}={counts[o]}" for o in OUTCOMES))
    for title, issues, not_kept in (
        ("Failed records", failures, summary.failures_not_kept),
        ("Conflicts (not overwritten)", summary.conflicts, summary.conflicts_not_kept),
    ):
        if not issues:
            continue
        lines += ["", f"{title}:"]
        for stream, group in groupby(
            sorted(issues, key=lambda i: i.stream), key=lambda i: i.stream
        ):
            lines.append(f"  {stream}:")
            lines += [
                f"    - {'NEW ' if new is not None and i in new else ''}key {i.key or '(none)'}: "
                f"{i.message}"
                for i in group
            ]
        if not_kept:
            lines.append(f"  ... and {not_kept} more (counted, not listed)")
    where = summary.dead_letters_at
    if where is None:
        where = dead_letters_path(summary.results_dir, plugin)
    lines += ["", "Files:"]
    run_file = summary.path.absolute() if summary.path else "(not written: run not finished)"
    lines.append(f"  run summary:   {run_file}")
    if isinstance(where, Path):
        # Absolute paths: the folder is often relative (output/) to a directory the reader
        # can't guess.
        dead_path = where.absolute()
        if dead_path.exists():
            lines += [
                f"  dead letters:  {dead_path}",
                "",
                "The next run retries the dead letters first. To replay them now, fix the cause",
                "(the messages above say what to do), then pipe the file into the target:",
                f"  cat {dead_path} | {plugin} --config <config.json>",
                "or, in the Meltano project:",
                f"  {meltano_command(f'invoke {plugin}')} < {dead_path}",
            ]
    elif summary.failures:
        lines += [
            f"  dead letters:  in the run store {where}",
            "",
            "The next run retries the dead letters first: fix the cause (the messages above say",
            "what to do) and run the job again.",
        ]
    return "\n".join(lines) + "\n"


def _first_line(text: str, limit: int = 100) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def notify_settings_schema() -> dict[str, Any]:
    """The notify/SMTP settings as a JSON-schema fragment.

    They are ``notify_email`` ... ``smtp_starttls``, and the digest's time and time zone.

    Every plugin that e-mails failures merges it into its ``config_jsonschema`` with
    :func:`sync_common.plugin_config_schema`, so the settings :meth:`SmtpSettings.from_config`
    reads are declared once. An unset ``smtp_starttls`` means on (see ``from_config``).
    """
    text = ["string", "null"]
    return {
        "type": "object",
        "properties": {
            "notify_email": {"type": text, "description": "Where the failure e-mail goes."},
            "smtp_host": {"type": text, "description": "SMTP server for the failure e-mail."},
            "smtp_port": {
                "type": ["integer", "null"],
                "description": f"SMTP port ({PORT_WITH_STARTTLS} with STARTTLS).",
            },
            "smtp_username": {"type": text, "description": "SMTP user name."},
            "smtp_password": {
                "type": text,
                "description": "SMTP password.",
                "secret": True,
                "writeOnly": True,
            },
            "smtp_from": {"type": text, "description": "Sender address of the e-mail."},
            "smtp_starttls": {"type": ["boolean", "null"], "description": "Use STARTTLS for SMTP."},
            "notify_digest_time": {
                "type": text,
                "default": DEFAULT_DIGEST_TIME,
                "description": "Time of day (HH:MM) from which the next run mails the daily "
                "digest: failures still open, conflicts, skipped records. A failure is mailed "
                "once when new, then only in the digest.",
            },
            "notify_digest_timezone": {
                "type": text,
                "default": DEFAULT_DIGEST_TIMEZONE,
                "description": "Time zone (IANA name) of notify_digest_time.",
            },
        },
        "required": [],
    }
