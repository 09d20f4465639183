"""Both taps feed a real warehouse: `meltano run moment-to-warehouse` and
`fortnox-expenses-to-warehouse` into MeltanoLabs target-postgres on a real PostgreSQL, checked with
SQL against the sandboxes.

Also `meltano select` (only selected streams and fields are read, so a customers-only run asks
Moment for nothing else) and singer-sdk stream maps on our taps (hash a field, drop a field).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


# A customer's loaded values, keyed by its number (the _sdc_ metadata columns left out).
CUSTOMER_VALUES = (
    '"customerNumber", (name, "organizationNumber", email, address1, address2, "postalCode",'
    ' city, "countryCode", "lastModifiedDate")::text'
)


def _moment_list(pipelines: Any, entity: str, **params: str) -> list[dict[str, Any]]:
    """Every record of a Moment entity through the sandbox's admin list (API parameters)."""
    query = "&".join(f"{k}={v}" for k, v in {"size": "500", **params}.items())
    return list(pipelines.moment.admin("GET", f"{entity}?{query}")["content"])


def _columns(warehouse: Any, schema: str, table: str) -> dict[str, str]:
    rows = warehouse.query(
        "SELECT column_name, data_type FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s",
        schema,
        table,
    )
    return dict(rows)


def _primary_key(warehouse: Any, schema: str, table: str) -> list[str]:
    rows = warehouse.query(
        "SELECT a.attname FROM pg_index i"
        " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = %s::regclass AND i.indisprimary",
        f'{schema}."{table}"',
    )
    return [row[0] for row in rows]


@pytest.fixture(scope="module")
def loaded(pipelines: Any, warehouse: Any) -> dict[str, Any]:
    """The first runs of both warehouse jobs on the seeded sandboxes (one `meltano run`)."""
    pipelines.extra_env.update(warehouse.target_env())
    # The Fortnox sandbox runs without its limit here; the client-side limiter would only slow
    # the test down.
    pipelines.extra_env["TAP_FORTNOX_EXPENSES_MAX_REQUESTS_PER_5S"] = "0"
    pipelines.run("moment-to-warehouse", "fortnox-expenses-to-warehouse")
    return {"customers": {c["customerNumber"]: c for c in _moment_list(pipelines, "customers")}}


