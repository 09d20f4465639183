"""Client-side sliding-window rate limiting for Fortnox (25 requests per 5 s per client and tenant).

Owns :class:`RateLimiter` and the process-wide registry that makes every client of one
``(client_id, tenant)`` share one window, so two sinks of the same target cannot together exceed the
limit. Fortnox answers an over-limit request with 429 and no ``Retry-After``, so it is far cheaper
to wait before sending than to be refused: :meth:`RateLimiter.slot` sleeps until the oldest request
of the window has left it, never busy-waits, and lets threads through one at a time.

Fortnox counts arrivals, and a request arrives some time after the limiter let it go (more so on a
busy machine). So the window holds an upper bound of each request's arrival, not its start: while
the request is in flight its start plus the client's timeouts, then the time its answer came back
(see ``DEFAULT_SAFETY_MARGIN`` below for why this keeps every 5 s of arrivals within the limit).

The window is also shared between processes: :class:`SharedWindow` keeps the entries of every
client and tenant in a small file beside the token store, and every request is reserved and
answered in it under a file lock. So the plugins of one machine and token store count each
other's requests whether they run one after the other (the next job of one ``meltano run``) or at
the same moment (the daily expenses job starting while a 5-minute push runs): together they stay
inside Fortnox's window instead of running into 429s.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Protocol

from filelock import FileLock, Timeout
from sync_common.atomic_files import write_bytes_atomically

Clock = Callable[[], float]
Sleep = Callable[[float], None]

logger = logging.getLogger(__name__)

DEFAULT_WINDOW_SECONDS = 5.0
# Fortnox counts a request when it arrives, some time after the limiter let it start (building
# and sending it, a busy machine, the network). So a request's entry in the window is an upper
# bound of its arrival: while it is in flight, its start plus ``hold`` (the client gives up on an
# answer after its connect + read timeouts); once its answer (or error) is back, the time the
# answer came back, which is after the arrival. A new request starts only when fewer than the
# limit of entries lie within one window before it, so no window of arrivals can hold more
# (fortnox-client/README.md, "Rate limiting"). The margin only covers clock-rate differences
# between this machine and Fortnox's (parts per million of the window) and rounding.
DEFAULT_SAFETY_MARGIN = 0.01
DEFAULT_HOLD_SECONDS = 75.0
# When the requests that fill the window are all still in flight, an answer frees a slot: look
# again after this long rather than for the whole ``hold``.
IN_FLIGHT_POLL = 0.02


class Window(Protocol):
    """A request window shared between processes (a file on one machine, a row in PostgreSQL)."""

    def reserve(
        self, key: str, max_requests: int, span: float, hold: float
    ) -> tuple[float, float | None]:
        """Record a request about to start for ``key``.

        Gives ``(0, its entry)``, or ``(seconds to wait, None)``; ``None`` as the entry also when
        nothing could be recorded.
        """
        ...

    def answered(self, key: str, entry: float) -> None:
        """The request recorded as ``entry`` got its answer (or failed): its entry becomes now."""
        ...


def take_slot(
    entries: Iterable[float], now: float, max_requests: int, span: float, hold: float
) -> tuple[float, list[float]]:
    """One reservation in a window.

    Gives ``(0, the entries still in it with the new one, now + hold, added)`` when a slot is
    free, else ``(seconds to wait, the entries still in the window)``.

    ``span`` is the window plus the safety margin. An entry lies in the future while its request
    is in flight (see ``DEFAULT_HOLD_SECONDS``); one further out than ``hold`` (a wall clock
    stepped back) counts as now + hold, so a clock step never lets a burst through.
    """
    kept = sorted(min(t, now + hold) for t in entries if t > now - span)
    if len(kept) >= max_requests:
        edge = kept[-max_requests]
        if edge > now:  # the window is full of requests in flight: the first answer frees one
            return IN_FLIGHT_POLL, kept
        return max(edge + span - now, 0.001), kept
    return 0.0, [*kept, now + hold]


def answered_at(entries: Iterable[float], entry: float, now: float) -> list[float]:
    """``entries`` with ``entry`` (a request in flight) replaced by ``now``, its answer's time.

    Entries are plain numbers: two requests with one value are interchangeable, so replacing
    either is the same. An entry no longer there (it outlived the window) is added again.
    """
    found = list(entries)
    if entry in found:
        found.remove(entry)
    found.append(now)
    return found


@dataclass(frozen=True)
class Slot:
    """One request's place in the window: the seconds it waited and its entries (own and shared)."""

    waited: float
    entry: float | None = None
    shared_entry: float | None = None


