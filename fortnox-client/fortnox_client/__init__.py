"""Fortnox REST v3 client: OAuth2 token store, rate limiter, retries, errors, envelopes, paging.

The public names below are the contract the Fortnox plugins build on; add, don't rename.
"""

from fortnox_client.client import RESOURCES, ClientStats, FortnoxClient
from fortnox_client.errors import (
    AmbiguousWriteError,
    FortnoxAuthError,
    FortnoxDataError,
    FortnoxError,
    FortnoxNotFound,
    FortnoxTokenUnavailable,
    FortnoxTransientError,
    classify,
    parse_error_information,
)
from fortnox_client.formats import (
    API_BLANK,
    date_param,
    is_valid_character,
    lastmodified_param,
    parse_fortnox_date,
    parse_fortnox_datetime,
    parse_fortnox_timestamp,
)
from fortnox_client.rate_limiter import RateLimiter
from fortnox_client.settings import FortnoxSettings, SettingsError, plugin_settings_schema
from fortnox_client.token_store import TokenStore

__all__ = [
    "API_BLANK",
    "RESOURCES",
    "AmbiguousWriteError",
    "ClientStats",
    "FortnoxAuthError",
    "FortnoxClient",
    "FortnoxDataError",
    "FortnoxError",
    "FortnoxNotFound",
    "FortnoxSettings",
    "FortnoxTokenUnavailable",
    "FortnoxTransientError",
    "RateLimiter",
    "SettingsError",
    "TokenStore",
    "classify",
    "date_param",
    "is_valid_character",
    "lastmodified_param",
    "parse_error_information",
    "parse_fortnox_date",
    "parse_fortnox_datetime",
    "parse_fortnox_timestamp",
    "plugin_settings_schema",
]
