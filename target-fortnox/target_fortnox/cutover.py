"""``target-fortnox-cutover``: switch over from Moment's own Fortnox integration.

Moment's built-in integration has already pushed customers, projects and finalised invoices to
Fortnox under Moment's numbers (docs/SWITCH-OVER.md). Before the first moment-to-fortnox run this
command compares both systems by number and reports, per register, what matches, what differs
(field by field), what is another record under the same number, and what exists on one side
only; and it says where the first run starts: tap-moment's ``start_date``, so that the first run
reads what changed in Moment since then instead of everything Moment ever had (without it, every
old finalised invoice Moment's integration never transferred would be created in Fortnox).

What "the same" means is what target-fortnox itself compares (``mapping``): customers and
projects on every field it writes (a customer the list shows equal is read once more, for the
country code the list lacks); invoices on their header (customer, project, dates, OCR, currency)
and total, not line by line, because Moment's integration groups an invoice's lines by account.

Reads only, unless ``--apply`` (refused while a check fails); then, and nothing else:

1. ``TAP_MOMENT_START_DATE=<start>`` goes into the project's ``.env`` (``--env-file``);
2. the matching records' fingerprints go into target-fortnox's ledger (``FingerprintLedger``), so
   that when one is read again it is unchanged without a request (and an invoice whose lines
   Moment's integration grouped is not reported as a conflict);
3. one JSON line saying what was done is appended to ``cutover/target-fortnox.jsonl`` in the
   run store.

Nothing is ever written to Fortnox or Moment. Settings as ``target-fortnox-preflight``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, Final

import jsonschema
from dotenv import dotenv_values, set_key
from fortnox_client import FortnoxClient, FortnoxSettings
from fortnox_client.cli import ConfigError, load_config
from moment_client import MomentClient, MomentSettings
from moment_client.changes import parse_instant
from sync_common import CheckResult, PreflightReport, run_check
from sync_common.connection_checks import moment_integration_off
from sync_common.preflight_command import PreflightCommand

from target_fortnox.contract import STREAM_KEYS
from target_fortnox.existing import FingerprintLedger
from target_fortnox.mapping import (
    CUSTOMER_FIELDS,
    PROJECT_FIELDS,
    STOCKHOLM,
    MappedRecord,
    MappingError,
    changed_fields,
    fingerprint,
    invoice_differences,
    map_customer,
    map_invoice,
    map_project,
)
from target_fortnox.preflight import (
    MOMENT_ENV_PREFIX,
    _different_customer,
    _different_invoice,
    connections,
)
from target_fortnox.sinks import jsonable_record, validate_contract
from target_fortnox.target import PLUGIN, run_store_settings

PIPELINE = "moment-to-fortnox (Moment's own Fortnox integration → tap-moment → target-fortnox)"
START_VARIABLE = "TAP_MOMENT_START_DATE"
AUDIT_DOCUMENT = f"cutover/{PLUGIN}.jsonl"
DOC = "docs/SWITCH-OVER.md"
# Fortnox may round an invoice's total to whole kronor (öresavrundning).
TOTAL_TOLERANCE: Final = Decimal("1.00")

MATCH, DIFFERS, OTHER, MOMENT_ONLY, INVALID = "match", "differs", "other", "moment-only", "invalid"
REGISTERS: Final = {
    # stream: (Fortnox resource, number field, mapping, where to look in Fortnox)
    "customers": ("customers", "CustomerNumber", map_customer, "Register > Kunder"),
    "projects": ("projects", "ProjectNumber", map_project, "Register > Projekt"),
    "invoices": ("invoices", "DocumentNumber", map_invoice, "Fakturering > Kundfakturor"),
}
# What the first run after the switch-over does with a record Moment changed since the start.
FIRST_RUN = {
    ("customers", MATCH): "unchanged",
    ("customers", DIFFERS): "updated",
    ("customers", MOMENT_ONLY): "created",
    ("projects", MATCH): "unchanged",
    ("projects", DIFFERS): "updated",
    ("projects", MOMENT_ONLY): "created",
    ("invoices", MATCH): "unchanged",
    ("invoices", DIFFERS): "conflict",
    ("invoices", MOMENT_ONLY): "created",
}


@dataclass
class Compared:
    """One Moment record against Fortnox's record of the same number."""

    stream: str
    key: str
    status: str
    modified: datetime | None
    detail: str = ""
    payload: dict[str, Any] | None = None

    def since(self, start: datetime) -> bool:
        """Whether Moment changed it at or after ``start`` (the first run then reads it)."""
        return self.modified is not None and self.modified >= start


