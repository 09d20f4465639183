"""Connecting a Fortnox company to this project: consent, service-account check, token status.

Owns the three onboarding steps behind ``fortnox-auth`` (see :mod:`fortnox_client.cli`):

* :class:`AuthorizationFlow` — OAuth2 authorisation-code consent with a loopback callback
  (``http://127.0.0.1:<port>/callback`` served by a small ``http.server`` on its own thread), or
  the redirect address pasted from a browser on another machine (:meth:`~AuthorizationFlow.
  submit_redirect`, for a server without a browser): it builds the consent URL, checks ``state``,
  exchanges the code at the token endpoint, writes the chain through
  :meth:`TokenStore.store_authorization` and reads which company it connected to;
* :func:`verify_service_account` — a client-credentials token for ``tenant_id`` plus one read;
* :func:`token_status` — what the token store holds and when the refresh chain lapses, read
  from the file without refreshing or printing a token.

Tokens, codes and the client secret never appear in messages: errors name the step, Fortnox's
error code and what to do.
"""

from __future__ import annotations

import html
import queue
import secrets
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import requests

from fortnox_client.client import FortnoxClient
from fortnox_client.errors import FortnoxError, authorize_command
from fortnox_client.settings import FortnoxSettings
from fortnox_client.token_store import StoredToken, TokenStore

# What the four plugins read and write (docs/FORTNOX-API.md, "Scopes"), space separated in the URL.
REQUIRED_SCOPES: tuple[str, ...] = (
    "customer",
    "project",
    "invoice",
    "supplierinvoice",
    "supplier",
    "bookkeeping",
    "companyinformation",
    "settings",
)
AUTH_PATH = "/oauth-v1/auth"
CALLBACK_PATH = "/callback"
# Fortnox refresh tokens live 45 days from their issue; each refresh rotates (docs/FORTNOX-API.md).
REFRESH_TOKEN_LIFETIME = timedelta(days=45)
EXPIRY_WARNING = timedelta(days=7)
# How long the browser's callback request waits for the exchange before it gets a generic page.
_PAGE_WAIT_SECONDS = 60.0


class OnboardingError(Exception):
    """An onboarding step failed; the message says what happened and what to do."""


class ConsentTimeout(OnboardingError):
    """Nobody completed the consent page before the timeout."""


class ConsentDenied(OnboardingError):
    """The user pressed Deny, or Fortnox refused the consent request."""


class StateMismatch(OnboardingError):
    """The callback's ``state`` is not the one this flow sent (a stale tab or a forged request)."""


class NotARedirect(OnboardingError):
    """Pasted text is not the address Fortnox redirected the browser to (no code/error + state)."""


def auth_url_for(token_url: str) -> str:
    """The consent page beside the token endpoint: same origin, path ``/oauth-v1/auth``."""
    parts = urlsplit(token_url)
    if not parts.scheme or not parts.netloc:
        raise OnboardingError(
            f"token_url {token_url!r} is not an absolute URL; set it to "
            "https://apps.fortnox.se/oauth-v1/token (or the sandbox's <url>/oauth-v1/token)."
        )
    return urlunsplit((parts.scheme, parts.netloc, AUTH_PATH, "", ""))


def consent_url(
    settings: FortnoxSettings,
    *,
    redirect_uri: str,
    state: str,
    scopes: Sequence[str] = REQUIRED_SCOPES,
    service_account: bool = False,
) -> str:
    """The URL a Fortnox user opens to approve this app for their company."""
    params = {
        "client_id": settings.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": state,
        "response_type": "code",
        # Without offline access Fortnox may hand out a chain that cannot be refreshed unattended.
        "access_type": "offline",
    }
    if service_account:
        params["account_type"] = "service"
    # quote_via default (quote_plus) turns spaces into '+', which Fortnox decodes as spaces.
    return f"{auth_url_for(settings.token_url)}?{urlencode(params)}"


# -- the loopback callback -----------------------------------------------------------------------


@dataclass
class Callback:
    """One request to the redirect URI; :meth:`answer` renders the browser's page."""

    params: dict[str, str]
    _page: Future[tuple[int, str]] = field(default_factory=Future, repr=False)
    # Set once the page went out: the command must not exit while the browser still waits.
    delivered: threading.Event = field(default_factory=threading.Event, repr=False)

    def answer(self, ok: bool, title: str, text: str) -> None:
        if not self._page.done():
            self._page.set_result((200 if ok else 400, _page(title, text)))