class RateLimiter:
    """At most ``max_requests`` arrivals per sliding ``window_seconds``; ``0`` is off.

    ``with limiter.slot() as waited:`` wraps one request, from before it is sent until its answer
    is back; :meth:`acquire` is a slot for a request answered at once.
    """

    _registry: ClassVar[dict[tuple[str, str, int, float], RateLimiter]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        max_requests: int,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        *,
        safety_margin: float = DEFAULT_SAFETY_MARGIN,
        hold_seconds: float = DEFAULT_HOLD_SECONDS,
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
        self.hold_seconds = hold_seconds
        self._clock = clock
        self._sleep = sleep
        self._entries: list[float] = []
        # No request of this process starts before this (after a 429, see :meth:`refused`).
        self._paused_until = 0.0
        # The window shared with other processes, once attached (see :meth:`share`).
        self._shared: Window | None = None
        self._shared_key = ""
        # Held while waiting: the next thread in line is the one that sleeps, the others queue on
        # the lock (blocked, not spinning), so requests leave in arrival order. ``_data`` guards
        # the entries only, so an answer is recorded while the next thread waits.
        self._lock = threading.Lock()
        self._data = threading.Lock()
        self.waited_seconds = 0.0
        self.acquired = 0

    @classmethod
    def shared(
        cls,
        client_id: str,
        tenant: str | None,
        max_requests: int,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        *,
        hold_seconds: float = DEFAULT_HOLD_SECONDS,
    ) -> RateLimiter:
        """The one limiter of this process for ``(client_id, tenant)`` and this limit."""
        key = (client_id, tenant or "", max_requests, window_seconds)
        with cls._registry_lock:
            limiter = cls._registry.get(key)
            if limiter is None:
                limiter = cls(max_requests, window_seconds, hold_seconds=hold_seconds)
                cls._registry[key] = limiter
            return limiter

    @property
    def enabled(self) -> bool:
        return self.max_requests > 0

    @property
    def span(self) -> float:
        return self.window_seconds + self.safety_margin

    def delay(self) -> float:
        """Seconds the next request would wait now for this process's own requests."""
        if not self.enabled:
            return 0.0
        with self._data:
            now = self._clock()
            wait, self._entries = take_slot(
                self._entries, now, self.max_requests, self.span, self.hold_seconds
            )
            if wait <= 0:
                self._entries.pop()  # only looked, not taken
            return max(wait, self._paused_until - now, 0.0)

    def share(self, window: Window, key: str) -> None:
        """Reserve every request also in ``window`` under ``key`` (client and tenant).

        The first window attached stays: one limiter has one shared window.
        """
        with self._lock:
            if self._shared is None:
                self._shared, self._shared_key = window, key

    @contextmanager
    def slot(self) -> Iterator[float]:
        """Wait for a slot and hold it around one request; yields the seconds waited.

        Leaving the block (answer or exception) records the request at the time its answer came
        back, an upper bound of when Fortnox received it.
        """
        taken = self._take()
        try:
            yield taken.waited
        finally:
            self._answered(taken)

    def acquire(self) -> float:
        """A slot for a request whose answer is back at once; returns the seconds waited."""
        with self.slot() as waited:
            return waited

    def refused(self) -> None:
        """Fortnox answered 429: its window is full, with requests this window may not know.

        Those come from another integration of this client and tenant. No request of this
        process starts before the oldest entry of the window has left it, or a whole window
        when it holds none.
        """
        if not self.enabled:
            return
        with self._data:
            now = self._clock()
            settled = [t for t in self._entries if now - self.span < t <= now]
            until = (min(settled) if settled else now) + self.span
            self._paused_until = max(self._paused_until, until)

    def _take(self) -> Slot:
        if not self.enabled:
            return Slot(0.0)
        waited = 0.0
        with self._lock:
            while True:
                with self._data:
                    now = self._clock()
                    wait, self._entries = take_slot(
                        self._entries, now, self.max_requests, self.span, self.hold_seconds
                    )
                    if wait <= 0:
                        self._entries.pop()  # taken below, once the shared window agrees
                    wait = max(wait, self._paused_until - now)
                shared: float | None = None
                if wait <= 0 and self._shared is not None:
                    wait, shared = self._shared.reserve(
                        self._shared_key, self.max_requests, self.span, self.hold_seconds
                    )
                if wait <= 0:
                    with self._data:
                        # Only answers can have changed the entries since the look above, and
                        # they only make room.
                        entry = now + self.hold_seconds
                        self._entries.append(entry)
                        self.acquired += 1
                        self.waited_seconds += waited
                    return Slot(waited, entry, shared)
                self._sleep(wait)
                waited += wait

    def _answered(self, taken: Slot) -> None:
        if taken.entry is None:
            return
        with self._data:
            self._entries = answered_at(self._entries, taken.entry, self._clock())
        if taken.shared_entry is not None and self._shared is not None:
            self._shared.answered(self._shared_key, taken.shared_entry)


class SharedWindow:
    """The window's entries per client and tenant in a file shared by a machine's processes.

    :meth:`reserve` takes a slot under a file lock: it reads the entries still inside the window,
    and either records the new one or says how long until a slot frees; :meth:`answered` turns
    the entry of a request in flight into the time its answer came back. Best effort: when the file
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
        """The recorded entries (epoch seconds) of ``key``, oldest first; for reports and tests."""
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

    def reserve(
        self, key: str, max_requests: int, span: float, hold: float
    ) -> tuple[float, float | None]:
        """Record a request about to start for ``key``.

        Gives ``(0, its entry)`` or ``(seconds to wait, None)`` (see :func:`take_slot`).
        """
        try:
            with self._lock:
                data = self._read()
                now = self._clock()
                wait, data[key] = take_slot(data.get(key, []), now, max_requests, span, hold)
                if wait > 0:
                    return wait, None
                # Keys whose entries all left the window are dropped, so the file stays small.
                for other, times in list(data.items()):
                    if not any(t > now - span for t in times):
                        del data[other]
                self._write(data)
                return 0.0, data[key][-1]
        except (OSError, Timeout) as exc:
            self._unusable(exc)
            return 0.0, None

    def answered(self, key: str, entry: float) -> None:
        """The request recorded as ``entry`` got its answer: its entry becomes now."""
        try:
            with self._lock:
                data = self._read()
                data[key] = answered_at(data.get(key, []), entry, self._clock())
                self._write(data)
        except (OSError, Timeout) as exc:
            self._unusable(exc)

    def _write(self, data: dict[str, list[float]]) -> None:
        # No fsync on every request: a window lost in a crash only reads as an empty window.
        write_bytes_atomically(self.path, json.dumps(data).encode("utf-8"), fsync=False)

    def _unusable(self, exc: Exception) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(
                "Fortnox rate limit: the shared window %s cannot be used (%s); this process "
                "counts only its own requests, so another Fortnox job running at the same "
                "time may meet 429s (retried).",
                self.path,
                type(exc).__name__,
            )
