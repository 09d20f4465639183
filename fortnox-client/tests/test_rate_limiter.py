"""RateLimiter: sliding-window arithmetic on a fake clock, real-time pacing, threads, registry."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from fortnox_client import FortnoxClient, FortnoxSettings, FortnoxTransientError, RateLimiter
from fortnox_client.rate_limiter import IN_FLIGHT_POLL, SharedWindow, take_slot


class FakeClock:
    """A clock that only moves when the limiter sleeps, recording each sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _limiter(clock: FakeClock, limit: int = 25, margin: float = 0.1) -> RateLimiter:
    return RateLimiter(limit, 5.0, safety_margin=margin, clock=clock, sleep=clock.sleep)


def test_a_full_window_passes_without_waiting_then_waits_for_the_oldest() -> None:
    clock = FakeClock()
    limiter = _limiter(clock)
    for _ in range(25):
        assert limiter.acquire() == 0.0
    assert clock.sleeps == []

    waited = limiter.acquire()

    # The oldest start (t=1000) leaves the window at 1000 + 5 + 0.1.
    assert waited == pytest.approx(5.1)
    assert clock.now == pytest.approx(1005.1)


def test_window_slides_request_by_request() -> None:
    clock = FakeClock()
    limiter = _limiter(clock, limit=3, margin=0.0)
    for step in (0.0, 1.0, 2.0):  # starts at 1000, 1001, 1002
        clock.now = 1000.0 + step
        limiter.acquire()
    clock.now = 1003.5
    assert limiter.delay() == pytest.approx(1.5)  # until 1000 + 5
    limiter.acquire()
    assert clock.now == pytest.approx(1005.0)
    # Now 1001, 1002, 1005 are in the window: the next may start at 1006.
    assert limiter.delay() == pytest.approx(1.0)
    clock.now = 1010.0
    assert limiter.delay() == 0.0


def test_sixty_requests_at_25_per_5s_take_two_full_windows() -> None:
    clock = FakeClock()
    limiter = _limiter(clock)
    for _ in range(60):
        limiter.acquire()
    # 25 at once, 25 after 5.1 s, 10 after another 5.1 s.
    assert clock.now - 1000.0 == pytest.approx(10.2)
    assert len(clock.sleeps) == 2


def test_sustained_throughput_is_at_least_95_percent_of_the_limit() -> None:
    clock = FakeClock()
    limiter = _limiter(clock)
    for _ in range(1000):
        limiter.acquire()
    # 1000 starts fill 40 windows; the last window is counted whole.
    per_5s = 1000 / (clock.now - 1000.0 + 5.1) * 5.0
    assert per_5s >= 0.95 * 25
    assert per_5s <= 25


def test_limit_zero_is_off() -> None:
    clock = FakeClock()
    limiter = _limiter(clock, limit=0)
    for _ in range(1000):
        assert limiter.acquire() == 0.0
    assert clock.sleeps == []
    assert not limiter.enabled


def test_real_time_pacing_with_a_short_window() -> None:
    # 10 per 0.5 s is the production 25 per 5 s compressed, so the test stays fast.
    limiter = RateLimiter(10, 0.5, safety_margin=0.02)
    started = time.monotonic()
    for _ in range(30):
        limiter.acquire()
    elapsed = time.monotonic() - started
    assert elapsed >= 2 * 0.52 - 0.01
    assert elapsed < 3 * 0.52  # two windows waited, not three
    assert limiter.waited_seconds >= 2 * 0.52 - 0.01


def test_threads_together_never_exceed_the_window() -> None:
    limit, window = 8, 0.4
    limiter = RateLimiter(limit, window, safety_margin=0.01)
    starts: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(8):
            with limiter.slot(), lock:  # the "request" arrives while its slot is held
                starts.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    starts.sort()
    assert len(starts) == 32
    # Any ``limit + 1`` consecutive arrivals span at least one window.
    spans = [starts[i + limit] - starts[i] for i in range(len(starts) - limit)]
    assert min(spans) >= window


