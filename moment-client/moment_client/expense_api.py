"""Where Moment keeps project expenses and what it calls their fields, as settings say.

No public source shows Moment's project-expense API (docs/MOMENT-API.md): the path
``projectExpenses`` and the field names are inferred. They live here only, and a user whose Moment
differs corrects them with two target-moment settings (the pre-flight check reads the same ones):

- ``expense_path``: the entity path under ``/companies/{company_code}/`` (default
  ``projectExpenses``);
- ``expense_fields``: ``{"our name": "Moment's name"}`` for any field Moment names otherwise
  (our names are ``EXPENSE_FIELDS``; a name left out keeps its default).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moment_client.filters import DOC

__all__ = ["DEFAULT_EXPENSE_PATH", "DOC", "EXPENSE_FIELDS", "REFERENCE", "ExpenseApi"]
DEFAULT_EXPENSE_PATH = "projectExpenses"
# Our names of the fields target-moment writes or reads on an expense (docs/MOMENT-API.md).
EXPENSE_FIELDS = (
    "projectId",
    "project",
    "expenseDate",
    "description",
    "supplierName",
    "amount",
    "vatAmount",
    "currency",
    "accountNumber",
    "billable",
    "externalReference",
    "invoiced",
)
REFERENCE = "externalReference"


@dataclass(frozen=True)
class ExpenseApi:
    """The expense path and Moment's names of the expense fields (defaults: ours)."""

    path: str = DEFAULT_EXPENSE_PATH
    renamed: Mapping[str, str] = field(default_factory=dict)  # our name -> Moment's name

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ExpenseApi:
        """From ``expense_path`` and ``expense_fields``; a bad value raises ``ValueError``."""
        path = str(config.get("expense_path") or DEFAULT_EXPENSE_PATH).strip().strip("/")
        if not path or "?" in path or " " in path:
            raise ValueError(f"expense_path {path!r} is not a path such as 'projectExpenses'")
        fields = config.get("expense_fields") or {}
        if isinstance(fields, str):  # Meltano passes an object setting as JSON text
            fields = json.loads(fields) if fields.strip() else {}
        if not isinstance(fields, Mapping):
            raise ValueError('expense_fields must be an object such as {"amount": "netAmount"}')
        unknown = sorted(set(fields) - set(EXPENSE_FIELDS))
        if unknown:
            raise ValueError(
                f"expense_fields names unknown field(s) {', '.join(unknown)}; "
                f"known: {', '.join(EXPENSE_FIELDS)}"
            )
        bad = sorted(k for k, v in fields.items() if not isinstance(v, str) or not v.strip())
        if bad:
            raise ValueError(f"expense_fields: Moment's name of {', '.join(bad)} is empty")
        api = cls(path=path, renamed={k: str(v).strip() for k, v in fields.items() if v != k})
        names = [api.name(ours) for ours in EXPENSE_FIELDS]
        if len(set(names)) < len(names):
            raise ValueError("expense_fields gives two fields the same Moment name")
        return api

    def name(self, ours: str) -> str:
        """Moment's name of one of our fields."""
        return self.renamed.get(ours, ours)

    def to_moment(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {self.name(key): value for key, value in body.items()}

    def from_moment(self, record: Mapping[str, Any]) -> dict[str, Any]:
        ours = {moment: our for our, moment in self.renamed.items()}
        return {ours.get(key, key): value for key, value in record.items()}
