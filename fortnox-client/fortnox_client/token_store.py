"""The Fortnox OAuth2 token store: one JSON file shared by every Fortnox plugin and process.

Owns getting a valid access token and keeping the refresh-token chain alive. Fortnox refresh tokens
are single use and rotate (docs/FORTNOX-API.md): two processes refreshing with one token, or one
POST retried after a lost answer, burn the chain and need a new consent. So a refresh happens only
under an exclusive file lock beside the store, re-reads the store inside the lock (another process
may have rotated it already: then its token is used), POSTs exactly once, and writes the new pair
atomically (temp file, fsync, ``os.replace``; mode 0600 in a 0700 directory) before the new access
token is used. In client-credentials mode (``tenant_id`` set) there is no refresh token; access
tokens are cached in the same file under their own key so the two modes never clash.

File format (version 1)::

    {"version": 1,
     "refresh_token_grant": {"access_token": "...", "expires_at": 1767225600.0,
                             "refresh_token": "...", "rotated_at": "2026-01-01T00:00:00+00:00",
                             "scope": "customer project ...", "tenant_id": "123456"},
     "client_credentials": {"<tenant id>": {"access_token": "...", "expires_at": ...,
                                            "rotated_at": "...", "scope": "...",
                                            "tenant_id": "<tenant id>"}}}

Tokens never appear in logs, exception messages or reprs.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, TypedDict

import jwt
import requests
from filelock import FileLock, Timeout
from sync_common.atomic_files import write_bytes_atomically

from fortnox_client.errors import FortnoxAuthError, FortnoxTokenUnavailable, authorize_command
from fortnox_client.rate_limiter import SharedWindow, Window
from fortnox_client.settings import FortnoxSettings

logger = logging.getLogger(__name__)

STORE_VERSION = 1
REFRESH_SECTION = "refresh_token_grant"
CLIENT_CREDENTIALS_SECTION = "client_credentials"
# Refresh this long before expiry so a token never dies between acquire and use.
DEFAULT_REFRESH_MARGIN_SECONDS = 60.0
DEFAULT_LOCK_TIMEOUT_SECONDS = 120.0


@dataclass
class StoredToken:
    """One entry of the store. Secrets are kept out of ``repr``."""

    access_token: str | None = field(default=None, repr=False)
    expires_at: float = 0.0
    refresh_token: str | None = field(default=None, repr=False)
    rotated_at: str | None = None
    scope: str | None = None
    tenant_id: str | None = None
    issued_at: float = 0.0

    def is_fresh(self, now: float, margin: float) -> bool:
        # Never spend more than a quarter of a token's life as margin: with very short-lived
        # tokens a fixed 60 s margin would refresh before every request.
        if self.issued_at and self.expires_at > self.issued_at:
            margin = min(margin, (self.expires_at - self.issued_at) / 4)
        return bool(self.access_token) and self.expires_at - margin > now

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "access_token": self.access_token,
            "expires_at": self.expires_at,
            "rotated_at": self.rotated_at,
            "scope": self.scope,
            "tenant_id": self.tenant_id,
            "issued_at": self.issued_at,
        }
        if self.refresh_token is not None:
            data["refresh_token"] = self.refresh_token
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StoredToken:
        return cls(
            access_token=_opt_str(data.get("access_token")),
            expires_at=float(data.get("expires_at") or 0.0),
            refresh_token=_opt_str(data.get("refresh_token")),
            rotated_at=_opt_str(data.get("rotated_at")),
            scope=_opt_str(data.get("scope")),
            tenant_id=_opt_str(data.get("tenant_id")),
            issued_at=float(data.get("issued_at") or 0.0),
        )


class TokenStoreOptions(TypedDict, total=False):
    """The keyword options of :class:`TokenStore`, passed on unchanged by its backends."""

    session: requests.Session | None
    clock: Callable[[], float]
    refresh_margin: float
    lock_timeout: float


class TokenStore:
    """Valid Fortnox access tokens for one app, shared through ``token_store_path``.

    With ``token_store_url`` set, ``TokenStore(settings)`` is a
    :class:`~fortnox_client.token_store_postgres.PostgresTokenStore` (same semantics, one row per
    client and tenant, for processes on several machines), so every caller gets the configured
    backend without choosing it.
    """

    # False for stores that keep the document elsewhere than the file at ``path``.
    in_file: ClassVar[bool] = True

    def __new__(cls, settings: FortnoxSettings, **_: Any) -> TokenStore:
        if cls is TokenStore and settings.token_store_url:
            # Imported here: psycopg is the optional `postgres` extra.
            from fortnox_client.token_store_postgres import PostgresTokenStore

            return super().__new__(PostgresTokenStore)
        return super().__new__(cls)

    def __init__(
        self,
        settings: FortnoxSettings,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN_SECONDS,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
    ) -> None:
        self._settings = settings
        self.path = Path(settings.token_store_path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        # A session without retries: the token POST must go out at most once (see module doc).
        self._session = session or requests.Session()
        self._clock = clock
        self._refresh_margin = refresh_margin
        self._lock_timeout = lock_timeout
        self._thread_lock = threading.RLock()
        self._cached: StoredToken | None = None
        self.refreshes = 0

    def __repr__(self) -> str:
        return f"TokenStore(path={str(self.path)!r}, mode={self.mode!r})"

    @property
    def location(self) -> str:
        """Where the tokens are kept, for messages (never holds a secret)."""
        return str(self.path)

    def rate_window(self) -> Window:
        """Where every process of this store reserves its Fortnox requests: beside the file."""
        return SharedWindow.beside(self.path)

    @property
    def mode(self) -> str:
        return "client_credentials" if self._settings.uses_client_credentials else "refresh_token"

    @property
    def tenant_id(self) -> str | None:
        """The tenant (DatabaseNumber) of the current token: the setting, else the JWT's claim."""
        if self._settings.tenant_id:
            return self._settings.tenant_id
        with self._thread_lock:
            cached = self._cached or self._read_entry()
        return cached.tenant_id if cached else None

    @property
    def scope(self) -> str | None:
        with self._thread_lock:
            cached = self._cached or self._read_entry()
        return cached.scope if cached else None

    # -- public API ----------------------------------------------------------------------------

    def access_token(self) -> str:
        """A valid access token, refreshed under the file lock when it expires within the margin."""
        with self._thread_lock:
            now = self._clock()
            if self._cached and self._cached.is_fresh(now, self._refresh_margin):
                return _require(self._cached.access_token)
            # Cheap path: another process may already have rotated it; an atomic replace means
            # an unlocked read always sees a whole file.
            entry = self._read_entry()
            if entry and entry.is_fresh(now, self._refresh_margin):
                self._cached = entry
                return _require(entry.access_token)
            with self._file_lock():
                entry = self._read_entry()
                if entry and entry.is_fresh(self._clock(), self._refresh_margin):
                    self._cached = entry
                    return _require(entry.access_token)
                self._cached = self._obtain(entry)
                return _require(self._cached.access_token)

    def force_refresh(self, rejected_token: str) -> str:
        """After a 401: a new access token, unless someone already replaced ``rejected_token``."""
        with self._thread_lock, self._file_lock():
            entry = self._read_entry()
            if (
                entry
                and entry.access_token
                and entry.access_token != rejected_token
                and entry.is_fresh(self._clock(), self._refresh_margin)
            ):
                self._cached = entry
                return entry.access_token
            self._cached = self._obtain(entry)
            return _require(self._cached.access_token)

    def store_authorization(self, reply: Mapping[str, Any]) -> None:
        """Save a token endpoint reply (e.g. from the authorisation-code exchange) as the chain.

        Replaces whatever chain the store held; used by the authorise command.
        """
        with self._thread_lock, self._file_lock():
            self._cached = self._entry_from_reply(reply, previous=None)
            self._write_entry(self._cached)

    def stored_entries(self) -> tuple[StoredToken | None, dict[str, StoredToken]]:
        """The refresh-token chain and the client-credentials entries (by tenant), as stored.

        Reads the file once; never posts, refreshes or writes. For status reports.
        """
        with self._thread_lock:
            document = self._read_document()
        raw_chain = document.get(REFRESH_SECTION)
        chain = StoredToken.from_json(raw_chain) if isinstance(raw_chain, dict) else None
        section = document.get(CLIENT_CREDENTIALS_SECTION)
        service = {
            str(tenant): StoredToken.from_json(raw)
            for tenant, raw in (section.items() if isinstance(section, dict) else ())
            if isinstance(raw, dict)
        }
        return chain, service

    # -- obtaining tokens ----------------------------------------------------------------------

    def _obtain(self, entry: StoredToken | None) -> StoredToken:
        """POST once to the token endpoint and persist the result. Caller holds the file lock."""
        if self._settings.uses_client_credentials:
            tenant = _require(self._settings.tenant_id)
            reply = self._post_token({"grant_type": "client_credentials"}, {"TenantId": tenant})
        else:
            refresh_token = entry.refresh_token if entry and entry.refresh_token else None
            if refresh_token is None:
                # Seed from the setting only when the store has no chain: once rotated, the
                # setting's token is spent and using it again would fail with invalid_grant.
                refresh_token = self._settings.refresh_token
            if not refresh_token:
                raise FortnoxAuthError(
                    f"No Fortnox refresh token: the token store {self.location} holds none and the "
                    "refresh_token setting is empty. Run the authorise command "
                    f"({authorize_command()}: OAuth consent in Fortnox, writes this store), or set "
                    "tenant_id to use a client-credentials service account."
                )
            reply = self._post_token(
                {"grant_type": "refresh_token", "refresh_token": refresh_token}, {}
            )
        new_entry = self._entry_from_reply(reply, previous=entry)
        # Persist before use: if we crashed after using it but before saving, the chain would be
        # lost (the old refresh token is already dead).
        self._write_entry(new_entry)
        self.refreshes += 1
        logger.info(
            "Fortnox %s token obtained (tenant %s, valid until %s); saved to %s",
            self.mode,
            new_entry.tenant_id or "?",
            datetime.fromtimestamp(new_entry.expires_at, UTC).isoformat(timespec="seconds"),
            self.location,
        )
        return new_entry

    def _post_token(self, form: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
        secrets = [v for v in (self._settings.client_secret, form.get("refresh_token")) if v]
        try:
            response = self._session.post(
                self._settings.token_url,
                data=form,
                headers={"Accept": "application/json", **headers},
                auth=(self._settings.client_id, self._settings.client_secret),
                timeout=self._settings.timeout,
            )
        except requests.exceptions.ConnectTimeout as exc:
            raise FortnoxTokenUnavailable(
                f"Could not connect to the Fortnox token endpoint {self._settings.token_url} "
                f"({type(exc).__name__}); nothing was sent. Run again later."
            ) from None
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise FortnoxTokenUnavailable(
                f"The Fortnox token request to {self._settings.token_url} got no answer "
                f"({type(exc).__name__}). It is not retried: a refresh token works only once, so a "
                "retry could burn the chain. Run again; if that fails with invalid_grant, "
                f"re-authorise (run {authorize_command()} / consent again)."
            ) from None
        body = _json_or_none(response)
        if response.status_code == 200 and isinstance(body, dict) and body.get("access_token"):
            return body
        error = str(body.get("error", "")) if isinstance(body, dict) else ""
        description = str(body.get("error_description", "")) if isinstance(body, dict) else ""
        description = _redact(description, secrets)
        if response.status_code == 429 or response.status_code >= 500:
            raise FortnoxTokenUnavailable(
                f"Fortnox token endpoint answered HTTP {response.status_code} {error}".rstrip()
                + ". Run again later.",
                status=response.status_code,
            )
        if error == "invalid_grant" and not self._settings.uses_client_credentials:
            raise FortnoxAuthError(
                "Fortnox refused the refresh token (invalid_grant): it was already used or has "
                f"expired (refresh tokens are single use and live 45 days). {description} "
                f"Re-authorise: run the authorise command ({authorize_command()}: consent again "
                f"in Fortnox), which writes the new chain into {self.path}.",
                status=response.status_code,
            )
        if error == "invalid_client":
            raise FortnoxAuthError(
                "Fortnox refused the app credentials (invalid_client). Check client_id and "
                "client_secret against the app in Fortnox's developer portal.",
                status=response.status_code,
            )
        if self._settings.uses_client_credentials:
            raise FortnoxAuthError(
                f"Fortnox refused the client-credentials token for tenant "
                f"{self._settings.tenant_id} (HTTP {response.status_code} {error}: {description}). "
                "Check tenant_id (the company's DatabaseNumber) and that the company's "
                "administrator gave the service-account consent for this app.",
                status=response.status_code,
            )
        raise FortnoxAuthError(
            f"Fortnox token endpoint answered HTTP {response.status_code} {error}: {description}. "
            f"Re-authorise the app (run {authorize_command()}) if this persists.",
            status=response.status_code,
        )

    def _entry_from_reply(
        self, reply: Mapping[str, Any], previous: StoredToken | None
    ) -> StoredToken:
        access_token = str(reply["access_token"])
        now = self._clock()
        claims = _unverified_claims(access_token)
        exp = claims.get("exp")
        expires_at = (
            float(exp)
            if isinstance(exp, int | float)
            else now + float(reply.get("expires_in", 3600))
        )
        iat = claims.get("iat")
        issued_at = float(iat) if isinstance(iat, int | float) else now
        tenant = claims.get("tenantId") or self._settings.tenant_id
        if tenant is None and previous is not None:
            tenant = previous.tenant_id
        refresh_token = _opt_str(reply.get("refresh_token"))
        if not self._settings.uses_client_credentials and not refresh_token:
            # Fortnox always rotates; a reply without one would leave us with a dead chain.
            raise FortnoxAuthError(
                "The Fortnox token reply carried no refresh_token, so the chain cannot continue. "
                f"Authorise with access_type=offline (run {authorize_command()} again)."
            )
        return StoredToken(
            access_token=access_token,
            expires_at=expires_at,
            refresh_token=refresh_token,
            rotated_at=datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
            scope=_opt_str(reply.get("scope")),
            tenant_id=str(tenant) if tenant is not None else None,
            issued_at=issued_at,
        )

    # -- the file ------------------------------------------------------------------------------

    def _file_lock(self) -> AbstractContextManager[None]:
        self._ensure_parent()
        return _exclusive(FileLock(str(self.lock_path), timeout=self._lock_timeout), self.path)

    def _ensure_parent(self) -> None:
        parent = self.path.parent
        if not parent.exists():
            # Only a directory we create is made private; an existing one is the user's choice.
            parent.mkdir(mode=0o700, parents=True, exist_ok=True)

    def _read_document(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        if not text.strip():
            return {}
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FortnoxAuthError(
                f"The Fortnox token store {self.path} is not valid JSON (line {exc.lineno}, column "
                f"{exc.colno}). Fix it, or delete it and seed a new refresh token (refresh_token "
                f"setting or {authorize_command()})."
            ) from None
        if not isinstance(document, dict):
            raise FortnoxAuthError(
                f"The Fortnox token store {self.path} must hold a JSON object; delete it and seed "
                "a new refresh token."
            )
        return document

    def _read_entry(self) -> StoredToken | None:
        document = self._read_document()
        if self._settings.uses_client_credentials:
            section = document.get(CLIENT_CREDENTIALS_SECTION) or {}
            raw = section.get(self._settings.tenant_id) if isinstance(section, dict) else None
        else:
            raw = document.get(REFRESH_SECTION)
        return StoredToken.from_json(raw) if isinstance(raw, dict) else None

    def _write_entry(self, entry: StoredToken) -> None:
        document = self._read_document()
        document["version"] = STORE_VERSION
        if self._settings.uses_client_credentials:
            section = document.get(CLIENT_CREDENTIALS_SECTION)
            if not isinstance(section, dict):
                section = {}
            section[_require(self._settings.tenant_id)] = entry.to_json()
            document[CLIENT_CREDENTIALS_SECTION] = section
        else:
            document[REFRESH_SECTION] = entry.to_json()
        self._save_document(document)

    def _save_document(self, document: Mapping[str, Any]) -> None:
        write_private_json_atomically(self.path, document)


def write_private_json_atomically(path: Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` so that readers see the old or the new file, never a torn one: mode
    0600 from creation, in a 0700 folder, the file and the rename fsynced
    (``sync_common.atomic_files``)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    write_bytes_atomically(path, text.encode("utf-8"), mode=0o600, sync_directory=True)


@contextmanager
def _exclusive(lock: FileLock, store_path: Path) -> Iterator[None]:
    """Hold ``lock``; a timeout says which store is stuck instead of a bare ``filelock.Timeout``."""
    try:
        lock.acquire()
    except Timeout:
        raise FortnoxTokenUnavailable(
            f"Waited {lock.timeout:.0f} s for the lock on the Fortnox token store {store_path}; "
            "another process holds it. Check for a hung Fortnox job."
        ) from None
    try:
        yield
    finally:
        lock.release()


def _unverified_claims(token: str) -> dict[str, Any]:
    """The JWT's claims without verifying (Fortnox does not publish its key); {} if not a JWT."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _require(value: str | None) -> str:
    if value is None:
        raise FortnoxAuthError("The Fortnox token store returned no access token (store corrupt?)")
    return value
