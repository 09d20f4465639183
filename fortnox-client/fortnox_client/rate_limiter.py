"""Client-side sliding-window rate limiting for Fortnox (25 requests per 5 s per client and tenant).

Owns :class:`RateLimiter` and the process-wide registry that makes every client of one
``(client_id, tenant)`` share one window, so two sinks of the same target cannot together exceed the
limit. Fortnox answers an over-limit request with 429 and no ``Retry-After``, so it is far cheaper
to wait before sending than to be refused: :meth:`RateLimiter.acquire` sleeps exactly until the
oldest request of the window has left it (plus a small safety margin for client/server clock and
latency skew), never busy-waits, and lets threads through one at a time.

The window is also shared between processes: :class:`SharedWindow` keeps the request starts of
every client and tenant in a small file beside the token store, and every request is reserved in
it under a file lock. So the plugins of one machine and token store count each other's requests
whether they run one after the other (the next job of one ``meltano run``) or at the same moment
(the daily expenses job starting while a 5-minute push runs): together they stay inside Fortnox's
window instead of running into 429s.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import ClassVar, Protocol

from filelock import FileLock, Timeout

Clock = Callable[[], float]
Sleep = Callable[[float], None]

logger = logging.getLogger(__name__)

DEFAULT_WINDOW_SECONDS = 5.0
# The server sees a request a little after we send it; a request that reaches it earlier than its
# predecessor of 25 slots ago (latency jitter) would be the 26th in its window. 0.1 s covers local
# and WAN jitter and still leaves 5 / 5.1 = 98 % of the limit usable.
DEFAULT_SAFETY_MARGIN = 0.1


class Window(Protocol):
    """A request window shared between processes (a file on one machine, a row in PostgreSQL)."""

    def reserve(self, key: str, max_requests: int, span: float) -> float:
        """Record a request start for ``key`` now and return 0, or return the seconds to wait."""
        ...


def take_slot(
    starts: Iterable[float], now: float, max_requests: int, span: float
) -> tuple[float, list[float]]:
    """One reservation in a shared window: ``(0, the window's starts with now added)`` when a
    slot is free, else ``(seconds to wait, the starts still inside the window)``.

    ``span`` is the window plus the safety margin. A start that seems to lie in the future (a wall
    clock stepped back) counts as now, so a clock step never lets a burst through.
    """
    kept = sorted(min(t, now) for t in starts if t > now - span)
    if len(kept) >= max_requests:
        return max(kept[-max_requests] + span - now, 0.001), kept
    return 0.0, [*kept, now]


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
        # The window shared with other processes, once attached (see :meth:`share`).
        self._shared: Window | None = None
        self._shared_key = ""
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
        """Seconds the next :meth:`acquire` would wait now for this process's own requests."""
        with self._lock:
            return self._delay_locked(self._clock())

    def share(self, window: Window, key: str) -> None:
        """Reserve every request also in ``window`` under ``key`` (client and tenant).

        The first window attached stays: one limiter has one shared window.
        """
        with self._lock:
            if self._shared is None:
                self._shared, self._shared_key = window, key

    def acquire(self) -> float:
        """Block until a request may start, record its start and return the seconds waited."""
        if not self.enabled:
            return 0.0
        waited = 0.0
        span = self.window_seconds + self.safety_margin
        with self._lock:
            while True:
                now = self._clock()
                wait = self._delay_locked(now)
                if wait <= 0 and self._shared is not None:
                    wait = self._shared.reserve(self._shared_key, self.max_requests, span)
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


class SharedWindow:
    """Request starts per client and tenant in a file that every process of a machine shares.

    :meth:`reserve` takes a slot under a file lock: it reads the starts still inside the window,
    and either records the new one or says how long until a slot frees. Best effort: when the file
    cannot be used (unwritable directory, a lock held past ``lock_timeout``) the process goes on
    with its own window, as it would without sharing, and says so once in the log.
    """

    _instances: ClassVar[dict[Path, SharedWindow]] = {}
    _instances_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path, *, clock: Clock = time.time, lock_timeout: float = 2.0) -> None:
        self.path = path
        self._clock = clock
        self._lock = FileLock(str(path) + ".lock", timeout=lock_timeout)
        self._warned = False

    @classmethod
    def beside(cls, token_store_path: Path) -> SharedWindow:
        """The one window of this process for the token store at ``token_store_path``."""
        path = token_store_path.with_name(token_store_path.name + ".window.json")
        with cls._instances_lock:
            window = cls._instances.get(path)
            if window is None:
                window = cls._instances[path] = cls(path)
            return window

    def starts(self, key: str) -> list[float]:
        """The recorded starts (epoch seconds) of ``key``, oldest first; for reports and tests."""
        return sorted(self._read().get(key, []))

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

    def reserve(self, key: str, max_requests: int, span: float) -> float:
        """Record a request start for ``key`` now and return 0, or return the seconds to wait
        (see :func:`take_slot`)."""
        try:
            with self._lock:
                data = self._read()
                now = self._clock()
                wait, data[key] = take_slot(data.get(key, []), now, max_requests, span)
                if wait > 0:
                    return wait
                # Keys whose starts all left the window are dropped, so the file stays small.
                for other, times in list(data.items()):
                    if not any(t > now - span for t in times):
                        del data[other]
                # Not write_private_json_atomically: no fsync on every request; a torn file after
                # a crash only reads as an empty window.
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_text(json.dumps(data), encoding="utf-8")
                tmp.replace(self.path)
                return 0.0
        except (OSError, Timeout) as exc:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "Fortnox rate limit: the shared window %s cannot be used (%s); this process "
                    "counts only its own requests, so another Fortnox job running at the same "
                    "time may meet 429s (retried).",
                    self.path,
                    type(exc).__name__,
                )
            return 0.0
