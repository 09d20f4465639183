"""Client-side sliding-window rate limiting for Fortnox (25 requests per 5 s per client and tenant).

Owns :class:`RateLimiter` and the process-wide registry that makes every client of one
``(client_id, tenant)`` share one window, so two sinks of the same target cannot together exceed the
limit. Fortnox answers an over-limit request with 429 and no ``Retry-After``, so it is far cheaper
to wait before sending than to be refused: :meth:`RateLimiter.acquire` sleeps exactly until the
oldest request of the window has left it (plus a small safety margin for client/server clock and
latency skew), never busy-waits, and lets threads through one at a time.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import ClassVar

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

    def _delay_locked(self, now: float) -> float:
        if not self.enabled:
            return 0.0
        span = self.window_seconds + self.safety_margin
        while self._starts and self._starts[0] + span <= now:
            self._starts.popleft()
        if len(self._starts) < self.max_requests:
            return 0.0
        return self._starts[0] + span - now
