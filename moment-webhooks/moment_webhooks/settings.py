"""Receiver settings: their names, defaults, environment variables and validation.

Every setting is a CLI option and an environment variable ``MOMENT_WEBHOOKS_<NAME>``; the CLI
wins. The path token is the receiver's only protection (Moment does not sign webhooks), so it is
validated for length and never part of any ``repr``, log line or error message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "MOMENT_WEBHOOKS_"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8090
DEFAULT_COMMAND = "meltano run moment-to-fortnox"
DEFAULT_TENANT = "default"
DEFAULT_DEBOUNCE_SECONDS = 2.0
# A steady trickle of webhooks must not postpone the run for ever.
DEFAULT_MAX_WAIT_SECONDS = 30.0
DEFAULT_LOCK_DIR = ".locks"
# Moment's payloads are a few hundred bytes ("enough to make a follow-up API call").
DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_RUN_TIMEOUT_SECONDS = 3600.0
# The entity types the moment-to-fortnox job transfers; others (claims, offers) are acknowledged
# and ignored, so that one receiver can take every Moment webhook type without extra runs.
DEFAULT_ENTITY_TYPES = ("customers", "projects", "invoices")

MIN_PATH_TOKEN_LENGTH = 24
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+")
_TENANT_CHARS = re.compile(r"[A-Za-z0-9_.-]{1,64}")
ENTITY_TYPE_PATTERN = re.compile(r"[a-z][a-zA-Z0-9_-]{0,63}")
TOKEN_HINT = 'generate one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names it and says how to fix it."""


@dataclass(frozen=True)
class ReceiverSettings:
    """Everything ``moment-webhooks serve`` needs; build it with :meth:`validated`."""

    path_token: str = field(repr=False)
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    command: str = DEFAULT_COMMAND
    tenant: str = DEFAULT_TENANT
    debounce_seconds: float = DEFAULT_DEBOUNCE_SECONDS
    max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS
    lock_dir: Path = Path(DEFAULT_LOCK_DIR)
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    run_timeout_seconds: float | None = DEFAULT_RUN_TIMEOUT_SECONDS
    entity_types: frozenset[str] = frozenset(DEFAULT_ENTITY_TYPES)

    def validated(self) -> ReceiverSettings:
        """Return self when every setting is usable, else raise :class:`SettingsError`."""
        check_path_token(self.path_token)
        check_tenant(self.tenant)
        if not self.command.strip():
            raise SettingsError(
                f"--command ({ENV_PREFIX}COMMAND) is empty; set the job to run, "
                f'e.g. "{DEFAULT_COMMAND}"'
            )
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"--port ({ENV_PREFIX}PORT) must be 0-65535, got {self.port}")
        if self.debounce_seconds < 0:
            raise SettingsError(
                f"--debounce-seconds ({ENV_PREFIX}DEBOUNCE_SECONDS) must be >= 0, "
                f"got {self.debounce_seconds}"
            )
        if self.max_wait_seconds < self.debounce_seconds:
            raise SettingsError(
                f"--max-wait-seconds ({ENV_PREFIX}MAX_WAIT_SECONDS) must be >= the debounce "
                f"({self.debounce_seconds}), got {self.max_wait_seconds}"
            )
        if self.max_body_bytes < 1024:
            raise SettingsError(
                f"--max-body-bytes ({ENV_PREFIX}MAX_BODY_BYTES) must be >= 1024, "
                f"got {self.max_body_bytes}"
            )
        if self.run_timeout_seconds is not None and self.run_timeout_seconds <= 0:
            raise SettingsError(
                f"--run-timeout-seconds ({ENV_PREFIX}RUN_TIMEOUT_SECONDS) must be > 0 "
                "(or 0 on the command line for no timeout)"
            )
        for entity_type in self.entity_types:
            if not ENTITY_TYPE_PATTERN.fullmatch(entity_type):
                raise SettingsError(
                    f"--entity-types ({ENV_PREFIX}ENTITY_TYPES): {entity_type!r} is not an entity "
                    "type such as 'customers', 'projects' or 'invoices'"
                )
        return self

    @property
    def lock_path(self) -> Path:
        """The tenant's run lock file, shared with ``moment-webhooks run`` in other processes."""
        return tenant_lock_path(self.lock_dir, self.tenant)


def check_path_token(token: str) -> None:
    """Raise :class:`SettingsError` unless ``token`` is a long, URL-safe secret (never echoed)."""
    if not token:
        raise SettingsError(
            f"the path token is missing: set {ENV_PREFIX}PATH_TOKEN (or --path-token); "
            + TOKEN_HINT
        )
    if len(token) < MIN_PATH_TOKEN_LENGTH or not _TOKEN_CHARS.fullmatch(token):
        raise SettingsError(
            f"the path token must be at least {MIN_PATH_TOKEN_LENGTH} URL-safe characters "
            f"(A-Z a-z 0-9 _ -), since it is the only secret protecting the receiver; " + TOKEN_HINT
        )


def check_tenant(tenant: str) -> None:
    """Raise :class:`SettingsError` unless ``tenant`` can name a lock file."""
    if not _TENANT_CHARS.fullmatch(tenant):
        raise SettingsError(
            f"--tenant ({ENV_PREFIX}TENANT) {tenant!r} must be 1-64 characters of "
            "A-Z a-z 0-9 _ . - (it names the tenant's lock file)"
        )


def tenant_lock_path(lock_dir: Path, tenant: str) -> Path:
    """Where the tenant's exclusive run lock lives; the same path for every process."""
    check_tenant(tenant)
    return lock_dir / f"moment-to-fortnox.{tenant}.lock"
