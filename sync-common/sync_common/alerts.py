"""Alerts: which failures to e-mail now, and the daily digest of those that persist.

Owns the memory of what was already e-mailed (the document ``alerts/<plugin>.json`` of the
plugin's run store, :mod:`sync_common.run_store`, so it is kept where the state and the dead
letters are and a worker without a disk does not forget it), the rules below, and the digest
e-mail. The failure e-mail itself and the SMTP settings are :mod:`sync_common.mailer`'s.

Why: a record that keeps failing fails on every run; at ``*/5`` that was 288 identical e-mails a
day, and the one that matters (a new failure) drowns in them.

The rules, per plugin (a run calls :meth:`Alerts.after_run` once, after ``summary.finish()``):

- An issue is a failed record or a stopped run, and, for a plugin that e-mails conflicts at once
  (``mail_conflicts``, target-moment), a conflict. Its identity is its kind, stream, key and
  message (times and durations inside the message left out, so a retried run-level error keeps
  its identity).
- A run with an issue not e-mailed before sends one e-mail at once: the run's whole report with
  the new issues marked NEW. An issue e-mailed before is not e-mailed again while it persists.
- An issue absent from a run that went to its end (not stopped, nothing uncounted) is fixed and
  forgotten: if it comes back it is new again. A stopped run (``RunSummary.stop``) fixes nothing.
- The daily digest goes out with the first run at or after ``notify_digest_time`` (default 07:00)
  in ``notify_digest_timezone`` (default Europe/Stockholm) each day, when issues are still open
  or conflicts came since the last digest: it lists those and the skipped records (per stream and
  reason). Skipped records alone send none; issues first e-mailed in the same run are left out;
  the first digest is the first one due after the memory began.
- An e-mail that could not be sent is not remembered as sent: the next run tries again.
- ``reported_elsewhere``: issues another plugin e-mailed (a target whose tap said it failed and
  mailed it): remembered as e-mailed, so the failure gives one e-mail, not two.

Without ``notify_email`` nothing is read or written. Without a run store every failing run is
e-mailed, as before this memory existed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from itertools import groupby
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sync_common.dead_letters import dead_letters_path
from sync_common.mailer import (
    DEFAULT_DIGEST_TIME,
    DEFAULT_DIGEST_TIMEZONE,
    FailureMailer,
    failure_report,
)
from sync_common.redaction import redact
from sync_common.run_store import RunStore, RunStoreError, RunStoreSettings
from sync_common.run_summary import RecordIssue, RunSummary

logger = logging.getLogger(__name__)

DOCUMENT: Final = "alerts/{plugin}.json"
# Conflicts kept for the digest between two digests; the oldest go first beyond this.
MAX_PENDING_CONFLICTS: Final = 1000
# Times and durations inside a message (an ISO instant, a run id, "3.2 s") vary from one run to the
# next for the same cause.
_VARYING: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
    r"|\b\d{8}T\d{6,12}Z\b"
    r"|\b\d+(?:\.\d+)?\s?(?:ms|s|seconds)\b"
)

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DigestSettings:
    """When the daily digest goes out: the first run at or after ``at`` in ``zone``."""

    at: time = time(7, 0)
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_DIGEST_TIMEZONE))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DigestSettings:
        """Read ``notify_digest_time`` (HH:MM) and ``notify_digest_timezone``.

        A ValueError names a bad one.
        """
        text = str(config.get("notify_digest_time") or DEFAULT_DIGEST_TIME).strip()
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", text)
        if match is None:
            raise ValueError(
                f"setting notify_digest_time={text!r} is not a time of day: use HH:MM, e.g. 07:00"
            )
        name = str(config.get("notify_digest_timezone") or DEFAULT_DIGEST_TIMEZONE).strip()
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"setting notify_digest_timezone={name!r} is not a time zone: use an IANA name "
                "such as Europe/Stockholm or UTC"
            ) from None
        return cls(time(int(match[1]), int(match[2])), zone)

    def describe(self) -> str:
        return f"first run from {self.at:%H:%M} {self.zone.key}"

    def due_since(self, now: datetime) -> datetime:
        """Today's digest instant (in ``zone``) if ``now`` is at or after it, else yesterday's."""
        local = now.astimezone(self.zone)
        today = datetime.combine(local.date(), self.at, tzinfo=self.zone)
        if local >= today:
            return today
        return datetime.combine(local.date() - timedelta(days=1), self.at, tzinfo=self.zone)


@dataclass(frozen=True)
class AlertResult:
    """What ``after_run`` did: ``mailed`` the run's new issues, sent the ``digest``.

    ``reported`` is true when every issue of the run has reached ``notify_email`` (now or before).
    """

    mailed: bool = False
    digest: bool = False
    reported: bool = False


def identity(kind: str, issue: RecordIssue) -> str:
    """An issue's identity across runs: kind, stream, key and message without times."""
    message = _VARYING.sub("…", issue.message)
    text = "\x1f".join((kind, issue.stream, issue.key or "", message))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


