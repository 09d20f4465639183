"""Pre-flight checks both pipelines make: Fortnox token and scopes, project module, Moment API.

``check_connections`` runs them in the order both pipelines report them.

Owns the checks that do not depend on the direction of the data: can we get a Fortnox access
token, does it carry the scopes the pipeline needs, is the project module licensed, and does the
Moment API key open the company. The clients are passed in and used through the small protocols
below (``fortnox_client.FortnoxClient`` and ``moment_client.MomentClient`` fit them), so
sync-common stays free of both clients at run time. Errors are told apart by the ``code`` (Fortnox
error code) and ``status`` (HTTP) attributes both clients' errors carry.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any, Protocol

from sync_common.meltano_command import meltano_command
from sync_common.preflight import CheckResult, PreflightReport, run_check

FORTNOX_MISSING_SCOPE = 2000663
FORTNOX_NO_LICENCE = 2001101
FORTNOX_BAD_TOKEN = (2000310, 2000311)
PROJECT_SETTING_MENU = "Inställningar > Fakturering > Projekt"


class TokenSource(Protocol):
    @property
    def scope(self) -> str | None: ...

    def access_token(self) -> str: ...


class FortnoxReader(Protocol):
    @property
    def tokens(self) -> TokenSource: ...

    def get_path(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]: ...


class MomentReader(Protocol):
    def list(self, entity: str, params: Any = None) -> Iterable[dict[str, Any]]: ...


def error_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def error_status(exc: BaseException) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


@dataclass(frozen=True)
class Connections:
    """What :func:`check_connections` found: which further checks can run at all."""

    fortnox: bool  # a Fortnox access token opens the company
    moment: bool  # the Moment key opens the company
    project_module: bool  # /3/projects answers (False when there is no token to ask with)


def check_connections(
    report: PreflightReport,
    fortnox: FortnoxReader,
    moment: MomentReader,
    company_code: str,
    *,
    required_scopes: Collection[str],
    authorize_command: str,
    moment_env_prefix: str,
) -> Connections:
    """The checks every pipeline starts with, into ``report``: ``fortnox-token`` (and scopes),
    ``moment-api``, then ``project-module`` (and ``project-accounting``) when there is a token.

    Without a token every other Fortnox check would fail the same way, so the pipeline's own
    checks look at the returned :class:`Connections` and say it once.
    """
    token = run_check(
        report,
        "fortnox-token",
        lambda: check_fortnox_token(fortnox, required_scopes, authorize_command),
    )
    fortnox_ok = not token[0].blocking
    moment_ok = not run_check(
        report,
        "moment-api",
        lambda: check_moment_api(moment, company_code, moment_env_prefix),
    )[0].blocking
    module_ok = fortnox_ok and not (
        run_check(report, "project-module", lambda: check_project_module(fortnox))[0].blocking
    )
    return Connections(fortnox=fortnox_ok, moment=moment_ok, project_module=module_ok)


def moment_integration_off(job: str, doubled: str) -> CheckResult:
    """The switch-over's manual check: Moment's own Fortnox integration is off (no API shows
    it); ``doubled`` says what both would do twice (docs/SWITCH-OVER.md)."""
    return CheckResult(
        "moment-integration-off",
        "manual",
        "Moment's own Fortnox integration must be off before the first run (the API does not "
        f"show it): both would {doubled}",
        "In Moment switch off the Fortnox integration (Setup > Settings > Integrations > "
        f"Fortnox) before the first {job} run. See docs/SWITCH-OVER.md.",
    )


def check_fortnox_token(
    client: FortnoxReader, required_scopes: Collection[str], authorize_command: str
) -> list[CheckResult]:
    """``fortnox-token``: a token can be had (refreshing if due) and names the company;
    ``fortnox-scopes``: the token reply's scope list holds every scope the pipeline uses."""
    try:
        client.tokens.access_token()
        company = _company(client)
    except Exception as exc:  # any failure here means "not connected"
        verify = meltano_command("invoke target-fortnox:verify-service-account")
        return [
            CheckResult(
                "fortnox-token",
                "fail",
                f"no usable Fortnox access token: {exc}",
                f"Run `{authorize_command}` (consent in Fortnox) or, for a service account, set "
                f"tenant_id and run `{verify}`; check "
                "client_id/client_secret against the Fortnox developer portal.",
            )
        ]
    name = company.get("CompanyName") or "?"
    tenant = company.get("DatabaseNumber") or "?"
    results = [
        CheckResult("fortnox-token", "pass", f"connected to {name} (DatabaseNumber {tenant})")
    ]
    granted = set((client.tokens.scope or "").split())
    missing = [scope for scope in required_scopes if scope not in granted]
    if not granted:
        results.append(
            CheckResult(
                "fortnox-scopes",
                "warn",
                "the token store does not record the granted scopes; the checks below probe them",
                f"Run `{authorize_command}` to record them.",
            )
        )
    elif missing:
        results.append(
            CheckResult(
                "fortnox-scopes",
                "fail",
                f"the token lacks scope(s) {', '.join(missing)} "
                f"(granted: {' '.join(sorted(granted))})",
                f"In the Fortnox developer portal add the scopes {', '.join(missing)} to the app, "
                f"then run `{authorize_command}` again so a user consents to them.",
                missing,
            )
        )
    else:
        results.append(
            CheckResult("fortnox-scopes", "pass", f"all of {' '.join(required_scopes)} granted")
        )
    return results


