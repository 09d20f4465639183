"""Fixtures for sync-common: real local SMTP servers (aiosmtpd) on free loopback ports, clocks."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

SMTP_USER = "mailer@example.se"
SMTP_PASSWORD = "s3cret-Smtp-Passw0rd"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Inbox:
    """What a test SMTP server received: one parsed message per delivery, with its envelope."""

    messages: list[Message] = field(default_factory=list)
    recipients: list[list[str]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


class StoringHandler:
    def __init__(self, inbox: Inbox, rcpt_reply: str | None = None) -> None:
        self.inbox = inbox
        self.rcpt_reply = rcpt_reply

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.inbox.messages.append(message_from_bytes(envelope.content))
        self.inbox.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted"


@dataclass
class SmtpServer:
    host: str
    port: int
    inbox: Inbox
    username: str | None = None
    password: str | None = None


def _authenticator(inbox: Inbox) -> Callable[..., AuthResult]:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == SMTP_USER
            and data.password.decode() == SMTP_PASSWORD
        )
        if ok:
            inbox.logins.append(data.login.decode())
        # handled=False: aiosmtpd then answers 535 itself (handled=True would leave it silent).
        return AuthResult(success=ok, handled=False)

    return check


def _serve(
    handler: StoringHandler, inbox: Inbox, *, with_auth: bool = False, **kwargs: Any
) -> Iterator[SmtpServer]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        if with_auth:
            yield SmtpServer("127.0.0.1", port, inbox, SMTP_USER, SMTP_PASSWORD)
        else:
            yield SmtpServer("127.0.0.1", port, inbox)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server without AUTH that accepts everything."""
    inbox = Inbox()
    yield from _serve(StoringHandler(inbox), inbox)


@pytest.fixture(params=["LOGIN", "PLAIN"])
def smtp_auth_server(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    """An SMTP server requiring AUTH (only LOGIN, or only PLAIN) with SMTP_USER/SMTP_PASSWORD.

    No TLS: aiosmtpd allows AUTH over plain text only with ``auth_require_tls=False``.
    """
    inbox = Inbox()
    other = {"LOGIN": "PLAIN", "PLAIN": "LOGIN"}[request.param]
    yield from _serve(
        StoringHandler(inbox),
        inbox,
        with_auth=True,
        auth_exclude_mechanism=[other],
        authenticator=_authenticator(inbox),
        auth_required=True,
        auth_require_tls=False,
    )


@pytest.fixture
def smtp_rejecting_server() -> Iterator[SmtpServer]:
    """An SMTP server answering 554 to every recipient."""
    inbox = Inbox()
    yield from _serve(StoringHandler(inbox, rcpt_reply="554 Transaction failed"), inbox)


class StepClock:
    """A UTC clock that advances ``step`` on every call, so durations are exact in tests."""

    def __init__(self, start: datetime | None = None, step: timedelta = timedelta(seconds=1)):
        self.now = start or datetime(2026, 11, 28, 21, 0, 0, tzinfo=UTC)
        self.step = step

    def __call__(self) -> datetime:
        current = self.now
        self.now += self.step
        return current


@pytest.fixture
def step_clock() -> StepClock:
    return StepClock()