def test_registry_shares_one_limiter_per_client_and_tenant() -> None:
    a = RateLimiter.shared("client-registry-test", "111", 25)
    assert RateLimiter.shared("client-registry-test", "111", 25) is a
    assert RateLimiter.shared("client-registry-test", "222", 25) is not a
    assert RateLimiter.shared("other-client", "111", 25) is not a


def test_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError, match="max_requests"):
        RateLimiter(-1)
    with pytest.raises(ValueError, match="window_seconds"):
        RateLimiter(25, 0)


def _shared(clock: FakeClock, path: Path, limit: int = 10) -> RateLimiter:
    """A limiter as one process has it: its own window plus the file every process shares."""
    limiter = RateLimiter(limit, 5.0, safety_margin=0.1, clock=clock, sleep=clock.sleep)
    limiter.share(SharedWindow(path, clock=clock), "client:tenant")
    return limiter


def test_a_process_started_right_after_another_waits_for_its_window(tmp_path: Path) -> None:
    # Process 1 used its whole window; process 2 starts at once and must wait for the requests
    # Fortnox still counts instead of running into 429s.
    clock, path = FakeClock(), tmp_path / "token.json.window.json"
    first = _shared(clock, path)
    for _ in range(10):
        assert first.acquire() == 0.0
    second = _shared(clock, path)
    assert second.delay() == 0.0  # its own window is empty ...
    assert second.acquire() == pytest.approx(5.1)  # ... the shared one is full
    assert clock.sleeps == [pytest.approx(5.1)]

    # Another client or tenant has a window of its own.
    other = RateLimiter(10, 5.0, clock=clock, sleep=clock.sleep)
    other.share(SharedWindow(path, clock=clock), "client:other-tenant")
    for _ in range(10):
        assert other.acquire() == 0.0


def test_processes_running_at_once_never_exceed_the_limit_together(tmp_path: Path) -> None:
    clock, path = FakeClock(), tmp_path / "w.json"
    a, b = _shared(clock, path), _shared(clock, path)
    starts: list[float] = []
    for _ in range(25):  # interleaved, as two processes sending at the same time
        for limiter in (a, b):
            limiter.acquire()
            starts.append(clock.now)
    assert a.acquired == b.acquired == 25
    # Any 11 consecutive starts span at least the window plus margin: never 11 in 5 s.
    assert all(later - earlier >= 5.1 - 1e-9 for earlier, later in zip(starts, starts[10:]))
    # Each alone would have seen only 25 of its own in 5 s and let them through.
    assert sum(clock.sleeps) == pytest.approx(4 * 5.1)


def test_shared_window_forgets_old_entries_counts_same_instants_and_clock_steps(
    tmp_path: Path,
) -> None:
    clock, path = FakeClock(), tmp_path / "w.json"
    window = SharedWindow(path, clock=clock)
    path.write_text(
        json.dumps({"client:tenant": [clock.now - 60.0] * 9, "gone:tenant": [clock.now - 60.0]})
    )
    # The old entries no longer count; the new one is in flight (start + hold) ...
    assert window.reserve("client:tenant", 3, 5.1, 70.0) == (0.0, clock.now + 70.0)
    assert json.loads(path.read_text()) == {"client:tenant": [clock.now + 70.0]}  # old keys gone
    # ... until its answer is back: then it is the answer's time.
    clock.now += 0.25
    window.answered("client:tenant", clock.now - 0.25 + 70.0)
    assert window.starts("client:tenant") == [clock.now]

    # Two requests at one instant (two processes) are two requests.
    for _ in range(2):
        wait, entry = window.reserve("client:tenant", 3, 5.1, 70.0)
        assert wait == 0.0
        assert entry is not None
        window.answered("client:tenant", entry)
    assert window.starts("client:tenant") == [clock.now] * 3
    # An entry further out than a request in flight can be (wall clock stepped back) counts as
    # now + hold, not as an hour.
    path.write_text(json.dumps({"client:tenant": [clock.now, clock.now, clock.now + 3600]}))
    assert window.reserve("client:tenant", 3, 5.1, 70.0) == (pytest.approx(5.1), None)