class Alerts:
    """Decides what a run e-mails (module doc) and keeps the memory of what was e-mailed."""

    def __init__(
        self,
        mailer: FailureMailer,
        store: RunStore | None,
        *,
        digest: DigestSettings | None = None,
        secrets: Iterable[str | None] = (),
        clock: Clock = _utc_now,
    ) -> None:
        self.mailer = mailer
        self.store = store
        self.digest = digest or DigestSettings()
        self.secrets = tuple(s for s in secrets if s)
        self._clock = clock

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        store: RunStore | RunStoreSettings | None,
        *,
        secrets: Iterable[str | None] = (),
        clock: Clock = _utc_now,
    ) -> Alerts:
        """The plugin's alerts.

        Given ``RunStoreSettings`` (a tap, which needs its run store only for this memory), the
        store is opened only when ``notify_email`` is set; opening applies the refusal rule
        (``RunStoreNotPersistent``). A bad digest setting is logged and the default used: it must
        not stop a sync.
        """
        mailer = FailureMailer.from_config(config)
        try:
            digest = DigestSettings.from_config(config)
        except ValueError as exc:
            logger.error(
                "%s; the digest uses %s %s", exc, DEFAULT_DIGEST_TIME, DEFAULT_DIGEST_TIMEZONE
            )
            digest = DigestSettings()
        if isinstance(store, RunStoreSettings):
            store = store.open() if mailer.enabled else None
        return cls(mailer, store, digest=digest, secrets=secrets, clock=clock)

    def after_run(
        self,
        summary: RunSummary,
        *,
        mail_conflicts: bool = False,
        reported_elsewhere: Sequence[RecordIssue] = (),
    ) -> AlertResult:
        """E-mail what is new in ``summary``, and the digest when it is due (module doc)."""
        if not self.mailer.enabled:
            return AlertResult()
        issues = _issues(summary, mail_conflicts)
        if self.store is None:
            sent = self.mailer.send_if_failed(summary, conflicts=mail_conflicts)
            return AlertResult(mailed=sent, reported=sent or not issues)
        name = DOCUMENT.format(plugin=summary.plugin)
        try:
            with self.store.rewrite(name) as document:
                memory = _Memory.load(document.text, self.store.where(name))
                result = self._update(memory, summary, issues, mail_conflicts, reported_elsewhere)
                document.text = memory.dump()
        except RunStoreError as exc:
            logger.error(
                "%s: the memory of e-mailed failures is out of reach (%s); this run's failures "
                "are e-mailed without it",
                summary.plugin,
                exc,
            )
            sent = self.mailer.send_if_failed(summary, conflicts=mail_conflicts)
            return AlertResult(mailed=sent, reported=sent or not issues)
        return result

    # -- the rules ------------------------------------------------------------------------------

    def _update(
        self,
        memory: _Memory,
        summary: RunSummary,
        issues: list[tuple[str, str, RecordIssue]],
        mail_conflicts: bool,
        reported_elsewhere: Sequence[RecordIssue],
    ) -> AlertResult:
        now = self._clock().astimezone(UTC)
        if memory.last_digest is None:  # a new memory: the first digest is the next one due
            memory.last_digest = now
        elsewhere = {identity("failed", issue) for issue in reported_elsewhere}
        new: list[tuple[str, str, RecordIssue]] = []
        for ident, kind, issue in issues:
            if ident in memory.open:
                memory.seen(ident, now)
            elif ident in elsewhere:
                memory.add(ident, kind, issue, now, mailed="elsewhere")
            else:
                new.append((ident, kind, issue))
        if not mail_conflicts:
            for issue in summary.conflicts:
                memory.pending_conflict(identity("conflict", issue), issue, now)
        for stream, counts in summary.streams.items():
            for reason, n in counts.skipped_reasons.items():
                memory.skipped(stream, reason, n, now)

        mailed = False
        if new and self.mailer.ready(summary):
            body = failure_report(
                summary,
                new=[issue for _, _, issue in new],
                reported_before=len(issues) - len(new),
                digest=self.digest.describe(),
            )
            mailed = self._send(self.mailer.compose(summary, body))
        if mailed:
            for ident, kind, issue in new:
                memory.add(ident, kind, issue, now, mailed=now.isoformat())

        complete = (
            summary.stopped is None
            and summary.failures_not_kept == 0
            and summary.conflicts_not_kept == 0
        )
        if complete:
            memory.forget_all_but({ident for ident, _, _ in issues})
        digest = self._digest_if_due(memory, summary, now, {ident for ident, _, _ in new})
        return AlertResult(mailed=mailed, digest=digest, reported=mailed or not new)

    def _digest_if_due(
        self, memory: _Memory, summary: RunSummary, now: datetime, just_new: set[str]
    ) -> bool:
        due_since = self.digest.due_since(now)
        if memory.last_digest is not None and memory.last_digest >= due_since:
            return False
        still_open = {k: v for k, v in memory.open.items() if k not in just_new}
        if not still_open and not memory.conflicts:
            memory.digest_done(now)  # nothing to report today; skipped records start afresh
            return False
        if not self.mailer.ready(summary):
            return False
        body = digest_report(summary, still_open, memory, now, self.digest)
        n_skipped = sum(
            e["last"] for reasons in memory.skipped_by.values() for e in reasons.values()
        )
        subject = (
            f"[{summary.plugin}] daily digest: {len(still_open)} still failing, "
            f"{len(memory.conflicts)} conflict(s), {n_skipped} skipped"
        )
        if not self._send(self.mailer.message(subject, body)):
            return False
        memory.digest_done(now)
        return True

    def _send(self, message: Any) -> bool:
        subject, body = str(message["Subject"]), message.get_content()
        del message["Subject"]
        message["Subject"] = redact(subject, self.secrets)
        message.set_content(redact(body, self.secrets))
        return self.mailer.send(message)


