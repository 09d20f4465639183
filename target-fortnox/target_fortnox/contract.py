"""The input contract as documentation: Markdown tables generated from the JSON Schemas the
target validates records against (``schemas/*.json``), so the README cannot drift from the code.

Run ``python -m target_fortnox.contract`` to print the tables.
"""

from __future__ import annotations

from typing import Any

from target_fortnox.sinks import contract_schema

STREAM_KEYS = {
    "customers": "customerNumber",
    "projects": "projectNumber",
    "invoices": "invoiceNumber",
}


def _type_of(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return " \\| ".join(str(value) for value in spec["enum"])
    kinds = spec.get("type", "any")
    kinds = kinds if isinstance(kinds, list) else [kinds]
    text = " or ".join(str(kind) for kind in kinds if kind != "null")
    if "pattern" in spec:
        text += f" `{spec['pattern']}`"
    if "maxLength" in spec:
        text += f", ≤ {spec['maxLength']} chars"
    return text + (" (nullable)" if "null" in kinds else "")


def _rows(properties: dict[str, Any], required: set[str], prefix: str = "") -> list[str]:
    rows = []
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        need = "yes" if name in required else "no"
        description = str(spec.get("description", "")).replace("|", "\\|")
        rows.append(f"| `{path}` | {need} | {_type_of(spec)} | {description} |")
        nested = spec.get("properties") or (spec.get("items") or {}).get("properties")
        if nested:
            inner_required = set(
                spec.get("required", []) or (spec.get("items") or {}).get("required", [])
            )
            suffix = "[]." if "items" in spec else "."
            rows.extend(_rows(nested, inner_required, f"{path}{suffix}"))
    return rows


def contract_markdown() -> str:
    """One table per stream: field, required, type/format, what it becomes in Fortnox."""
    parts = []
    for stream, key in STREAM_KEYS.items():
        schema = contract_schema(stream)
        parts.append(f"### Stream `{stream}` (key `{key}`)\n")
        parts.append(f"{schema['description']}\n")
        parts.append("| Field | Required | Type / format | In Fortnox |")
        parts.append("|:--|:--:|:--|:--|")
        parts.extend(_rows(schema["properties"], set(schema.get("required", []))))
        parts.append("")
    return "\n".join(parts)


if __name__ == "__main__":
    print(contract_markdown())
