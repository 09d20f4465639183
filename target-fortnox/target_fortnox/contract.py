"""The input contract as documentation: Markdown tables generated from the JSON Schemas.

The tables describe the schemas the target validates records against (``schemas/*.json``), so the
README cannot drift from the code.

Run ``python -m target_fortnox.contract`` to print the tables.
"""

from __future__ import annotations

from sync_common.contract import contract_markdown as shared_contract_markdown

from target_fortnox.sinks import PACKAGE

STREAM_KEYS = {
    "customers": "customerNumber",
    "projects": "projectNumber",
    "invoices": "invoiceNumber",
}


def contract_markdown() -> str:
    """One table per stream: field, required, type/format, what it becomes in Fortnox."""
    return shared_contract_markdown(PACKAGE, STREAM_KEYS, meaning="In Fortnox")


if __name__ == "__main__":
    print(contract_markdown())
