"""Fortnox's OAuth2 server (``/oauth-v1/...``) and the bearer check of the API.

One registered client, ``sandbox-client`` / ``sandbox-secret``, for one tenant (the company, whose
DatabaseNumber is the TenantId); it is allowed service accounts. Access tokens are HS256 JWTs signed
with a per-database secret kept in SQLite, so they survive a restart. Refresh tokens are opaque,
single use, rotate on every refresh and live 45 days; only their SHA-256 is stored. Authorisation
codes are single use and live 10 minutes.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from flask import Blueprint, Response, jsonify, redirect, render_template_string, request

from sandbox.fortnox.errors import TOKEN_MISSING, FortnoxError
from sandbox.fortnox.settings import SandboxSettings
from sandbox.store import Store

CLIENT_ID = "sandbox-client"
CLIENT_SECRET = "sandbox-secret"
TENANT_ID = 1234567  # the company's DatabaseNumber; fixed so that configs can name it
# A database is one company (tenant); a sandbox serving several (sandbox.fortnox.tenants) gives
# each database its own TenantId, kept under this key. Unset means TENANT_ID.
TENANT_ID_KEY = "fortnox:tenant_id"
SCOPES = (
    "customer",
    "project",
    "invoice",
    "supplierinvoice",
    "supplier",
    "bookkeeping",
    "companyinformation",
    "settings",
    "costcenter",
    "salary",
    "profile",
)
CODE_SECONDS = 600
REFRESH_SECONDS = 45 * 24 * 3600
# The sandbox accepts loopback redirect URIs on any port (a local onboarding callback) besides
# those listed in the "fortnox:redirect_uris" value; real Fortnox requires the registered URI.
_LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")

CODES, REFRESH_TOKENS, CONSENTS = "oauth_code", "oauth_refresh", "oauth_consent"
KEEP_ON_RESEED = (CODES, REFRESH_TOKENS, CONSENTS)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tenant_id_of(store: Store) -> int:
    """The TenantId (DatabaseNumber) of the company this database holds."""
    return int(store.get_value(TENANT_ID_KEY, TENANT_ID))


def holds_token(store: Store, kind: str, token: str) -> bool:
    """Whether this database issued ``token``, so a sandbox of several tenants can tell whose.

    ``token`` is a refresh token or an authorisation code, or a consent id for CONSENTS.
    """
    key = token if kind == CONSENTS else _digest(token)
    return bool(token) and store.get(kind, key) is not None


@dataclass(frozen=True)
class Caller:
    """Who a valid access token speaks for."""

    client_id: str
    tenant_id: int
    scopes: frozenset[str]

    @property
    def identity(self) -> str:
        return f"{self.client_id}:{self.tenant_id}"


class OAuthError(Exception):
    """An OAuth-shaped refusal: ``{"error": ..., "error_description": ...}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status

    def response(self) -> Response:
        body: dict[str, str] = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        response = jsonify(body)
        response.status_code = self.status
        return response


