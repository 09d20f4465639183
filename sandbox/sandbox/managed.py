"""``ManagedServer``: a local server that a ``with`` block starts and stops.

Owns only that lifecycle contract, shared by the sandbox processes (``SandboxProcess``) and the
test PostgreSQL cluster (``PostgresServer``): ``start()`` returns the started server, ``stop()``
is safe to call whatever state it is in, and leaving the block stops it even on an error.
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self


class ManagedServer(abc.ABC):
    """Subclasses start and stop the server; ``with`` calls them."""

    @abc.abstractmethod
    def start(self) -> Self:
        """Start the server and wait until it answers; return it."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the server (a no-op when it is not running)."""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