@dataclass
class Register:
    """One register compared: each Moment record, and Fortnox's numbers Moment does not use."""

    stream: str
    records: list[Compared] = field(default_factory=list)
    fortnox_only: list[str] = field(default_factory=list)

    def having(self, status: str) -> list[Compared]:
        return [record for record in self.records if record.status == status]

    def counts(self) -> dict[str, int]:
        found = Counter(record.status for record in self.records)
        counts = {status: found[status] for status in (MATCH, DIFFERS, OTHER, MOMENT_ONLY)}
        return {**counts, "fortnox-only": len(self.fortnox_only), INVALID: found[INVALID]}


def default_start(today: date | None = None) -> datetime:
    """Midnight today in Stockholm: the first run re-reads today's changes (those Moment's
    integration already pushed compare unchanged) and nothing older."""
    return datetime.combine(today or datetime.now(STOCKHOLM).date(), time(), STOCKHOLM)


def parse_start(text: str) -> datetime:
    """``--start``: a date (its midnight in Stockholm) or an ISO 8601 date-time with offset."""
    text = text.strip()
    try:
        if len(text) == 10:
            return default_start(date.fromisoformat(text))
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date (2026-12-01) or a date-time with offset "
            "(2026-12-01T06:00:00+01:00)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=STOCKHOLM)


def start_value(start: datetime) -> str:
    """The start as tap-moment's ``start_date`` takes it: ISO 8601 with Stockholm's offset."""
    return start.astimezone(STOCKHOLM).isoformat()


def _modified(record: Mapping[str, Any]) -> datetime | None:
    value = record.get("lastModifiedDate")
    try:
        return parse_instant(str(value)) if value else None
    except ValueError:
        return None


def invoice_total(payload: Mapping[str, Any]) -> Decimal:
    """An invoice's total including VAT, from the rows target-fortnox would send."""
    total = Decimal(0)
    for row in payload.get("InvoiceRows") or []:
        net = Decimal(str(row["DeliveredQuantity"])) * Decimal(str(row["Price"]))
        total += net * (1 + Decimal(str(row.get("VAT") or 0)) / 100)
    return total


