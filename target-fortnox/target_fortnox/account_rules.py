"""Fortnox's posting rules on accounts and projects: what would be refused, and how to fix it.

Owns the knowledge the pre-flight and the invoice sink share (docs/FORTNOX_PROJECTS.md):

- an account's ``ProjectSettings`` and ``CostCenterSettings`` (``ALLOWED|MANDATORY|NOTALLOWED``,
  in Fortnox's OpenAPI list and single account): MANDATORY refuses a row without one, NOTALLOWED
  a row with one. Moment sends a project (the invoice's) but never a cost centre.
- a project's period: Fortnox refuses a posting on a project dated outside its StartDate–EndDate.
- Fortnox's refusal texts: "Projekt är obligatoriskt på konto", "Kostnadsställe är obligatoriskt
  på konto: N" (code 2000946), "Projektredovisningsperioden är inte aktiv för projekt N" are seen in
  integrators' help pages; the NOTALLOWED wording is inferred, so refusals are recognised by their
  words, with the account and project taken from the text when it names them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["project-mandatory", "project-notallowed", "cost-center-mandatory", "period"]

CHART_OF_ACCOUNTS = "Register > Kontoplan"
_ACCOUNT = r" på konto:?\s*(\d{4})?"
_MANDATORY = re.compile(r"(Projekt|Kostnadsställe) är obligatoriskt" + _ACCOUNT, re.I)
_NOT_ALLOWED = re.compile(r"(Projekt|Kostnadsställe) är inte tillåte[tn]" + _ACCOUNT, re.I)
_PERIOD = re.compile(r"Projektredovisningsperioden är inte aktiv för projekt:?\s*(\S+)?", re.I)


@dataclass(frozen=True)
class RuleBreach:
    """One rule an invoice breaks: which, on which account or project, and the fix."""

    kind: Kind
    account: str | None = None
    project: str | None = None

    def describe(self) -> str:
        account = f"account {self.account}" if self.account else "an account of the invoice"
        if self.kind == "project-mandatory":
            return (
                f"{account} requires a project (ProjectSettings MANDATORY) and the invoice has "
                "none. Set the project on the invoice in Moment, or in Fortnox "
                f"({CHART_OF_ACCOUNTS}, {account}) change Projekt from Obligatoriskt to Tillåtet"
            )
        if self.kind == "project-notallowed":
            return (
                f"{account} takes no project (ProjectSettings NOTALLOWED) and the invoice has "
                f"project {self.project or '(its project)'}. Book these lines on another account "
                f"in Moment, or in Fortnox ({CHART_OF_ACCOUNTS}, {account}) change Projekt from "
                "Inte tillåtet to Tillåtet"
            )
        if self.kind == "cost-center-mandatory":
            return (
                f"{account} requires a cost centre (CostCenterSettings MANDATORY) and Moment sends "
                f"none. In Fortnox ({CHART_OF_ACCOUNTS}, {account}) change Kostnadsställe from "
                "Obligatoriskt to Tillåtet, or book these lines on another account in Moment"
            )
        project = f"project {self.project}" if self.project else "the invoice's project"
        return (
            f"the invoice date is outside {project}'s period (its start and end dates). Correct "
            f"the start or end date of {project} in Moment (target-fortnox sends them to Fortnox) "
            "or the invoice date"
        )


def account_breaches(
    account: Mapping[str, Any], project: str | None, *, cost_center: str | None = None
) -> list[RuleBreach]:
    """The rules of a Fortnox account (a list or single row) a row with ``project`` breaks."""
    number = str(account.get("Number"))
    breaches = []
    project_rule = account.get("ProjectSettings") or "ALLOWED"
    if project_rule == "MANDATORY" and not project:
        breaches.append(RuleBreach("project-mandatory", number))
    if project_rule == "NOTALLOWED" and project:
        breaches.append(RuleBreach("project-notallowed", number, project))
    if (account.get("CostCenterSettings") or "ALLOWED") == "MANDATORY" and not cost_center:
        breaches.append(RuleBreach("cost-center-mandatory", number))
    return breaches


def outside_period(day: str | None, start: str | None, end: str | None) -> bool:
    """True when ``day`` (ISO date) lies before ``start`` or after ``end`` (either may be empty)."""
    if not day:
        return False
    return bool((start and day < start[:10]) or (end and day > end[:10]))


def refusal_breach(
    message: str, row_accounts: Iterable[Any], project: str | None
) -> RuleBreach | None:
    """The rule a Fortnox refusal text names, if it is one of these.

    ``row_accounts`` and ``project`` stand in for what the text leaves out.
    """
    accounts = sorted({str(a) for a in row_accounts if a not in (None, "")})
    fallback = accounts[0] if len(accounts) == 1 else None
    if match := _MANDATORY.search(message):
        kind: Kind = (
            "project-mandatory" if match.group(1).lower() == "projekt" else "cost-center-mandatory"
        )
        return RuleBreach(kind, match.group(2) or fallback, project)
    if (match := _NOT_ALLOWED.search(message)) and match.group(1).lower() == "projekt":
        return RuleBreach("project-notallowed", match.group(2) or fallback, project)
    if match := _PERIOD.search(message):
        named = (match.group(1) or "").strip(" .,()")
        return RuleBreach("period", None, named or project)
    return None