def test_a_damaged_or_unusable_shared_window_falls_back_to_the_process_window(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock, path = FakeClock(), tmp_path / "w.json"
    path.write_text("{not json", encoding="utf-8")
    limiter = _shared(clock, path, limit=2)
    assert limiter.acquire() == 0.0
    assert window_starts(path) == 1  # rewritten whole

    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the window's directory should be")
    fallback = _shared(clock, blocked / "w.json", limit=2)
    with caplog.at_level("WARNING"):
        for _ in range(4):
            fallback.acquire()
    assert clock.sleeps == [pytest.approx(5.1)]  # its own window still paces it
    warnings = [r for r in caplog.records if "shared window" in r.getMessage()]
    assert len(warnings) == 1, "said once, not per request"
    assert "may meet 429s" in warnings[0].getMessage()


def window_starts(path: Path) -> int:
    return sum(len(v) for v in json.loads(path.read_text(encoding="utf-8")).values())


_PROCESS = """
import json, sys, time
from pathlib import Path
from fortnox_client.rate_limiter import RateLimiter, SharedWindow
limiter = RateLimiter(10, 0.5, safety_margin=0.02)
limiter.share(SharedWindow(Path(sys.argv[1])), "client:tenant")
start_at = float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
starts = []
for _ in range(15):
    with limiter.slot():  # the "request" arrives while its slot is held
        starts.append(time.time())
print(json.dumps(starts))
"""


def test_two_real_processes_share_one_window(tmp_path: Path) -> None:
    # 10 per 0.5 s is the production 25 per 5 s compressed, so the test stays short.
    path, start_at = tmp_path / "w.json", time.time() + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS, str(path), str(start_at)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    starts = sorted(t for p in procs for t in json.loads(p.communicate(timeout=60)[0]))
    assert [p.returncode for p in procs] == [0, 0]
    assert len(starts) == 30
    # Never 11 in one 0.5-s window.
    gaps = [later - earlier for earlier, later in zip(starts, starts[10:])]
    assert min(gaps) >= 0.5, f"11 requests within {min(gaps):.3f} s"


# --- Fortnox counts arrivals: the time between the limiter's slot and the request reaching Fortnox


class FortnoxOnTheClock:
    """Fortnox's side on a fake clock, as a ``requests.Session``: a request arrives ``delays``
    (one per request, then 0) after the client sent it, is admitted if fewer than ``limit``
    admitted arrivals lie within the 5 s before it (the sandbox's rule,
    sandbox/sandbox/fortnox/ratelimit.py), else refused with 429, and is answered ``latency``
    after it arrived."""

    def __init__(self, clock: FakeClock, limit: int, delays: list[float] = []) -> None:
        self.clock, self.limit, self.delays = clock, limit, list(delays)
        self.latency = 0.01
        self.admitted: list[float] = []
        self.refused: list[float] = []
        self.headers: dict[str, str] = {}

    def request(self, method: str, url: str, **_: Any) -> requests.Response:
        self.clock.now += self.delays.pop(0) if self.delays else 0.0
        arrived = self.clock.now
        ok = sum(1 for t in self.admitted if arrived - t < 5.0) < self.limit
        (self.admitted if ok else self.refused).append(arrived)
        self.clock.now += self.latency
        response = requests.Response()
        response.status_code = 200 if ok else 429
        body = {"Customer": {"CustomerNumber": "1"}} if ok else {"message": "Too Many Requests"}
        response._content = json.dumps(body).encode()
        return response

    def busiest_window(self) -> int:
        return max(sum(1 for t in self.admitted if 0 <= a - t < 5.0) for a in self.admitted)


def _client(settings: FortnoxSettings, server: FortnoxOnTheClock, limiter: RateLimiter) -> Any:
    # One try: a 429 fails the call at once (no real-time backoff sleeps in a fake-clock test).
    return FortnoxClient(
        dataclasses.replace(settings, max_tries=1),
        rate_limiter=limiter,
        session=server,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("processes", [1, 2])
def test_a_request_that_reaches_fortnox_late_does_not_let_a_later_one_through_early(
    api_settings: FortnoxSettings, tmp_path: Path, processes: int
) -> None:
    # The first request of the window is held up for 0.3 s between its slot and Fortnox (the
    # process descheduled on a busy machine, a slow connect); the others go at once. Counting
    # starts, the limiter lets the 6th go 5.1 s after the 1st *start*, which is 4.8 s after the
    # 1st *arrival*: 6 arrivals in 5 s, a 429. One process, or two sharing the window file.
    clock = FakeClock()
    server = FortnoxOnTheClock(clock, limit=5, delays=[0.3])
    window = SharedWindow(tmp_path / "w.json", clock=clock)
    clients = []
    for _ in range(processes):
        limiter = RateLimiter(5, 5.0, safety_margin=0.1, clock=clock, sleep=clock.sleep)
        limiter.share(window, "client:tenant")
        clients.append(_client(api_settings, server, limiter))

    for number in range(20):
        clients[number % processes].get("customers", number)

    assert server.refused == []
    assert len(server.admitted) == 20
    assert server.busiest_window() == 5  # and the window is used to the full


def test_answers_taking_time_still_leave_at_least_95_percent_of_the_limit(
    api_settings: FortnoxSettings,
) -> None:
    # Each request is counted until its answer is back (30 ms here, a slow local round trip):
    # the cost is that time once per window, not per request.
    clock = FakeClock()
    server = FortnoxOnTheClock(clock, limit=25)
    server.latency = 0.03
    client = _client(api_settings, server, _limiter(clock, margin=0.01))
    for number in range(500):
        client.get("customers", number)
    assert server.refused == []
    assert server.busiest_window() == 25
    # 500 requests fill 20 windows; the last one is counted whole.
    per_5s = 500 / (server.admitted[-1] - server.admitted[0] + 5.0) * 5.0
    assert per_5s >= 0.95 * 25


def test_a_request_in_flight_holds_its_slot_until_its_answer_is_back() -> None:
    clock = FakeClock()
    limiter = _limiter(clock, limit=2, margin=0.0)
    with limiter.slot():
        clock.now += 1.0  # 1 s from the slot to the answer: Fortnox counted it within that time
        assert limiter.delay() == 0.0  # one slot of two still free
    limiter.acquire()  # at 1001, answered at once
    # The first request's entry is its answer's time (1001), not its start (1000).
    assert limiter.delay() == pytest.approx(5.0)


def test_a_window_full_of_requests_in_flight_is_looked_at_again_soon() -> None:
    now, hold = 1000.0, 70.0
    in_flight = [now - 1.0 + hold, now - 0.5 + hold]
    assert take_slot(in_flight, now, 2, 5.0, hold) == (IN_FLIGHT_POLL, sorted(in_flight))
    # With one answered (at 999.5) the wait is for that one to leave the window.
    wait, _ = take_slot([now - 0.5, in_flight[0]], now, 2, 5.0, hold)
    assert wait == pytest.approx(4.5)


def test_after_a_429_the_next_request_waits_for_fortnox_window(
    api_settings: FortnoxSettings,
) -> None:
    # Another integration of the same client and tenant has just used the whole window: this
    # process's limiter does not know those requests. The retry after the 429 waits until a slot
    # can have freed instead of running into the full window again.
    clock = FakeClock()
    server = FortnoxOnTheClock(clock, limit=5)
    server.admitted = [clock.now - 0.2] * 5
    limiter = RateLimiter(5, 5.0, clock=clock, sleep=clock.sleep)
    settings = dataclasses.replace(api_settings, max_tries=2, retry_base_seconds=0.001)
    client = FortnoxClient(settings, rate_limiter=limiter, session=server)  # type: ignore[arg-type]

    assert client.get("customers", "1") == {"CustomerNumber": "1"}

    assert len(server.refused) == 1
    assert server.admitted[-1] - server.refused[0] >= 5.0
    assert client.stats.rate_limited == 1


def test_a_429_with_an_exhausted_retry_budget_still_raises(api_settings: FortnoxSettings) -> None:
    clock = FakeClock()
    server = FortnoxOnTheClock(clock, limit=1)
    server.admitted = [clock.now]
    client = _client(api_settings, server, RateLimiter(5, 5.0, clock=clock, sleep=clock.sleep))
    with pytest.raises(FortnoxTransientError, match="rate limit"):
        client.get("customers", "1")
