"""The Fortnox error taxonomy: which failures are retried, stop the run, or fail one record.

Owns the exception classes every Fortnox plugin catches, the parser for Fortnox's
``ErrorInformation`` body (both key casings), and :func:`classify`, which turns an HTTP status plus
body into the right exception with a message that names the Fortnox code and says what to do.
Messages never contain tokens or secrets: they are built from the status, the code, Fortnox's own
message and the request path only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sync_common.meltano_command import ENVIRONMENT_VARIABLE, meltano_command


class FortnoxError(Exception):
    """Any failure talking to Fortnox; ``code`` is Fortnox's error code, ``status`` HTTP's."""

    def __init__(self, message: str, *, code: int | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class FortnoxTransientError(FortnoxError):
    """429, 5xx, timeouts, dropped connections: retried by the client; raised after the last try."""


class FortnoxTokenUnavailable(FortnoxTransientError):
    """The token endpoint failed transiently. Not retried within a run: a refresh POST whose answer
    was lost may have consumed the single-use refresh token, and a resend would burn the chain."""


class FortnoxAuthError(FortnoxError):
    """Fatal for the run: token, consent, scope or licence is wrong; the message says the fix."""


class FortnoxDataError(FortnoxError):
    """Fortnox refused one record (validation, number taken, missing reference): fail only it.

    ``fortnox_message`` is Fortnox's own text from its ``ErrorInformation`` (None without one).
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: int | None = None,
        field: str | None = None,
        fortnox_message: str | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.field = field
        self.fortnox_message = fortnox_message


class FortnoxNotFound(FortnoxDataError):
    """The record does not exist (HTTP 404 or code 2000423)."""


class AmbiguousWriteError(FortnoxError):
    """A write may or may not have been committed (timeout, reset, 5xx after the request was sent).

    Never retried blindly: the caller looks the record up by its key and creates it only if absent.
    """


@dataclass(frozen=True)
class ErrorInformation:
    """Fortnox's error body, whichever casing the server used."""

    code: int | None
    message: str


def parse_error_information(body: Any) -> ErrorInformation | None:
    """Read ``{"ErrorInformation": {"error", "message", "code"}}`` in either key casing.

    Real answers have used both ``message/code`` and ``Message/Code`` (docs/FORTNOX-API.md), so keys
    are matched case-insensitively at both levels. ``None`` when the body is not an error body.
    """
    if not isinstance(body, Mapping):
        return None
    info = _get_ci(body, "ErrorInformation")
    if not isinstance(info, Mapping):
        return None
    raw_code = _get_ci(info, "code")
    code: int | None
    try:
        code = int(raw_code) if raw_code is not None else None
    except (TypeError, ValueError):
        code = None
    message = _get_ci(info, "message")
    return ErrorInformation(code=code, message=str(message) if message is not None else "")


def _get_ci(mapping: Mapping[str, Any], key: str) -> Any:
    wanted = key.lower()
    for k, v in mapping.items():
        if isinstance(k, str) and k.lower() == wanted:
            return v
    return None


# The scope each resource needs (docs/FORTNOX-API.md, "Scopes"); named as the one to add on 2000663.
RESOURCE_SCOPES: dict[str, str] = {
    "customers": "customer",
    "projects": "project",
    "invoices": "invoice",
    "supplierinvoices": "supplierinvoice",
    "suppliers": "supplier",
    "accounts": "bookkeeping",
    "financialyears": "bookkeeping",
    "vouchers": "bookkeeping",
    "companyinformation": "companyinformation",
    "settings": "settings",
    "costcenters": "costcenter",
    "expenses": "salary",
}

# The Fortnox module (licence) behind each resource, for 2001101 messages.
RESOURCE_MODULES: dict[str, str] = {
    "projects": "Project (Projektredovisning)",
    "invoices": "Invoicing (Fakturering)",
    "customers": "Invoicing (Fakturering)",
    "supplierinvoices": "Supplier invoices (Leverantörsfakturor)",
    "suppliers": "Supplier invoices (Leverantörsfakturor)",
    "accounts": "Bookkeeping (Bokföring)",
    "financialyears": "Bookkeeping (Bokföring)",
    "vouchers": "Bookkeeping (Bokföring)",
}

AUTH_CODES = frozenset({2000310, 2000311, 2000663, 2001101, 2001103})
NOT_FOUND_CODES = frozenset({2000423})

