"""Progress lines for long streams: records done, rate, and time left when the total is known.

Owns ``ProgressReporter``, which logs at most one line per ``interval_seconds`` however often
``tick`` is called, so a 100,000-record sync shows it is alive without flooding the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.5 h``: coarse on purpose, it is an estimate."""
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


class ProgressReporter:
    """Counts records of one stream and logs e.g. ``customers: 1200 done, 45.0/s, ~30 s left``."""

    def __init__(
        self,
        stream: str,
        total: int | None = None,
        interval_seconds: float = 10,
        *,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger | None = None,
    ) -> None:
        self.stream = stream
        self.total = total
        self.interval_seconds = interval_seconds
        self.done = 0
        self._clock = clock
        self._log = log or logger
        self._started = clock()
        self._last_report = self._started

    def tick(self, n: int = 1) -> str | None:
        """Count ``n`` more records; log and return a progress line if the interval has passed."""
        self.done += n
        now = self._clock()
        if now - self._last_report < self.interval_seconds:
            return None
        self._last_report = now
        line = self.line(now)
        self._log.info("%s", line)
        return line

    def line(self, now: float | None = None) -> str:
        """The current progress line (without logging it)."""
        elapsed = (self._clock() if now is None else now) - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.stream}: {self.done} done", f"{rate:.1f}/s"]
        if self.total is not None and rate > 0:
            remaining = max(self.total - self.done, 0)
            parts.append(f"~{format_duration(remaining / rate)} left")
        return ", ".join(parts)

    def finish(self) -> str:
        """Log and return the closing line: records done, time taken, overall rate."""
        elapsed = self._clock() - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        line = f"{self.stream}: {self.done} done in {format_duration(elapsed)}, {rate:.1f}/s"
        self._log.info("%s", line)
        return line
