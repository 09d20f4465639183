"""Fault injection and the request log, common to both sandboxes.

Faults are armed through the admin API (``POST /_sandbox/faults``) and applied to the emulated API
only, never to ``/_sandbox/`` itself. Kinds:

- ``status``: answer ``count`` requests with ``status`` (e.g. 429 or 503) instead of handling them;
  with ``rate`` (0..1) instead of ``count``, answer that share of requests at random (seeded).
- ``latency``: sleep ``seconds`` before handling ``count`` requests (or every request while armed).
- ``drop_after_commit``: handle the request (the write is committed) and then close the
  connection without an answer: the ambiguous failure a client resolves by looking the record up.
- ``drop``: close the connection without handling the request (the server is unreachable);
  ``seconds`` arms it for a period instead of a number of requests.

Every fault may be narrowed by ``method`` and by ``path`` (a regular expression searched for in
the path).
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, g, request

KINDS = ("status", "latency", "drop_after_commit", "drop")


class ConnectionDropped(Exception):
    """Raised to abandon a request after its socket was closed on purpose."""


@dataclass
class Fault:
    """One armed fault (module doc): what it does, what it matches and how often it has hit."""

    kind: str
    status: int = 503
    count: int | None = None
    rate: float | None = None
    seconds: float = 0.0
    until: float | None = None
    method: str | None = None
    path: str | None = None
    id: int = 0
    hits: int = 0
    _random: random.Random = field(default_factory=lambda: random.Random(0), repr=False)

    @classmethod
    def from_json(cls, body: dict[str, Any], fault_id: int) -> Fault:
        kind = body.get("kind")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        fault = cls(
            kind=kind,
            status=int(body.get("status", 503)),
            count=None if body.get("count") is None else int(body["count"]),
            rate=None if body.get("rate") is None else float(body["rate"]),
            seconds=float(body.get("seconds", 0.0)),
            method=(body.get("method") or None) and str(body["method"]).upper(),
            path=body.get("path") or None,
            id=fault_id,
            _random=random.Random(body.get("seed", fault_id)),
        )
        if fault.path:
            re.compile(fault.path)
        if kind == "drop" and body.get("count") is None and fault.seconds > 0:
            fault.until = time.monotonic() + fault.seconds
        if fault.count is None and fault.rate is None and fault.until is None and kind != "latency":
            fault.count = 1
        return fault

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "count": self.count,
            "rate": self.rate,
            "seconds": self.seconds,
            "method": self.method,
            "path": self.path,
            "hits": self.hits,
        }

    def expired(self) -> bool:
        if self.until is not None and time.monotonic() >= self.until:
            return True
        return self.count is not None and self.count <= 0

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method != method:
            return False
        if self.path and not re.search(self.path, path):
            return False
        if self.rate is not None:
            return self._random.random() < self.rate
        return True

    def consume(self) -> None:
        self.hits += 1
        if self.count is not None:
            self.count -= 1


class Faults:
    """The armed faults of one sandbox, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, body: dict[str, Any]) -> Fault:
        with self._lock:
            fault = Fault.from_json(body, self._next_id)
            self._next_id += 1
            self._faults.append(fault)
            return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            self._faults = [f for f in self._faults if not f.expired()]
            return [f.to_json() for f in self._faults]

    def take(self, kinds: tuple[str, ...], method: str, path: str) -> Fault | None:
        """The first armed fault of these kinds that applies to this request, consumed."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and not fault.expired() and fault.matches(method, path):
                    fault.consume()
                    return fault
            return None


class RequestLog:
    """The last requests made to the emulated API, for tests and benchmarks to count."""

    def __init__(self, maxlen: int = 200_000) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._seq = 0

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self._entries.append(entry)

    def since(self, seq: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self._entries if e["seq"] > seq]

    def last_seq(self) -> int:
        with self._lock:
            return self._seq

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def shut_connection() -> None:
    """Shut the client's socket so it sees EOF instead of a response.

    Werkzeug's attempt to write the response afterwards fails as a dropped connection, quietly.
    """
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def install(app: Flask, error_response: Any, identity: Any = None) -> tuple[Faults, RequestLog]:
    """Wire fault injection and request logging into ``app``.

    ``error_response(status)`` builds the API's own error answer for an injected status;
    ``identity()`` names the caller in the log (e.g. the Fortnox client+tenant), or None.
    """
    faults, log = Faults(), RequestLog()

    def is_admin() -> bool:
        return request.path.startswith("/_sandbox")

    @app.before_request
    def _inject_before() -> Response | None:
        g.started = time.monotonic()
        if is_admin():
            return None
        method, path = request.method, request.path
        fault = faults.take(("latency",), method, path)
        if fault is not None:
            time.sleep(fault.seconds)
        if faults.take(("drop",), method, path) is not None:
            _log(status=0, note="dropped")
            shut_connection()
            raise ConnectionDropped()
        fault = faults.take(("status",), method, path)
        if fault is not None:
            g.injected = True
            return error_response(fault.status)  # type: ignore[no-any-return]
        return None

    @app.after_request
    def _inject_after(response: Response) -> Response:
        if is_admin():
            return response
        if 200 <= response.status_code < 300 and not g.get("injected"):
            fault = faults.take(("drop_after_commit",), request.method, request.path)
            if fault is not None:
                _log(status=0, note="dropped after commit")
                shut_connection()
                return response
        _log(status=response.status_code, note="injected" if g.get("injected") else "")
        return response

    def _log(status: int, note: str) -> None:
        log.add(
            {
                "time": time.time(),
                "method": request.method,
                "path": request.path,
                "query": request.query_string.decode("utf-8", "replace"),
                "status": status,
                "note": note,
                "client": identity() if identity else None,
                "ms": round((time.monotonic() - g.get("started", time.monotonic())) * 1000, 1),
                # When the app's rate limiter counted the request (epoch s), if it did.
                "arrived": g.get("arrived"),
            }
        )

    @app.errorhandler(ConnectionDropped)
    def _dropped(_: ConnectionDropped) -> Response:
        # The socket is already shut; werkzeug's write fails quietly as a dropped connection.
        return Response(status=499)

    return faults, log