def _page(title: str, text: str) -> str:
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
        "<p>You can close this window and return to the terminal.</p></body></html>"
    )


class CallbackServer:
    """``http://127.0.0.1:<port>/callback``: hands the first callback to the waiting flow.

    The request thread holds the browser's connection open until the flow answers, so the page
    the user sees says whether the connection worked, not just that a code arrived.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._callbacks: queue.Queue[Callback] = queue.Queue()
        self._handed_out: list[Callback] = []
        self._claimed = False
        self._claim_lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != CALLBACK_PATH:
                    self._send(404, _page("Not found", "This is the Fortnox onboarding callback."))
                    return
                callback = server._claim({k: v[0] for k, v in parse_qs(parts.query).items()})
                if callback is None:
                    # One consent per run: a reload or a second tab must not start another exchange.
                    self._send(
                        409,
                        _page("Already handled", "This authorisation was already received."),
                    )
                    return
                try:
                    status, body = callback._page.result(timeout=_PAGE_WAIT_SECONDS)
                except FutureTimeout:
                    status, body = 200, _page("Received", "Return to the terminal for the result.")
                try:
                    self._send(status, body)
                finally:
                    callback.delivered.set()

            def _send(self, status: int, body: str) -> None:
                payload = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                # The default logs the query string, which holds the authorisation code.
                pass

        try:
            self._httpd = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise OnboardingError(
                f"Cannot listen on {host}:{port} for the OAuth callback ({exc.strerror}). Pick "
                "another --port (it must match the redirect URI registered for the app)."
            ) from None
        self._httpd.daemon_threads = True
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="fortnox-oauth-callback",
            daemon=True,
        )
        self._thread.start()

    @property
    def redirect_uri(self) -> str:
        return f"http://{self.host}:{self.port}{CALLBACK_PATH}"

    def _claim(self, params: dict[str, str]) -> Callback | None:
        """The callback for ``params`` handed to the flow, or None if one was handed already."""
        with self._claim_lock:
            if self._claimed:
                return None
            self._claimed = True
        callback = Callback(params)
        self._handed_out.append(callback)
        self._callbacks.put(callback)
        return callback

    def offer(self, params: dict[str, str]) -> bool:
        """Hand the flow a redirect the user pasted (no browser waits for a page); False when
        the browser's own callback (e.g. through an SSH tunnel) came first."""
        callback = self._claim(params)
        if callback is not None:
            callback.delivered.set()
        return callback is not None

    def next_callback(self, timeout: float) -> Callback | None:
        try:
            return self._callbacks.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        for callback in self._handed_out:
            if callback._page.done():
                # Bounded: a browser that stopped reading must not keep the command alive.
                callback.delivered.wait(timeout=5)
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


# -- authorisation-code flow ---------------------------------------------------------------------


@dataclass(frozen=True)
class Connection:
    """The company a consent connected to, as Fortnox reports it."""

    company_name: str
    organisation_number: str
    database_number: str
    scopes: tuple[str, ...]
    missing_scopes: tuple[str, ...]
    token_store_path: Path
    service_account: bool = False

    def lines(self) -> list[str]:
        lines = [
            "Connected to Fortnox.",
            f"  Company:          {self.company_name} ({self.organisation_number})",
            f"  DatabaseNumber:   {self.database_number} (the TenantId)",
            f"  Scopes granted:   {' '.join(self.scopes) or '(none reported)'}",
            f"  Token store:      {self.token_store_path} (mode 0600)",
        ]
        if self.missing_scopes:
            lines.append(
                f"WARNING: scopes not granted: {' '.join(self.missing_scopes)}. Add them to the "
                f"app in Fortnox's developer portal and run {authorize_command()} again; the "
                "pipelines fail on resources that need them."
            )
        if self.service_account:
            lines.append(
                f"Service account approved. To use client credentials set tenant_id="
                f"{self.database_number} (e.g. TARGET_FORTNOX_TENANT_ID) and check it with "
                "fortnox-auth verify-service-account."
            )
        return lines


