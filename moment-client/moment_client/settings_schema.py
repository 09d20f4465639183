"""The Moment settings the Moment plugins share, declared once as JSON-schema fragments.

Owns the names, types, defaults and secrecy of the settings :meth:`MomentSettings.from_config`
reads (docs/ARCHITECTURE.md): tap-moment and target-moment merge these fragments into their
``config_jsonschema`` (with ``sync_common.plugin_config_schema``), each between its own settings.
Two fragments, the connection and the retry budget, because tap-moment lists its paging settings
between them. Plain JSON schema (singer-sdk's shape of it): this library does not use singer-sdk.
"""

from __future__ import annotations

from typing import Any

from moment_client.client import DEFAULT_API_URL, DEFAULT_MAX_TRIES, DEFAULT_TIMEOUT_SECONDS


def connection_settings_schema() -> dict[str, Any]:
    """``api_url``, ``company_code`` and ``api_key`` (secret): which Moment company, and how."""
    return {
        "type": "object",
        "properties": {
            "api_url": {
                "type": ["string", "null"],
                "default": DEFAULT_API_URL,
                "description": "Moment API base URL, up to and including /api/1.0",
            },
            "company_code": {
                "type": ["string"],
                "description": "Moment company code: the first path part of your Moment URL",
            },
            "api_key": {
                "type": ["string"],
                "description": "Moment API key (Company > API keys), sent as HTTP Basic "
                "apikey:<key>",
                "secret": True,
                "writeOnly": True,
            },
        },
        "required": ["company_code", "api_key"],
    }


def retry_settings_schema() -> dict[str, Any]:
    """``timeout`` and ``max_tries``: how long to wait for Moment, and how often to try."""
    return {
        "type": "object",
        "properties": {
            "timeout": {
                "type": ["number", "null"],
                "default": int(DEFAULT_TIMEOUT_SECONDS),
                "description": "Seconds to wait for each Moment answer",
            },
            "max_tries": {
                "type": ["integer", "null"],
                "default": DEFAULT_MAX_TRIES,
                "description": "Tries per Moment request on 429, 5xx, timeouts and resets (1 = "
                "no retry); when they run out the run fails before its state is saved",
            },
        },
        "required": [],
    }