class TokenService:
    """Issues and checks codes, access tokens and refresh tokens, all persisted in the store."""

    def __init__(self, store: Store, settings: SandboxSettings) -> None:
        self.store, self.settings = store, settings
        with store.transaction():
            if store.get_value("oauth:jwt_secret") is None:
                store.set_value("oauth:jwt_secret", secrets.token_hex(32))
            if store.get_value("oauth:generation") is None:
                store.set_value("oauth:generation", 0)
        self.tenant_id = tenant_id_of(store)

    @property
    def _secret(self) -> str:
        return str(self.store.get_value("oauth:jwt_secret"))

    # access tokens ----------------------------------------------------------------------------
    def access_token(self, scopes: list[str], client_id: str = CLIENT_ID) -> dict[str, Any]:
        """A token reply without refresh token (the client-credentials shape)."""
        now = int(time.time())
        lifetime = int(self.settings["token_lifetime"])
        claims = {
            "iat": now,
            "exp": now + lifetime,
            "jti": str(uuid.uuid4()),
            "tenantId": self.tenant_id,
            "clientId": client_id,
            "scope": " ".join(scopes),
            # Tokens from before the last POST /_sandbox/tokens/expire are expired (sandbox claim).
            "gen": int(self.store.get_value("oauth:generation", 0)),
        }
        return {
            "access_token": jwt.encode(claims, self._secret, algorithm="HS256"),
            "scope": " ".join(scopes),
            "expires_in": lifetime,
            "token_type": "bearer",
        }

    def verify(self, header: str | None) -> Caller:
        """The caller behind an ``Authorization: Bearer`` header, or a 401 FortnoxError."""
        if not header or not header.lower().startswith("bearer ") or not header[7:].strip():
            raise FortnoxError(
                TOKEN_MISSING,
                "Kan inte logga in, access-token saknas (send Authorization: Bearer <token>)",
                401,
            )
        try:
            claims = jwt.decode(header[7:].strip(), self._secret, algorithms=["HS256"])
        except jwt.ExpiredSignatureError:
            raise self._expired() from None
        except jwt.InvalidTokenError:
            raise FortnoxError(
                TOKEN_MISSING, "Kan inte logga in, ogiltig access-token (invalid access token)", 401
            ) from None
        if int(claims.get("gen", 0)) < int(self.store.get_value("oauth:generation", 0)):
            raise self._expired()
        return Caller(
            client_id=str(claims["clientId"]),
            tenant_id=int(claims["tenantId"]),
            scopes=frozenset(str(claims.get("scope", "")).split()),
        )

    @staticmethod
    def _expired() -> FortnoxError:
        return FortnoxError(
            TOKEN_MISSING,
            "Access token has expired: get a new one (refresh token or client credentials)",
            401,
        )

    def expire_all(self) -> None:
        with self.store.transaction():
            self.store.set_value(
                "oauth:generation", int(self.store.get_value("oauth:generation")) + 1
            )

    # refresh tokens ---------------------------------------------------------------------------
    def mint_refresh_token(self, scopes: list[str], client_id: str = CLIENT_ID) -> str:
        token = secrets.token_urlsafe(32)
        self.store.put(
            REFRESH_TOKENS,
            _digest(token),
            {
                "client_id": client_id,
                "scope": scopes,
                "expires_at": time.time() + REFRESH_SECONDS,
                "state": "active",
            },
        )
        return token

    def token_pair(self, scopes: list[str], client_id: str = CLIENT_ID) -> dict[str, Any]:
        reply = self.access_token(scopes, client_id)
        reply["refresh_token"] = self.mint_refresh_token(scopes, client_id)
        return reply

    def refresh(self, token: str, client_id: str) -> dict[str, Any]:
        """Rotate: the used refresh token dies, a new pair is issued (atomically)."""
        with self.store.transaction():
            record = self.store.get(REFRESH_TOKENS, _digest(token)) if token else None
            if record is None or record["client_id"] != client_id:
                raise OAuthError("invalid_grant", "Invalid refresh token")
            if record["state"] != "active":
                raise OAuthError(
                    "invalid_grant", f"Invalid refresh token (already {record['state']})"
                )
            if record["expires_at"] < time.time():
                raise OAuthError("invalid_grant", "Invalid refresh token (expired after 45 days)")
            record["state"] = "used"
            self.store.put(REFRESH_TOKENS, _digest(token), record)
            return self.token_pair(list(record["scope"]), client_id)

    def revoke(self, token: str) -> None:
        with self.store.transaction():
            record = self.store.get(REFRESH_TOKENS, _digest(token))
            if record is not None:
                record["state"] = "revoked"
                self.store.put(REFRESH_TOKENS, _digest(token), record)

    # authorisation codes ----------------------------------------------------------------------
    def create_code(self, consent: dict[str, Any]) -> str:
        code = secrets.token_urlsafe(24)
        self.store.put(
            CODES,
            _digest(code),
            {**consent, "expires_at": time.time() + CODE_SECONDS, "used": False},
        )
        return code

    def redeem_code(self, code: str, redirect_uri: str | None, client_id: str) -> dict[str, Any]:
        with self.store.transaction():
            record = self.store.get(CODES, _digest(code)) if code else None
            if record is None or record["client_id"] != client_id:
                raise OAuthError(
                    "invalid_grant", "Authorization code doesn't exist or is invalid for the client"
                )
            if record["used"]:
                raise OAuthError("invalid_grant", "Authorization code has already been used")
            if record["expires_at"] < time.time():
                raise OAuthError("invalid_grant", "Authorization code has expired (10 minutes)")
            if record["redirect_uri_sent"] and redirect_uri != record["redirect_uri"]:
                raise OAuthError("invalid_grant", "redirect_uri does not match the authorization")
            record["used"] = True
            self.store.put(CODES, _digest(code), record)
            return self.token_pair(list(record["scope"]), client_id)


_CONSENT_PAGE = """<!doctype html>
<html lang="sv"><head><meta charset="utf-8"><title>Fortnox sandbox: godkänn integration</title>
<style>body{font-family:sans-serif;max-width:36em;margin:3em auto}li{margin:.2em 0}
button{font-size:1.1em;margin-right:1em;padding:.4em 1.2em}</style></head>
<body>
<h1>Godkänn integration</h1>
<p>The application <strong>{{ client_id }}</strong> asks for access to
<strong>{{ company }}</strong> (database {{ tenant }}){% if service %} as a
<strong>service account</strong>{% endif %}.</p>
<p>Requested scopes:</p>
<ul>{% for scope in scopes %}<li><code>{{ scope }}</code></li>{% endfor %}</ul>
<form method="post" action="{{ action }}">
  <input type="hidden" name="consent" value="{{ consent }}">
  <button type="submit" name="decision" value="approve">Approve</button>
  <button type="submit" name="decision" value="deny">Deny</button>
</form>
</body></html>
"""

