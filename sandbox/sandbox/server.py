"""Run a sandbox application on a real, threaded HTTP/1.1 server until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING

from werkzeug.serving import WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

READY = "SANDBOX READY"


class _QuietHandler(WSGIRequestHandler):
    """Keeps the access log out of stderr (the request log is in the admin API)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


def serve(app: WSGIApplication, host: str, port: int, name: str) -> None:
    """Serve ``app``; print one ready line with the real URL (port 0 picks a free port)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    server.daemon_threads = True  # type: ignore[attr-defined]
    url = f"http://{host}:{server.server_port}"
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"{READY} {name} {url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        print(f"sandbox {name} stopped", file=sys.stderr, flush=True)
