"""Alerts against a real local SMTP server (aiosmtpd) and both run stores: a failure is mailed once
when new, then listed in a daily digest while it persists; a new failure mails again; a fixed one
that comes back is new; a stopped run fixes nothing; an e-mail not sent is not remembered as sent.
Time is an injected clock: no sleeps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sync_common import Alerts, FileRunStore, PostgresRunStore, RunStore, RunSummary

# 21:00 UTC on a winter day is 22:00 in Stockholm: the daily expenses run.
DAY_ONE = datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
CUSTOMER_TAKEN = "Fortnox 2000637: customer number 1002 is taken; pick another number in Moment"
NO_ACCOUNT = "Fortnox 2001304: account 3999 not found (checked 2026-11-27T21:00:04+01:00 in 0.4 s)"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def config(server: Any, **extra: Any) -> dict[str, Any]:
    return {
        "notify_email": "ekonomi@example.se",
        "smtp_host": server.host,
        "smtp_port": server.port,
        "smtp_starttls": False,
        "smtp_password": "Smtp-L0sen-123",
        **extra,
    }


@pytest.fixture(params=["file", "postgresql"])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], RunStore]:
    """A new store instance on the same place for each run: another worker, nothing in memory."""
    if request.param == "file":
        return lambda: FileRunStore(tmp_path / "run-store")
    pytest.importorskip("psycopg", reason="sync-common[postgres] (psycopg) not installed")
    url = request.getfixturevalue("postgres_server").url() + f"?tenant={request.node.name[:60]}"
    return lambda: PostgresRunStore(url)


class Runs:
    """Runs of one plugin, each a new summary, a new store instance and the shared clock."""

    def __init__(self, server: Any, new_store: Callable[[], RunStore], tmp_path: Path) -> None:
        self.server = server
        self.new_store = new_store
        self.results = tmp_path / "output"
        self.clock = Clock(DAY_ONE)
        self.config = config(server)

    def run(
        self,
        failures: dict[str, str],
        *,
        at: datetime | None = None,
        stopped: str | None = None,
        plugin: str = "target-fortnox",
        **after: Any,
    ) -> Any:
        if at is not None:
            self.clock.now = at
        summary = RunSummary(plugin, self.results, clock=self.clock)
        summary.record("customers", "created", key="1001")
        for key, message in failures.items():
            summary.fail("customers", key, message)
        summary.record("invoices", "conflict", key="5002", detail="differs from the booked invoice")
        summary.skip("invoices", "push_invoices is off", key="5003")
        if stopped:
            summary.stop(stopped)
        summary.finish()
        store = self.new_store()
        try:
            alerts = Alerts.from_config(
                self.config, store, secrets=["Smtp-L0sen-123"], clock=self.clock
            )
            return alerts.after_run(summary, **after)
        finally:
            store.close()

    def later(self, minutes: int) -> datetime:
        self.clock.now += timedelta(minutes=minutes)
        return self.clock.now

    @property
    def mails(self) -> list[tuple[str, str]]:
        return [
            (
                str(m["Subject"]).replace("\r\n", "").strip(),  # unfolded
                m.get_payload(decode=True).decode("utf-8").replace("\r\n", "\n"),
            )
            for m in self.server.inbox.messages
        ]


@pytest.fixture
def runs(smtp_server: Any, new_store: Callable[[], RunStore], tmp_path: Path) -> Runs:
    return Runs(smtp_server, new_store, tmp_path)


def test_a_failure_is_mailed_once_then_in_the_next_days_digest(runs: Runs) -> None:
    first = runs.run({"1002": CUSTOMER_TAKEN})
    assert (first.mailed, first.reported) == (True, True)
    for _ in range(2):  # */5: the same record fails on every run
        runs.later(5)
        again = runs.run({"1002": CUSTOMER_TAKEN})
        assert (again.mailed, again.digest, again.reported) == (False, False, True)
    assert len(runs.mails) == 1
    subject, body = runs.mails[0]
    assert subject.startswith("[target-fortnox] 1 failed record(s) in run ")
    assert "New since the last e-mail: 1 (marked NEW below)" in body
    assert f"    - NEW key 1002: {CUSTOMER_TAKEN}" in body

    # The next morning, before 07:00 in Stockholm: nothing; from 07:00: one digest.
    assert not runs.run(
        {"1002": CUSTOMER_TAKEN}, at=datetime(2026, 11, 28, 5, 55, tzinfo=UTC)
    ).digest
    digest = runs.run({"1002": CUSTOMER_TAKEN}, at=datetime(2026, 11, 28, 6, 5, tzinfo=UTC))
    assert (digest.mailed, digest.digest) == (False, True)
    assert not runs.run({"1002": CUSTOMER_TAKEN}, at=runs.later(5)).digest
    assert len(runs.mails) == 2
    subject, body = runs.mails[1]
    assert subject == "[target-fortnox] daily digest: 1 still failing, 1 conflict(s), 1 skipped"
    assert f"    - key 1002: {CUSTOMER_TAKEN}" in body
    assert "failing since 2026-11-27 21:00 UTC, in 5 run(s)" in body
    assert "Conflicts since the last digest" in body
    assert "    - key 5002: differs from the booked invoice" in body
    assert "  invoices: 1 push_invoices is off (in 5 run(s))" in body
    assert "07:00 Europe/Stockholm" in body
    assert "Smtp-L0sen-123" not in body

    # A new failure mails again, at once; the old one is counted, not marked new.
    news = runs.run({"1002": CUSTOMER_TAKEN, "1003": NO_ACCOUNT}, at=runs.later(5))
    assert news.mailed
    subject, body = runs.mails[2]
    assert f"    - NEW key 1003: {NO_ACCOUNT}" in body
    assert f"    - key 1002: {CUSTOMER_TAKEN}" in body
    assert "Reported before and still failing: 1." in body
    assert len(runs.mails) == 3


def test_times_in_a_message_do_not_make_it_new(runs: Runs) -> None:
    runs.run({"1003": NO_ACCOUNT})
    later = NO_ACCOUNT.replace("2026-11-27T21:00:04+01:00 in 0.4 s", "2026-11-27T21:05:09Z in 2 s")
    assert not runs.run({"1003": later}, at=runs.later(5)).mailed
    assert runs.run({"1003": "Fortnox 2001304: account 4000 not found"}, at=runs.later(5)).mailed


def test_a_fixed_failure_that_comes_back_is_new_but_a_stopped_run_fixes_nothing(runs: Runs) -> None:
    runs.run({"1002": CUSTOMER_TAKEN})
    # A run that stopped early (Fortnox down) did not get to 1002: still open, not mailed again.
    stopped = runs.run({}, at=runs.later(5), stopped="FortnoxTransientError: 503 after 8 tries")
    assert stopped.mailed  # the stop itself is new
    assert not runs.run({"1002": CUSTOMER_TAKEN}, at=runs.later(5)).mailed
    # A run that went to its end without 1002: fixed. When it fails again, it is new.
    assert not runs.run({}, at=runs.later(5)).mailed
    assert runs.run({"1002": CUSTOMER_TAKEN}, at=runs.later(5)).mailed
    assert len(runs.mails) == 3
    assert runs.mails[1][0].startswith("[target-fortnox] run ")
    assert "stopped: FortnoxTransientError: 503 after 8 tries" in runs.mails[1][0]
    assert "Why it stopped, and what to do: FortnoxTransientError" in runs.mails[1][1]


def test_a_mail_that_could_not_be_sent_is_sent_by_the_next_run(runs: Runs) -> None:
    runs.config["smtp_port"] = 1  # nothing listens there
    assert runs.run({"1002": CUSTOMER_TAKEN}).reported is False
    runs.config["smtp_port"] = runs.server.port
    assert runs.run({"1002": CUSTOMER_TAKEN}, at=runs.later(5)).mailed
    assert len(runs.mails) == 1


def test_what_another_plugin_mailed_is_not_mailed_again(runs: Runs) -> None:
    summary = RunSummary("target-moment", runs.results, clock=runs.clock)
    issue = summary.stop("tap-fortnox-expenses failed, so this input ended early: 401")
    assert issue is not None
    summary.finish()
    store = runs.new_store()
    result = Alerts.from_config(runs.config, store, clock=runs.clock).after_run(
        summary, reported_elsewhere=[issue]
    )
    store.close()
    assert (result.mailed, result.reported) == (False, True)
    assert runs.mails == []


def test_conflicts_mail_at_once_where_the_plugin_asks(runs: Runs) -> None:
    assert runs.run({}, plugin="target-moment", mail_conflicts=True).mailed
    assert not runs.run({}, plugin="target-moment", mail_conflicts=True, at=runs.later(5)).mailed
    ((subject, body),) = runs.mails
    assert subject.startswith("[target-moment] 1 conflict(s) in run")
    assert "    - NEW key 5002: differs from the booked invoice" in body


def test_without_notify_email_nothing_is_read_or_written(runs: Runs, tmp_path: Path) -> None:
    runs.config["notify_email"] = ""
    assert runs.run({"1002": CUSTOMER_TAKEN}).reported is False
    assert runs.new_store().read("alerts/target-fortnox.json") == ""
    assert runs.mails == []


def test_bad_digest_settings_are_named_and_the_default_used(
    runs: Runs, caplog: pytest.LogCaptureFixture
) -> None:
    runs.config |= {"notify_digest_time": "7am", "notify_digest_timezone": "Europe/Stokholm"}
    alerts = Alerts.from_config(runs.config, None)
    assert "notify_digest_time='7am' is not a time of day" in caplog.text
    assert alerts.digest.describe() == "first run from 07:00 Europe/Stockholm"
    runs.config["notify_digest_time"] = "06:30"
    alerts = Alerts.from_config(runs.config, None)
    assert "notify_digest_timezone='Europe/Stokholm' is not a time zone" in caplog.text
    assert alerts.digest.describe() == "first run from 07:00 Europe/Stockholm"
