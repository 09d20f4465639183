"""``target-fortnox-preflight``: is Fortnox ready for Moment's customers, projects and invoices?

Owns the checks of the moment-to-fortnox pipeline before its first real run (README): Fortnox
token and scopes, project module, a financial year covering today, the Moment API key, every
account number and VAT rate Moment's invoice lines use, those accounts' project and cost-centre
rules and the project periods of the invoices still to push, Fortnox's OCR setting, number-series
collisions (Fortnox records holding numbers Moment uses or will use), and Moment project numbers
that do not fit Fortnox's 20 characters. Each check passes or fails with the exact fix; the exit
code is 1 when a blocking check failed, and ``--json`` prints the report for automation.

Settings: the target's own (``--config ENV`` reads ``TARGET_FORTNOX_*``, as Meltano exports
them to a plugin command, or ``--config file.json``), plus Moment's, which the target does not
have: ``--moment-config ENV`` (default) reads the tap's variables ``TAP_MOMENT_API_URL``,
``TAP_MOMENT_COMPANY_CODE`` and ``TAP_MOMENT_API_KEY`` (from the environment or ``.env``), or
``--moment-config moment.json``. Reads only: nothing is written to either system.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fortnox_client import FortnoxClient, FortnoxSettings
from fortnox_client.cli import ConfigError, load_config
from moment_client import MomentClient, MomentSettings, known_project_state
from sync_common import CheckResult, PreflightReport, meltano_command, run_check
from sync_common.connection_checks import Connections, check_connections
from sync_common.moment_checks import check_moment_reads
from sync_common.preflight_command import PreflightCommand

from target_fortnox.account_rules import CHART_OF_ACCOUNTS, account_breaches, outside_period
from target_fortnox.mapping import PROJECT_DESCRIPTION_MAX

PIPELINE = "moment-to-fortnox (tap-moment → target-fortnox)"
# The authorise command's arguments; printed with the environment the check runs in.
AUTHORIZE = "invoke target-fortnox:authorize"
# customers/projects/invoices are written; bookkeeping reads accounts and financial years;
# companyinformation names the company.
REQUIRED_SCOPES = ("customer", "project", "invoice", "bookkeeping", "companyinformation")
# Fortnox invoice rows take Sweden's VAT rates only (docs/FORTNOX-API.md, "Resources").
FORTNOX_VAT_RATES = (25.0, 12.0, 6.0, 0.0)
PROJECT_NUMBER_MAX = 20
MOMENT_ENV_PREFIX = "TAP_MOMENT"


@dataclass
class MomentData:
    """What the checks need from Moment, read once: numbers, names, lines' accounts and VAT."""

    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Finalised invoices by number: customer number and OCR only (memory stays small).
    invoices: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    line_accounts: dict[str, list[str]] = field(default_factory=dict)  # account -> invoices
    line_vat_rates: dict[float, list[str]] = field(default_factory=dict)
    financial_accounts: set[str] = field(default_factory=set)
    # Finalised invoices by number: (project number or None, invoice date) for the posting rules.
    invoice_postings: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)

    @classmethod
    def read(cls, moment: MomentClient) -> MomentData:
        data = cls()
        for customer in moment.list("customers"):
            data.customers[str(customer["customerNumber"])] = customer
        for project in moment.list("projects"):
            data.projects[str(project["projectNumber"])] = project
        for invoice in moment.list("invoices", {"invoiceState": "FINALIZED"}):
            number = invoice.get("invoiceNumber")
            # The filter is re-checked (a draft has no number either): docs/MOMENT-API.md.
            finalised = invoice.get("invoiceState") == "FINALIZED"
            if not moment.filters.keep("invoices", "invoiceState", finalised) or number is None:
                continue
            key = str(number)
            billed = (invoice.get("customer") or {}).get("customerNumber")
            data.invoices[key] = (None if billed is None else str(billed), invoice.get("ocr"))
            on = (invoice.get("project") or {}).get("projectNumber")
            day = invoice.get("invoiceDate")
            data.invoice_postings[key] = (
                None if on in (None, "") else str(on),
                None if not day else str(day)[:10],
            )
            for line in invoice.get("invoiceLines") or []:
                if line.get("accountNumber") is not None:
                    data.line_accounts.setdefault(str(line["accountNumber"]), []).append(key)
                if line.get("vatRate") is not None:
                    data.line_vat_rates.setdefault(float(line["vatRate"]), []).append(key)
        data.financial_accounts = {
            str(account["accountNumber"]) for account in moment.list("financialAccounts")
        }
        return data


