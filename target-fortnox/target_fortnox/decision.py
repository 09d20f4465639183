"""What to do with one mapped record, given what Fortnox holds: create, update, unchanged, conflict.

Pure functions, no I/O, as ``target_moment.expense_plan`` is for expenses: the sinks read what
Fortnox holds (``existing``), decide here, and hand the decision to an executor (``executor``:
the writer, or the dry-run planner). A list row lacks some fields (a customer's CountryCode, an
invoice's rows); when only those could differ the decision is ``None``, "read the full record
first", unless the fingerprint ledger shows that what was last written is what is sent now.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sync_common.target_base import Action

from target_fortnox.mapping import changed_fields, invoice_differences, write_value


@dataclass(frozen=True)
class Decision:
    """The action for one record; an update's changed fields, a conflict's explanation."""

    action: Action
    changes: dict[str, Any] = field(default_factory=dict)
    detail: str | None = None


def decide_register(
    payload: Mapping[str, Any],
    existing: Mapping[str, Any] | None,
    fields: Sequence[str],
    *,
    fingerprint_matches: bool,
    send_unlisted: bool,
    complete: bool = False,
) -> Decision | None:
    """Decide for a register Moment masters (customers, projects): PUT only what differs.

    ``existing`` is Fortnox's list row, or its full record when ``complete``. Fields the row lacks
    need no check when the ledger's fingerprint matches; otherwise, when a listed field changed
    and ``send_unlisted`` (a real write: an equal PUT is a no-op, cheaper than a GET), they ride
    along in the update, and else only the full record can tell (``None``).
    """
    if existing is None:
        return Decision(Action.CREATE)
    if complete:
        changes = changed_fields(payload, existing, fields)
    else:
        changes = changed_fields(payload, existing, [name for name in fields if name in existing])
        unlisted = [name for name in fields if name not in existing]
        if unlisted and not fingerprint_matches:
            if not (changes and send_unlisted):
                return None
            changes.update({name: write_value(payload.get(name)) for name in unlisted})
    return Decision(Action.UPDATE, changes) if changes else Decision(Action.UNCHANGED)


def decide_invoice(
    key: str,
    payload: Mapping[str, Any],
    existing: Mapping[str, Any] | None,
    *,
    fingerprint_matches: bool,
    complete: bool = False,
) -> Decision | None:
    """Decide for an invoice: a booked invoice is law, so it is never updated.

    An invoice in Fortnox is unchanged when equal, a conflict (reported, never a PUT) when not.
    A list row has no rows: equal headers need the full record (``None``) unless the ledger's
    fingerprint matches.
    """
    if existing is None:
        return Decision(Action.CREATE)
    differences = invoice_differences(payload, existing)
    if not differences and not complete and "InvoiceRows" not in existing:
        return Decision(Action.UNCHANGED) if fingerprint_matches else None
    if not differences:
        return Decision(Action.UNCHANGED)
    return Decision(
        Action.CONFLICT,
        detail=(
            f"invoice {key} already exists in Fortnox with different content and is never "
            f"overwritten: {'; '.join(differences)}. Correct it with a credit note in Moment, or "
            "align the Fortnox invoice by hand"
        ),
    )
