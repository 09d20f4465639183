"""Fortnox's published API as the project's contract: build the extract, and check JSON against it.

Reads Fortnox's OpenAPI document (``docs/fortnox-contract/openapi-fortnox.json.gz``, provenance in
``docs/fortnox-contract/source.json``) and the read-only markers the document lacks, taken by hand
from the C# SDK (``docs/fortnox-contract/sdk-read-only.json``), and writes for every resource the
project touches ``docs/fortnox-contract/<resource>.json`` and the rendered table
``docs/FORTNOX-CONTRACT.md``: field, type, max length, required, read-only, list-only or
single-only. Offline and deterministic: ``--check`` exits 1 when the files in the repo differ from
what the script writes (the test suite runs it).

The checks used by the contract tests (sandbox answers, target-fortnox request bodies) are here
too: :func:`answer_problems` and :func:`body_problems`, with every allowed difference between the
document and real Fortnox in :data:`ALLOWED_DIFFERENCES`, each with its reason.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONTRACT_DIR = ROOT / "docs" / "fortnox-contract"
DOCUMENT = CONTRACT_DIR / "openapi-fortnox.json.gz"
SOURCE = CONTRACT_DIR / "source.json"
SDK_READ_ONLY = CONTRACT_DIR / "sdk-read-only.json"
MARKDOWN = ROOT / "docs" / "FORTNOX-CONTRACT.md"

# resource → the document's schemas: the single record, the list item, the request body (the
# document's POST/PUT schema; fields of the single record missing from it cannot be written).
RESOURCES: dict[str, dict[str, str]] = {
    "customer": {
        "path": "/3/customers",
        "single": "fortnox_Customer",
        "list": "fortnox_CustomerListItem",
        "payload": "fortnox_Customer",
    },
    "project": {
        "path": "/3/projects",
        "single": "fortnox_Project",
        "list": "fortnox_ProjectListItem",
        "payload": "fortnox_Project",
    },
    "invoice": {
        "path": "/3/invoices",
        "single": "fortnox_Invoice",
        "list": "fortnox_InvoiceListItem",
        "payload": "fortnox_InvoicePayload",
    },
    "invoice_row": {
        "path": "/3/invoices (InvoiceRows)",
        "single": "fortnox_Invoice_InvoiceRow",
        "payload": "fortnox_InvoicePayload_InvoiceRow",
    },
    "supplier_invoice": {
        "path": "/3/supplierinvoices",
        "single": "fortnox_SupplierInvoice",
        "list": "fortnox_SupplierInvoiceListItem",
        "payload": "fortnox_SupplierInvoice",
    },
    "supplier_invoice_row": {
        "path": "/3/supplierinvoices (SupplierInvoiceRows)",
        "single": "fortnox_SupplierInvoice_SupplierInvoiceRow",
        "payload": "fortnox_SupplierInvoice_SupplierInvoiceRow",
    },
    "account": {
        "path": "/3/accounts",
        "single": "fortnox_AccountSingleItem",
        "list": "fortnox_AccountListItem",
        "payload": "fortnox_AccountPayload",
    },
    "financial_year": {
        "path": "/3/financialyears",
        "single": "fortnox_FinancialYear",
        "list": "fortnox_FinancialYear",
        "payload": "fortnox_FinancialYear",
    },
    "company_information": {
        "path": "/3/companyinformation",
        "single": "fortnox_CompanyInfo",
    },
    "company_settings": {
        "path": "/3/settings/company",
        "single": "fortnox_CompanySettings",
    },
    "error": {
        "path": "any /3/ error (ErrorInformation)",
        "single": "fortnox_ErrorInformationWrap_ErrorInformation",
    },
    "meta_information": {
        "path": "any /3/ list (MetaInformation)",
        "single": "fortnox_MetaInformation",
    },
}
# A nested list of rows: which resource describes its items.
ROWS = {
    ("invoice", "InvoiceRows"): "invoice_row",
    ("supplier_invoice", "SupplierInvoiceRows"): ("supplier_invoice_row"),
}

# Where real Fortnox (or the way the project talks to it) differs from the document, each with
# its reason. Keys: (resource, field) or ("*", "*") for every field.
ALLOWED_DIFFERENCES: dict[tuple[str, str], str] = {
    ("*", "*:null"): (
        "The document marks no field nullable (the word does not occur in it), yet absent "
        "numbers and references come as null (the C# SDK types every field nullable, `int?`, "
        "`decimal?`); null is accepted for any field of an answer."
    ),
    ("*", "*:empty-date"): (
        "A date that is not set is answered as an empty string (seen in public clients; the "
        "document gives only `format: date`)."
    ),
    ("error", "*:lower-case"): (
        "The document names ErrorInformation's fields Code, Error, Message; Fortnox answers "
        "`error`, `message`, `code` in lower case (seen in a public client: the C# SDK's "
        "FortnoxSDK/Entities.Special/FortnoxError.cs maps exactly those). Both are accepted."
    ),
    ("invoice_row", "DeliveredQuantity:number"): (
        "The document types DeliveredQuantity as a string; a JSON number is what the C# SDK "
        "sends (`decimal?`) and what Fortnox answers, so both are accepted."
    ),
    ("invoice_row", "ContributionPercent:number"): (
        "Typed string in the document, a number in the SDK (`decimal?`); both accepted."
    ),
    ("invoice_row", "ContributionValue:number"): (
        "Typed string in the document, a number in the SDK (`decimal?`); both accepted."
    ),
    ("invoice", "InvoiceReference:undocumented"): (
        "Not in the document; a credit invoice names its original here (seen in a public "
        "client: the C# SDK's Invoice entity, docs/FORTNOX-WRITES.md). Accepted in answers; "
        "target-fortnox never sends it."
    ),
    ("supplierinvoices", "fromdate:parameter"): (
        "Documented only for invoices, orders, offers and vouchers; tap-fortnox-expenses sends it "
        "as a hint and keeps only list rows whose InvoiceDate lies in the window itself, so it "
        "reads the same invoices whether Fortnox applies or ignores it "
        "(docs/SUPPLIER-INVOICES.md)."
    ),
    ("supplierinvoices", "todate:parameter"): "As `fromdate` on supplier invoices.",
}


# Global parameters of Fortnox's "Parameters" page (https://www.fortnox.se/developer/guides-and-
# good-to-know/parameters): paging (limit, page, offset), sorting, and the global searches.
# fromdate/todate are not among them: the page says "only available for invoices, orders, offers
# and vouchers", and the document lists them on exactly those paths.
GLOBAL_PARAMETERS = frozenset(
    {
        "limit",
        "page",
        "offset",
        "sortby",
        "sortorder",
        "lastmodified",
        "financialyear",
        "financialyeardate",
    }
)


# -- building the extract ------------------------------------------------------------------------


def read_document() -> tuple[dict[str, Any], str]:
    """The OpenAPI document and the sha256 of its (decompressed) bytes."""
    raw = gzip.decompress(DOCUMENT.read_bytes())
    return json.loads(raw), hashlib.sha256(raw).hexdigest()


def _type_of(spec: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": spec.get("type", "object")}
    if "$ref" in spec:
        out["type"] = "object"
    if spec.get("format"):
        out["format"] = spec["format"]
    if spec.get("enum"):
        out["enum"] = list(spec["enum"])
    if "items" in spec:
        item = spec["items"]
        out["items"] = item["$ref"].rsplit("/", 1)[-1] if "$ref" in item else item.get("type")
    for key, name in (
        ("maxLength", "max_length"),
        ("minLength", "min_length"),
        ("minimum", "minimum"),
        ("maximum", "maximum"),
    ):
        if key in spec:
            out[name] = spec[key]
    return out


def extract_resource(
    schemas: Mapping[str, Any], name: str, spec: Mapping[str, str], sdk: Mapping[str, Any]
) -> dict[str, Any]:
    """One resource's contract: each field's type, whether required, read-only and why."""
    single = schemas[spec["single"]]
    listed = schemas[spec["list"]] if "list" in spec else None
    payload = schemas[spec["payload"]] if "payload" in spec else None
    sdk_entry = sdk["resources"].get(name, {})
    sdk_read_only = set(sdk_entry.get("read_only", []))
    names = list(single.get("properties", {}))
    if listed is not None:
        names += [n for n in listed.get("properties", {}) if n not in names]
    required = set(single.get("required", [])) | set((listed or {}).get("required", []))
    fields: dict[str, Any] = {}
    for field in sorted(names):
        in_single = field in single.get("properties", {})
        in_list = listed is not None and field in listed.get("properties", {})
        source = single["properties"][field] if in_single else listed["properties"][field]  # type: ignore[index]
        entry = _type_of(source)
        if in_list and in_single:
            list_type = _type_of(listed["properties"][field])  # type: ignore[index]
            if list_type != entry:
                entry["list_type"] = list_type
        entry["required"] = field in required
        if payload is None:
            read_only, why = True, "no request body in the document"
        elif field in sdk_read_only:
            read_only, why = True, f"SDK {sdk_entry['file']}"
        elif field not in payload.get("properties", {}):
            read_only, why = True, f"not in the document's request body {spec['payload']}"
        else:
            read_only, why = False, ""
        entry["read_only"] = read_only
        if why:
            entry["read_only_source"] = why
        if listed is not None:
            entry["in"] = "both" if in_list and in_single else ("list" if in_list else "single")
        fields[field] = entry
    out: dict[str, Any] = {
        "resource": name,
        "path": spec["path"],
        "schemas": {k: v for k, v in spec.items() if k != "path"},
    }
    if sdk_entry:
        out["sdk_file"] = sdk_entry["file"]
    out["fields"] = fields
    return out


def build() -> dict[Path, str]:
    """Every file the script writes, with its text."""
    document, digest = read_document()
    source = json.loads(SOURCE.read_text(encoding="utf-8"))
    if digest != source["sha256"]:
        raise SystemExit(
            f"{DOCUMENT} has sha256 {digest}, not the {source['sha256']} of {SOURCE}: "
            "update source.json with the new document's provenance."
        )
    sdk = json.loads(SDK_READ_ONLY.read_text(encoding="utf-8"))
    schemas = document["components"]["schemas"]
    header = {
        "source": {k: source[k] for k in ("copy_from", "commit", "sha256", "retrieved")},
        "read_only_from": f"{sdk['source']['repository']} @ {sdk['source']['commit']}",
        "generated_by": "scripts/fortnox_contract.py",
    }
    files: dict[Path, str] = {}
    extracts = {}
    for name, spec in RESOURCES.items():
        extract = {**header, **extract_resource(schemas, name, spec, sdk)}
        extracts[name] = extract
        files[CONTRACT_DIR / f"{name}.json"] = _compact_json(extract)
    files[MARKDOWN] = render_markdown(extracts, source, sdk)
    return files


def _compact_json(extract: Mapping[str, Any]) -> str:
    """Indented JSON with one line per field, so that a diff shows one field per line."""
    lines = ["{"]
    items = list(extract.items())
    for index, (key, value) in enumerate(items):
        comma = "," if index < len(items) - 1 else ""
        if key == "fields":
            lines.append('  "fields": {')
            names = list(value)
            for j, field in enumerate(names):
                sep = "," if j < len(names) - 1 else ""
                text = json.dumps(value[field], ensure_ascii=False)
                lines.append(f"    {json.dumps(field)}: {text}{sep}")
            lines.append("  }" + comma)
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _md_type(entry: Mapping[str, Any]) -> str:
    text = str(entry["type"])
    if entry.get("format"):
        text += f" ({entry['format']})"
    if entry.get("items"):
        text += f" of {entry['items']}"
    if entry.get("enum"):
        text += ": " + " \\| ".join(str(v) for v in entry["enum"])
    listed = entry.get("list_type")
    if listed and any(listed.get(k) != entry.get(k) for k in ("type", "format", "enum", "items")):
        text += f"; list: {_md_type(listed)}"
    return text


def _md_max_length(entry: Mapping[str, Any]) -> str:
    single = entry.get("max_length")
    listed = entry["list_type"].get("max_length") if "list_type" in entry else single
    if listed == single:
        return "" if single is None else str(single)
    return f"{'' if single is None else single} (list: {'none' if listed is None else listed})"


def render_markdown(
    extracts: Mapping[str, Any], source: Mapping[str, Any], sdk: Mapping[str, Any]
) -> str:
    """The contract's Markdown page, one table of fields per resource."""
    lines = [
        "# Fortnox API contract",
        "",
        "Generated by `scripts/fortnox_contract.py` from Fortnox's published OpenAPI document; do",
        "not edit by hand (`python scripts/fortnox_contract.py` rewrites it, `--check` compares).",
        "",
        f"- Document: {source['document']}, copy at {source['copy_from']}",
        "  (kept in the repo as `docs/fortnox-contract/openapi-fortnox.json.gz`), sha256",
        f"  `{source['sha256']}`, retrieved {source['retrieved']}.",
        "- Read-only: the document marks no field read-only. A field is read-only when the C# SDK",
        f"  ({sdk['source']['repository']} at `{sdk['source']['commit'][:12]}`) marks it",
        "  `[ReadOnly]` (hand-kept in `docs/fortnox-contract/sdk-read-only.json`), or when the",
        "  document's request body for the resource does not have it.",
        "- In: `both`, `list` (list items only) or `single` (single GET only).",
        "- Contract tests: `tests/test_fortnox_contract.py` (every sandbox answer, list",
        "  and single), `target-fortnox/tests/test_fortnox_contract.py` (every request body",
        "  target-fortnox sends) and `tap-fortnox-expenses/tests/test_fortnox_contract.py` (its",
        "  query parameters, against each path's documented ones and the global ones of",
        "  Fortnox's Parameters page);",
        "  the differences they allow are below.",
        "",
        "## Allowed differences",
        "",
        "| Resource | Field | Why |",
        "|---|---|---|",
    ]
    for (resource, field), reason in ALLOWED_DIFFERENCES.items():
        lines.append(f"| {resource} | `{field}` | {reason} |")
    for name, extract in extracts.items():
        has_in = any("in" in e for e in extract["fields"].values())
        lines += ["", f"## {name} — `{extract['path']}`", ""]
        schemas = ", ".join(f"{k} `{v}`" for k, v in extract["schemas"].items())
        lines += [f"Schemas: {schemas}.", ""]
        head = "| Field | Type | Max length | Required | Read-only |" + (" In |" if has_in else "")
        lines += [head, "|---|---|---|---|---|" + ("---|" if has_in else "")]
        for field, entry in extract["fields"].items():
            read_only = f"yes ({entry['read_only_source']})" if entry["read_only"] else ""
            row = (
                f"| `{field}` | {_md_type(entry)} | {_md_max_length(entry)} | "
                f"{'yes' if entry['required'] else ''} | {read_only} |"
            )
            lines.append(row + (f" {entry.get('in', '')} |" if has_in else ""))
    return "\n".join(lines) + "\n"


