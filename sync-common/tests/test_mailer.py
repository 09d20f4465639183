"""FailureMailer against real local SMTP servers (aiosmtpd): content, AUTH, broken servers."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

import pytest
from sync_common import DeadLetters, FailureMailer, RunSummary, failure_report

# aiosmtpd warns that AUTH without TLS is unsafe: intended here, on loopback, for the AUTH tests.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")


def _config(server: Any, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "notify_email": "ekonomi@example.se, it@example.se",
        "smtp_host": server.host,
        "smtp_port": server.port,
        "smtp_starttls": False,
        "smtp_from": "sync@example.se",
        "smtp_timeout": 5,
    }
    config.update(extra)
    return config


def _failing_run(results_dir: Path) -> RunSummary:
    summary = RunSummary("target-fortnox", results_dir)
    summary.record("customers", "created", key="1001")
    summary.fail("customers", "1002", "Fortnox 2000637: customer number 1002 is taken")
    summary.fail("invoices", 5001, "Fortnox 2001304: account 3999 not found; add it in Fortnox")
    summary.record("invoices", "conflict", key="5002", detail="differs from the booked invoice")
    DeadLetters(results_dir, "target-fortnox").add(
        "customers", {"type": "object"}, ["customerNumber"], {"customerNumber": "1002"}, "1002", "x"
    )
    summary.finish()
    return summary


def test_one_mail_lists_failures_files_and_replay(
    smtp_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The target ran in Meltano's environment prod: the replay command goes there too, not to
    # the project's default_environment.
    monkeypatch.setenv("MELTANO_ENVIRONMENT", "prod")
    summary = _failing_run(tmp_path)
    assert FailureMailer.from_config(_config(smtp_server)).send_if_failed(summary)

    assert len(smtp_server.inbox.messages) == 1
    message = smtp_server.inbox.messages[0]
    assert smtp_server.inbox.recipients[0] == ["ekonomi@example.se", "it@example.se"]
    assert message["From"] == "sync@example.se"
    assert message["Subject"] == f"[target-fortnox] 2 failed record(s) in run {summary.run_id}"
    assert message.get_content_type() == "text/plain"
    body = message.get_payload(decode=True).decode("utf-8").replace("\r\n", "\n")
    assert "customers:\n    - key 1002: Fortnox 2000637: customer number 1002 is taken" in body
    assert "invoices:\n    - key 5001: Fortnox 2001304: account 3999 not found" in body
    assert "Conflicts (not overwritten):" in body
    assert "key 5002: differs from the booked invoice" in body
    assert "customers: created=1 updated=0 unchanged=0 skipped=0 failed=1 conflict=0" in body
    assert str(summary.path.absolute()) in body
    dead = (tmp_path / "dead-letters" / "target-fortnox.singer").absolute()
    assert f"cat {dead} | target-fortnox --config" in body
    assert f"  meltano --environment prod invoke target-fortnox < {dead}\n" in body


def test_the_mail_names_where_the_letters_are_kept(tmp_path: Path) -> None:
    """Letters in a run store folder (not results_dir), or in PostgreSQL, are named as such."""
    summary = _failing_run(tmp_path / "output")
    kept = tmp_path / "secrets" / "run-store" / "dead-letters" / "target-fortnox.singer"
    kept.parent.mkdir(parents=True)
    kept.write_text("{}\n")
    summary.dead_letters_at = kept
    body = failure_report(summary)
    assert f"cat {kept.absolute()} | target-fortnox --config" in body
    summary.dead_letters_at = "postgresql://f@db/fortnox (table run_store, tenant acme)"
    body = failure_report(summary)
    assert "dead letters:  in the run store postgresql://f@db/fortnox (table run_store" in body
    assert "cat " not in body
    assert "run the job again" in body


def test_conflicts_alone_mail_only_when_the_caller_asks(smtp_server, tmp_path: Path) -> None:
    summary = RunSummary("target-moment", tmp_path)
    summary.record("project_expenses", "conflict", key="fortnox-si-7-r1", detail="invoiced")
    summary.finish()
    mailer = FailureMailer.from_config(_config(smtp_server))

    assert not mailer.send_if_failed(summary)  # target-fortnox's way: failures only
    assert mailer.send_if_failed(summary, conflicts=True)

    (message,) = smtp_server.inbox.messages
    assert message["Subject"] == f"[target-moment] 1 conflict(s) in run {summary.run_id}"
    body = message.get_payload(decode=True).decode("utf-8")
    assert "key fortnox-si-7-r1: invoiced" in body


def test_login_over_plain_smtp_and_password_never_logged(
    smtp_auth_server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = _config(
        smtp_auth_server,
        smtp_username=smtp_auth_server.username,
        smtp_password=smtp_auth_server.password,
    )
    caplog.set_level(logging.DEBUG)
    assert FailureMailer.from_config(config).send_if_failed(_failing_run(tmp_path))
    assert smtp_auth_server.inbox.logins == [smtp_auth_server.username]
    assert len(smtp_auth_server.inbox.messages) == 1
    assert smtp_auth_server.password not in caplog.text


def test_wrong_password_is_logged_without_the_password(
    smtp_auth_server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "Wr0ng-but-Secret-pw"
    config = _config(smtp_auth_server, smtp_username=smtp_auth_server.username, smtp_password=wrong)
    caplog.set_level(logging.DEBUG)
    assert not FailureMailer.from_config(config).send_if_failed(_failing_run(tmp_path))
    assert smtp_auth_server.inbox.messages == []
    assert "failure e-mail to ekonomi@example.se, it@example.se" in caplog.text
    assert "SMTPAuthenticationError" in caplog.text
    assert wrong not in caplog.text
    assert repr(config) not in caplog.text


def test_server_answering_554_is_logged_not_raised(
    smtp_rejecting_server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mailer = FailureMailer.from_config(_config(smtp_rejecting_server))
    assert not mailer.send_if_failed(_failing_run(tmp_path))
    assert smtp_rejecting_server.inbox.messages == []
    assert "not sent" in caplog.text
    assert "554" in caplog.text


def test_closed_port_is_logged_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    config = {
        "notify_email": "ekonomi@example.se",
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_starttls": False,
        "smtp_password": "Cl0sed-port-pw",
    }
    assert not FailureMailer.from_config(config).send_if_failed(_failing_run(tmp_path))
    assert f"127.0.0.1:{port} not sent" in caplog.text
    assert "Cl0sed-port-pw" not in caplog.text


def test_starttls_against_a_server_without_it_is_logged_not_raised(
    smtp_server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mailer = FailureMailer.from_config(_config(smtp_server, smtp_starttls=True))
    assert not mailer.send_if_failed(_failing_run(tmp_path))
    assert "STARTTLS" in caplog.text
    assert smtp_server.inbox.messages == []


def test_nothing_sent_without_failures_or_without_notify_email(smtp_server, tmp_path: Path) -> None:
    clean = RunSummary("target-fortnox", tmp_path)
    clean.record("customers", "unchanged")
    clean.record("invoices", "conflict", key="1", detail="differs")
    clean.finish()
    assert not FailureMailer.from_config(_config(smtp_server)).send_if_failed(clean)

    off = FailureMailer.from_config(_config(smtp_server, notify_email=""))
    assert not off.enabled
    assert not off.send_if_failed(_failing_run(tmp_path))
    assert smtp_server.inbox.messages == []


def test_notify_email_without_smtp_host_says_what_to_set(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mailer = FailureMailer.from_config({"notify_email": "ekonomi@example.se"})
    assert not mailer.send_if_failed(_failing_run(tmp_path))
    assert "set smtp_host" in caplog.text


def test_settings_defaults_and_parsing() -> None:
    with_tls = FailureMailer.from_config({"notify_email": "a@example.se"}).settings
    assert (with_tls.port, with_tls.starttls) == (587, True)
    assert with_tls.recipients == ("a@example.se",)
    plain = FailureMailer.from_config(
        {"notify_email": ["a@example.se", "b@example.se"], "smtp_starttls": "false"}
    ).settings
    assert (plain.port, plain.starttls) == (25, False)
    assert plain.recipients == ("a@example.se", "b@example.se")
    sender = FailureMailer.from_config({"smtp_username": "bot@example.se"}).settings.sender
    assert sender == "bot@example.se"
    assert "hunter22" not in repr(FailureMailer.from_config({"smtp_password": "hunter22"}).settings)


def test_bad_setting_turns_mail_off_with_a_clear_log(caplog: pytest.LogCaptureFixture) -> None:
    mailer = FailureMailer.from_config({"notify_email": "a@example.se", "smtp_port": "smtp"})
    assert not mailer.enabled
    assert "smtp_port='smtp' is not a port number" in caplog.text
    mailer = FailureMailer.from_config({"notify_email": "a@example.se", "smtp_starttls": "maybe"})
    assert not mailer.enabled
    assert "smtp_starttls='maybe' is not a boolean" in caplog.text
    mailer = FailureMailer.from_config({"notify_email": "a@example.se", "smtp_timeout": "long"})
    assert not mailer.enabled
    assert "smtp_timeout='long' is not a number of seconds" in caplog.text


def test_silent_server_times_out_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A socket that listens but never accepts: the TCP connect succeeds, the SMTP greeting never
    # comes, so only the timeout ends the wait.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        config = {
            "notify_email": "ekonomi@example.se",
            "smtp_host": "127.0.0.1",
            "smtp_port": silent.getsockname()[1],
            "smtp_starttls": False,
            "smtp_timeout": 0.3,
        }
        assert not FailureMailer.from_config(config).send_if_failed(_failing_run(tmp_path))
    assert "not sent" in caplog.text
    assert "timed out" in caplog.text