class Cutover:
    """Compares Moment with Fortnox into a report; ``apply`` writes the start and the ledger."""

    def __init__(
        self,
        fortnox: FortnoxClient,
        moment: MomentClient,
        company_code: str,
        fortnox_config: Mapping[str, Any],
        *,
        start: datetime,
        apply: bool = False,
        env_file: Path | None = None,
    ) -> None:
        self.fortnox = fortnox
        self.moment = moment
        self.company_code = company_code
        self.fortnox_config = fortnox_config
        self.start = start
        self.apply = apply
        self.env_file = env_file or default_env_file()
        self.registers: dict[str, Register] = {}

    # --- reading and comparing ------------------------------------------------------------------

    def moment_records(self, stream: str) -> Iterator[dict[str, Any]]:
        """Moment's records of a register as tap-moment reads them (finalised invoices only)."""
        if stream != "invoices":
            yield from self.moment.list(stream)
            return
        for invoice in self.moment.list("invoices", {"invoiceState": "FINALIZED"}):
            finalised = invoice.get("invoiceState") == "FINALIZED"
            # The filter is re-checked (a draft has no number either): docs/MOMENT-API.md.
            if self.moment.filters.keep("invoices", "invoiceState", finalised) and (
                invoice.get("invoiceNumber") is not None
            ):
                yield invoice

    def compare(self, stream: str) -> Register:
        resource, number_field, to_fortnox, _ = REGISTERS[stream]
        print(f"cutover: comparing {stream} …", file=sys.stderr)
        rows = {str(row.get(number_field)): row for row in self.fortnox.list(resource)}
        register = Register(stream)
        for record in self.moment_records(stream):
            plain = jsonable_record(record)
            key = str(plain.get(STREAM_KEYS[stream]))
            modified = _modified(plain)
            try:
                validate_contract(stream, plain)
                mapped = to_fortnox(plain)
            except (jsonschema.ValidationError, MappingError) as exc:
                message = exc.message if isinstance(exc, jsonschema.ValidationError) else str(exc)
                register.records.append(Compared(stream, key, INVALID, modified, message))
                continue
            existing = rows.pop(mapped.key, None)
            register.records.append(self._compare(stream, plain, mapped, existing, modified))
        register.fortnox_only = sorted(rows, key=lambda n: (len(n), n))
        self.registers[stream] = register
        return register

    def _compare(
        self,
        stream: str,
        record: dict[str, Any],
        mapped: MappedRecord,
        existing: dict[str, Any] | None,
        modified: datetime | None,
    ) -> Compared:
        compared = Compared(stream, mapped.key, MOMENT_ONLY, modified, payload=mapped.payload)
        if existing is None:
            return compared
        # Another company, or an invoice to another customer, under Moment's number: the
        # pre-flight's number-series rules. A project has no identity beyond its name.
        other = None
        if stream == "customers":
            other = _different_customer(record, existing)
        elif stream == "invoices":
            other = _different_invoice({"customer": mapped.customer_number}, existing)
        if other is not None:
            compared.status, compared.detail = OTHER, other
            return compared
        differences = self._differences(stream, mapped, existing)
        compared.status = DIFFERS if differences else MATCH
        compared.detail = "; ".join(differences)
        return compared

    def _differences(
        self, stream: str, mapped: MappedRecord, existing: dict[str, Any]
    ) -> list[str]:
        payload = mapped.payload
        if stream == "invoices":
            if existing.get("Total") is None:  # not in this list row: the invoice has it
                existing = self.fortnox.get("invoices", mapped.key) or existing
            # The header and the total, not the rows (Moment's integration groups them).
            header = {name: value for name, value in existing.items() if name != "InvoiceRows"}
            differences = invoice_differences(payload, header)
            want, total = invoice_total(payload), existing.get("Total")
            if total is None or abs(Decimal(str(total)) - want) > TOTAL_TOLERANCE:
                differences.append(f"Total: Moment {want:.2f}, Fortnox {total}")
            return differences
        fields = CUSTOMER_FIELDS if stream == "customers" else PROJECT_FIELDS
        listed = [name for name in fields if name in existing]
        changes = changed_fields(payload, existing, listed)
        if not changes and len(listed) < len(fields):
            # The list lacks a field (a customer's CountryCode): one GET decides.
            existing = self.fortnox.get(stream, mapped.key) or existing
            changes = changed_fields(payload, existing, fields)
        return [
            f"{name}: Moment {payload.get(name)!r}, Fortnox {existing.get(name)!r}"
            for name in changes
        ]

    # --- the report -----------------------------------------------------------------------------

    def run(self) -> PreflightReport:
        report = PreflightReport(PIPELINE, title="Switch-over")
        connected = connections(report, self.fortnox, self.moment, self.company_code)
        report.add(
            moment_integration_off("moment-to-fortnox", "push the same customers and invoices")
        )
        report.details["start"] = start_value(self.start)
        report.details["applied"] = False
        if not (connected.fortnox and connected.moment):
            return report
        streams = [s for s in REGISTERS if s != "projects" or connected.project_module]
        for stream in streams:
            run_check(report, stream, partial(self.check_register, stream))
        if len(self.registers) < len(streams):
            return report  # a register could not be read: nothing to say about the start
        report.details["registers"] = {s: r.counts() for s, r in self.registers.items()}
        report.details["first_run"] = self.first_run()
        if unreachable := self.unreachable():
            report.add(
                CheckResult(
                    "invoices-missing-reference",
                    "warn",
                    f"{len(unreachable)} invoices the first run sends are to customers or "
                    "projects it will not find in Fortnox: they fail (dead letters) until those "
                    "are there",
                    "Save each customer or project once in Moment after the start (the next run "
                    "creates it and retries the invoice), or choose an earlier --start.",
                    unreachable,
                )
            )
        report.add(self.start_result())
        if self.apply:
            report.add(self.apply_result(report))
        return report

    def check_register(self, stream: str) -> list[CheckResult]:
        register = self.compare(stream)
        where = REGISTERS[stream][3]
        results = [self._matching(register)]
        if differ := register.having(DIFFERS):
            fix = (
                "Never overwritten: if one is read again it is reported as a conflict. Align it "
                "by hand in Fortnox if it matters."
                if stream == "invoices"
                else "Moment is master: the first run after a change in Moment writes Moment's "
                f"values; to align one now, save it in Moment after the start, or correct it in "
                f"Fortnox ({where})."
            )
            results.append(
                CheckResult(
                    f"{stream}-differ",
                    "warn",
                    f"{len(differ)} {stream} exist in both with different content"
                    + self._since_note(differ),
                    fix,
                    [self._item(c) for c in differ],
                )
            )
        if other := register.having(OTHER):
            results.append(
                CheckResult(
                    f"{stream}-other-record",
                    "fail",
                    f"{len(other)} Fortnox {stream} hold a Moment number for a different record",
                    f"In Fortnox ({where}) renumber or remove these records, or renumber them in "
                    "Moment; then run the switch-over report again.",
                    [self._item(c) for c in other],
                )
            )
        if only := register.having(MOMENT_ONLY):
            old = [c for c in only if not c.since(self.start)]
            results.append(
                CheckResult(
                    f"{stream}-moment-only",
                    "warn" if old else "pass",
                    f"{len(only)} Moment {stream} are not in Fortnox"
                    + self._since_note(only, "the first run creates them"),
                    self._moment_only_fix(stream),
                    [self._item(c) for c in only],
                )
            )
        if invalid := register.having(INVALID):
            results.append(
                CheckResult(
                    f"{stream}-invalid",
                    "warn",
                    f"{len(invalid)} Moment {stream} cannot be sent to Fortnox as they are (a "
                    "run fails them alone, with this message, when it reads them)",
                    "Correct them in Moment.",
                    [self._item(c) for c in invalid],
                )
            )
        if register.fortnox_only:
            results.append(
                CheckResult(
                    f"{stream}-fortnox-only",
                    "pass",
                    f"{len(register.fortnox_only)} Fortnox {stream} have numbers Moment does not "
                    "use; they are left alone",
                    items=register.fortnox_only,
                )
            )
        return results

    def _matching(self, register: Register) -> CheckResult:
        same = register.having(MATCH)
        adopted = (
            "recorded in target-fortnox's ledger"
            if self.apply
            else "--apply records them in target-fortnox's ledger"
        )
        return CheckResult(
            f"{register.stream}-match",
            "pass",
            f"{len(same)} of {len(register.records)} Moment {register.stream} are the same in "
            f"Fortnox ({adopted}, so a re-read counts them unchanged)",
        )

    def _since_note(self, records: list[Compared], what: str | None = None) -> str:
        since = sum(c.since(self.start) for c in records)
        if not since:
            return f"; none changed in Moment since the start {start_value(self.start)}"
        note = f"; {since} changed in Moment since the start {start_value(self.start)}"
        return note + (f" ({what})" if what else " (the first run reads them)")

    def _item(self, compared: Compared) -> str:
        when = compared.modified.astimezone(STOCKHOLM).date() if compared.modified else "?"
        since = ", read by the first run" if compared.since(self.start) else ""
        detail = f": {compared.detail}" if compared.detail else ""
        return f"{compared.key} (changed {when}{since}){detail}"

    def _moment_only_fix(self, stream: str) -> str:
        if stream == "invoices":
            return (
                "Moment's integration did not transfer these (finalised before it was switched "
                "on, or their transfer failed). Those changed before the start are not sent; to "
                f"send one, see {DOC} (a one-off run from its date)."
            )
        return (
            "Those changed before the start are not sent, and an invoice to one of them fails "
            "(dead letter) until it is: save it once in Moment after the start and the next run "
            "creates it."
        )

    def unreachable(self) -> list[str]:
        """Invoices the first run creates whose customer or project will not be in Fortnox
        (Moment-only, changed before the start, or invalid): they fail until it is."""
        absent = {
            stream: {
                c.key
                for c in register.records
                if c.status == INVALID or (c.status == MOMENT_ONLY and not c.since(self.start))
            }
            for stream, register in self.registers.items()
        }
        found = []
        for invoice in self.registers["invoices"].records if "invoices" in self.registers else []:
            if invoice.status != MOMENT_ONLY or not invoice.since(self.start):
                continue
            payload = invoice.payload or {}
            customer, project = payload.get("CustomerNumber"), payload.get("Project")
            if customer in absent.get("customers", ()):
                found.append(f"{invoice.key}: customer {customer} is not in Fortnox")
            elif project in absent.get("projects", ()):
                found.append(f"{invoice.key}: project {project} is not in Fortnox")
        return found

    def first_run(self) -> dict[str, dict[str, int]]:
        """What the first run after the switch-over does with each register, by outcome."""
        plans: dict[str, dict[str, int]] = {}
        blocked = {item.split(":")[0] for item in self.unreachable()}
        for stream, register in self.registers.items():
            read = [c for c in register.records if c.since(self.start)]
            outcomes = Counter(
                "failed"
                if stream == "invoices" and c.key in blocked
                else FIRST_RUN.get((stream, c.status), "failed")
                for c in read
            )
            plans[stream] = {
                outcome: outcomes[outcome]
                for outcome in ("created", "updated", "unchanged", "conflict", "failed")
            }
        return plans

    def start_result(self) -> CheckResult:
        plans = self.first_run()
        shown = "; ".join(
            f"{stream}: " + ", ".join(f"{n} {outcome}" for outcome, n in plan.items() if n)
            for stream, plan in plans.items()
            if any(plan.values())
        )
        value = f"{START_VARIABLE}={start_value(self.start)}"
        return CheckResult(
            "start",
            "pass",
            f"the first run starts at {start_value(self.start)} ({value}) and reads only what "
            f"Moment changed since: {shown or 'nothing yet'}; older records are not read",
            "",
            [value],
        )

    # --- --apply --------------------------------------------------------------------------------

    def apply_result(self, report: PreflightReport) -> CheckResult:
        if not report.ready:
            return CheckResult(
                "apply",
                "fail",
                "not applied: a check above failed",
                "Fix the failed checks, then run the switch-over again with --apply.",
            )
        try:
            previous = write_start(self.env_file, start_value(self.start))
            adopted, logged_in = self.adopt()
        except OSError as exc:
            return CheckResult(
                "apply", "fail", f"not applied: {exc}", "Fix the path or its permissions."
            )
        report.details["applied"] = True
        report.details["env_file"] = str(self.env_file)
        report.details["adopted"] = {stream: len(keys) for stream, keys in adopted.items()}
        overridden = os.environ.get(START_VARIABLE)
        note = ""
        if overridden and overridden not in (previous, start_value(self.start)):
            note = (
                f" Note: {START_VARIABLE}={overridden} is set in the environment, which wins "
                "over .env: change it there too."
            )
        return CheckResult(
            "apply",
            "pass",
            f"applied: {START_VARIABLE}={start_value(self.start)} written to {self.env_file}"
            + (f" (was {previous})" if previous else "")
            + "; "
            + ", ".join(f"{len(keys)} {stream}" for stream, keys in adopted.items())
            + f" recorded in target-fortnox's ledger; logged in {logged_in}."
            + note,
        )

    def adopt(self) -> tuple[dict[str, list[str]], str]:
        """The matching records' fingerprints into the ledger, and one audit line (where)."""
        store = run_store_settings(self.fortnox_config).open()
        try:
            ledger = FingerprintLedger(store, PLUGIN)
            adopted: dict[str, list[str]] = {}
            for stream, register in self.registers.items():
                keys = adopted.setdefault(stream, [])
                for compared in register.having(MATCH):
                    assert compared.payload is not None
                    ledger.put(stream, compared.key, fingerprint(compared.payload))
                    keys.append(compared.key)
            ledger.save()
            line = {
                "applied_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "start": start_value(self.start),
                "env_file": str(self.env_file),
                "adopted": adopted,
                "registers": {s: r.counts() for s, r in self.registers.items()},
            }
            store.append(AUDIT_DOCUMENT, json.dumps(line, ensure_ascii=False) + "\n")
            return adopted, store.where(AUDIT_DOCUMENT)
        finally:
            store.close()