# -- checking JSON against the extract -----------------------------------------------------------


def load(resource: str) -> dict[str, Any]:
    """The extract of one resource (``docs/fortnox-contract/<resource>.json``)."""
    return json.loads((CONTRACT_DIR / f"{resource}.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def value_problem(resource: str, field: str, entry: Mapping[str, Any], value: Any) -> str | None:
    """Why ``value`` does not fit the documented type of ``resource.field``, or None."""
    kind, fmt = entry["type"], entry.get("format")
    if value is None:
        return None  # ALLOWED_DIFFERENCES ("*", "*:null")
    if kind == "string":
        if isinstance(value, int | float) and not isinstance(value, bool):
            if (resource, f"{field}:number") in ALLOWED_DIFFERENCES:
                return None
            return f"{field} is the number {value!r}; the document types it string"
        if not isinstance(value, str):
            return f"{field} is {type(value).__name__} {value!r}; the document types it string"
        if fmt == "date" and value != "" and not _DATE.fullmatch(value):
            return f"{field} is {value!r}, not a date (YYYY-MM-DD)"
        if "enum" in entry and value not in entry["enum"] and value != "":
            return f"{field} is {value!r}, not one of {entry['enum']}"
        if "max_length" in entry and len(value) > entry["max_length"]:
            return f"{field} has {len(value)} characters; the document allows {entry['max_length']}"
        return None
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"{field} is {type(value).__name__} {value!r}; the document types it integer"
        return None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{field} is {type(value).__name__} {value!r}; the document types it number"
        return None
    if kind == "boolean":
        if not isinstance(value, bool):
            return f"{field} is {type(value).__name__} {value!r}; the document types it boolean"
        return None
    if kind == "array":
        return None if isinstance(value, list) else f"{field} is not a list"
    if kind == "object":
        return None if isinstance(value, dict) else f"{field} is not an object"
    return None


def answer_problems(resource: str, view: str, record: Mapping[str, Any]) -> list[str]:
    """Every way an answer's record differs from the document: unknown names, wrong types.

    ``view`` is ``"list"`` (a list item) or ``"single"``; nested rows are checked too. Documented
    fields the answer leaves out are not problems (the caller names the ones it needs).
    """
    contract = load(resource)["fields"]
    if (resource, "*:lower-case") in ALLOWED_DIFFERENCES:
        contract = {**contract, **{name.lower(): e for name, e in contract.items()}}
    problems = []
    for field, value in record.items():
        entry = contract.get(field)
        if entry is None and (resource, f"{field}:undocumented") in ALLOWED_DIFFERENCES:
            continue
        if entry is None or (entry.get("in") not in (None, "both", view)):
            where = "" if entry is None else f" (documented for the {entry['in']} only)"
            problems.append(f"{resource} {view}: {field} is not in the document{where}")
            continue
        if view == "list" and "list_type" in entry:
            entry = entry["list_type"]
        problem = value_problem(resource, field, entry, value)
        if problem:
            problems.append(f"{resource} {view}: {problem}")
        problems += _row_problems(
            resource,
            field,
            value,
            f"{resource} {view}",
            lambda r, row: answer_problems(r, "single", row),
        )
    return problems


def _row_problems(
    resource: str,
    field: str,
    value: Any,
    prefix: str,
    check: Callable[[str, Mapping[str, Any]], list[str]],
) -> list[str]:
    """The problems ``check`` finds in each row of ``field`` (InvoiceRows, SupplierInvoiceRows).

    Each is named by its row: ``invoice single InvoiceRows[0]: …``.
    """
    rows = ROWS.get((resource, field))
    if not rows or not isinstance(value, list):
        return []
    return [
        f"{prefix} {field}[{index}]: {problem.split(': ', 1)[1]}"
        for index, row in enumerate(value)
        for problem in check(rows, row)
    ]


def body_problems(resource: str, body: Mapping[str, Any], *, update: bool) -> list[str]:
    """Every way a request body breaks the contract.

    Unknown or read-only fields, wrong types or lengths, and ``""`` or null sent for a field:
    Fortnox reads both as "leave unchanged" in an update (a field is emptied by ``API_BLANK``), so
    they never clear anything and have no place in a body.
    """
    contract = load(resource)["fields"]
    problems = []
    for field, value in body.items():
        entry = contract.get(field)
        if entry is None:
            problems.append(f"{resource}: {field} is not a field of the document")
            continue
        if entry["read_only"]:
            problems.append(f"{resource}: {field} is read-only ({entry['read_only_source']})")
            continue
        if value is None or value == "":
            problems.append(
                f"{resource}: {field} is {value!r}, which Fortnox reads as 'unchanged' "
                "(clear a field with API_BLANK)"
            )
            continue
        if value == "API_BLANK":
            continue
        problem = value_problem(resource, field, entry, value)
        if problem:
            problems.append(f"{resource}: {problem}")
        problems += _row_problems(
            resource, field, value, resource, lambda r, row: body_problems(r, row, update=update)
        )
    required = [f for f, e in contract.items() if e["required"] and not e["read_only"]]
    if not update:
        problems += [f"{resource}: required {f} missing" for f in required if f not in body]
    return problems


def documented_parameters(path: str) -> set[str]:
    """Query parameters Fortnox documents for ``GET /3/<path>``.

    These are the path's own (OpenAPI document) and the global ones of Fortnox's Parameters page
    (:data:`GLOBAL_PARAMETERS`).
    """
    document, _ = read_document()
    operation = document["paths"].get(f"/3/{path.strip('/')}", {}).get("get", {})
    own = {str(p.get("name", "")).lower() for p in operation.get("parameters", [])}
    return own | GLOBAL_PARAMETERS


def query_problems(path: str, query: str) -> list[str]:
    """Parameters of a ``GET /3/<path>?<query>`` that Fortnox does not document for that path."""
    names = {part.split("=", 1)[0].lower() for part in query.split("&") if part}
    known = documented_parameters(path) | {
        name.removesuffix(":parameter")
        for (where, name) in ALLOWED_DIFFERENCES
        if where == path.strip("/") and name.endswith(":parameter")
    }
    return [
        f"GET /3/{path}: parameter {name!r} is not documented for this path"
        for name in sorted(names - known)
    ]


# -- command line --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Write the contract files, or with ``--check`` exit 1 when one of them is stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the files in the repo are not up to date"
    )
    args = parser.parse_args(argv)
    stale = []
    for path, text in build().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(
            "Out of date (run python scripts/fortnox_contract.py): "
            + ", ".join(str(p) for p in stale),
            file=sys.stderr,
        )
        return 1
    for path in stale:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
