"""Fortnox's rate limit: a sliding 5-second window of accepted requests per client and tenant."""

from __future__ import annotations

import threading
import time
from collections import deque

WINDOW_SECONDS = 5.0


class SlidingWindowLimiter:
    """Admits at most ``limit`` requests per key in any 5-second window (``limit`` 0 = off).

    Only admitted requests enter the window: a refused request does not push the caller's
    recovery further out (inferred; Fortnox says bursts are refused "until the average is back
    under 25 per 5 s").
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, deque[float]] = {}

    def admit(self, key: str, limit: int) -> tuple[bool, float]:
        """Admit a request of ``key`` or not: ``(admitted, arrival)``.

        The arrival is the wall-clock time (epoch s) of the instant the window was checked, for
        the request log (so a log reader counts windows as the limiter did).
        """
        if limit <= 0:
            return True, time.time()
        with self._lock:
            now, arrived = time.monotonic(), time.time()
            window = self._windows.setdefault(key, deque())
            while window and now - window[0] >= WINDOW_SECONDS:
                window.popleft()
            if len(window) >= limit:
                return False, arrived
            window.append(now)
            return True, arrived

    def clear(self) -> None:
        """Forget every window (admin: a test's requests must not count against the next)."""
        with self._lock:
            self._windows.clear()
