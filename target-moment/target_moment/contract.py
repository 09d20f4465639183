"""The input contract: JSON schemas of the streams target-moment writes, and checks against them.

The target checks each record against its own contract here, as the tap sent it (singer-sdk's
validation against the tap's SCHEMA message and its date parsing are off, see ``sinks``: either
stopped the whole run on one bad value), so a tap that drifts from the agreed fields or types gets
a record-level error naming the field instead of a half-filled Moment expense or a stopped run.
The README's "Input contract" tables are rendered from these same files
(``python -m target_moment.contract``), and a test keeps them in step.
"""

from __future__ import annotations

from typing import Any

from sync_common import contract as shared
from sync_common.contract import json_ready

PACKAGE = "target_moment"

PROJECTS = "projects"
PROJECT_EXPENSES = "project_expenses"
KEY_PROPERTIES = {PROJECTS: "project_number", PROJECT_EXPENSES: "source_key"}


class ContractError(ValueError):
    """A record that does not satisfy the input contract; the message names the field."""


def contract_schema(stream: str) -> dict[str, Any]:
    """The contract JSON schema of ``stream`` (``projects`` or ``project_expenses``)."""
    return shared.contract_schema(PACKAGE, stream)


def check_record(stream: str, record: dict[str, Any]) -> None:
    """Raise ``ContractError`` naming every offending field of ``record``, if any."""
    errors = sorted(
        shared.contract_validator(PACKAGE, stream, check_formats=True).iter_errors(
            json_ready(record)
        ),
        key=lambda e: e.path,
    )
    if not errors:
        return
    problems = []
    for error in errors:
        where = ".".join(str(part) for part in error.absolute_path) or "(record)"
        problems.append(f"{where}: {error.message}")
    raise ContractError(
        f"{stream} record {record.get(KEY_PROPERTIES[stream])!r} breaks the input contract: "
        + "; ".join(problems)
        + ". Fix the tap (or the mapping in meltano.yml) so it sends the fields target-moment "
        "documents in its README."
    )


def markdown() -> str:
    """Both streams' contract sections, as they appear in the README."""
    return shared.contract_markdown(PACKAGE, KEY_PROPERTIES)


if __name__ == "__main__":
    print(markdown(), end="")