def default_env_file() -> Path:
    """The Meltano project's ``.env`` (Meltano runs a plugin command from the project folder and
    names it in ``MELTANO_PROJECT_ROOT``)."""
    return Path(os.environ.get("MELTANO_PROJECT_ROOT") or ".") / ".env"


def write_start(env_file: Path, value: str) -> str | None:
    """Set ``TAP_MOMENT_START_DATE`` in ``env_file`` (created when absent, other lines kept);
    returns the value it replaced."""
    previous = dotenv_values(env_file).get(START_VARIABLE) if env_file.exists() else None
    env_file.parent.mkdir(parents=True, exist_ok=True)
    env_file.touch(mode=0o600, exist_ok=True)
    set_key(str(env_file), START_VARIABLE, value, quote_mode="never")
    return previous


# --- command line ------------------------------------------------------------------------------


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--start",
        type=parse_start,
        metavar="DATE|DATETIME",
        help="where the first run starts: a date (its midnight in Stockholm) or an ISO date-time "
        "with offset; default: today's midnight in Stockholm",
    )
    parser.add_argument(
        "--apply",
        action="store_true",
        help=f"write {START_VARIABLE} to --env-file and record the matching records in the "
        "ledger (refused while a check fails); without it the command only reads",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        metavar="PATH",
        help="the .env that --apply writes (default: the Meltano project's .env)",
    )


COMMAND = PreflightCommand(
    prog="target-fortnox-cutover",
    description="Switch over from Moment's own Fortnox integration: compare Moment and Fortnox "
    f"by number and set where the first moment-to-fortnox run starts ({DOC}).",
    settings_label="target-fortnox settings",
    env_prefix="TARGET_FORTNOX",
    moment_env_prefix=MOMENT_ENV_PREFIX,
    options=_options,
)


def connect(
    fortnox_config: Mapping[str, Any], moment_config: Mapping[str, Any], args: argparse.Namespace
) -> Cutover:
    return Cutover(
        FortnoxClient(FortnoxSettings.from_config(fortnox_config)),
        MomentClient(MomentSettings.from_config(moment_config)),
        str(moment_config.get("company_code")),
        fortnox_config,
        start=args.start or default_start(),
        apply=args.apply,
        env_file=args.env_file,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return COMMAND.main(argv, load_config=load_config, config_error=ConfigError, connect=connect)


if __name__ == "__main__":
    sys.exit(main())
