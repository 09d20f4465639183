"""A target's input contract: its JSON schemas, their validators, records as JSON, the docs.

Each target ships one JSON Schema per stream it takes (``<package>/schemas/<stream>.json``) and
checks every record against it itself, as the tap sent it (``RecordsAsSent``), so a drifting tap
gets a record-level error naming the field. This module loads those schemas (``contract_schema``),
builds their validators once per process (``contract_validator``: building one re-checks the
schema, which cost ~4.5 ms per record when done per call; see bench/README.md), turns a parsed
record back into the JSON its line had (``json_ready``, also what a dead letter keeps) and renders
the contract as the Markdown tables of the targets' READMEs (``contract_markdown``).

jsonschema is imported where used: both targets have it (singer-sdk depends on it), sync-common
does not need it otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any


@cache
def contract_schema(package: str, stream: str) -> dict[str, Any]:
    """Return the contract JSON schema of ``stream`` shipped in ``package``'s ``schemas/``."""
    text = resources.files(package).joinpath("schemas", f"{stream}.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def contract_validator(package: str, stream: str, *, check_formats: bool = False) -> Any:
    """Return a validator of ``stream``'s contract, built (its schema checked) once per process.

    ``check_formats`` also checks ``format`` (``date``, ``date-time`` ...) where jsonschema can.
    """
    import jsonschema

    schema = contract_schema(package, stream)
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    if check_formats:
        return validator_class(schema, format_checker=jsonschema.FormatChecker())
    return validator_class(schema)


def json_ready(record: Mapping[str, Any]) -> dict[str, Any]:
    """Return the record as its JSON text had it.

    singer-sdk's reader turns fractions into ``Decimal`` (integers stay ``int``) and a caller may
    hand in parsed dates; neither the contract nor a dead-letter file should see them.
    """
    ready: dict[str, Any] = {name: _json_value(value) for name, value in record.items()}
    return ready


def _json_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {name: _json_value(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    if isinstance(value, Decimal):
        return float(value)
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    return value


def contract_markdown(
    package: str, stream_keys: Mapping[str, str], *, meaning: str = "Description"
) -> str:
    """Render one section per stream: its key, description and a table of its fields.

    The table's columns: field (nested ones as ``a.b`` and ``a[].b``), its type and format,
    whether it is required (of every record, or of every record but those the schema's ``else``
    branch covers), and ``meaning`` (the field's description).
    """
    parts = []
    for stream, key in stream_keys.items():
        schema = contract_schema(package, stream)
        required = set(schema.get("required", [])) | set(schema.get("else", {}).get("required", []))
        parts.append(f"### Stream `{stream}` (key `{key}`)\n")
        parts.append(f"{schema.get('description', '')}\n")
        parts.append(f"| Field | Type | Required | {meaning} |")
        parts.append("|:--|:--|:--:|:--|")
        parts.extend(_rows(schema["properties"], required))
        parts.append("")
    return "\n".join(parts)


def _type_of(spec: Mapping[str, Any]) -> str:
    if "enum" in spec:
        return " \\| ".join("null" if value is None else str(value) for value in spec["enum"])
    kinds = spec.get("type", "any")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    text = " or ".join(str(kind) for kind in kinds if kind != "null")
    if "format" in spec:
        text += f" ({spec['format']})"
    if "pattern" in spec:
        text += f" `{spec['pattern']}`"
    if "maxLength" in spec:
        text += f", ≤ {spec['maxLength']} chars"
    return text + (" (nullable)" if "null" in kinds else "")


def _rows(properties: Mapping[str, Any], required: set[str], prefix: str = "") -> list[str]:
    rows = []
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        need = "yes" if name in required else "no"
        description = str(spec.get("description", "")).replace("|", "\\|")
        rows.append(f"| `{path}` | {_type_of(spec)} | {need} | {description} |")
        items = spec.get("items") or {}
        nested = spec.get("properties") or items.get("properties")
        if nested:
            inner: Sequence[str] = spec.get("required", []) or items.get("required", [])
            suffix = "[]." if "items" in spec else "."
            rows.extend(_rows(nested, set(inner), f"{path}{suffix}"))
    return rows