class AuthorizationFlow:
    """One consent: ``start()`` gives the URL to open, ``wait(timeout)`` the :class:`Connection`.

    ``with AuthorizationFlow(settings) as flow: url = flow.start(); conn = flow.wait(300)``.
    """

    def __init__(
        self,
        settings: FortnoxSettings,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        service_account: bool = False,
        scopes: Sequence[str] = REQUIRED_SCOPES,
        session: requests.Session | None = None,
    ) -> None:
        # The consent writes the refresh-token chain, whatever tenant_id says: client
        # credentials keep their own section of the store and need no consent step here.
        self.settings = replace(settings, tenant_id=None)
        self.service_account = service_account
        self.scopes = tuple(scopes)
        self._host, self._port = host, port
        self._session = session or requests.Session()
        # 32 bytes from the OS CSPRNG: the callback is accepted only with this exact value.
        self._state = secrets.token_urlsafe(32)
        self._server: CallbackServer | None = None
        self.consent_url: str | None = None

    @property
    def redirect_uri(self) -> str:
        if self._server is None:
            raise RuntimeError("AuthorizationFlow.start() was not called")
        return self._server.redirect_uri

    def start(self) -> str:
        if self._server is None:
            self._server = CallbackServer(self._host, self._port)
            self.consent_url = consent_url(
                self.settings,
                redirect_uri=self._server.redirect_uri,
                state=self._state,
                scopes=self.scopes,
                service_account=self.service_account,
            )
        assert self.consent_url is not None
        return self.consent_url

    def submit_redirect(self, text: str) -> bool:
        """Take the address the browser was redirected to, pasted by the user (a server without a
        browser: the consent ran on another machine, whose browser could not open the loopback
        redirect URI). :meth:`wait` then checks its ``state`` and finishes as for a callback.

        Raises :class:`NotARedirect` for text without ``code``/``error`` and ``state`` (the user
        may paste again); False when a callback already arrived.
        """
        self.start()
        assert self._server is not None
        return self._server.offer(redirect_params(text, self.redirect_uri))

    def wait(self, timeout: float) -> Connection:
        """Block until the browser comes back (or ``timeout`` seconds pass) and finish the flow."""
        self.start()
        assert self._server is not None
        callback = self._server.next_callback(timeout)
        if callback is None:
            raise ConsentTimeout(
                f"No answer from Fortnox within {timeout:g} s: the consent page was not completed "
                f"(nothing reached {self.redirect_uri}). Run {authorize_command()} again and "
                "approve within the time (or give a longer --timeout). If the browser showed an "
                "error about redirect_uri, register this redirect URI for the app in Fortnox's "
                "developer portal and pass its port with --port."
            )
        try:
            connection = self._finish(callback.params)
        except OnboardingError as exc:
            callback.answer(False, "Fortnox connection failed", str(exc))
            raise
        except BaseException:
            callback.answer(False, "Fortnox connection failed", "See the terminal for details.")
            raise
        callback.answer(
            True,
            "Connected to Fortnox",
            f"{connection.company_name} (DatabaseNumber {connection.database_number}) is now "
            "connected.",
        )
        return connection

    def _finish(self, params: Mapping[str, str]) -> Connection:
        if not secrets.compare_digest(params.get("state", ""), self._state):
            raise StateMismatch(
                "Refused the OAuth callback: its state parameter does not match the one this "
                "command sent (an old browser tab, or a request this command did not start). "
                f"Nothing was stored. Run {authorize_command()} again and use the new URL only."
            )
        if "error" in params:
            raise _consent_refusal(params["error"], params.get("error_description", ""))
        code = params.get("code", "")
        if not code:
            raise OnboardingError(
                "The OAuth callback carried neither a code nor an error. Run "
                f"{authorize_command()} again."
            )
        reply = exchange_code(self.settings, code, self.redirect_uri, session=self._session)
        store = TokenStore(self.settings, session=self._session)
        try:
            store.store_authorization(reply)
        except FortnoxError as exc:
            raise OnboardingError(f"Could not save the new token chain: {exc}") from None
        company, database_number = read_company(self.settings, store)
        granted = tuple(str(reply.get("scope") or "").split())
        return Connection(
            company_name=company.get("CompanyName") or company.get("Name") or "(no name)",
            organisation_number=str(company.get("OrganizationNumber") or "-"),
            database_number=database_number,
            scopes=granted,
            missing_scopes=tuple(s for s in self.scopes if granted and s not in granted),
            token_store_path=store.path,
            service_account=self.service_account,
        )

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def __enter__(self) -> AuthorizationFlow:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def redirect_params(text: str, redirect_uri: str) -> dict[str, str]:
    """The query parameters of a pasted redirect address (the whole URL, or just its query)."""
    text = text.strip().strip("'\"<>")
    query = urlsplit(text).query if "?" in text else text
    params = {k: v[0] for k, v in parse_qs(query).items()}
    if "state" not in params or not ({"code", "error"} & params.keys()):
        raise NotARedirect(
            "That is not the address Fortnox sent the browser to: it must hold code= (or "
            "error=) and state=. After approving, copy the whole address from the browser's "
            f"address bar (it starts with {redirect_uri}?) and paste it here."
        )
    return params