# What to do about the data errors a Moment ⇄ Fortnox sync meets; other codes get Fortnox's text.
_DATA_ADVICE: dict[int, tuple[str | None, str]] = {
    2000637: (
        "CustomerNumber",
        "the customer number is already used in Fortnox — also by a customer that was deleted, "
        "since Fortnox reserves deleted numbers. Give the customer a new number in Moment "
        "(Moment is master), or, if the Fortnox customer is the same one, make its number "
        "match Moment",
    ),
    2001304: (
        "AccountNumber",
        "the account does not exist in Fortnox's chart of accounts for this financial year. Create "
        "the account in Fortnox or use an account number that exists in both systems",
    ),
    2000359: (
        None,
        "the text contains characters Fortnox does not accept (e.g. emoji or control characters). "
        "Remove them in the source record",
    ),
    2000401: (
        None,
        "the date falls in a locked accounting period. Unlock the period in Fortnox or change "
        "the date",
    ),
    2000106: (None, "a value must be alphanumeric"),
    2000108: (None, "a value must be numeric"),
    2000134: (None, "a value must be true or false"),
    2000588: (None, "a parameter is invalid"),
    2001392: (None, "a value is empty or has the wrong format"),
    2001399: (None, "a field name is not known to Fortnox"),
    2002115: (None, "the JSON body could not be parsed"),
    1000031: (None, "the request lacked Content-Type: application/json (a client bug: report it)"),
}


def resource_of(path: str) -> str:
    """The first path segment (``customers/1001`` → ``customers``), lower-cased."""
    return path.strip("/").split("/", 1)[0].split("?", 1)[0].lower()


def _field_from_message(message: str, body: Mapping[str, Any] | None) -> str | None:
    """Name the sent field Fortnox's message mentions, if exactly one does (best effort)."""
    if not body:
        return None
    hits = [k for k in body if re.search(rf"\b{re.escape(k)}\b", message, re.IGNORECASE)]
    return hits[0] if len(hits) == 1 else None


def classify(
    status: int,
    body: Any,
    *,
    method: str,
    path: str,
    sent: Mapping[str, Any] | None = None,
) -> FortnoxError:
    """Turn an unsuccessful HTTP answer into the exception the taxonomy prescribes.

    ``sent`` is the unwrapped record that was sent (used only to name the offending field).
    401 is classified as auth here; the client refreshes once before it lets this through.
    """
    info = parse_error_information(body)
    code = info.code if info else None
    text = info.message if info and info.message else f"HTTP {status}"
    where = f"{method} /{path.strip('/')}"
    label = f"Fortnox error {code}" if code is not None else f"Fortnox HTTP {status}"
    resource = resource_of(path)

    if status == 429:
        return FortnoxTransientError(
            f"{label} on {where}: rate limit exceeded (25 requests per 5 s per client and tenant). "
            "Lower max_requests_per_5s or run fewer Fortnox jobs at once for this tenant.",
            code=code,
            status=status,
        )
    if status >= 500:
        return FortnoxTransientError(
            f"{label} on {where}: Fortnox server error ({text}). Retry later; check "
            "status.fortnox.se if it persists.",
            code=code,
            status=status,
        )
    if code == 2000663:
        scope = RESOURCE_SCOPES.get(resource, resource)
        return FortnoxAuthError(
            f"{label} on {where}: the app is not authorised for scope '{scope}' ({text}). Add the "
            f"'{scope}' scope to the app in Fortnox's developer portal and authorise again (scopes "
            "apply only to new consents), then store the new refresh token.",
            code=code,
            status=status,
        )
    if code in (2001101, 2001103):
        module = RESOURCE_MODULES.get(resource, f"the module behind '{resource}'")
        return FortnoxAuthError(
            f"{label} on {where}: no active licence for this scope ({text}). Enable {module} in "
            "Fortnox (Inställningar → Tillägg/Moduler) for this company and run again.",
            code=code,
            status=status,
        )
    if code in (2000310, 2000311) or status in (401, 403):
        return FortnoxAuthError(
            f"{label} on {where}: Fortnox refused the credentials ({text}). The access token is "
            f"invalid even after a refresh: re-authorise the app (run {authorize_command()}, "
            "which gives consent again and writes the new refresh token into the token store).",
            code=code,
            status=status,
        )
    fortnox_message = info.message if info and info.message else None
    if status == 404 or code in NOT_FOUND_CODES:
        return FortnoxNotFound(
            f"{label} on {where}: not found ({text}).",
            code=code,
            status=status,
            fortnox_message=fortnox_message,
        )
    field, advice = _DATA_ADVICE.get(code, (None, "")) if code is not None else (None, "")
    field = field or _field_from_message(text, sent)
    detail = f"{advice} (Fortnox: {text})" if advice else f"{text}. Fix the record and run again"
    field_part = f" field {field}:" if field else ""
    return FortnoxDataError(
        f"{label} on {where}:{field_part} {detail}.",
        code=code,
        status=status,
        field=field,
        fortnox_message=fortnox_message,
    )


def authorize_command() -> str:
    """The command that gives Fortnox consent again, as the reader can run it where this process
    runs: inside a Meltano run the project's ``meltano --environment <name> invoke
    target-fortnox:authorize`` (both Fortnox plugins share its token store), else ``fortnox-auth
    authorize``. Used in every message that asks for a new consent, since such a message reaches
    the logs and the failure e-mail (README "Going live", steps 5 and 6)."""
    if ENVIRONMENT_VARIABLE not in os.environ:
        return "fortnox-auth authorize"
    return meltano_command("invoke target-fortnox:authorize")
