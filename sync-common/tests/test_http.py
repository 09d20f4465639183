"""The HTTP core both API clients share: retry loop, write-safety rules, counters, error kinds."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import requests
from sync_common.http import (
    ApiDataError,
    ApiError,
    ApiNotFound,
    ApiTransientError,
    RequestStats,
    answer_leaves_write_unknown,
    call_with_retries,
    never_sent,
)


class Failing:
    """A call that raises ``error`` ``times`` times, then returns how often it was called."""

    def __init__(self, times: int, error: Exception) -> None:
        self.times = times
        self.error = error
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return self.calls


def test_retries_until_the_call_returns_and_reports_each_wait() -> None:
    waits: list[dict[str, Any]] = []
    attempt = Failing(2, ApiTransientError("busy", status=503))
    result = call_with_retries(
        attempt,
        retry_on=ApiTransientError,
        max_tries=5,
        factor=0.001,
        max_wait=0.01,
        on_retry=waits.append,
    )
    assert result == 3
    assert [details["tries"] for details in waits] == [1, 2]
    assert all(0 <= details["wait"] <= 0.01 for details in waits)


def test_the_last_failure_is_raised_after_max_tries() -> None:
    attempt = Failing(10, ApiTransientError("busy", status=503))
    with pytest.raises(ApiTransientError, match="busy"):
        call_with_retries(
            attempt, retry_on=ApiTransientError, max_tries=3, factor=0.001, max_wait=0
        )
    assert attempt.calls == 3


def test_other_failures_and_given_up_ones_are_raised_at_once() -> None:
    data = Failing(1, ApiDataError("bad", status=400, field="Name"))
    with pytest.raises(ApiDataError):
        call_with_retries(data, retry_on=ApiTransientError, max_tries=5, factor=0, max_wait=0)
    assert data.calls == 1
    fatal = Failing(1, ApiTransientError("token endpoint down"))
    with pytest.raises(ApiTransientError):
        call_with_retries(
            fatal,
            retry_on=ApiTransientError,
            max_tries=5,
            factor=0,
            max_wait=0,
            giveup=lambda exc: "token" in str(exc),
        )
    assert fatal.calls == 1


@pytest.mark.parametrize(
    ("status", "idempotent", "safe", "unknown"),
    [
        (500, False, (), True),
        (502, False, (), True),
        (503, False, (), True),
        (503, False, (503,), False),  # an API that answers 503 before any work
        (429, False, (), False),  # refused by the rate limiter: nothing was done
        (400, False, (), False),
        (500, True, (), False),  # a GET/PUT/DELETE may simply be sent again
    ],
)
def test_which_error_answers_leave_a_write_unknown(
    status: int, idempotent: bool, safe: tuple[int, ...], unknown: bool
) -> None:
    assert (
        answer_leaves_write_unknown(status, idempotent=idempotent, refused_before_work=safe)
        is unknown
    )


def test_a_refused_connection_was_never_sent_a_reset_one_may_have_been() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(requests.ConnectionError) as refused:
        requests.post(f"http://127.0.0.1:{port}/x", json={}, timeout=5)
    assert never_sent(refused.value)
    assert never_sent(requests.exceptions.ConnectTimeout("connect timed out"))
    assert not never_sent(requests.ConnectionError("Connection reset by peer"))
    assert not never_sent(requests.ReadTimeout("read timed out"))


def test_stats_count_attempts_by_method_and_writes() -> None:
    stats = RequestStats()
    for method in ("GET", "GET", "POST", "PUT"):
        stats.count(method)
    assert (stats.requests, stats.writes, stats.retries) == (4, 2, 0)
    assert stats.by_method == {"GET": 2, "POST": 1, "PUT": 1}


def test_error_kinds_keep_status_code_and_field() -> None:
    error = ApiNotFound("no such customer", status=404, code=2000423, field="CustomerNumber")
    assert isinstance(error, ApiDataError)
    assert isinstance(error, ApiError)
    assert str(error) == error.message == "no such customer"
    assert (error.status, error.code, error.field) == (404, 2000423, "CustomerNumber")