def _consent_refusal(error: str, description: str) -> OnboardingError:
    detail = f" ({description})" if description else ""
    if error == "access_denied":
        return ConsentDenied(
            "The consent was denied in Fortnox (error=access_denied); nothing was stored. Run "
            f"{authorize_command()} again and press Approve; a service account must be approved "
            "by the company's system administrator."
        )
    advice = {
        "invalid_scope": "add the missing scopes to the app in Fortnox's developer portal",
        "unauthorized_client": "check the app's settings in Fortnox's developer portal "
        "(service accounts need 'Only administrator' enabled)",
        "invalid_request": "check client_id and that the redirect URI is registered for the app",
    }.get(error, "check the app's settings in Fortnox's developer portal")
    return ConsentDenied(
        f"Fortnox refused the consent request: {error}{detail}. To fix: {advice}, then run "
        f"{authorize_command()} again."
    )


def exchange_code(
    settings: FortnoxSettings,
    code: str,
    redirect_uri: str,
    *,
    session: requests.Session | None = None,
) -> dict[str, Any]:
    """POST ``grant_type=authorization_code`` once (codes are single use); the token reply."""
    http = session or requests.Session()
    try:
        response = http.post(
            settings.token_url,
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            headers={"Accept": "application/json"},
            auth=(settings.client_id, settings.client_secret),
            timeout=settings.timeout,
        )
    except requests.RequestException as exc:
        raise OnboardingError(
            f"Could not reach the Fortnox token endpoint {settings.token_url} "
            f"({type(exc).__name__}). Check token_url and the network, then run "
            f"{authorize_command()} again (an authorisation code works only once)."
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code == 200 and isinstance(body, dict) and body.get("access_token"):
        return body
    error = str(body.get("error", "")) if isinstance(body, dict) else ""
    description = str(body.get("error_description", "")) if isinstance(body, dict) else ""
    for secret in (code, settings.client_secret):
        description = description.replace(secret, "***")
    if error == "invalid_client":
        raise OnboardingError(
            "Fortnox refused the app credentials (invalid_client) when exchanging the code. "
            "Check client_id and client_secret against the app in Fortnox's developer portal."
        )
    if error == "invalid_grant":
        raise OnboardingError(
            f"Fortnox refused the authorisation code (invalid_grant: {description}). Codes live "
            "10 minutes, work once and must come back to the same redirect URI. Run "
            f"{authorize_command()} again."
        )
    detail = " ".join(part for part in (error, description) if part)
    raise OnboardingError(
        f"The Fortnox token endpoint answered HTTP {response.status_code}"
        + (f" ({detail})" if detail else "")
        + f" to the code exchange. Run {authorize_command()} again; if it persists, check "
        "token_url and the app's settings."
    )


def read_company(settings: FortnoxSettings, store: TokenStore) -> tuple[dict[str, Any], str]:
    """``CompanyInformation`` and the DatabaseNumber (``/3/settings/company`` if missing there)."""
    client = FortnoxClient(settings, token_store=store)
    try:
        company = client.get_path("companyinformation").get("CompanyInformation") or {}
        database_number = company.get("DatabaseNumber")
        if database_number in (None, ""):
            settings_body = client.get_path("settings/company").get("CompanySettings") or {}
            database_number = settings_body.get("DatabaseNumber")
            company = {**settings_body, **company}
    except FortnoxError as exc:
        raise OnboardingError(
            f"Tokens are saved in {store.path}, but reading the company from {settings.api_url} "
            f"failed: {exc}"
        ) from None
    return company, str(database_number) if database_number not in (None, "") else "?"


# -- client credentials --------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceAccountCheck:
    """What a client-credentials token for ``tenant_id`` can see."""

    tenant_id: str
    company_name: str
    organisation_number: str
    database_number: str
    scopes: tuple[str, ...]

    def lines(self) -> list[str]:
        lines = [
            "Service account works (client credentials).",
            f"  Company:          {self.company_name} ({self.organisation_number})",
            f"  DatabaseNumber:   {self.database_number} (tenant_id {self.tenant_id})",
            f"  Scopes granted:   {' '.join(self.scopes) or '(none reported)'}",
        ]
        missing = [s for s in REQUIRED_SCOPES if self.scopes and s not in self.scopes]
        if missing:
            lines.append(
                f"WARNING: scopes not granted: {' '.join(missing)}. Add them to the app in "
                "Fortnox's developer portal; the administrator must consent again."
            )
        return lines


def verify_service_account(
    settings: FortnoxSettings, *, session: requests.Session | None = None
) -> ServiceAccountCheck:
    """Get a client-credentials token for ``settings.tenant_id`` and read the company with it."""
    if not settings.tenant_id:
        raise OnboardingError(
            "tenant_id is not set. Set it to the company's DatabaseNumber (e.g. "
            "TARGET_FORTNOX_TENANT_ID=1234567; fortnox-auth authorize --service-account prints "
            "it) and run fortnox-auth verify-service-account again."
        )
    store = TokenStore(settings, session=session)
    try:
        store.access_token()
    except FortnoxError as exc:
        raise OnboardingError(f"No client-credentials token: {exc}") from None
    company, database_number = read_company(settings, store)
    if database_number != "?" and database_number != settings.tenant_id:
        raise OnboardingError(
            f"The service-account token for tenant_id {settings.tenant_id} reads company "
            f"DatabaseNumber {database_number}. Set tenant_id to {database_number}."
        )
    return ServiceAccountCheck(
        tenant_id=settings.tenant_id,
        company_name=company.get("CompanyName") or company.get("Name") or "(no name)",
        organisation_number=str(company.get("OrganizationNumber") or "-"),
        database_number=database_number,
        scopes=tuple((store.scope or "").split()),
    )


# -- status --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceAccountToken:
    tenant_id: str
    scopes: tuple[str, ...]
    access_expires_at: datetime | None


@dataclass(frozen=True)
class TokenStatus:
    """The token store at a glance; ``level`` is ``ok``, ``warning``, ``expired`` or ``missing``.

    ``store`` says where the tokens are kept (a file path, or the PostgreSQL row of
    ``token_store_url`` without its password); ``store_path`` is the file, ``None`` for PostgreSQL.
    """

    store: str
    store_path: Path | None
    now: datetime
    tenant_id: str | None = None
    scopes: tuple[str, ...] = ()
    rotated_at: datetime | None = None
    refresh_expires_at: datetime | None = None
    access_expires_at: datetime | None = None
    has_chain: bool = False
    service_accounts: tuple[ServiceAccountToken, ...] = ()
    messages: tuple[str, ...] = ()

    @property
    def refresh_time_left(self) -> timedelta | None:
        return None if self.refresh_expires_at is None else self.refresh_expires_at - self.now

    @property
    def level(self) -> str:
        if not self.has_chain and not self.service_accounts:
            return "missing"
        left = self.refresh_time_left
        if left is not None and left <= timedelta(0):
            return "expired"
        if left is not None and left < EXPIRY_WARNING:
            return "warning"
        return "ok"

    def as_json(self) -> dict[str, Any]:
        left = self.refresh_time_left
        return {
            "status": self.level,
            "token_store": self.store,
            "token_store_path": None if self.store_path is None else str(self.store_path),
            "tenant_id": self.tenant_id,
            "scopes": list(self.scopes),
            "refresh_token_present": self.has_chain,
            "refresh_token_rotated_at": _iso(self.rotated_at),
            "refresh_token_expires_at": _iso(self.refresh_expires_at),
            "refresh_token_days_left": None if left is None else round(left / timedelta(days=1), 2),
            "access_token_expires_at": _iso(self.access_expires_at),
            "service_accounts": [
                {
                    "tenant_id": sa.tenant_id,
                    "scopes": list(sa.scopes),
                    "access_token_expires_at": _iso(sa.access_expires_at),
                }
                for sa in self.service_accounts
            ],
            "messages": list(self.messages),
        }

    def lines(self) -> list[str]:
        lines = [f"Fortnox token store: {self.store}"]
        if self.has_chain:
            lines += [
                f"  Tenant (DatabaseNumber):    {self.tenant_id or 'unknown'}",
                f"  Scopes:                     {' '.join(self.scopes) or '(none recorded)'}",
                f"  Refresh token last rotated: {_when(self.rotated_at, self.now)}",
                f"  Refresh token expires:      {_when(self.refresh_expires_at, self.now)}"
                + (
                    " (each refresh, i.e. any Fortnox run, restarts the 45 days)"
                    if self.level == "ok"
                    else ""
                ),
                f"  Access token expires:       {_when(self.access_expires_at, self.now)}"
                + (
                    " (the next run refreshes it)"
                    if self.access_expires_at and self.access_expires_at <= self.now
                    else ""
                ),
            ]
        for sa in self.service_accounts:
            lines += [
                f"  Service account, tenant {sa.tenant_id}: access token "
                f"{_when(sa.access_expires_at, self.now)}; scopes {' '.join(sa.scopes) or '-'}"
            ]
        lines += list(self.messages)
        return lines


def token_status(store: TokenStore, *, now: datetime | None = None) -> TokenStatus:
    """Read the store (no request, no refresh) and judge how long the chain has left.

    ``store`` may be built without a client secret: it is only read.
    """
    now = now or datetime.now(UTC)
    on_disk = store.in_file
    blank = TokenStatus(store=store.location, store_path=store.path if on_disk else None, now=now)
    if on_disk and not store.path.exists():
        return replace(
            blank,
            messages=(
                f"ERROR: no token store at {store.location}. Run {authorize_command()} (or set "
                "tenant_id and run fortnox-auth verify-service-account).",
            ),
        )
    try:
        chain, service = store.stored_entries()
    except FortnoxError as exc:
        return replace(blank, messages=(f"ERROR: {exc}",))
    service_accounts = tuple(
        ServiceAccountToken(
            tenant_id=tenant,
            scopes=tuple((entry.scope or "").split()),
            access_expires_at=_from_epoch(entry.expires_at),
        )
        for tenant, entry in sorted(service.items())
    )
    if chain is None or not chain.refresh_token:
        return replace(
            blank,
            service_accounts=service_accounts,
            messages=()
            if service_accounts
            else (
                f"ERROR: the token store {store.location} holds no refresh token. Run "
                f"{authorize_command()}.",
            ),
        )
    return _chain_status(blank, chain, service_accounts)


def _chain_status(
    blank: TokenStatus,
    chain: StoredToken,
    service_accounts: tuple[ServiceAccountToken, ...],
) -> TokenStatus:
    rotated = _parse_iso(chain.rotated_at)
    status = replace(
        blank,
        tenant_id=chain.tenant_id,
        scopes=tuple((chain.scope or "").split()),
        rotated_at=rotated,
        refresh_expires_at=rotated + REFRESH_TOKEN_LIFETIME if rotated else None,
        access_expires_at=_from_epoch(chain.expires_at),
        has_chain=True,
        service_accounts=service_accounts,
    )
    left = status.refresh_time_left
    if left is None:
        message = (
            "NOTE: the store does not record when the refresh token was issued, so its expiry "
            "is unknown; any Fortnox run rotates it and records the time."
        )
    elif status.level == "expired":
        message = (
            f"ERROR: the refresh token expired {_span(-left)} ago (45 days after its last "
            f"rotation). Run {authorize_command()} to give consent again."
        )
    elif status.level == "warning":
        message = (
            f"WARNING: the refresh token expires in {_span(left)} (45 days after its last "
            "rotation). Run any Fortnox job (each run rotates it) or "
            f"{authorize_command()} "
            "before then, or the next run needs a new consent."
        )
    else:
        return status
    return replace(status, messages=(message,))


def _from_epoch(seconds: float) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


def _parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


def _when(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "unknown"
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    delta = moment - now
    if delta > timedelta(0):
        return f"{stamp} (in {_span(delta)})"
    return f"{stamp} ({_span(-delta)} ago)"


def _span(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds >= 86400:
        days = seconds / 86400
        return f"{days:.1f} days"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    if seconds < 60:
        return "under a minute"
    return f"{seconds // 60} min"
