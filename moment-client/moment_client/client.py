"""MomentClient: the only code in the project that speaks HTTP to Moment's public API 1.0.

Owns HTTP Basic authentication (user ``apikey``, password = the key), the URL layout
``{api_url}/companies/{company_code}/{entity}[/{id}]``, paging over Spring-style
``{"content": [...], "page": {...}}`` envelopes (0-based ``page``, ``size`` up to 500), retries with
exponential backoff and full jitter, and the mapping of failures onto ``moment_client.errors``.

What is retried: GET/PUT/PATCH/DELETE (idempotent) on 429, 5xx, timeouts and connection errors,
up to ``max_tries`` attempts. POST is retried only on 429 (the server refused it before doing
anything); any other failure whose outcome is unknown raises ``MomentAmbiguousWriteError`` so
that the caller looks the record up instead of creating it twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import backoff
import requests
from requests.auth import HTTPBasicAuth

from moment_client.changes import ChangeReader
from moment_client.errors import (
    MomentAmbiguousWriteError,
    MomentError,
    MomentTransientError,
    error_for_response,
)
from moment_client.filters import FilterCheck

LOGGER = logging.getLogger("moment_client")

DEFAULT_API_URL = "https://app.moment.team/api/1.0"
MAX_PAGE_SIZE = 500  # observed ceiling in real clients (docs/MOMENT-API.md, "Paging")
DEFAULT_TIMEOUT_SECONDS = 60.0
DEFAULT_MAX_TRIES = 5
_IDEMPOTENT = frozenset({"GET", "PUT", "PATCH", "DELETE"})
_NETWORK_ERRORS = (
    requests.Timeout,
    requests.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
)

Params = Mapping[str, Any]
Records = list[dict[str, Any]]  # a page's records (``list`` names a method inside the client)


@dataclass(frozen=True)
class MomentSettings:
    """Connection settings; ``api_key`` is kept out of ``repr`` so it never reaches a log line."""

    company_code: str
    api_key: str = field(repr=False)
    api_url: str = DEFAULT_API_URL
    page_size: int = MAX_PAGE_SIZE
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    max_tries: int = DEFAULT_MAX_TRIES
    backoff_factor: float = 1.0  # seconds; waits are full-jittered 1, 2, 4, 8 ... × factor
    max_backoff: float = 60.0

    def __post_init__(self) -> None:
        if not self.company_code:
            raise ValueError("company_code is required: the code in your Moment URL")
        if not self.api_key:
            raise ValueError("api_key is required: create one under Company > API keys in Moment")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValueError(
                f"page_size must be between 1 and {MAX_PAGE_SIZE}, not {self.page_size}"
            )
        if self.max_tries < 1:
            raise ValueError(f"max_tries must be at least 1, not {self.max_tries}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MomentSettings:
        """Settings from a plugin config (keys api_url, company_code, api_key, page_size, ...)."""
        optional: dict[str, Any] = {}
        for key, kind in (
            ("page_size", int),
            ("timeout", float),
            ("max_tries", int),
            ("backoff_factor", float),
            ("max_backoff", float),
        ):
            if config.get(key) is not None:
                optional[key] = kind(config[key])
        return cls(
            company_code=str(config.get("company_code") or ""),
            api_key=str(config.get("api_key") or ""),
            api_url=str(config.get("api_url") or DEFAULT_API_URL).rstrip("/"),
            **optional,
        )


@dataclass
class MomentClientStats:
    """Counters for run summaries: HTTP requests sent (retries included) and retries made."""

    requests: int = 0
    retries: int = 0
    by_method: dict[str, int] = field(default_factory=dict)

    def count(self, method: str) -> None:
        self.requests += 1
        self.by_method[method] = self.by_method.get(method, 0) + 1


@dataclass(frozen=True)
class PageInfo:
    """What a list page says about the list: last page or not, and ``totalElements`` if sent."""

    is_last: bool
    total: int | None


class _RetryableFailure(Exception):
    """Internal signal for ``backoff``: this attempt failed in a way worth another try."""

    def __init__(self, error: MomentError) -> None:
        super().__init__(error.message)
        self.error = error


class MomentClient:
    """CRUD and paged lists of Moment entities: ``MomentClient(MomentSettings.from_config(c))``."""

    def __init__(self, settings: MomentSettings, session: requests.Session | None = None) -> None:
        self.settings = settings
        self.stats = MomentClientStats()
        # Filtered answers re-checked on our side; which filters Moment ignored this run.
        self.filters = FilterCheck()
        self._session = session or requests.Session()
        self._session.auth = HTTPBasicAuth("apikey", settings.api_key)
        self._session.headers.update(
            {"Accept": "application/json", "User-Agent": "moment-client/0.1 (+singer)"}
        )

    def __repr__(self) -> str:
        settings = self.settings
        return f"MomentClient(api_url={settings.api_url!r}, company={settings.company_code!r})"

    # public API -------------------------------------------------------------------------------
    def list(
        self,
        entity: str,
        params: Params | None = None,
        *,
        on_total: Callable[[int], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every record of ``entity`` matching ``params``, one page in memory at a time.

        Pages are requested lazily (a generator): stopping the iteration stops the requests.
        ``on_total`` is called once, before the first record, with the first page's
        ``totalElements`` when Moment sends it (progress lines use it for time left).
        """
        size = self.settings.page_size
        page = 0
        while True:
            content, last = self.page(entity, params, page, size)
            if page == 0 and on_total is not None and last.total is not None:
                on_total(last.total)
            yield from content
            if last.is_last:
                return
            page += 1

    def list_changes(
        self,
        entity: str,
        since: datetime | None,
        params: Params | None = None,
        *,
        on_total: Callable[[int], None] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Records of ``entity`` modified at or after ``since`` (None: all), oldest first.

        Unlike ``list``, no record is skipped when records change while it reads (keyset paging
        on ``lastModifiedDate`` and ``id``; see ``moment_client.changes``). A record edited during
        the read may come twice (old and new version); memory holds one page and the ids at one
        timestamp.
        """
        return ChangeReader(self, entity, since, params, on_total).records()

    def page(
        self, entity: str, params: Params | None, page: int, size: int
    ) -> tuple[Records, PageInfo]:
        """One page of a list request: its records, and whether it is the last and the total."""
        query = {**(params or {}), "page": page, "size": size}
        body = self._request("GET", self._path(entity), params=query)
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, list):
            raise MomentError(
                f"Moment sent no 'content' list for GET {self._path(entity)} page {page}; "
                "is api_url the API base (…/api/1.0)?",
                path=self._path(entity),
            )
        meta = body.get("page")
        total = meta.get("totalElements") if isinstance(meta, dict) else None
        if not isinstance(total, int) or isinstance(total, bool):
            total = None
        is_last = not content or self._is_last_page(meta, page, len(content), size)
        return content, PageInfo(is_last=is_last, total=total)

    def get(self, entity: str, record_id: int | str) -> dict[str, Any]:
        """One record by id; raises ``MomentNotFound`` when it does not exist."""
        return self._record("GET", self._path(entity, record_id))

    def create(self, entity: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a new record; see the module docstring for why it is not retried blindly."""
        return self._record("POST", self._path(entity), json=body)

    def update(self, entity: str, record_id: int | str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT a record (idempotent, retried)."""
        return self._record("PUT", self._path(entity, record_id), json=body)

    def patch(self, entity: str, record_id: int | str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH only the fields in ``body`` (idempotent, retried)."""
        return self._record("PATCH", self._path(entity, record_id), json=body)

    def find_one(self, entity: str, **filters: Any) -> dict[str, Any] | None:
        """The first record matching the exact-match list filters, or None.

        Filters are sent to Moment and checked again here on top-level fields (``FilterCheck``):
        a record matches only when it carries each field with the wanted value, because a real
        client saw Moment answer records outside the filter (docs/MOMENT-API.md).
        """
        for record in self.list(entity, params=filters):
            if self.filters.keep_equal(entity, record, filters):
                return record
        return None

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> MomentClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # internals --------------------------------------------------------------------------------
    def _path(self, entity: str, record_id: int | str | None = None) -> str:
        path = f"/companies/{quote(self.settings.company_code, safe='')}/{entity.strip('/')}"
        if record_id is not None:
            path += f"/{quote(str(record_id), safe='')}"
        return path

    @staticmethod
    def _is_last_page(meta: Any, page: int, count: int, size: int) -> bool:
        if isinstance(meta, dict) and isinstance(meta.get("totalPages"), int):
            return page + 1 >= int(meta["totalPages"])
        return count < size  # no page metadata: a short page is the last one

    def _record(
        self, method: str, path: str, json: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        body = self._request(method, path, json=json)
        if not isinstance(body, dict):
            raise MomentError(f"Moment sent no JSON object for {method} {path}", path=path)
        return body

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> Any:
        settings = self.settings
        attempt = backoff.on_exception(
            backoff.expo,
            _RetryableFailure,
            max_tries=settings.max_tries,
            jitter=backoff.full_jitter,
            on_backoff=self._on_backoff,
            logger=None,  # backoff's own log line would print the call's arguments
            factor=settings.backoff_factor,
            max_value=settings.max_backoff,
        )(self._send_once)
        try:
            response = attempt(method, path, params, json)
        except _RetryableFailure as failure:
            error = failure.error
            raise MomentTransientError(
                f"{error.message} (gave up after {settings.max_tries} attempts; Moment may be "
                "down or rate limiting: re-run later, no state was advanced past this point)",
                status=error.status,
                path=path,
            ) from None
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise MomentError(
                f"Moment sent a body that is not JSON for {method} {path} "
                f"({response.headers.get('Content-Type', 'no content type')})",
                status=response.status_code,
                path=path,
            ) from exc

    def _send_once(
        self,
        method: str,
        path: str,
        params: Params | None,
        json: Mapping[str, Any] | None,
    ) -> requests.Response:
        self.stats.count(method)
        try:
            response = self._session.request(
                method,
                self.settings.api_url + path,
                params=dict(params) if params else None,
                json=json,
                timeout=self.settings.timeout,
            )
        except _NETWORK_ERRORS as exc:
            reason = f"{type(exc).__name__} on {method} {path}"
            if method not in _IDEMPOTENT:
                raise MomentAmbiguousWriteError(
                    f"Moment did not answer {method} {path} ({type(exc).__name__}): the record "
                    "may or may not exist. Look it up (e.g. by externalReference) before "
                    "creating it again.",
                    path=path,
                ) from None
            raise _RetryableFailure(MomentTransientError(reason, path=path)) from None
        if response.ok:
            return response
        error = error_for_response(method, path, response)
        if isinstance(error, MomentTransientError):
            if method in _IDEMPOTENT or response.status_code == 429:
                raise _RetryableFailure(error)
            raise MomentAmbiguousWriteError(
                f"{error.message}. The create may or may not have happened: look the record up "
                "(e.g. by externalReference) before creating it again.",
                status=error.status,
                path=path,
            )
        raise error

    def _on_backoff(self, details: Any) -> None:
        self.stats.retries += 1
        method, path = details["args"][0], details["args"][1]
        LOGGER.warning(
            "Moment %s %s failed (%s); retry %d/%d in %.1f s",
            method,
            path,
            details.get("exception", "error"),
            details["tries"],
            self.settings.max_tries - 1,
            details.get("wait", 0.0),
        )
