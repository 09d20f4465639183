"""Real local SMTP servers for tests: aiosmtpd on a free loopback port, keeping what it receives.

A pytest plugin (sync-common's ``pytest11`` entry point), so every test folder has these fixtures,
whether the whole suite runs or one package's ``tests`` alone:

- ``mail_inbox``: a server of its own for one test (no AUTH offered);
- ``smtp_server``: one server per test module that accepts any login; tests that count its
  messages clear ``smtp_server.inbox`` first;
- ``smtp_auth_server``: requires AUTH (LOGIN or PLAIN, one test each) with ``SMTP_USER`` and
  ``SMTP_PASSWORD``;
- ``smtp_rejecting_server``: answers 554 to every recipient.

aiosmtpd is a test dependency (each package's ``test`` extra): it is imported only when a server
starts, so loading this plugin costs nothing where it is not installed.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any, Literal

import pytest

SMTP_USER = "mailer@example.se"
SMTP_PASSWORD = "s3cret-Smtp-Passw0rd"

Login = Literal["none", "any", "LOGIN", "PLAIN"]


@dataclass
class Inbox:
    """What a test SMTP server received: one parsed message per delivery, with its envelope."""

    messages: list[Message] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.messages.clear()
        self.raw.clear()
        self.recipients.clear()
        self.logins.clear()


@dataclass
class SmtpServer:
    """A running test SMTP server: its address, what it received and the login it accepts."""

    host: str
    port: int
    inbox: Inbox
    username: str | None = None
    password: str | None = None

    @property
    def messages(self) -> list[Message]:
        return self.inbox.messages

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


class _StoringHandler:
    def __init__(self, inbox: Inbox, rcpt_reply: str | None = None) -> None:
        self.inbox = inbox
        self.rcpt_reply = rcpt_reply

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        assert isinstance(envelope.content, bytes)
        self.inbox.raw.append(envelope.content)
        self.inbox.messages.append(message_from_bytes(envelope.content))
        self.inbox.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted"


def free_port() -> int:
    """A TCP port on 127.0.0.1 free at the time of asking (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _authenticator(inbox: Inbox, *, any_login: bool) -> Callable[..., Any]:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        ok = any_login or (
            isinstance(data, LoginPassword)
            and data.login.decode() == SMTP_USER
            and data.password.decode() == SMTP_PASSWORD
        )
        if ok and isinstance(data, LoginPassword):
            inbox.logins.append(data.login.decode())
        # handled=False: aiosmtpd then answers 535 itself (handled=True would leave it silent).
        return AuthResult(success=ok, handled=False)

    return check


@contextmanager
def serve_smtp(login: Login = "none", rcpt_reply: str | None = None) -> Iterator[SmtpServer]:
    """A server on a free loopback port, no TLS, stopped on exit.

    ``login``: ``"none"`` offers no AUTH; ``"any"`` accepts every login; ``"LOGIN"`` or
    ``"PLAIN"`` requires AUTH with that mechanism only and SMTP_USER/SMTP_PASSWORD.
    ``rcpt_reply``: the answer to every RCPT TO instead of accepting it (e.g. a 554).
    """
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    kwargs: dict[str, Any] = {}
    if login != "none":
        # AUTH over plain text on loopback: aiosmtpd allows it only with auth_require_tls=False.
        kwargs = {
            "authenticator": _authenticator(inbox, any_login=login == "any"),
            "auth_require_tls": False,
        }
    if login in ("LOGIN", "PLAIN"):
        kwargs["auth_required"] = True
        kwargs["auth_exclude_mechanism"] = ["PLAIN" if login == "LOGIN" else "LOGIN"]
    port = free_port()
    controller = Controller(
        _StoringHandler(inbox, rcpt_reply), hostname="127.0.0.1", port=port, **kwargs
    )
    controller.start()
    try:
        if login in ("LOGIN", "PLAIN"):
            yield SmtpServer("127.0.0.1", port, inbox, SMTP_USER, SMTP_PASSWORD)
        else:
            yield SmtpServer("127.0.0.1", port, inbox)
    finally:
        controller.stop()


@pytest.fixture
def mail_inbox() -> Iterator[SmtpServer]:
    """A server of this test's own, without AUTH, that accepts every message."""
    with serve_smtp() as server:
        yield server


@pytest.fixture(scope="module")
def smtp_server() -> Iterator[SmtpServer]:
    """One server per test module that accepts any login (clear its inbox before counting)."""
    with serve_smtp("any") as server:
        yield server


@pytest.fixture(params=["LOGIN", "PLAIN"])
def smtp_auth_server(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    """A server requiring AUTH (only LOGIN, or only PLAIN) with SMTP_USER/SMTP_PASSWORD."""
    with serve_smtp(request.param) as server:
        yield server


@pytest.fixture
def smtp_rejecting_server() -> Iterator[SmtpServer]:
    """A server answering 554 to every recipient."""
    with serve_smtp(rcpt_reply="554 Transaction failed") as server:
        yield server
