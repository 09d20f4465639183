"""Client-side sliding-window rate limiting for Fortnox (25 requests per 5 s per client and tenant).

Owns :class:`RateLimiter` and the process-wide registry that makes every client of one
``(client_id, tenant)`` share one window, so two sinks of the same target cannot together exceed the
limit. Fortnox answers an over-limit request with 429 and no ``Retry-After``, so it is far cheaper
to wait before sending than to be refused: :meth:`RateLimiter.acquire` sleeps exactly until the
oldest request of the window has left it (plus a small safety margin for client/server clock and
latency skew), never busy-waits, and lets threads through one at a time.

The window also outlives the process: :class:`WindowHandoff` keeps the starts of the last window in
a small file beside the token store, so a plugin that starts right after another one of the same
client and tenant (the next job of one ``meltano run``, back-to-back runs) waits for the requests
Fortnox still counts instead of running into 429s.
"""

from __future__ import annotations

import atexit
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar

from filelock import FileLock, Timeout

Clock = Callable[[], float]
Sleep = Callable[[float], None]

DEFAULT_WINDOW_SECONDS = 5.0
# The server sees a request a little after we send it; a request that reaches it earlier than its
# predecessor of 25 slots ago (latency jitter) would be the 26th in its window. 0.1 s covers local
# and WAN jitter and still leaves 5 / 5.1 = 98 % of the limit usable.
DEFAULT_SAFETY_MARGIN = 0.1


class RateLimiter:
    """At most ``max_requests`` starts per sliding ``window_seconds``; ``max_requests=0`` is off."""

    _registry: ClassVar[dict[tuple[str, str, int, float], RateLimiter]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        max_requests: int,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        *,
        safety_margin: float = DEFAULT_SAFETY_MARGIN,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        if max_requests < 0:
            raise ValueError("max_requests must be >= 0 (0 turns the limiter off)")
        if window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        self.max_requests = max_requests
        self.window_seconds = window_seconds
        self.safety_margin = safety_margin
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque()
        # Starts that came from another process (seed); they are in the hand-off file already, so a
        # save writes back only this process's own starts next to what the file holds.
        self._seeded: set[float] = set()
        # Held while waiting: the next thread in line is the one that sleeps, the others queue on
        # the lock (blocked, not spinning), so requests leave in arrival order.
        self._lock = threading.Lock()
        self.waited_seconds = 0.0
        self.acquired = 0

    @classmethod
    def shared(
        cls,
        client_id: str,
        tenant: str | None,
        max_requests: int,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
    ) -> RateLimiter:
        """The one limiter of this process for ``(client_id, tenant)`` and this limit."""
        key = (client_id, tenant or "", max_requests, window_seconds)
        with cls._registry_lock:
            limiter = cls._registry.get(key)
            if limiter is None:
                limiter = cls(max_requests, window_seconds)
                cls._registry[key] = limiter
            return limiter

    @property
    def enabled(self) -> bool:
        return self.max_requests > 0

    def delay(self) -> float:
        """Seconds the next :meth:`acquire` would wait now (0 when a slot is free)."""
        with self._lock:
            return self._delay_locked(self._clock())

    def acquire(self) -> float:
        """Block until a request may start, record its start and return the seconds waited."""
        if not self.enabled:
            return 0.0
        waited = 0.0
        with self._lock:
            while True:
                now = self._clock()
                wait = self._delay_locked(now)
                if wait <= 0:
                    self._starts.append(now)
                    self.acquired += 1
                    self.waited_seconds += waited
                    return waited
                self._sleep(wait)
                waited += wait

    def recent_starts(self, *, own_only: bool = False) -> list[float]:
        """Wall-clock (epoch) times of the starts still inside the window, oldest first.

        ``own_only`` leaves out the starts seeded from another process.
        """
        with self._lock:
            now = self._clock()
            self._delay_locked(now)  # drops the starts that left the window
            offset = time.time() - now
            return [
                start + offset for start in self._starts if not (own_only and start in self._seeded)
            ]

    def seed(self, wall_starts: Iterable[float]) -> None:
        """Count another process's recent starts (epoch times) as if they were ours.

        Every start counts, even two at the same instant (two processes' requests are two
        requests); a start that seems to lie in the future (a wall clock stepped back) counts
        as now.
        """
        with self._lock:
            now = self._clock()
            offset = time.time() - now
            span = self.window_seconds + self.safety_margin
            theirs = [min(t - offset, now) for t in wall_starts if now - span < t - offset]
            self._seeded.update(theirs)
            merged = sorted([*theirs, *self._starts])
            self._starts = deque(merged[-self.max_requests :] if self.max_requests else [])
            self._seeded.intersection_update(self._starts)

    def _delay_locked(self, now: float) -> float:
        if not self.enabled:
            return 0.0
        span = self.window_seconds + self.safety_margin
        while self._starts and self._starts[0] + span <= now:
            self._seeded.discard(self._starts.popleft())
        if len(self._starts) < self.max_requests:
            return 0.0
        return self._starts[0] + span - now


class WindowHandoff:
    """The last window's request starts per client and tenant, in a file shared between processes.

    Read once when a process's limiter is first used, written (merged under a file lock) when the
    process exits. Best effort: an unreadable or locked file only means the process starts with an
    empty window, as it would without the hand-off.
    """

    _saved: ClassVar[set[tuple[str, str]]] = set()
    _saved_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = FileLock(str(path) + ".lock", timeout=2)

    @classmethod
    def beside(cls, token_store_path: Path) -> WindowHandoff:
        return cls(token_store_path.with_name(token_store_path.name + ".window.json"))

    def _read(self) -> dict[str, list[float]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {
            str(k): [float(t) for t in v if isinstance(t, int | float)]
            for k, v in data.items()
            if isinstance(v, list)
        }

    def load_into(self, limiter: RateLimiter, key: str) -> None:
        if limiter.enabled:
            limiter.seed(self._read().get(key, []))

    def save(self, limiter: RateLimiter, key: str) -> None:
        if not limiter.enabled or not self.path.parent.is_dir():
            return
        starts = limiter.recent_starts(own_only=True)
        if not starts:
            return
        try:
            with self._lock:
                data = self._read()
                cutoff = time.time() - limiter.window_seconds - limiter.safety_margin
                # The file's starts (other processes', including those this one was seeded
                # with) plus this process's own: a list, not a set, so two requests at one
                # instant stay two.
                kept = [t for t in data.get(key, []) if t > cutoff]
                data[key] = sorted([*kept, *starts])[-limiter.max_requests :]
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_text(json.dumps(data), encoding="utf-8")
                tmp.replace(self.path)
        except (OSError, Timeout):
            return

    def attach(self, limiter: RateLimiter, key: str) -> None:
        """Seed ``limiter`` from the file once per process and save it back at exit."""
        marker = (str(self.path), key)
        with self._saved_lock:
            if marker in self._saved:
                return
            self._saved.add(marker)
        self.load_into(limiter, key)
        atexit.register(self.save, limiter, key)
