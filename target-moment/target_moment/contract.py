"""The input contract: JSON schemas of the streams target-moment writes, and checks against them.

The target checks each record against its own contract here, as the tap sent it (singer-sdk's
validation against the tap's SCHEMA message and its date parsing are off, see ``sinks``: either
stopped the whole run on one bad value), so a tap that drifts from the agreed fields or types gets
a record-level error naming the field instead of a half-filled Moment expense or a stopped run.
The README's "Input contract" tables are rendered from these same files
(``python -m target_moment.contract``), and a test keeps them in step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft7Validator, FormatChecker

PROJECTS = "projects"
PROJECT_EXPENSES = "project_expenses"
KEY_PROPERTIES = {PROJECTS: "project_number", PROJECT_EXPENSES: "source_key"}


class ContractError(ValueError):
    """A record that does not satisfy the input contract; the message names the field."""


@cache
def contract_schema(stream: str) -> dict[str, Any]:
    """The contract JSON schema of ``stream`` (``projects`` or ``project_expenses``)."""
    text = resources.files("target_moment").joinpath("schemas", f"{stream}.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(stream: str) -> Draft7Validator:
    return Draft7Validator(contract_schema(stream), format_checker=FormatChecker())


def check_record(stream: str, record: dict[str, Any]) -> None:
    """Raise ``ContractError`` naming every offending field of ``record``, if any."""
    errors = sorted(_validator(stream).iter_errors(json_ready(record)), key=lambda e: e.path)
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


def json_ready(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record as its JSON text had it: singer-sdk's reader turns fractions into ``Decimal``
    and a caller may hand in parsed dates, which neither the contract nor a dead-letter file
    should see."""
    ready: dict[str, Any] = {}
    for name, value in record.items():
        isoformat = getattr(value, "isoformat", None)
        if callable(isoformat):
            value = isoformat()
        elif isinstance(value, Decimal):
            value = float(value)  # integers arrive as int; only fractions become Decimal
        ready[name] = value
    return ready


def markdown_table(stream: str) -> str:
    """The contract of ``stream`` as a Markdown table (Field, Type, Required, Description)."""
    schema = contract_schema(stream)
    # Fields required of every record, and of every record but a removal (``else`` branch).
    required = set(schema.get("required", [])) | set(schema.get("else", {}).get("required", []))
    lines = ["| Field | Type | Required | Description |", "|---|---|---|---|"]
    for name, spec in schema["properties"].items():
        types = spec.get("type")
        type_text = " or ".join(types) if isinstance(types, list) else str(types)
        if spec.get("format"):
            type_text += f" ({spec['format']})"
        lines.append(
            f"| `{name}` | {type_text} | {'yes' if name in required else 'no'} "
            f"| {spec.get('description', '')} |"
        )
    return "\n".join(lines)


def markdown() -> str:
    """Both streams' contract sections, as they appear in the README."""
    sections = []
    for stream in (PROJECTS, PROJECT_EXPENSES):
        schema = contract_schema(stream)
        sections.append(
            f"### Stream `{stream}` (key `{KEY_PROPERTIES[stream]}`)\n\n"
            f"{schema.get('description', '')}\n\n{markdown_table(stream)}\n"
        )
    return "\n".join(sections)


if __name__ == "__main__":
    print(markdown(), end="")