_ERROR_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<title>Fortnox sandbox: error</title>
</head><body><h1>Authorization error</h1><p>{{ message }}</p></body></html>"""


def _redirect_allowed(uri: str, store: Store) -> bool:
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https") and parts.hostname in _LOOPBACK_HOSTS:
        return True
    return uri in (store.get_value("fortnox:redirect_uris", []) or [])


def _with_query(uri: str, params: dict[str, str]) -> str:
    return f"{uri}{'&' if '?' in uri else '?'}{urlencode(params)}"


def oauth_blueprint(tokens: TokenService, company_name: Callable[[], str]) -> Blueprint:
    """``/oauth-v1/auth`` (consent page and decision), ``/oauth-v1/token``, ``/oauth-v1/revoke``."""
    oauth = Blueprint("fortnox_oauth", __name__, url_prefix="/oauth-v1")
    store = tokens.store

    def page_error(message: str) -> tuple[str, int]:
        return render_template_string(_ERROR_PAGE, message=message), 400

    @oauth.get("/auth")
    def authorize() -> Any:
        args = request.args
        client_id, redirect_uri = args.get("client_id", ""), args.get("redirect_uri", "")
        if client_id != CLIENT_ID:
            return page_error(f"Unknown client_id {client_id!r}.")
        if redirect_uri and not _redirect_allowed(redirect_uri, store):
            return page_error(f"redirect_uri {redirect_uri!r} is not registered for this client.")
        target = redirect_uri or "http://localhost/callback"
        state = args.get("state", "")

        def refuse(error: str, description: str) -> Any:
            params = {"error": error, "error_description": description, "state": state}
            return redirect(_with_query(target, params))

        if args.get("response_type") != "code":
            return refuse("unsupported_response_type", "response_type must be code")
        if not state:
            return refuse("invalid_request", "state is required")
        scopes = args.get("scope", "").split()
        unknown = [s for s in scopes if s not in SCOPES]
        if not scopes or unknown:
            return refuse("invalid_scope", f"unknown or missing scopes: {' '.join(unknown)}")
        account_type = args.get("account_type", "")
        if account_type and account_type != "service":
            return refuse("invalid_request", "account_type may only be 'service'")
        consent_id = secrets.token_urlsafe(16)
        store.put(
            CONSENTS,
            consent_id,
            {
                "client_id": client_id,
                "scope": scopes,
                "state": state,
                "redirect_uri": target,
                "redirect_uri_sent": bool(redirect_uri),
                "account_type": account_type,
                "access_type": args.get("access_type", ""),
                "expires_at": time.time() + CODE_SECONDS,
            },
        )
        return render_template_string(
            _CONSENT_PAGE,
            client_id=client_id,
            company=company_name(),
            tenant=tokens.tenant_id,
            service=account_type == "service",
            scopes=scopes,
            consent=consent_id,
            action=request.path,
        )

    @oauth.post("/auth")
    def decide() -> Any:
        consent_id = request.form.get("consent", "")
        with store.transaction():
            consent = store.get(CONSENTS, consent_id) if consent_id else None
            if consent is not None:
                store.delete(CONSENTS, consent_id)
        if consent is None or consent["expires_at"] < time.time():
            return page_error("This consent request is unknown or has expired; start again.")
        if request.form.get("decision") != "approve":
            params = {"error": "access_denied", "state": consent["state"]}
            return redirect(_with_query(consent["redirect_uri"], params))
        code = tokens.create_code(consent)
        return redirect(
            _with_query(consent["redirect_uri"], {"code": code, "state": consent["state"]})
        )

    @oauth.post("/token")
    def token() -> Response:
        try:
            client_id = _authenticate_client()
            grant = request.form.get("grant_type", "")
            if grant == "authorization_code":
                reply = tokens.redeem_code(
                    request.form.get("code", ""), request.form.get("redirect_uri"), client_id
                )
            elif grant == "refresh_token":
                reply = tokens.refresh(request.form.get("refresh_token", ""), client_id)
            elif grant == "client_credentials":
                tenant = request.headers.get("TenantId", "")
                if tenant != str(tokens.tenant_id):
                    raise OAuthError(
                        "invalid_request",
                        f"TenantId {tenant!r} has no service-account consent for this client",
                    )
                # The service-account consent is taken as given (inferred: the sandbox does not
                # require a prior account_type=service authorisation).
                requested = request.form.get("scope", "").split()
                reply = tokens.access_token(requested or list(SCOPES), client_id)
            else:
                raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")
        except OAuthError as refusal:
            return refusal.response()
        response = jsonify(reply)
        response.headers["Cache-Control"] = "no-store"
        return response

    @oauth.post("/revoke")
    def revoke() -> Response:
        try:
            _authenticate_client()
        except OAuthError as refusal:
            return refusal.response()
        tokens.revoke(request.form.get("token", ""))
        return jsonify({"revoked": True})

    return oauth


def _authenticate_client() -> str:
    """The client id from HTTP Basic auth; a wrong pair is 401 invalid_client."""
    if request.mimetype != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "the body must be application/x-www-form-urlencoded")
    auth = request.authorization
    if auth is None or auth.type != "basic":
        raise OAuthError("invalid_client", "", 401)
    if not (
        secrets.compare_digest(str(auth.username or ""), CLIENT_ID)
        and secrets.compare_digest(str(auth.password or ""), CLIENT_SECRET)
    ):
        raise OAuthError("invalid_client", "", 401)
    return CLIENT_ID
