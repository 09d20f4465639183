"""The HTTP core both API clients (fortnox-client, moment-client) are built on.

Owns what the two clients share and must agree on:

- the base error hierarchy: :class:`ApiError` (``status``, the API's ``code``, ``message``) and its
  kinds, which the clients' own classes (``FortnoxTransientError``, ``MomentDataError``, …) also
  are, so code that talks to both APIs can catch by kind:
  :class:`ApiTransientError` (retried; raised after the last try), :class:`ApiAuthError` (fatal
  for the run), :class:`ApiDataError` / :class:`ApiNotFound` (one record), and
  :class:`ApiAmbiguousWriteError` (a write was sent but its answer was lost);
- :class:`RequestStats`, the counters of the run summary;
- the retry loop (:func:`call_with_retries`: the ``backoff`` library, exponential with full
  jitter, bounded in tries and optionally in seconds);
- the rules for writes whose outcome is unknown (:func:`answer_leaves_write_unknown`,
  :func:`never_sent`): a non-idempotent request is resent only when the server cannot have acted
  on it; otherwise the caller looks the record up by its key before creating it again.

Imports ``requests`` and ``backoff``: import this module only where HTTP is spoken (the clients),
not from ``sync_common``'s package namespace.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TypeVar

import backoff
import requests
import urllib3
from backoff.types import Details

T = TypeVar("T")

# Methods that may be resent after an unknown outcome: doing them twice is doing them once.
IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "PATCH", "DELETE"})

# Failures of the connection or of the answer's transfer: the server may or may not have acted.
NETWORK_ERRORS: tuple[type[requests.RequestException], ...] = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
)


class ApiError(Exception):
    """Any failure talking to an API; ``status`` is HTTP's, ``code`` the API's own error code."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        """Keep the message (free of secrets) and what the answer said."""
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class ApiTransientError(ApiError):
    """429, 5xx, timeouts, dropped connections: retried; raised when the retries ran out."""


class ApiAuthError(ApiError):
    """Fatal for the run: the credentials, consent, scope or licence are wrong."""


class ApiDataError(ApiError):
    """The API refused one record; ``field`` names the offending field when known."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        field: str | None = None,
    ) -> None:
        """Keep the message, what the answer said and the field it blames."""
        super().__init__(message, status=status, code=code)
        self.field = field


class ApiNotFound(ApiDataError):
    """The record does not exist."""


class ApiAmbiguousWriteError(ApiError):
    """A write was sent and its answer lost: it may or may not have been committed.

    Never resent blindly: the caller looks the record up by its key and creates it only if absent.
    """


@dataclass
class RequestStats:
    """What a client sent, for the run summary: HTTP attempts (retries included), not calls."""

    requests: int = 0
    retries: int = 0
    writes: int = 0
    by_method: dict[str, int] = field(default_factory=dict)

    def count(self, method: str) -> None:
        """Count one HTTP attempt of ``method``; anything but GET is a write."""
        self.requests += 1
        self.by_method[method] = self.by_method.get(method, 0) + 1
        if method != "GET":
            self.writes += 1


def call_with_retries(
    attempt: Callable[[], T],
    *,
    retry_on: type[Exception] | tuple[type[Exception], ...],
    max_tries: int,
    factor: float,
    max_wait: float,
    max_time: float | None = None,
    giveup: Callable[[Exception], bool] | None = None,
    on_retry: Callable[[Details], None] | None = None,
) -> T:
    """Call ``attempt`` until it returns, retrying ``retry_on`` failures with backoff.

    Waits grow exponentially (``factor`` × 1, 2, 4 … seconds, each at most ``max_wait``) with full
    jitter; at most ``max_tries`` calls and, with ``max_time``, no new try after that many seconds.
    A failure for which ``giveup`` says True is raised at once. ``on_retry`` gets ``backoff``'s
    details (``tries``, ``wait``, ``exception``) before each wait. The last failure is raised.
    """
    retrying = backoff.on_exception(
        backoff.expo,
        retry_on,
        max_tries=max_tries,
        max_time=max_time,
        jitter=backoff.full_jitter,
        giveup=giveup or (lambda exc: False),
        on_backoff=on_retry,
        logger=None,  # backoff's own log line would print the call's arguments
        factor=factor,
        max_value=max_wait,
    )(attempt)
    return retrying()


def answer_leaves_write_unknown(
    status: int, *, idempotent: bool, refused_before_work: Collection[int] = ()
) -> bool:
    """Say whether an error answer leaves a non-idempotent request's outcome unknown.

    A 5xx may come after the server committed the write, so it must not be resent; 4xx answers
    (429 among them) and the 5xx statuses in ``refused_before_work`` (an API that documents
    e.g. 503 as "refused before any work") are answers given before any work: safe to resend.
    """
    return not idempotent and status >= 500 and status not in refused_before_work


def never_sent(exc: requests.RequestException) -> bool:
    """Say whether no connection was established, so the server cannot have seen the request."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )
