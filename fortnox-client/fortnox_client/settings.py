"""The Fortnox connection settings (docs/ARCHITECTURE.md, "Settings") as one typed, validated value.

Owns the defaults, the validation and the only place a plugin's config mapping is read for
Fortnox, and the settings' JSON-schema declaration the Fortnox plugins share
(:func:`plugin_settings_schema`). Secrets are excluded from ``repr`` so that a logged settings
object leaks nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_API_URL = "https://api.fortnox.se/3"
DEFAULT_TOKEN_URL = "https://apps.fortnox.se/oauth-v1/token"
DEFAULT_TOKEN_STORE_PATH = ".secrets/fortnox-token.json"
DEFAULT_MAX_REQUESTS_PER_5S = 25
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_MAX_TRIES = 8
DEFAULT_MAX_RETRY_SECONDS = 60.0

REQUIRED = ("client_id", "client_secret")


class SettingsError(ValueError):
    """A Fortnox setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class FortnoxSettings:
    """What :class:`FortnoxClient` and :class:`TokenStore` need to reach one Fortnox tenant."""

    client_id: str
    client_secret: str = field(repr=False)
    api_url: str = DEFAULT_API_URL
    token_url: str = DEFAULT_TOKEN_URL
    # Only the initial seed: once the token store holds a chain, the store wins (tokens rotate).
    refresh_token: str | None = field(default=None, repr=False)
    # Set for a client-credentials service account (no refresh token at all).
    tenant_id: str | None = None
    token_store_path: Path = Path(DEFAULT_TOKEN_STORE_PATH)
    # postgresql://user:pass@host/db[?tenant=NAME]: a token store shared across machines; wins
    # over token_store_path when set (see token_store_postgres). Holds a password: never logged.
    token_store_url: str | None = field(default=None, repr=False)
    max_requests_per_5s: int = DEFAULT_MAX_REQUESTS_PER_5S
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    # Retry budget for transient errors on idempotent requests (tries, total seconds, first wait).
    max_tries: int = DEFAULT_MAX_TRIES
    max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS
    retry_base_seconds: float = 0.5

    @property
    def uses_client_credentials(self) -> bool:
        return bool(self.tenant_id)

    @property
    def timeout(self) -> tuple[float, float]:
        """``(connect, read)`` as requests expects it."""
        return (self.connect_timeout, self.read_timeout)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> FortnoxSettings:
        """Build from a plugin config with the shared Fortnox keys; unknown keys are ignored.

        ``timeout`` may be one number (read timeout, seconds) or ``[connect, read]``.
        """
        missing = [k for k in REQUIRED if not _text(config.get(k))]
        if missing:
            raise SettingsError(
                "Missing required Fortnox setting(s): "
                + ", ".join(missing)
                + ". Set them in meltano.yml / .env (e.g. TARGET_FORTNOX_CLIENT_ID) from the app's "
                "page in Fortnox's developer portal."
            )
        connect, read = _timeouts(config.get("timeout"))
        return cls(
            client_id=str(config["client_id"]).strip(),
            client_secret=str(config["client_secret"]),
            api_url=(_text(config.get("api_url")) or DEFAULT_API_URL).rstrip("/"),
            token_url=_text(config.get("token_url")) or DEFAULT_TOKEN_URL,
            refresh_token=_text(config.get("refresh_token")),
            tenant_id=_text(config.get("tenant_id")),
            token_store_path=Path(
                _text(config.get("token_store_path")) or DEFAULT_TOKEN_STORE_PATH
            ).expanduser(),
            token_store_url=_text(config.get("token_store_url")),
            max_requests_per_5s=_int(
                config, "max_requests_per_5s", DEFAULT_MAX_REQUESTS_PER_5S, minimum=0
            ),
            connect_timeout=connect,
            read_timeout=read,
            max_tries=_int(config, "max_tries", DEFAULT_MAX_TRIES, minimum=1),
            max_retry_seconds=_float(config, "max_retry_seconds", DEFAULT_MAX_RETRY_SECONDS),
            retry_base_seconds=_float(config, "retry_base_seconds", 0.5),
        )


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _int(config: Mapping[str, Any], key: str, default: int, *, minimum: int) -> int:
    raw = config.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"Fortnox setting {key} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"Fortnox setting {key} must be >= {minimum}, got {value}")
    return value


def _float(config: Mapping[str, Any], key: str, default: float) -> float:
    raw = config.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"Fortnox setting {key} must be a number, got {raw!r}") from None
    if value < 0:
        raise SettingsError(f"Fortnox setting {key} must not be negative, got {value}")
    return value


def _timeouts(raw: Any) -> tuple[float, float]:
    if raw is None or raw == "":
        return DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT
    try:
        if isinstance(raw, list | tuple):
            connect, read = (float(v) for v in raw)
        else:
            read = float(raw)
            connect = min(DEFAULT_CONNECT_TIMEOUT, read)
    except (TypeError, ValueError):
        raise SettingsError(
            f"Fortnox setting timeout must be seconds or [connect, read], got {raw!r}"
        ) from None
    if connect <= 0 or read <= 0:
        raise SettingsError(f"Fortnox setting timeout must be positive, got {raw!r}")
    return connect, read


def plugin_settings_schema() -> dict[str, Any]:
    """The shared Fortnox settings as a JSON-schema fragment, in docs/ARCHITECTURE.md's order.

    Both Fortnox plugins merge it into their ``config_jsonschema`` (with
    ``sync_common.plugin_config_schema``), so names, types, defaults and which are secret are
    declared once, next to :meth:`FortnoxSettings.from_config` that reads them. Plain JSON schema
    (singer-sdk's shape of it) because this library does not depend on singer-sdk.
    """
    text = ["string", "null"]
    return {
        "type": "object",
        "properties": {
            "api_url": {
                "type": text,
                "default": DEFAULT_API_URL,
                "description": "Fortnox API base URL",
            },
            "token_url": {
                "type": text,
                "default": DEFAULT_TOKEN_URL,
                "description": "Fortnox OAuth2 token endpoint",
            },
            "client_id": {"type": ["string"], "description": "Fortnox app client id"},
            "client_secret": {
                "type": ["string"],
                "description": "Fortnox app client secret",
                "secret": True,
                "writeOnly": True,
            },
            "refresh_token": {
                "type": text,
                "description": "Initial refresh token (seeds the token store when it is empty; "
                "rotated tokens live in the store)",
                "secret": True,
                "writeOnly": True,
            },
            "tenant_id": {
                "type": text,
                "description": "Fortnox TenantId (DatabaseNumber) for the client-credentials "
                "service-account flow; no refresh token then",
            },
            "token_store_path": {
                "type": text,
                "default": DEFAULT_TOKEN_STORE_PATH,
                "description": "Token store file shared by every Fortnox plugin (never the "
                "Meltano config)",
            },
            "token_store_url": {
                "type": text,
                "description": "PostgreSQL URL of a token store shared across machines "
                "(postgresql://user:password@host/db?tenant=NAME, one row per client and "
                "tenant); wins over token_store_path when set. Needs fortnox-client[postgres].",
                "secret": True,
                "writeOnly": True,
            },
            "max_requests_per_5s": {
                "type": ["integer", "null"],
                "default": DEFAULT_MAX_REQUESTS_PER_5S,
                "description": "Client-side limit per client and tenant (Fortnox allows 25 per "
                "sliding 5 s)",
            },
            "timeout": {
                "type": ["number", "null"],
                "default": int(DEFAULT_READ_TIMEOUT),
                "description": "Seconds to wait for each Fortnox answer (read timeout; "
                "connecting may take 10 s). A create that times out is looked up before it is "
                "sent again",
            },
            "max_tries": {
                "type": ["integer", "null"],
                "default": DEFAULT_MAX_TRIES,
                "description": "Tries per Fortnox request on 429, 5xx, timeouts and resets (1 = "
                "no retry); when they run out the run fails before its state is saved",
            },
            "max_retry_seconds": {
                "type": ["number", "null"],
                "default": int(DEFAULT_MAX_RETRY_SECONDS),
                "description": "Longest time spent retrying one Fortnox request (backoff with "
                "jitter)",
            },
        },
        "required": list(REQUIRED),
    }