def test_moment_to_warehouse_loads_what_moment_has(
    pipelines: Any, warehouse: Any, loaded: dict[str, Any]
) -> None:
    customers = loaded["customers"]
    finalized = _moment_list(pipelines, "invoices", invoiceState="FINALIZED")
    projects = _moment_list(pipelines, "projects")
    counts = {
        table: warehouse.query(f'SELECT count(*) FROM moment."{table}"')[0][0]
        for table in ("customers", "projects", "invoices")
    }
    assert counts == {
        "customers": len(customers),
        "projects": len(projects),
        "invoices": len(finalized),
    }
    assert counts["customers"] == 30
    assert counts["invoices"] > 0

    # Keys and types a warehouse can use: primary keys, dates as dates, numbers as numbers,
    # invoice lines as an array of objects.
    assert _primary_key(warehouse, "moment", "customers") == ["customerNumber"]
    assert _primary_key(warehouse, "moment", "invoices") == ["invoiceNumber"]
    invoice_columns = _columns(warehouse, "moment", "invoices")
    assert invoice_columns["invoiceDate"] == "date"
    assert invoice_columns["lastModifiedDate"].startswith("timestamp")
    assert invoice_columns["invoiceNumber"] == "bigint"
    # target-postgres stores an array of objects as a PostgreSQL array of jsonb.
    assert invoice_columns["invoiceLines"] == "ARRAY"
    assert warehouse.query(
        "SELECT udt_name FROM information_schema.columns WHERE table_schema = 'moment'"
        " AND table_name = 'invoices' AND column_name = 'invoiceLines'"
    ) == [("_jsonb",)]

    row = warehouse.query(
        'SELECT name, "postalCode", "countryCode", email, "organizationNumber"'
        ' FROM moment.customers WHERE "customerNumber" = %s',
        "1005",
    )[0]
    moment_customer = customers["1005"]
    assert row[:3] == (
        moment_customer["name"],
        moment_customer["postalCode"],
        moment_customer["countryCode"],
    )
    # meltano.yml's stream map pseudonymises e-mails before they reach the warehouse.
    assert row[3] == hashlib.md5(moment_customer["email"].encode()).hexdigest()
    assert row[4] == moment_customer["organizationNumber"]
    # Customers without an e-mail stay null (not the hash of "None").
    no_email = [n for n, c in customers.items() if not c["email"]]
    assert no_email
    nulls = warehouse.query(
        'SELECT count(*) FROM moment.customers WHERE email IS NULL AND "customerNumber" = ANY(%s)',
        no_email,
    )
    assert nulls[0][0] == len(no_email)

    invoice = max(finalized, key=lambda i: len(i["invoiceLines"]))
    date_value, lines, customer = warehouse.query(
        'SELECT "invoiceDate", "invoiceLines", customer FROM moment.invoices'
        ' WHERE "invoiceNumber" = %s',
        invoice["invoiceNumber"],
    )[0]
    assert date_value == date.fromisoformat(invoice["invoiceDate"])
    assert customer["customerNumber"] == invoice["customer"]["customerNumber"]
    assert [
        (line["accountNumber"], Decimal(str(line["unitPrice"])), line["quantity"]) for line in lines
    ] == [
        (line["accountNumber"], Decimal(str(line["unitPrice"])), line["quantity"])
        for line in invoice["invoiceLines"]
    ]
    assert all(isinstance(line["unitPrice"], int | float) for line in lines)

    no_start = warehouse.query('SELECT count(*) FROM moment.projects WHERE "startDate" IS NULL')[0][
        0
    ]
    assert no_start == sum(1 for p in projects if p["startDate"] is None) > 0


def test_second_run_upserts_only_the_changed_customers(
    pipelines: Any, warehouse: Any, loaded: dict[str, Any]
) -> None:
    before = dict(warehouse.query('SELECT "customerNumber", _sdc_batched_at FROM moment.customers'))
    values_before = dict(warehouse.query(f"SELECT {CUSTOMER_VALUES} FROM moment.customers"))
    # tap-moment re-reads lookback_minutes (5) before its bookmark, never dropping rows equal to
    # it (at-least-once): those rows come again, unchanged, and are upserted in place.
    overlap = {
        row[0]
        for row in warehouse.query(
            'SELECT "customerNumber" FROM moment.customers WHERE "lastModifiedDate" >='
            " (SELECT max(\"lastModifiedDate\") FROM moment.customers) - interval '5 minutes'"
        )
    }
    pipelines.moment.admin("PATCH", "customers/1003", {"city": "Kiruna"})
    pipelines.moment.admin("PATCH", "customers/1017", {"name": "Ändrad Kund AB"})

    pipelines.run("moment-to-warehouse")

    after = dict(warehouse.query('SELECT "customerNumber", _sdc_batched_at FROM moment.customers'))
    values_after = dict(warehouse.query(f"SELECT {CUSTOMER_VALUES} FROM moment.customers"))
    assert len(after) == len(before) == len(values_after) == 30
    assert {n for n in values_after if values_after[n] != values_before[n]} == {"1003", "1017"}
    assert {n for n in after if after[n] != before[n]} == {"1003", "1017"} | overlap
    assert len(overlap) < 5
    assert warehouse.query(
        'SELECT "customerNumber", city, name FROM moment.customers'
        ' WHERE "customerNumber" IN (%s, %s) ORDER BY 1',
        "1003",
        "1017",
    ) == [
        ("1003", "Kiruna", loaded["customers"]["1003"]["name"]),
        ("1017", loaded["customers"]["1017"]["city"], "Ändrad Kund AB"),
    ]