def _issues(summary: RunSummary, mail_conflicts: bool) -> list[tuple[str, str, RecordIssue]]:
    issues = [(identity("failed", i), "failed", i) for i in summary.failures]
    if mail_conflicts:
        issues += [(identity("conflict", i), "conflict", i) for i in summary.conflicts]
    return issues


class _Memory:
    """The document ``alerts/<plugin>.json``.

    It holds the issues e-mailed and still open, the conflicts and skipped records since the last
    digest, and when that was.
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.open: dict[str, dict[str, Any]] = dict(data.get("open") or {})
        self.conflicts: dict[str, dict[str, Any]] = dict(data.get("conflicts") or {})
        self.skipped_by: dict[str, dict[str, dict[str, Any]]] = dict(data.get("skipped") or {})
        last = data.get("last_digest")
        self.last_digest = datetime.fromisoformat(last) if isinstance(last, str) else None

    @classmethod
    def load(cls, text: str, where: str) -> _Memory:
        try:
            data = json.loads(text) if text.strip() else {}
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            return cls(data)
        except ValueError as exc:
            logger.warning(
                "the memory of e-mailed failures %s is unreadable (%s): starting afresh, so "
                "failures still open are e-mailed once more",
                where,
                exc,
            )
            return cls({})

    def dump(self) -> str:
        if not (self.open or self.conflicts or self.skipped_by or self.last_digest):
            return ""
        data = {
            "open": self.open,
            "conflicts": self.conflicts,
            "skipped": self.skipped_by,
            "last_digest": self.last_digest.isoformat() if self.last_digest else None,
        }
        return json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n"

    def add(self, ident: str, kind: str, issue: RecordIssue, now: datetime, *, mailed: str) -> None:
        self.open[ident] = {
            "kind": kind,
            "stream": issue.stream,
            "key": issue.key,
            "message": issue.message,
            "first_seen": now.isoformat(),
            "last_seen": now.isoformat(),
            "runs": 1,
            "mailed": mailed,
        }

    def seen(self, ident: str, now: datetime) -> None:
        entry = self.open[ident]
        entry["last_seen"] = now.isoformat()
        entry["runs"] = int(entry.get("runs", 0)) + 1

    def forget_all_but(self, idents: set[str]) -> None:
        for ident in [i for i in self.open if i not in idents]:
            del self.open[ident]

    def pending_conflict(self, ident: str, issue: RecordIssue, now: datetime) -> None:
        entry = self.conflicts.get(ident)
        if entry is None:
            while len(self.conflicts) >= MAX_PENDING_CONFLICTS:
                del self.conflicts[next(iter(self.conflicts))]
            self.conflicts[ident] = entry = {
                "stream": issue.stream,
                "key": issue.key,
                "message": issue.message,
                "first_seen": now.isoformat(),
                "runs": 0,
            }
        entry["runs"] = int(entry.get("runs", 0)) + 1
        entry["last_seen"] = now.isoformat()

    def skipped(self, stream: str, reason: str, n: int, now: datetime) -> None:
        entry = self.skipped_by.setdefault(stream, {}).setdefault(reason, {"runs": 0})
        entry.update(last=n, runs=int(entry["runs"]) + 1, last_seen=now.isoformat())

    def digest_done(self, now: datetime) -> None:
        self.last_digest = now
        self.conflicts.clear()
        self.skipped_by.clear()


def digest_report(
    summary: RunSummary,
    still_open: Mapping[str, Mapping[str, Any]],
    memory: _Memory,
    now: datetime,
    settings: DigestSettings,
) -> str:
    """The body of the daily digest."""
    plugin = summary.plugin
    local = now.astimezone(settings.zone)
    lines = [
        f"{plugin}: daily digest of {local:%Y-%m-%d} (sent by the {settings.describe()}; "
        "settings notify_digest_time, notify_digest_timezone).",
        "A failure is e-mailed once, when it is new; while it persists it is listed here once "
        "a day. It leaves this list at the first run that goes to its end without it.",
    ]
    if still_open:
        lines += ["", f"Still failing ({len(still_open)}):"]
        entries = sorted(still_open.values(), key=lambda e: (e["stream"], str(e["key"])))
        for stream, group in groupby(entries, key=lambda e: e["stream"]):
            lines.append(f"  {stream}:")
            for e in group:
                what = "conflict, " if e.get("kind") == "conflict" else ""
                lines += [
                    f"    - key {e['key'] or '(none)'}: {e['message']}",
                    f"      ({what}failing since {_when(e['first_seen'])}, in {e['runs']} run(s), "
                    f"last {_when(e['last_seen'])})",
                ]
    if memory.conflicts:
        lines += [
            "",
            f"Conflicts since the last digest, not overwritten ({len(memory.conflicts)}):",
        ]
        entries = sorted(memory.conflicts.values(), key=lambda e: (e["stream"], str(e["key"])))
        for stream, group in groupby(entries, key=lambda e: e["stream"]):
            lines.append(f"  {stream}:")
            lines += [f"    - key {e['key'] or '(none)'}: {e['message']}" for e in group]
    if memory.skipped_by:
        lines += [
            "",
            "Skipped records since the last digest (records in the last run that had them):",
        ]
        for stream, reasons in sorted(memory.skipped_by.items()):
            for reason, e in sorted(reasons.items()):
                lines.append(f"  {stream}: {e['last']} {reason} (in {e['runs']} run(s))")
    where = summary.dead_letters_at
    if where is None:
        where = dead_letters_path(summary.results_dir, plugin)
    lines += [
        "",
        "Files:",
        f"  run summaries: {(summary.results_dir / 'runs').absolute()}",
        f"  dead letters:  {where}",
        "",
        "Each message says what to do. The next run retries the dead letters first.",
    ]
    return "\n".join(lines) + "\n"


def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return iso
