"""Every request target-fortnox sends follows Fortnox's published API (docs/FORTNOX-CONTRACT.md):
no unknown or read-only field, the documented types and lengths, no ``""``/null (Fortnox reads
both as "unchanged"; ``API_BLANK`` clears), and names arrive as written in Moment.

The bodies are captured by wrapping the client's one send function, so they are exactly what
went over the wire to the sandbox.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fortnox_client import FortnoxClient
from target_fortnox.mapping import MappingError, map_customer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import fortnox_contract  # noqa: E402

Replay = Callable[..., Any]
DATA_FILES = Path(__file__).parent / "data_files"
# /3/<path> → the contract resource of its body
BODY_RESOURCES = {"customers": "customer", "projects": "project", "invoices": "invoice"}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, body) of every POST/PUT the target's client sends."""
    bodies: list[tuple[str, str, dict[str, Any]]] = []
    original = FortnoxClient._send_once

    def send_once(self: FortnoxClient, method: str, path: str, *args: Any, **kw: Any) -> Any:
        body = args[1] if len(args) > 1 else None
        if method in ("POST", "PUT"):
            bodies.append((method, path, json.loads(json.dumps(body)) if body else {}))
        return original(self, method, path, *args, **kw)

    monkeypatch.setattr(FortnoxClient, "_send_once", send_once)
    return bodies


def _problems(bodies: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    problems = []
    for method, path, wrapped in bodies:
        resource = BODY_RESOURCES[path.split("/")[0]]
        if path.count("/") > 1:  # an action (bookkeep, credit): Fortnox documents no body
            if wrapped:
                problems.append(f"{method} /{path} sends a body to an action")
            continue
        (body,) = wrapped.values()
        problems += [
            f"{method} /{path}: {p}"
            for p in fortnox_contract.body_problems(resource, body, update=method == "PUT")
        ]
    return problems


def _renumbered(name: str, old: str, new: str) -> str:
    """A data file with its keys moved to a series of its own (the sandbox is shared)."""
    return (DATA_FILES / name).read_text(encoding="utf-8").replace(old, new)


def _records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _lines(messages: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(m, ensure_ascii=False) for m in messages) + "\n"


def test_create_bodies_follow_the_contract(
    replay: Replay, sent: list[tuple[str, str, dict[str, Any]]]
) -> None:
    # A customer, a project and an invoice (the credit note has a test of its own).
    messages = _records(_renumbered("invoice_identical.singer", "7180", "7291"))
    replay(
        text=_lines(
            [m for m in messages if not (m.get("record") or {}).get("creditedInvoiceNumber")]
        )
    )
    paths = {(method, path.split("/")[0]) for method, path, _ in sent}
    assert {("POST", "customers"), ("POST", "projects"), ("POST", "invoices")} <= paths
    assert _problems(sent) == []


def test_credit_note_body_follows_the_contract(
    replay: Replay, sent: list[tuple[str, str, dict[str, Any]]]
) -> None:
    replay(text=_renumbered("invoice_identical.singer", "7180", "7292"))
    credit_notes = [
        (m, p, b)
        for m, p, b in sent
        if p == "invoices/credit" or p.endswith("/credit") or "7292002" in json.dumps(b)
    ]
    assert credit_notes, "the credit note 7292002 was never sent"
    assert _problems(credit_notes) == []


def test_update_and_clear_bodies_follow_the_contract(
    replay: Replay, sent: list[tuple[str, str, dict[str, Any]]], fortnox_api: FortnoxClient
) -> None:
    messages = _records(_renumbered("invoice_identical.singer", "7180", "7293"))
    first = [m for m in messages if m.get("stream") != "invoices" and m["type"] != "STATE"]
    replay(text=_lines(first))
    del sent[:]
    # Moment changes the e-mail, empties the street and the city, renames the project and takes
    # its end date away: the target must change and clear them in Fortnox.
    changed = []
    for message in first:
        if message["type"] == "RECORD":
            record = dict(message["record"], lastModifiedDate="2026-03-02T09:00:00+01:00")
            if message["stream"] == "customers":
                record.update(email="ny@kund.se", address1=None, city=None)
            else:
                record.update(name="Projekt omdöpt", endDate=None)
            message = {**message, "record": record}
        changed.append(message)
    replay(text=_lines(changed))

    assert {(m, p.split("/")[0]) for m, p, _ in sent} == {("PUT", "customers"), ("PUT", "projects")}
    assert _problems(sent) == []
    customer = fortnox_api.get("customers", "72931")
    project = fortnox_api.get("projects", "P7293")
    assert customer is not None
    assert project is not None
    assert (customer["Email"], customer["Address1"], customer["City"]) == (
        "ny@kund.se",
        "",
        "",
    )
    assert (project["Description"], project["EndDate"]) == ("Projekt omdöpt", "")


def test_names_arrive_as_written(
    replay: Replay, sent: list[tuple[str, str, dict[str, Any]]], fortnox_api: FortnoxClient
) -> None:
    """Fortnox accepts any letter of any language (Formats & Encoding: ``\\p{L}``)."""
    messages = _records(_renumbered("customers_create.singer", "7100", "7294"))
    name = "Muñoz Łódź Straße Ærø"
    records = [m for m in messages if m["type"] == "RECORD"]
    records[0]["record"]["name"] = name
    replay(text=_lines(messages))

    bodies = [b["Customer"] for m, _, b in sent if m == "POST"]
    assert name in [b.get("Name") for b in bodies]
    assert _problems(sent) == []
    created = fortnox_api.get("customers", str(records[0]["record"]["customerNumber"]))
    assert created is not None
    assert created["Name"] == name


@pytest.mark.parametrize(
    ("number", "country", "valid"),
    [
        ("556036-0793", "SE", True),
        ("5560360793", None, True),
        ("19121212-1212", "SE", True),  # personal number with the century
        ("121212-1212", "SE", True),
        ("556036-0794", "SE", False),  # wrong check digit
        ("556036-0794", None, False),  # no country: Swedish
        ("55603607", "SE", False),
        ("987 654 321 MVA", "NO", True),  # foreign: sent as written
    ],
)
def test_a_swedish_organisation_number_must_be_valid(
    number: str, country: str | None, valid: bool
) -> None:
    record = {"customerNumber": "7295", "name": "Orgnummer AB", "organizationNumber": number}
    if country:
        record["countryCode"] = country
    if valid:
        assert map_customer(record).payload["OrganisationNumber"] == number
        return
    with pytest.raises(MappingError) as refused:
        map_customer(record)
    assert refused.value.field == "organizationNumber"
    assert "7295" in str(refused.value)
    assert "check digit" in str(refused.value)
