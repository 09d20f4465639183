"""Fixtures shared by every test folder: the sandboxes, started once per test session, and a
local SMTP server per test.

`make test` runs the suite on two pytest-xdist workers (`--dist loadgroup`, no reordering). Every
test is put in a group of its file, so a module's tests (and its module-scoped sandboxes and
`meltano run`s, which later tests of the module build on) stay on one worker. Files are handed out
longest first (SLOW_FIRST, measured), so that no long file starts last and runs alone at the end.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from sandbox.launcher import SandboxProcess
from sandbox.postgres import PostgresServer, find_bindir

ROOT = Path(__file__).parent
# The longest test files (minutes on two workers, `--durations`), handed out first in this order.
SLOW_FIRST = (
    "tests/reliability/test_kill9.py",
    "tests/test_expenses_to_moment.py",
    "tests/test_orchestrator_tenants.py",
    "tests/test_add_to_meltano_project.py",
    "tests/reliability/test_bad_input.py",
    "tests/reliability/test_faults_moment_to_fortnox.py",
    "tests/reliability/test_faults_expenses_to_moment.py",
    "tests/test_readme_commands.py",
    "tests/test_postgres_deployment.py",
    "tests/test_moment_to_fortnox.py",
    "tests/test_demo.py",
    "tests/operator/test_operator_commands.py",
    "tests/reliability/test_real_conditions.py",
    "tests/reliability/test_dead_letters_mail_secrets.py",
    "tests/moment_to_fortnox/test_rate_limit.py",
    "tests/operator/test_cutover.py",
    "tests/test_failure_alerts.py",
    "tests/operator/test_server_operations.py",
)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """One xdist group per test file, the slow files first. The order is the same in every
    worker, as xdist requires (a stable sort of the collection order)."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_file(item)))
    items.sort(key=lambda item: rank.get(_file(item), len(rank)))


def _file(item: pytest.Item) -> str:
    return Path(str(item.path)).relative_to(ROOT).as_posix()


@pytest.fixture(scope="session")
def fortnox_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """A seeded Fortnox sandbox (seed 1), rate limit off; tests reseed or arm limits as needed."""
    db = Path(tmp_path_factory.mktemp("fortnox")) / "fortnox.db"
    with SandboxProcess("fortnox", db, seed=1, extra_args=["--max-requests-per-5s", "0"]) as proc:
        yield proc


@pytest.fixture(scope="session")
def moment_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    """A seeded Moment sandbox (seed 1)."""
    db = Path(tmp_path_factory.mktemp("moment")) / "moment.db"
    with SandboxProcess("moment", db, seed=1) as proc:
        yield proc


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster for the session (skipped, saying why, without the binaries)."""
    if find_bindir() is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl under /usr/lib/postgresql/*/bin) are not "
            "installed: apt-get install postgresql"
        )
    with PostgresServer() as server:
        yield server


@dataclass
class MailInbox:
    """A local SMTP server's address and the messages it received, in order."""

    host: str
    port: int
    messages: list[Message] = field(default_factory=list)

    def settings(self, **extra: Any) -> dict[str, Any]:
        """The notify/SMTP settings that make a plugin e-mail this server."""
        return {
            "notify_email": "ekonomi@example.se",
            "smtp_host": self.host,
            "smtp_port": self.port,
            "smtp_starttls": False,
            **extra,
        }

    def subjects(self) -> list[str]:
        return [str(m["Subject"]).replace("\r\n", "").strip() for m in self.messages]

    def bodies(self) -> list[str]:
        return [
            m.get_payload(decode=True).decode("utf-8").replace("\r\n", "\n")  # type: ignore[union-attr]
            for m in self.messages
        ]


@pytest.fixture
def mail_inbox() -> Iterator[MailInbox]:
    """A real SMTP server (aiosmtpd; no TLS, no AUTH) on a free loopback port for one test."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message as MessageHandler

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    inbox = MailInbox("127.0.0.1", port)

    class Keep(MessageHandler):  # type: ignore[misc]
        def handle_message(self, message: Message) -> None:
            inbox.messages.append(message)

    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


# --- SMTP ------------------------------------------------------------------------------------
@dataclass
class Inbox:
    messages: list[Message] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)

    def clear(self) -> None:
        self.messages.clear()
        self.raw.clear()
        self.recipients.clear()


class _StoringHandler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        assert isinstance(envelope.content, bytes)
        self.inbox.raw.append(envelope.content)
        self.inbox.messages.append(message_from_bytes(envelope.content))
        self.inbox.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SmtpServer:
    port: int
    inbox: Inbox


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[SmtpServer]:
    """A local SMTP server (aiosmtpd, no TLS, any login accepted) that keeps what it receives.

    One per test module (sync-common's own tests have theirs, with AUTH variants)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    inbox = Inbox()
    port = free_port()

    def accept_any(*_: Any) -> Any:
        return AuthResult(success=True, handled=False)

    controller = Controller(
        _StoringHandler(inbox),
        hostname="127.0.0.1",
        port=port,
        authenticator=accept_any,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield SmtpServer(port, inbox)
    finally:
        controller.stop()
