"""Project expenses in Moment, read and written under the path and field names settings give.

No public source shows Moment's project-expense API (docs/MOMENT-API.md): the path and the field
names are inferred and set by ``expense_path`` / ``expense_fields`` (``moment_client.ExpenseApi``,
the one place they live). ``MomentExpenses`` reads and writes expenses through ``moment_client``
with those names: bodies are renamed on the way out, records on the way in, so the rest of the
target (``expense_plan``) works with our names only. The look-up by ``externalReference`` is
re-checked on our side (``MomentClient.find_one``): a record that does not carry the reference
never matches, because a wrong match would overwrite another expense. A 404 on the path names
the setting and the doc.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moment_client import MomentClient, MomentNotFound
from moment_client.expense_api import DOC, REFERENCE, ExpenseApi
from moment_client.native_expenses import project_expenses


class ExpensePathNotFound(MomentNotFound):
    """Moment answered 404 on the expense path: the path setting does not match this Moment."""


class MomentExpenses:
    """Project expenses in Moment, read and written with our field names."""

    def __init__(self, client: MomentClient, api: ExpenseApi) -> None:
        self.client = client
        self.api = api

    def find(self, source_key: str) -> dict[str, Any] | None:
        """The expense whose reference is ``source_key`` (checked on our side), or None."""
        filters = {self.api.name(REFERENCE): source_key}
        try:
            found = self.client.find_one(self.api.path, **filters)
        except ExpensePathNotFound:
            raise
        except MomentNotFound as exc:
            raise self.path_not_found(exc) from exc
        return None if found is None else self.api.from_moment(found)

    def get(self, expense_id: Any) -> dict[str, Any] | None:
        """The expense with Moment id ``expense_id``, or None when Moment has none."""
        try:
            return self.api.from_moment(self.client.get(self.api.path, expense_id))
        except MomentNotFound:
            return None

    def of_project(self, project_id: str) -> list[dict[str, Any]]:
        """Every expense of one Moment project (``moment_client.native_expenses``)."""
        try:
            return list(project_expenses(self.client, self.api, project_id))
        except MomentNotFound as exc:
            raise self.path_not_found(exc) from exc

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        try:
            created = self.client.create(self.api.path, self.api.to_moment(body))
        except MomentNotFound as exc:
            raise self.path_not_found(exc) from exc
        return self.api.from_moment(created)

    def patch(self, expense_id: Any, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.api.from_moment(
            self.client.patch(self.api.path, expense_id, self.api.to_moment(body))
        )

    def path_not_found(self, exc: MomentNotFound) -> ExpensePathNotFound:
        return ExpensePathNotFound(
            f"Moment answered 404 on its project-expense path {self.api.path!r} ({exc.path}). "
            "The path is inferred (no public source shows it): set target-moment's expense_path "
            "(TARGET_MOMENT_EXPENSE_PATH) to the path your Moment uses, and expense_fields if "
            f"its field names differ; run the pre-flight check to test them. See {DOC}.",
            status=exc.status,
            path=exc.path,
        )