def connections(
    report: PreflightReport, fortnox: FortnoxClient, moment: MomentClient, company_code: str
) -> Connections:
    """The connection checks this pipeline starts with (pre-flight and switch-over)."""
    return check_connections(
        report,
        fortnox,
        moment,
        company_code,
        required_scopes=REQUIRED_SCOPES,
        authorize_command=meltano_command(AUTHORIZE),
        moment_env_prefix=MOMENT_ENV_PREFIX,
    )


def _numeric(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def _examples(numbers: Sequence[str], n: int = 3) -> str:
    shown = ", ".join(numbers[:n])
    return shown + (f" and {len(numbers) - n} more" if len(numbers) > n else "")


class MomentToFortnoxPreflight:
    """Runs every check of the pipeline into a ``PreflightReport``; reads, never writes."""

    def __init__(self, fortnox: FortnoxClient, moment: MomentClient, company_code: str) -> None:
        self.fortnox = fortnox
        self.moment = moment
        self.company_code = company_code
        self._moment_data: MomentData | None = None
        # False when /3/projects refuses (2001101, 2000663): the project-module check said so.
        self.project_module_on = True
        self._fortnox_invoices: dict[str, dict[str, Any]] | None = None
        self._fortnox_accounts: dict[str, dict[str, Any]] | None = None

    @property
    def moment_data(self) -> MomentData:
        if self._moment_data is None:
            self._moment_data = MomentData.read(self.moment)
        return self._moment_data

    def run(self, today: date | None = None) -> PreflightReport:
        report = PreflightReport(PIPELINE)
        connected = connections(report, self.fortnox, self.moment, self.company_code)
        fortnox_ok, moment_ok = connected.fortnox, connected.moment
        self.project_module_on = connected.project_module
        if fortnox_ok:
            run_check(report, "financial-year", lambda: self.check_financial_year(today))
        if moment_ok:
            # Read-only probes of the inferred filters and states (docs/MOMENT-API.md).
            check_moment_reads(report, self.moment, known_project_state)
            run_check(report, "project-numbers", self.check_project_numbers)
        if fortnox_ok and moment_ok:
            run_check(report, "accounts", self.check_accounts)
            run_check(report, "account-rules", self.check_account_rules)
            run_check(report, "project-periods", self.check_project_periods)
            run_check(report, "vat-rates", self.check_vat_rates)
            run_check(report, "number-series", self.check_number_series)
            run_check(report, "ocr", self.check_ocr)
        return report

    @property
    def fortnox_invoices(self) -> dict[str, dict[str, Any]]:
        """Fortnox's invoice list rows by DocumentNumber, listed once for two checks."""
        if self._fortnox_invoices is None:
            self._fortnox_invoices = {
                str(i["DocumentNumber"]): i for i in self.fortnox.list("invoices")
            }
        return self._fortnox_invoices

    @property
    def fortnox_accounts(self) -> dict[str, dict[str, Any]]:
        """Fortnox's chart of accounts by number (with ProjectSettings, CostCenterSettings)."""
        if self._fortnox_accounts is None:
            listed = self.fortnox.list("accounts")
            self._fortnox_accounts = {str(a.get("Number")): a for a in listed}
        return self._fortnox_accounts

    def pending_invoices(self) -> list[str]:
        """Moment's finalised invoices not in Fortnox yet: the ones a run would still write."""
        return [n for n in self.moment_data.invoices if n not in self.fortnox_invoices]

    # --- Fortnox alone -------------------------------------------------------------------------

    def check_financial_year(self, today: date | None = None) -> CheckResult:
        day = (today or date.today()).isoformat()
        body = self.fortnox.get_path("financialyears", {"date": day})
        years = body.get("FinancialYears") or []
        if years:
            year = years[0]
            return CheckResult(
                "financial-year",
                "pass",
                f"financial year {year.get('FromDate')} – {year.get('ToDate')} covers {day}",
            )
        return CheckResult(
            "financial-year",
            "fail",
            f"no Fortnox financial year covers {day}: invoices dated today cannot be booked",
            "In Fortnox create the financial year (Inställningar > Bokföring > Räkenskapsår, "
            "'Skapa nytt räkenskapsår'), then run the pre-flight check again.",
        )

    # --- Moment alone --------------------------------------------------------------------------

    def check_project_numbers(self) -> CheckResult:
        too_long = [n for n in self.moment_data.projects if len(n) > PROJECT_NUMBER_MAX]
        if too_long:
            return CheckResult(
                "project-numbers",
                "fail",
                f"{len(too_long)} Moment project number(s) exceed Fortnox's "
                f"{PROJECT_NUMBER_MAX} characters; those projects (and their invoices and "
                "expenses) would fail",
                f"Shorten these project numbers in Moment to {PROJECT_NUMBER_MAX} characters.",
                sorted(too_long),
            )
        return CheckResult(
            "project-numbers",
            "pass",
            f"all {len(self.moment_data.projects)} Moment project numbers fit "
            f"{PROJECT_NUMBER_MAX} characters",
        )

    # --- both ----------------------------------------------------------------------------------

    def check_accounts(self) -> list[CheckResult]:
        fortnox_accounts = set(self.fortnox_accounts)
        used = self.moment_data.line_accounts
        missing = sorted(a for a in used if a not in fortnox_accounts)
        results: list[CheckResult] = []
        if missing:
            results.append(
                CheckResult(
                    "accounts",
                    "fail",
                    f"{len(missing)} account number(s) on Moment invoice lines do not exist in "
                    "Fortnox; those invoices would fail with 2001304",
                    "Create the accounts in Fortnox's chart of accounts (Bokföring > "
                    "Kontoplan) or change the lines' accounts in Moment's financial accounts.",
                    [f"{a} (invoices {_examples(used[a])})" for a in missing],
                )
            )
        else:
            results.append(
                CheckResult(
                    "accounts",
                    "pass",
                    f"all {len(used)} account numbers on Moment invoice lines exist in Fortnox",
                )
            )
        unused_missing = sorted(self.moment_data.financial_accounts - fortnox_accounts - set(used))
        if unused_missing:
            results.append(
                CheckResult(
                    "accounts-unused",
                    "warn",
                    f"{len(unused_missing)} of Moment's financial accounts are not in Fortnox "
                    "(no invoice line uses them yet)",
                    "Create them in Fortnox before an invoice line uses them, or remove them "
                    "from Moment.",
                    unused_missing,
                )
            )
        return results

    def check_account_rules(self) -> CheckResult:
        """The ProjectSettings / CostCenterSettings of the accounts on Moment's invoice lines,
        against each invoice still to push (with or without a project; never a cost centre)."""
        data = self.moment_data
        pending = set(self.pending_invoices())
        refused: dict[str, list[str]] = {}  # what would be refused -> invoices
        ruled = 0
        for number, invoices in sorted(data.line_accounts.items()):
            account = self.fortnox_accounts.get(number)
            if account is None:
                continue  # the accounts check reports it
            ruled += any(
                account.get(s) in ("MANDATORY", "NOTALLOWED")
                for s in ("ProjectSettings", "CostCenterSettings")
            )
            for invoice in dict.fromkeys(invoices):
                if invoice not in pending:
                    continue
                project = data.invoice_postings.get(invoice, (None, None))[0]
                for breach in account_breaches(account, project):
                    refused.setdefault(breach.describe(), []).append(invoice)
        if refused:
            return CheckResult(
                "account-rules",
                "fail",
                f"{len({i for inv in refused.values() for i in inv})} Moment invoice(s) not yet "
                "in Fortnox have lines on accounts whose project or cost-centre rule they break; "
                "Fortnox refuses those invoices",
                "For each item: follow what it says — set the project in Moment, or change the "
                f"account's Projekt / Kostnadsställe setting in Fortnox ({CHART_OF_ACCOUNTS}). "
                "Then run the pre-flight check again.",
                [f"invoices {_examples(inv)}: {why}" for why, inv in refused.items()],
            )
        return CheckResult(
            "account-rules",
            "pass",
            f"no invoice still to push breaks an account rule ({ruled} of the "
            f"{len(data.line_accounts)} accounts on Moment invoice lines require or refuse a "
            "project or cost centre)",
        )

    def check_project_periods(self) -> CheckResult:
        """Invoices still to push dated outside their project's start–end dates (as Moment has
        them: target-fortnox sends them to Fortnox). Seen refused on vouchers; on invoices when
        booked (inferred), so a warning."""
        data = self.moment_data
        outside = []
        for invoice in self.pending_invoices():
            project, day = data.invoice_postings.get(invoice, (None, None))
            if not project or project not in data.projects:
                continue
            moment_project = data.projects[project]
            start = moment_project.get("startDate") or moment_project.get("createdDate")
            end = moment_project.get("endDate")
            if outside_period(day, start, end):
                outside.append(
                    f"invoice {invoice} dated {day}: project {project} runs "
                    f"{(start or '…')[:10]} – {(end or '…')[:10]}"
                )
        if outside:
            return CheckResult(
                "project-periods",
                "warn",
                f"{len(outside)} Moment invoice(s) not yet in Fortnox are dated outside their "
                "project's period; Fortnox refuses to book a project posting outside it "
                "('Projektredovisningsperioden är inte aktiv för projekt')",
                "Correct the projects' start or end dates in Moment (target-fortnox sends them to "
                "Fortnox), or the invoice dates.",
                outside,
            )
        return CheckResult(
            "project-periods",
            "pass",
            "every invoice still to push is dated within its project's period",
        )

    def check_vat_rates(self) -> CheckResult:
        rates = self.moment_data.line_vat_rates
        wrong = sorted(r for r in rates if r not in FORTNOX_VAT_RATES)
        if wrong:
            return CheckResult(
                "vat-rates",
                "fail",
                f"VAT rate(s) {', '.join(f'{r:g}' for r in wrong)} % on Moment invoice lines "
                "are not Fortnox VAT rates (25, 12, 6, 0)",
                "Correct the VAT codes in Moment (Settings > VAT codes) and the lines of the "
                "invoices listed; Fortnox accepts 25, 12, 6 and 0 %.",
                [f"{r:g} % (invoices {_examples(rates[r])})" for r in wrong],
            )
        shown = ", ".join(f"{r:g}" for r in sorted(rates, reverse=True)) or "none yet"
        return CheckResult(
            "vat-rates", "pass", f"VAT rates on Moment invoice lines ({shown}) exist in Fortnox"
        )

    def check_number_series(self) -> list[CheckResult]:
        data = self.moment_data
        customers = {str(c["CustomerNumber"]): c for c in self.fortnox.list("customers")}
        invoices = self.fortnox_invoices
        results = [
            self._series(
                "customers",
                data.customers,
                customers,
                _different_customer,
                "Register > Kunder",
            )
        ]
        if self.project_module_on:
            projects = {str(p["ProjectNumber"]): p for p in self.fortnox.list("projects")}
            results.append(
                self._series(
                    "projects", data.projects, projects, _different_project, "Register > Projekt"
                )
            )
        results.append(
            self._series(
                "invoices",
                {n: {"customer": c} for n, (c, _) in data.invoices.items()},
                invoices,
                _different_invoice,
                "Fakturering > Kundfakturor",
            )
        )
        return results

    def _series(
        self,
        register: str,
        moment_records: Mapping[str, Mapping[str, Any]],
        fortnox_records: Mapping[str, Mapping[str, Any]],
        differs: Callable[[Mapping[str, Any], Mapping[str, Any]], str | None],
        where: str,
    ) -> CheckResult:
        """Same number, different record: fail. Fortnox-only numbers Moment's series will
        reach (at or above Moment's lowest number): warn, so the series can be moved in time."""
        name = f"number-series-{register}"
        taken = sorted(
            f"{number}: {reason}"
            for number, record in moment_records.items()
            if number in fortnox_records
            and (reason := differs(record, fortnox_records[number])) is not None
        )
        moment_numbers = [n for n in map(_numeric, moment_records) if n is not None]
        lowest = min(moment_numbers, default=None)
        ahead = sorted(
            (int(n) for n in fortnox_records if n not in moment_records and n.isdigit()),
        )
        ahead = [n for n in ahead if lowest is not None and n >= lowest]
        if taken:
            return CheckResult(
                name,
                "fail",
                f"{len(taken)} Fortnox {register} use numbers Moment uses for a different "
                f"record; pushing would update or conflict with the wrong {register}",
                f"In Fortnox ({where}) renumber or remove these records (a deleted customer "
                "number stays reserved: renumber it in Moment instead), then run pre-flight again. "
                "A project renamed in Moment since its last push also shows here; the next "
                "run updates it.",
                taken,
            )
        if ahead:
            return CheckResult(
                name,
                "warn",
                f"{len(ahead)} Fortnox-only {register} have numbers at or above Moment's lowest "
                f"({lowest}); Moment's series will reach them",
                "Start Fortnox's own number series far above Moment's (Inställningar > "
                "Fakturering > Nummerserier och OCR) or renumber those records in Fortnox.",
                [str(n) for n in ahead],
            )
        return CheckResult(
            name,
            "pass",
            f"no Fortnox {register} hold numbers of Moment's series "
            f"({len(moment_records)} in Moment, {len(fortnox_records)} in Fortnox)",
        )

    def check_ocr(self) -> CheckResult:
        """Fortnox's OCR switch is UI-only: its effect shows as a pushed invoice whose OCR is not
        Moment's. Without such an invoice the setting cannot be seen, so it is a manual check."""
        pushed = {
            number: invoice.get("OCR")
            for number, invoice in self.fortnox_invoices.items()
            if number in self.moment_data.invoices
        }
        with_ocr = {
            n: ocr for n, (_, ocr) in self.moment_data.invoices.items() if ocr and n in pushed
        }
        differing = sorted(
            f"{n}: Moment OCR {ocr}, Fortnox OCR {pushed[n] or '(none)'}"
            for n, ocr in with_ocr.items()
            if (pushed[n] or "") != ocr
        )
        menu = (
            "In Fortnox turn OCR off for customer invoices: Inställningar > Fakturering > "
            "Nummerserier och OCR, untick OCR for Kundfakturor (Moment generates the OCR)."
        )
        if differing:
            return CheckResult(
                "ocr",
                "fail",
                f"{len(differing)} invoice(s) in Fortnox carry an OCR that is not Moment's: "
                "Fortnox's OCR setting is on",
                menu + " Then credit and re-send the listed invoices if customers pay by them.",
                differing,
            )
        if with_ocr:
            return CheckResult(
                "ocr",
                "pass",
                f"{len(with_ocr)} invoice(s) already in Fortnox keep Moment's OCR",
            )
        return CheckResult(
            "ocr",
            "manual",
            "Fortnox's OCR setting is not readable through the API and no Moment invoice is "
            "in Fortnox yet to show its effect",
            menu,
        )


# Company-form words that say nothing about which company it is: "Acme AB", "ACME Aktiebolag"
# and "AB Acme" are one company. Swedish forms first, then the neighbours' and common foreign ones.
COMPANY_FORMS = frozenset(
    {
        "ab", "aktiebolag", "aktiebolaget", "publ", "hb", "handelsbolag", "handelsbolaget",
        "kb", "kommanditbolag", "kommanditbolaget", "ek", "för", "ekonomisk", "förening",
        "as", "asa", "a/s", "aps", "oy", "oyj", "ab oy", "gmbh", "ag", "ltd", "limited",
        "inc", "llc", "plc", "bv", "nv", "sa", "sarl",
    }
)  # fmt: skip


def company_name_key(name: str | None) -> str:
    """``name`` reduced to what identifies a company: case, spacing, punctuation and company
    forms (AB, Aktiebolag, (publ), HB, AS, Oy, GmbH, ...) do not count."""
    words = re.findall(r"[^\W_]+(?:/[^\W_]+)?", (name or "").casefold())
    kept = [word for word in words if word not in COMPANY_FORMS]
    return " ".join(kept or words)


def _different_customer(moment: Mapping[str, Any], fortnox: Mapping[str, Any]) -> str | None:
    """Why Fortnox's customer on Moment's number is another company, or None.

    Organisation numbers decide when both sides have one; otherwise the names must match
    (compared by ``company_name_key``), so a Moment customer without an organisation number
    cannot silently overwrite another company in Fortnox.
    """
    org_m = re.sub(r"\D", "", str(moment.get("organizationNumber") or ""))
    org_f = re.sub(r"\D", "", str(fortnox.get("OrganisationNumber") or ""))
    described = (
        f"Fortnox {fortnox.get('Name')!r} ({fortnox.get('OrganisationNumber') or 'no org. no.'})"
        f" is not Moment {moment.get('name')!r} "
        f"({moment.get('organizationNumber') or 'no org. no.'})"
    )
    if org_m and org_f:
        return f"{described}: organisation numbers differ" if org_m != org_f else None
    name_m, name_f = company_name_key(moment.get("name")), company_name_key(fortnox.get("Name"))
    if name_m and name_f and name_m != name_f:
        missing = "Moment" if not org_m else "Fortnox"
        missing = "either side" if not org_m and not org_f else missing
        return (
            f"{described}: names differ and {missing} has no organisation number to tell; "
            "if it is the same company renamed, set its organisation number in Moment"
        )
    return None


def _different_project(moment: Mapping[str, Any], fortnox: Mapping[str, Any]) -> str | None:
    # Fortnox projects carry no customer, so the name is the only identity to compare; the
    # Description is Moment's name cut to 50 characters (and stripped of refused characters).
    name = str(moment.get("name") or "")[:PROJECT_DESCRIPTION_MAX].strip().casefold()
    description = str(fortnox.get("Description") or "").strip().casefold()
    if description and name and not (name.startswith(description) or description in name):
        return f"Fortnox {fortnox.get('Description')!r} is not Moment {moment.get('name')!r}"
    return None


def _different_invoice(moment: Mapping[str, Any], fortnox: Mapping[str, Any]) -> str | None:
    customer = moment.get("customer")
    if customer is not None and str(fortnox.get("CustomerNumber")) != customer:
        return (
            f"Fortnox invoice is to customer {fortnox.get('CustomerNumber')}, Moment's to "
            f"customer {customer}"
        )
    return None


# --- command line ------------------------------------------------------------------------------


COMMAND = PreflightCommand(
    prog="target-fortnox-preflight",
    description="Check Fortnox and Moment before the first moment-to-fortnox run (reads only).",
    settings_label="target-fortnox settings",
    env_prefix="TARGET_FORTNOX",
    moment_env_prefix=MOMENT_ENV_PREFIX,
)


def connect(
    fortnox_config: Mapping[str, Any], moment_config: Mapping[str, Any]
) -> MomentToFortnoxPreflight:
    return MomentToFortnoxPreflight(
        FortnoxClient(FortnoxSettings.from_config(fortnox_config)),
        MomentClient(MomentSettings.from_config(moment_config)),
        str(moment_config.get("company_code")),
    )


def main(argv: Sequence[str] | None = None) -> int:
    return COMMAND.main(argv, load_config=load_config, config_error=ConfigError, connect=connect)


if __name__ == "__main__":
    sys.exit(main())