def _company(client: FortnoxReader) -> Mapping[str, Any]:
    """The company the token opens; empty when the token lacks the companyinformation scope
    (the scope check below says so, the token itself works)."""
    try:
        company: Mapping[str, Any] = client.get_path("companyinformation").get(
            "CompanyInformation", {}
        )
    except Exception as exc:
        if error_code(exc) == FORTNOX_MISSING_SCOPE:
            return {}
        raise
    return company


def check_project_module(client: FortnoxReader) -> list[CheckResult]:
    """``project-module``: what a read of /3/projects tells; ``project-accounting``: what it cannot.

    2000663 is the token's missing ``project`` scope; 2001101 ("no active licence for the scope")
    is a company without a licence that covers projects, or — inferred, Fortnox publishes nothing
    about it — project accounting switched off. An answer proves scope and licence, not the
    company setting (Inställningar > Fakturering > Projekt), which no API returns: that part is
    a manual check (docs/FORTNOX_PROJECTS.md).
    """
    try:
        body = client.get_path("projects", {"limit": 1})
    except Exception as exc:  # told apart by Fortnox's code below
        code = error_code(exc)
        if code == FORTNOX_NO_LICENCE:
            return [
                CheckResult(
                    "project-module",
                    "fail",
                    "Fortnox answers 2001101 (no active licence for the scope) on /3/projects: "
                    "the company's subscription does not cover projects, or project accounting "
                    "is switched off (Fortnox does not say which)",
                    "In Fortnox check that the subscription includes project accounting "
                    "(Projektredovisning; order it under Tilläggsbeställning if not) and switch "
                    f"it on under {PROJECT_SETTING_MENU}, then run the pre-flight check again.",
                )
            ]
        if code == FORTNOX_MISSING_SCOPE:
            return [
                CheckResult(
                    "project-module",
                    "fail",
                    "Fortnox answers 2000663 on /3/projects: the token lacks the project scope",
                    "Add the scope 'project' to the app and authorise again.",
                )
            ]
        raise
    meta = body.get("MetaInformation") or {}
    total = meta.get("@TotalResources")
    count = int(total) if isinstance(total, int | str) and str(total).isdigit() else None
    registered = "" if count is None else f"; {count} project(s) registered"
    seen = (
        f"{count} project(s) are registered, so projects have been used in this company, but "
        "the setting may have been switched off since"
        if count
        else "no project is registered yet, so nothing shows that it is on"
    )
    return [
        CheckResult(
            "project-module",
            "pass",
            "/3/projects answers: the token has the project scope and the company a licence "
            f"that covers projects{registered}",
        ),
        CheckResult(
            "project-accounting",
            "manual",
            "whether project accounting is switched on is a company setting no Fortnox API "
            f"returns; {seen}",
            f"In Fortnox open {PROJECT_SETTING_MENU} and check that project accounting is on "
            "(Moment's Fortnox integration requires it). Off, Fortnox may refuse projects with "
            "2001101 or keep accepting them through the API (not published which).",
        ),
    ]


def check_moment_api(client: MomentReader, company_code: str, prefix: str) -> CheckResult:
    """``moment-api``: one customer page opens with the key, so the key and the company work."""
    try:
        list(islice(client.list("customers"), 1))
    except Exception as exc:  # told apart by HTTP status below
        status = error_status(exc)
        if status in (401, 403):
            return CheckResult(
                "moment-api",
                "fail",
                f"Moment refuses the API key for company {company_code!r} (HTTP {status})",
                f"Check {prefix}_API_KEY (Moment: Company > API keys, after adding the "
                "'API Access' integration under Setup > Settings > Integrations) and that the key "
                f"belongs to company {company_code!r}.",
            )
        if status == 404:
            return CheckResult(
                "moment-api",
                "fail",
                f"Moment knows no company {company_code!r} (HTTP 404)",
                f"Set {prefix}_COMPANY_CODE to the company code in your Moment URL.",
            )
        raise
    return CheckResult("moment-api", "pass", f"the API key opens Moment company {company_code!r}")
