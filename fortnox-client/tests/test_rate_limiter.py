"""RateLimiter: sliding-window arithmetic on a fake clock, real-time pacing, threads, registry."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from fortnox_client import RateLimiter
from fortnox_client.rate_limiter import WindowHandoff


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
            limiter.acquire()
            with lock:
                starts.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    starts.sort()
    assert len(starts) == 32
    # Any ``limit + 1`` consecutive starts span at least one window.
    spans = [starts[i + limit] - starts[i] for i in range(len(starts) - limit)]
    assert min(spans) >= window - 0.005


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


def test_a_new_process_starts_from_the_previous_processes_window(tmp_path: Path) -> None:
    # Process 1 used its whole window and exited; process 2, started right after, must wait for
    # the requests Fortnox still counts instead of running into 429s.
    handoff = WindowHandoff.beside(tmp_path / "fortnox-token.json")
    first = RateLimiter(10, 5.0)
    for _ in range(10):
        first.acquire()
    handoff.save(first, "client:tenant")

    second = RateLimiter(10, 5.0)
    assert second.delay() == 0.0
    handoff.load_into(second, "client:tenant")
    assert 4.5 < second.delay() <= 5.1

    # Another client or tenant has a window of its own.
    other = RateLimiter(10, 5.0)
    handoff.load_into(other, "client:other-tenant")
    assert other.delay() == 0.0


def test_handoff_merges_concurrent_writers_and_forgets_old_starts(tmp_path: Path) -> None:
    handoff = WindowHandoff.beside(tmp_path / "store.json")
    a, b = RateLimiter(10, 5.0), RateLimiter(10, 5.0)
    for _ in range(4):
        a.acquire()
        b.acquire()
    handoff.save(a, "k")
    handoff.save(b, "k")
    merged = RateLimiter(10, 5.0)
    handoff.load_into(merged, "k")
    assert len(merged.recent_starts()) == 8

    stale = {"k": [time.time() - 60.0] * 5}
    handoff.path.write_text(json.dumps(stale), encoding="utf-8")
    fresh = RateLimiter(10, 5.0)
    handoff.load_into(fresh, "k")
    assert fresh.recent_starts() == []


def test_handoff_counts_requests_at_the_same_instant_and_never_counts_one_twice(
    tmp_path: Path,
) -> None:
    # Two processes can start a request at the very same wall-clock instant: both count.
    handoff = WindowHandoff.beside(tmp_path / "store.json")
    now = time.time()
    handoff.path.write_text(json.dumps({"k": [now - 1.0, now - 1.0, now - 0.5]}), encoding="utf-8")
    limiter = RateLimiter(10, 5.0)
    handoff.load_into(limiter, "k")
    assert len(limiter.recent_starts()) == 3
    assert limiter.recent_starts(own_only=True) == []

    # The seeded starts are already in the file: saving writes back only this process's own.
    limiter.acquire()
    limiter.acquire()
    assert len(limiter.recent_starts(own_only=True)) == 2
    handoff.save(limiter, "k")
    assert len(json.loads(handoff.path.read_text(encoding="utf-8"))["k"]) == 5

    # A start that seems to lie in the future (wall clock stepped back) still counts.
    future = RateLimiter(10, 5.0)
    future.seed([time.time() + 30.0])
    assert len(future.recent_starts()) == 1


def test_handoff_tolerates_a_damaged_file(tmp_path: Path) -> None:
    handoff = WindowHandoff.beside(tmp_path / "store.json")
    handoff.path.write_text("{not json", encoding="utf-8")
    limiter = RateLimiter(10, 5.0)
    handoff.load_into(limiter, "k")
    assert limiter.delay() == 0.0
    limiter.acquire()
    handoff.save(limiter, "k")
    assert len(json.loads(handoff.path.read_text(encoding="utf-8"))["k"]) == 1
