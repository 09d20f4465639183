"""The Fortnox REST v3 HTTP client every Fortnox plugin uses.

Owns one ``requests.Session`` per client with Bearer auth from the :class:`TokenStore`, JSON
headers and timeouts; the shared :class:`RateLimiter` before every request; retries with backoff
(``backoff`` library, exponential with full jitter, bounded in tries and seconds) for transient
failures; the write-safety rule (a POST or action is never resent once it may have reached the
server: :class:`AmbiguousWriteError`, the caller looks the record up); one forced token refresh on
401; the ``{"Customer": …}`` envelopes; paging over ``MetaInformation``; and :class:`ClientStats`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import backoff
import requests
import urllib3

from fortnox_client.errors import (
    AmbiguousWriteError,
    FortnoxError,
    FortnoxNotFound,
    FortnoxTokenUnavailable,
    FortnoxTransientError,
    classify,
)
from fortnox_client.formats import date_param, lastmodified_param
from fortnox_client.rate_limiter import RateLimiter
from fortnox_client.settings import FortnoxSettings
from fortnox_client.token_store import TokenStore

logger = logging.getLogger(__name__)

PAGE_LIMIT = 500  # Fortnox's maximum page size (docs/FORTNOX-API.md, "Envelopes and paging")
MAX_BACKOFF_WAIT = 15.0

# resource path → (single envelope key, list envelope key)
RESOURCES: dict[str, tuple[str, str]] = {
    "customers": ("Customer", "Customers"),
    "projects": ("Project", "Projects"),
    "invoices": ("Invoice", "Invoices"),
    "suppliers": ("Supplier", "Suppliers"),
    "supplierinvoices": ("SupplierInvoice", "SupplierInvoices"),
    "accounts": ("Account", "Accounts"),
    "financialyears": ("FinancialYear", "FinancialYears"),
    "vouchers": ("Voucher", "Vouchers"),
    "costcenters": ("CostCenter", "CostCenters"),
    "articles": ("Article", "Articles"),
}

# A 5xx to a write may come after the server committed it; only these two statuses are answers
# given before any work (rate limiter, overload), so only they make a write safe to resend.
_WRITE_SAFE_TO_RETRY = frozenset({429, 503})


@dataclass
class ClientStats:
    """What a client did, for the run summary. Counts HTTP attempts, not logical calls."""

    requests: int = 0
    rate_limited: int = 0
    retries: int = 0
    writes: int = 0
    token_refreshes: int = 0
    limiter_wait_seconds: float = 0.0
    by_method: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "retries": self.retries,
            "writes": self.writes,
            "token_refreshes": self.token_refreshes,
            "limiter_wait_seconds": round(self.limiter_wait_seconds, 3),
            "by_method": dict(self.by_method),
        }


class FortnoxClient:
    """``client.get("customers", "1001")``, ``client.list("invoices", {"fromdate": d})``, …"""

    def __init__(
        self,
        settings: FortnoxSettings,
        *,
        token_store: TokenStore | None = None,
        rate_limiter: RateLimiter | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.settings = settings
        self.tokens = token_store or TokenStore(settings)
        self._limiter = rate_limiter
        self._session = session or requests.Session()
        self._session.headers.update(
            {"Accept": "application/json", "Content-Type": "application/json"}
        )
        self.stats = ClientStats()
        self._stats_lock = threading.Lock()

    def __repr__(self) -> str:
        return (
            f"FortnoxClient(api_url={self.settings.api_url!r}, tenant={self.settings.tenant_id!r})"
        )

    # -- public API ----------------------------------------------------------------------------

    def get(self, resource: str, key: str | int) -> dict[str, Any] | None:
        """One record, unwrapped; ``None`` when Fortnox says it does not exist (404 / 2000423)."""
        try:
            body = self._request("GET", _join(resource, key), idempotent=True)
        except FortnoxNotFound:
            return None
        return _unwrap_single(resource, body)

    def list(
        self, resource: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every record of a list, page by page (``limit`` 500), lazily; list rows are summaries.

        ``params`` are Fortnox's lower-case query parameters; an aware datetime becomes a
        ``lastmodified``-style Stockholm timestamp and a date ``YYYY-MM-DD``.
        """
        query = _encode_params(params or {})
        query.setdefault("limit", str(PAGE_LIMIT))
        page = int(query.pop("page", "1"))
        while True:
            body = self._request(
                "GET", resource, params={**query, "page": str(page)}, idempotent=True
            )
            items = _unwrap_list(resource, body)
            yield from items
            meta = body.get("MetaInformation") or {} if isinstance(body, dict) else {}
            total_pages = int(meta.get("@TotalPages") or page)
            if not items or page >= total_pages:
                return
            page += 1

    def create(self, resource: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST one record; raises :class:`AmbiguousWriteError` if it may or may not exist now."""
        answer = self._request(
            "POST", resource, body=_wrap(resource, body), idempotent=False, sent=body
        )
        return _unwrap_single(resource, answer)

    def update(self, resource: str, key: str | int, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT the given fields of one record (idempotent, so retried on transient errors)."""
        answer = self._request(
            "PUT", _join(resource, key), body=_wrap(resource, body), idempotent=True, sent=body
        )
        return _unwrap_single(resource, answer)

    def action(self, resource: str, key: str | int, action: str) -> dict[str, Any]:
        """``PUT /3/invoices/{n}/bookkeep`` and the like.

        Treated as a non-idempotent write: ``credit`` creates a document, so a lost answer is
        an :class:`AmbiguousWriteError`, not a resend.
        """
        answer = self._request(
            "PUT", f"{_join(resource, key)}/{quote(action, safe='')}", idempotent=False
        )
        return _unwrap_single(resource, answer)

    def delete(self, resource: str, key: str | int) -> bool:
        """DELETE one record; ``False`` if it was already gone. Idempotent, so retried."""
        try:
            self._request("DELETE", _join(resource, key), idempotent=True)
        except FortnoxNotFound:
            return False
        return True

    def get_path(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Raw GET of e.g. ``companyinformation`` or ``settings/company``; the envelope is kept."""
        body = self._request(
            "GET", path.strip("/"), params=_encode_params(params or {}), idempotent=True
        )
        return body if isinstance(body, dict) else {}

    # -- the request pipeline ------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool,
        sent: Mapping[str, Any] | None = None,
    ) -> Any:
        tries = 0
        started = time.monotonic()

        def attempt() -> Any:
            nonlocal tries
            tries += 1
            return self._send_once(method, path, params, body, idempotent=idempotent, sent=sent)

        retrying = backoff.on_exception(
            backoff.expo,
            FortnoxTransientError,
            max_tries=self.settings.max_tries,
            max_time=self.settings.max_retry_seconds,
            jitter=backoff.full_jitter,
            giveup=lambda exc: isinstance(exc, FortnoxTokenUnavailable),
            on_backoff=self._on_backoff,
            logger=None,
            factor=self.settings.retry_base_seconds,
            max_value=MAX_BACKOFF_WAIT,
        )(attempt)
        try:
            return retrying()
        except FortnoxTransientError as exc:
            if tries <= 1:
                raise
            raise FortnoxTransientError(
                f"{exc.message} Gave up after {tries} tries in {time.monotonic() - started:.1f} s.",
                code=exc.code,
                status=exc.status,
            ) from exc

    def _send_once(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        *,
        idempotent: bool,
        sent: Mapping[str, Any] | None,
    ) -> Any:
        url = f"{self.settings.api_url}/{path}"
        where = f"{method} /{path}"
        token = self.tokens.access_token()
        limiter = self._rate_limiter()
        for auth_try in (1, 2):
            # The slot is held until the answer (or the error) is back: Fortnox counted the
            # request at some moment before that (see fortnox_client.rate_limiter).
            with limiter.slot() as waited:
                self._count(method, waited)
                try:
                    response = self._session.request(
                        method,
                        url,
                        params=params,
                        json=body,
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=self.settings.timeout,
                    )
                except (requests.ConnectionError, requests.Timeout) as exc:
                    raise self._network_error(exc, where, idempotent=idempotent) from None
            if response.status_code == 429:
                # Fortnox's window is full with requests this limiter did not count (another
                # integration of this client and tenant): hold every request of this process
                # until a slot can have freed, on top of the retry's backoff.
                limiter.refused()
            if response.status_code == 401 and auth_try == 1:
                # Expired or revoked access token: one forced refresh (a no-op if another
                # process already rotated it), then the same request once more.
                logger.info("Fortnox %s: 401, refreshing the access token once", where)
                token = self.tokens.force_refresh(token)
                with self._stats_lock:
                    self.stats.token_refreshes += 1
                continue
            return self._answer(response, method, path, idempotent=idempotent, sent=sent)
        raise AssertionError("unreachable: the second try always returns or raises")

    def _answer(
        self,
        response: requests.Response,
        method: str,
        path: str,
        *,
        idempotent: bool,
        sent: Mapping[str, Any] | None,
    ) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            if status == 204 or not response.content:
                return {}
            try:
                return response.json()
            except ValueError:
                raise FortnoxError(
                    f"Fortnox answered {method} /{path} with HTTP {status} but no JSON body.",
                    status=status,
                ) from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if status == 429:
            with self._stats_lock:
                self.stats.rate_limited += 1
        error = classify(status, payload, method=method, path=path, sent=sent)
        if not idempotent and status >= 500 and status not in _WRITE_SAFE_TO_RETRY:
            raise AmbiguousWriteError(
                f"{error.message} The write may have been committed: look the record up by its "
                "key before creating it again.",
                code=error.code,
                status=status,
            )
        raise error

    def _network_error(
        self, exc: requests.RequestException, where: str, *, idempotent: bool
    ) -> FortnoxError:
        kind = type(exc).__name__
        if _never_sent(exc):
            return FortnoxTransientError(
                f"Could not connect to Fortnox for {where} ({kind}); nothing was sent. Check "
                f"api_url ({self.settings.api_url}) and the network."
            )
        if idempotent:
            return FortnoxTransientError(
                f"Fortnox did not answer {where} ({kind}). Timeouts are "
                f"{self.settings.connect_timeout:.0f} s connect / "
                f"{self.settings.read_timeout:.0f} s read (setting timeout)."
            )
        return AmbiguousWriteError(
            f"Fortnox did not answer {where} ({kind}) after the request was sent: the write may "
            "have been committed. Look the record up by its key before creating it again."
        )

    def _rate_limiter(self) -> RateLimiter:
        if self._limiter is None:
            # The tenant is known only once a token exists (the JWT's tenantId claim).
            tenant = self.settings.tenant_id or self.tokens.tenant_id
            self._limiter = RateLimiter.shared(
                self.settings.client_id,
                tenant,
                self.settings.max_requests_per_5s,
                # A request in flight has arrived by the time the client gives up on its answer.
                hold_seconds=sum(self.settings.timeout),
            )
            # Fortnox counts every process's requests of this client and tenant in one window;
            # it is kept where the tokens are (beside the file, or in PostgreSQL).
            self._limiter.share(
                self.tokens.rate_window(), f"{self.settings.client_id}:{tenant or ''}"
            )
        return self._limiter

    def _count(self, method: str, waited: float) -> None:
        with self._stats_lock:
            self.stats.requests += 1
            self.stats.by_method[method] = self.stats.by_method.get(method, 0) + 1
            self.stats.limiter_wait_seconds += waited
            if method != "GET":
                self.stats.writes += 1

    def _on_backoff(self, details: Any) -> None:
        with self._stats_lock:
            self.stats.retries += 1
        exc = details.get("exception")
        logger.warning(
            "Fortnox request failed (%s); try %d, retrying in %.1f s",
            exc if exc is not None else "transient error",
            details.get("tries", 0),
            details.get("wait", 0.0),
        )


def _never_sent(exc: requests.RequestException) -> bool:
    """True when no connection was established, so the server cannot have seen the request."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(
        reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError
    )


def _join(resource: str, key: str | int) -> str:
    return f"{resource.strip('/')}/{quote(str(key), safe='')}"


def _wrap(resource: str, body: Mapping[str, Any]) -> dict[str, Any]:
    single, _ = _envelope_keys(resource)
    return {single: dict(body)}


def _envelope_keys(resource: str) -> tuple[str, str]:
    keys = RESOURCES.get(resource.strip("/").lower())
    if keys is None:
        raise ValueError(
            f"Unknown Fortnox resource {resource!r}: add its envelope keys to "
            "fortnox_client.client.RESOURCES (e.g. 'customers': ('Customer', 'Customers'))."
        )
    return keys


def _unwrap_single(resource: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        return {}
    single, _ = _envelope_keys(resource)
    inner = body.get(single)
    if isinstance(inner, dict):
        return inner
    # Action endpoints answer with the document they act on, always under its own key.
    dicts = [v for k, v in body.items() if isinstance(v, dict) and k != "MetaInformation"]
    return dicts[0] if len(dicts) == 1 else body


def _unwrap_list(resource: str, body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict):
        raise FortnoxError(f"Fortnox list of {resource} was not a JSON object.")
    key = RESOURCES.get(resource.strip("/").lower(), ("", ""))[1]
    items = body.get(key) if key else None
    if items is None:
        lists = [v for k, v in body.items() if isinstance(v, list) and k != "MetaInformation"]
        if len(lists) != 1:
            raise FortnoxError(
                f"Fortnox list of {resource} had no single collection key (got "
                f"{sorted(body)}); add it to fortnox_client.client.RESOURCES."
            )
        items = lists[0]
    return [item for item in items if isinstance(item, dict)]


def _encode_params(params: Mapping[str, Any]) -> dict[str, str]:
    encoded: dict[str, str] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, datetime):
            encoded[key] = lastmodified_param(value)
        elif isinstance(value, date):
            encoded[key] = date_param(value)
        elif isinstance(value, bool):
            encoded[key] = "true" if value else "false"
        else:
            encoded[key] = str(value)
    return encoded
