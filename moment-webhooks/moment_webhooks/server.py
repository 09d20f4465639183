"""Serve the receiver on werkzeug's threaded HTTP/1.1 server until SIGTERM or Ctrl-C.

Owns the process lifecycle: the ready line (with the real port when 0 was asked for), an access
log with the path token masked, and a clean stop — first the server, then the trigger, which
lets a run in flight finish within a grace time.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from types import FrameType
from typing import Any

from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from moment_webhooks.trigger import JobTrigger

READY = "moment-webhooks listening on"
_TOKEN_IN_PATH = re.compile(r"/hooks/[^/\s\"]+")
access_logger = logging.getLogger("moment_webhooks.access")
logger = logging.getLogger(__name__)


def mask_path_token(text: str) -> str:
    """Replace the secret path token in a request line or URL with ``***``."""
    return _TOKEN_IN_PATH.sub("/hooks/***", text)


class _MaskingHandler(WSGIRequestHandler):
    """Werkzeug's request handler, with every log line (access and error) token-free."""

    def log(self, type: str, message: str, *args: Any) -> None:
        line = mask_path_token(message % args if args else message)
        level = logging.INFO if type == "info" else logging.WARNING
        access_logger.log(level, "%s %s", self.address_string(), line)


def serve(app: Flask, trigger: JobTrigger, host: str, port: int, grace_seconds: float) -> None:
    """Start the trigger's worker and serve ``app``; print the ready line with the real URL."""
    server = make_server(host, port, app, threaded=True, request_handler=_MaskingHandler)
    server.daemon_threads = True  # type: ignore[attr-defined]

    def _stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever to return, so it cannot run in this thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    trigger.start()
    print(f"{READY} http://{host}:{server.server_port} (tenant {trigger.tenant})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        trigger.stop(grace_seconds)
        logger.info("moment-webhooks stopped")