def test_select_and_stream_maps_in_the_tap_and_the_target(
    pipelines: Any, warehouse: Any, loaded: dict[str, Any]
) -> None:
    """One run: `meltano select` (env), a tap-side stream map (env) and target-postgres's map."""
    since = pipelines.moment.admin("GET", "requests?since=0")["last"]
    selected = ["customerNumber", "name", "email", "organizationNumber", "postalCode"]
    # In tap-moment: add a field and drop a selected one; target-postgres's map from meltano.yml
    # still hashes the e-mail on the way in.
    maps = {"customers": {"name_upper": "name.upper()", "postalCode": None}}
    pipelines.run(
        "--state-id-suffix",
        "selected",
        "moment-to-warehouse",
        TAP_MOMENT__SELECT=json.dumps([f"customers.{field}" for field in selected]),
        TAP_MOMENT_STREAM_MAPS=json.dumps(maps),
        TAP_MOMENT__LOAD_SCHEMA="selected",
    )
    # Only the selected stream is read: no project or invoice request reaches Moment.
    requests_made = pipelines.moment.admin("GET", f"requests?since={since}")["requests"]
    paths = [r["path"] for r in requests_made]
    assert paths
    assert all(path.endswith("/customers") for path in paths), paths

    tables = {row[0] for row in warehouse.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'selected'"
    )}  # fmt: skip
    assert tables == {"customers"}
    columns = _columns(warehouse, "selected", "customers")
    # The replication key always comes along (singer-sdk's automatic inclusion).
    assert {c for c in columns if not c.startswith("_sdc")} == {
        "customerNumber",
        "name",
        "email",
        "organizationNumber",
        "name_upper",
        "lastModifiedDate",
    }
    assert warehouse.query("SELECT count(*) FROM selected.customers")[0][0] == 30
    customer = pipelines.moment.admin("GET", "customers/1009")
    row = warehouse.query(
        'SELECT email, name_upper, "organizationNumber" FROM selected.customers'
        ' WHERE "customerNumber" = %s',
        "1009",
    )[0]
    assert row == (
        hashlib.md5(customer["email"].encode()).hexdigest(),
        customer["name"].upper(),
        customer["organizationNumber"],
    )


def test_fortnox_expenses_to_warehouse(
    warehouse: Any, fortnox_reader: Any, loaded: dict[str, Any]
) -> None:
    projects = warehouse.query("SELECT count(*) FROM fortnox.projects")[0][0]
    assert projects == len(list(fortnox_reader.list("projects")))
    assert _primary_key(warehouse, "fortnox", "project_expenses") == ["source_key"]
    columns = _columns(warehouse, "fortnox", "project_expenses")
    assert columns["expense_date"] == "date"
    assert columns["amount"] == "numeric"
    assert columns["account_number"] == "bigint"
    assert columns["invoice_modified"].startswith("timestamp")

    rows = warehouse.query(
        "SELECT source_key, legacy_source_key, given_number, row_index, expense_date,"
        " account_number, amount, supplier_number FROM fortnox.project_expenses"
        " ORDER BY source_key"
    )
    assert rows
    for key, legacy, given, index, expense_date, account, amount, supplier in rows[:5]:
        # The key comes from the row's content (tap README, "Row keys"); the legacy one from its
        # position.
        assert key.startswith(f"fortnox-si-{given}-r")
        assert legacy == f"fortnox-si-{given}-{index}"
        invoice = fortnox_reader.get("supplierinvoices", given)
        source_row = invoice["SupplierInvoiceRows"][index]
        assert expense_date == date.fromisoformat(invoice["InvoiceDate"])
        assert supplier == invoice["SupplierNumber"]
        assert account == int(source_row["Account"])
        assert amount == Decimal(str(source_row["Debit"])) - Decimal(str(source_row["Credit"]))
    assert all(isinstance(row[4], date) and not isinstance(row[4], datetime) for row in rows)
