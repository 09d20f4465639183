"""The three Moment streams, in the order a target needs them: customers, projects, invoices."""

from __future__ import annotations

import typing as t

from tap_moment.client import MomentStream

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context, Record


class CustomersStream(MomentStream):
    """Moment customers, keyed by Moment's customer number (the Fortnox number too)."""

    name = "customers"
    entity = "customers"
    primary_keys = ("customerNumber",)


class ProjectsStream(MomentStream):
    """Moment projects with their customer reference, dates, state and price model."""

    name = "projects"
    entity = "projects"
    primary_keys = ("projectNumber",)


class InvoicesStream(MomentStream):
    """Finalised Moment invoices with their lines; drafts have no number and are never emitted."""

    name = "invoices"
    entity = "invoices"
    primary_keys = ("invoiceNumber",)
    extra_params: t.ClassVar[dict[str, str]] = {"invoiceState": "FINALIZED"}

    def post_process(self, row: Record, context: Context | None = None) -> Record | None:
        # The server filter is not trusted alone: a draft pushed to Fortnox would be booked law.
        finalised = self.moment.filters.keep(
            self.entity, "invoiceState", row.get("invoiceState") == "FINALIZED"
        )
        if not finalised or row.get("invoiceNumber") is None:
            self.logger.debug("Skipping Moment invoice id %s: not finalised", row.get("id"))
            return None
        return row
