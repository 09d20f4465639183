"""moment_client: the HTTP client for Moment's public API 1.0 (auth, paging, retries, errors)."""

from moment_client.client import (
    DEFAULT_API_URL,
    MAX_PAGE_SIZE,
    MomentClient,
    MomentClientStats,
    MomentSettings,
)
from moment_client.errors import (
    MomentAmbiguousWriteError,
    MomentAuthError,
    MomentConflict,
    MomentDataError,
    MomentError,
    MomentNotFound,
    MomentTransientError,
)
from moment_client.expense_api import ExpenseApi
from moment_client.filters import FilterCheck
from moment_client.settings_schema import connection_settings_schema, retry_settings_schema

__all__ = [
    "DEFAULT_API_URL",
    "MAX_PAGE_SIZE",
    "ExpenseApi",
    "FilterCheck",
    "MomentAmbiguousWriteError",
    "MomentAuthError",
    "MomentClient",
    "MomentClientStats",
    "MomentConflict",
    "MomentDataError",
    "MomentError",
    "MomentNotFound",
    "MomentSettings",
    "MomentTransientError",
    "connection_settings_schema",
    "retry_settings_schema",
]
