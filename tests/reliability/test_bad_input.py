"""Bad input piped into the targets: one `.singer` replay file per kind under `bad_input/`.

Each file holds the bad record(s) and a good record after them. The target must name the stream,
the record's key, the field and what to do (on stderr and beside the record in the dead-letter
file), and still write the good record: a bad record fails alone, never the run.

Every file runs twice: as written ("untyped": its SCHEMA lines declare `{}` properties) and
"typed", its SCHEMA lines replaced by the schemas and key properties the real taps emit
(`tap-moment --discover` for target-fortnox, `tap-fortnox-expenses --discover` for
target-moment), as in production, where a value that breaks the declared type or `format` must
fail alone too rather than stop singer-sdk's validation or date parsing.

The targets run as plain Singer targets (`target-x --config c.json < file`), as a user replays a
file, against real sandbox processes; the cases run three at a time, each with its own results dir.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sandbox.launcher import SandboxProcess

HERE = Path(__file__).parent / "bad_input"
BIN = Path(sys.executable).parent
SECTION = "bad input"
# The schemas a file runs under: as written, and the taps' own (see the module docstring).
UNTYPED, TYPED = "untyped", "typed"
SECTIONS = {UNTYPED: SECTION, TYPED: f"{SECTION} (typed schemas from the taps' --discover)"}
# Which tap feeds the target the files of a folder are for.
TAPS = {"fortnox": "tap-moment", "moment": "tap-fortnox-expenses"}


@dataclass(frozen=True)
class Case:
    """What a file must produce: the failed key with words its error must hold, the good key."""

    failed: tuple[str, str, tuple[str, ...]] | None  # (stream, key, words in the error)
    good: tuple[str, str]  # (stream, key) written despite the bad record
    warning: tuple[str, ...] = ()  # words of a warning when the record goes through altered
    skipped: str | None = None  # a skip reason instead of a failure


WHAT_TO_DO = ("orrect it in Moment", "orrect the record in Moment", "Fix", "Set a start date")
FORTNOX: dict[str, Case] = {
    "customer_missing_name": Case(
        ("customers", "91001", ("'name'", "required")), ("customers", "92001")
    ),
    "customer_bad_email": Case(
        ("customers", "91003", ("Email", "ekonomi@@kund..se")), ("customers", "92003")
    ),
    "customer_country_not_alpha2": Case(
        ("customers", "91004", ("countryCode", "alpha-2")), ("customers", "92004")
    ),
    "customer_country_unknown": Case(
        ("customers", "91005", ("CountryCode", "'QQ'")), ("customers", "92005")
    ),
    "customer_zip_too_long": Case(
        ("customers", "91006", ("postalCode", "too long")), ("customers", "92006")
    ),
    "customer_number_bad_characters": Case(
        ("customers", "91 007", ("customerNumber",)), ("customers", "92007")
    ),
    "invoice_for_failed_customer": Case(
        ("invoices", "97008", ("customer 91008", "failed")), ("invoices", "98008")
    ),
    "project_number_too_long": Case(
        ("projects", "P-" + "1" * 25, ("projectNumber", "20")), ("projects", "92009")
    ),
    # Moment's state spellings are not published: an unknown one is ONGOING, warned once.
    "project_unknown_state": Case(None, ("projects", "91010"), ("'PAUSED'", "ONGOING")),
    "project_without_any_date": Case(
        ("projects", "91011", ("createdDate",)), ("projects", "92011")
    ),
    "invoice_amounts_as_strings": Case(
        ("invoices", "97012", ("unitPrice", "number")), ("invoices", "98012")
    ),
    "invoice_date_wrong_format": Case(
        ("invoices", "97013", ("invoiceDate", "01/11/2026")), ("invoices", "98013")
    ),
    "invoice_unknown_account": Case(
        ("invoices", "97014", ("AccountNumber", "2001304")), ("invoices", "98014")
    ),
    "invoice_vat_rate_not_swedish": Case(
        ("invoices", "97015", ("VAT", "19")), ("invoices", "98015")
    ),
    "invoice_unknown_project": Case(
        ("invoices", "97016", ("NOPE-16", "project")), ("invoices", "98016")
    ),
    "invoice_without_lines": Case(
        ("invoices", "97017", ("invoiceLines", "required")), ("invoices", "98017")
    ),
    "duplicate_keys_in_one_batch": Case(None, ("customers", "92018")),
    "unknown_stream": Case(None, ("customers", "92019")),
    "emoji_in_every_text_field": Case(
        None, ("customers", "92021"), ("92021", "'address2'", "'city'")
    ),
    "project_name_over_50": Case(None, ("projects", "92022"), ("92022", "50")),
}
MOMENT: dict[str, Case] = {
    "expense_unknown_project": Case(
        None,
        ("project_expenses", "rel-expense_unknown_project-ok"),
        skipped="project unknown in Moment",
    ),
    "expense_bad_date": Case(
        ("project_expenses", "rel-bad-date", ("expense_date", "2026-13-45")),
        ("project_expenses", "rel-expense_bad_date-ok"),
    ),
    "expense_amount_as_string": Case(
        ("project_expenses", "rel-bad-string", ("amount", "number")),
        ("project_expenses", "rel-expense_amount_as_string-ok"),
    ),
    "expense_unknown_account": Case(
        ("project_expenses", "rel-bad-account", ("accountNumber", "9999")),
        ("project_expenses", "rel-expense_unknown_account-ok"),
    ),
    "expense_bad_currency": Case(
        ("project_expenses", "rel-bad-currency", ("currency", "KRONOR")),
        ("project_expenses", "rel-expense_bad_currency-ok"),
    ),
    "expense_project_without_start_date": Case(
        ("project_expenses", "rel-bad-no-start", ("5006", "start date")),
        ("project_expenses", "rel-expense_project_without_start_date-ok"),
    ),
    "expense_negative_amount": Case(None, ("project_expenses", "rel-bad-negative")),
    "expense_zero_amount": Case(None, ("project_expenses", "rel-bad-zero")),
    "expense_emoji_in_text": Case(None, ("project_expenses", "rel-emoji")),
    "expense_duplicate_keys_in_one_batch": Case(None, ("project_expenses", "rel-dup")),
}
# Singer protocol slips the SDK alone would stop the run on (sync-common's RecordGuard fails the
# record only): stream, the key (or the missing key field), words of the error, whether it is a
# dead letter (a record before its SCHEMA has no schema to be replayed with: counted failed).
PROTOCOL = {
    "fortnox/record_before_schema": ("customers", "91020", "before any SCHEMA", False),
    "fortnox/customer_missing_number": (
        "customers",
        "(no customerNumber)",
        "'customerNumber' is missing",
        True,
    ),
    "moment/expense_missing_source_key": (
        "project_expenses",
        "(no source_key)",
        "'source_key' is missing",
        True,
    ),
}
GOOD_AFTER_SLIP = {
    "fortnox/record_before_schema": "customers",
    "fortnox/customer_missing_number": "customers",
    "moment/expense_missing_source_key": "project_expenses",
}


@dataclass
class Outcome:
    exit_code: int
    stderr: str
    letters: list[dict[str, Any]]
    summary: dict[str, Any]
    schemas: str  # UNTYPED or TYPED
    mails: list[str]  # the failure e-mails' bodies, to this case's own address


Catalog = dict[str, tuple[dict[str, Any], list[str]]]  # stream -> (schema, key properties)


@pytest.fixture(scope="module")
def catalogs() -> dict[str, Catalog]:
    """Per folder (target), the typed schemas its tap emits, read from the tap's discovery."""
    found: dict[str, Catalog] = {}
    for kind, tap in TAPS.items():
        done = subprocess.run(
            [BIN / tap, "--discover"], capture_output=True, check=True, timeout=120
        )
        found[kind] = {
            entry["tap_stream_id"]: (entry["schema"], list(entry["key_properties"]))
            for entry in json.loads(done.stdout)["streams"]
        }
    return found


def typed_replay(path: Path, catalog: Catalog) -> bytes:
    """The replay file with each SCHEMA of a stream the tap knows replaced by the tap's own."""
    lines = []
    for line in path.read_text("utf-8").splitlines():
        message = json.loads(line)
        if message["type"] == "SCHEMA" and message["stream"] in catalog:
            message["schema"], message["key_properties"] = catalog[message["stream"]]
            line = json.dumps(message, ensure_ascii=False)
        lines.append(line)
    return ("\n".join(lines) + "\n").encode("utf-8")


def test_typed_replays_carry_the_taps_schemas(catalogs: dict[str, Catalog]) -> None:
    """The typed runs really are typed: every file's SCHEMA lines of a stream its tap emits are
    the tap's, with the types the issue met (a number amount, a `format: date` invoice date)."""
    amount = catalogs["moment"]["project_expenses"][0]["properties"]["amount"]["type"]
    assert "number" in ([amount] if isinstance(amount, str) else amount)
    invoice_date = catalogs["fortnox"]["invoices"][0]["properties"]["invoiceDate"]
    assert invoice_date["format"] == "date"
    for path in sorted(HERE.glob("*/*.singer")):
        catalog = catalogs[path.parent.name]
        schemas = [
            message
            for message in map(json.loads, typed_replay(path, catalog).decode().splitlines())
            if message["type"] == "SCHEMA"
        ]
        known = [m for m in schemas if m["stream"] in catalog]
        assert known, path
        for message in known:
            assert message["schema"] == catalog[message["stream"]][0], path
            assert all(spec for spec in message["schema"]["properties"].values()), path


@pytest.fixture(scope="module", params=[UNTYPED, TYPED])
def outcomes(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    catalogs: dict[str, Catalog],
    smtp_server: Any,
) -> Iterator[dict[str, Outcome]]:
    """Every file through its target, under one kind of schema (fresh sandboxes per kind); each
    case e-mails its failures to its own address on the local SMTP server."""
    schemas: str = request.param
    work = tmp_path_factory.mktemp(f"bad-input-{schemas}")
    with (
        SandboxProcess(
            "fortnox", work / "f.db", seed=1, extra_args=["--max-requests-per-5s", "0"]
        ) as fortnox,
        SandboxProcess("moment", work / "m.db", seed=1) as moment,
    ):
        refresh = fortnox.admin("POST", "refresh-tokens", {})["refresh_token"]

        def run(name: str) -> tuple[str, Outcome]:
            kind, stem = name.split("/")
            results = work / stem
            if kind == "fortnox":
                plugin = "target-fortnox"
                config = {
                    "api_url": f"{fortnox.url}/3",
                    "token_url": f"{fortnox.url}/oauth-v1/token",
                    "client_id": "sandbox-client",
                    "client_secret": "sandbox-secret",
                    "refresh_token": refresh,
                    "token_store_path": str(work / "token.json"),
                    "max_requests_per_5s": 0,
                    "results_dir": str(results),
                    "run_store_path": str(results),  # the dead letters, read below
                }
            else:
                plugin = "target-moment"
                config = {
                    "api_url": f"{moment.url}/api/1.0",
                    "company_code": "demo",
                    "api_key": "sandbox-key",
                    "results_dir": str(results),
                }
            address = f"bad-input+{schemas}-{stem}@byra.example.se"
            config |= {
                "notify_email": address,
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp_server.port,
                "smtp_starttls": False,
                "smtp_from": "sync@byra.example.se",
            }
            config_path = work / f"{stem}.json"
            config_path.write_text(json.dumps(config))
            path = HERE / f"{name}.singer"
            replay = path.read_bytes() if schemas == UNTYPED else typed_replay(path, catalogs[kind])
            done = subprocess.run(
                [BIN / plugin, "--config", config_path],
                input=replay,
                capture_output=True,
                timeout=180,
            )
            letters_file = results / "dead-letters" / f"{plugin}.singer"
            letters = []
            if letters_file.exists():
                messages = [json.loads(x) for x in letters_file.read_text().splitlines() if x]
                letters = [m for m in messages if m["type"] == "RECORD"]
            runs = sorted((results / "runs").glob("*.json"))
            summary = json.loads(runs[-1].read_text()) if runs else {}
            stderr = done.stderr.decode("utf-8", "replace")
            # The SMTP server stores a message before it answers, so before the target exits
            # (a message still being stored by another case has no recipients yet: not zipped).
            inbox = smtp_server.inbox
            mails = [
                str(message.get_payload(decode=True), "utf-8")
                for message, to in zip(inbox.messages, inbox.recipients, strict=False)
                if to == [address]
            ]
            return name, Outcome(done.returncode, stderr, letters, summary, schemas, mails)

        names = [f"fortnox/{n}" for n in FORTNOX] + [f"moment/{n}" for n in MOMENT] + list(PROTOCOL)
        with ThreadPoolExecutor(max_workers=3) as pool:
            yield dict(pool.map(run, names))


def test_every_kind_has_a_file() -> None:
    files = {f"{p.parent.name}/{p.stem}" for p in HERE.glob("*/*.singer")}
    expected = {f"fortnox/{n}" for n in FORTNOX} | {f"moment/{n}" for n in MOMENT} | set(PROTOCOL)
    assert files == expected
    assert len(expected) >= 20


@pytest.mark.parametrize(
    ("name", "case"),
    [(f"fortnox/{n}", c) for n, c in FORTNOX.items()]
    + [(f"moment/{n}", c) for n, c in MOMENT.items()],
)
def test_bad_record_fails_alone_with_an_actionable_error(
    name: str, case: Case, outcomes: dict[str, Outcome], figures: Any
) -> None:
    outcome = outcomes[name]
    assert outcome.exit_code == 0, outcome.stderr[-3000:]
    assert "Traceback" not in outcome.stderr
    streams = outcome.summary["streams"]
    good_stream, _good_key = case.good
    assert streams[good_stream]["created"] + streams[good_stream]["updated"] >= 1, streams
    row: dict[str, Any] = {"target": name.split("/")[0], "outcome": "written"}
    if case.failed is not None:
        stream, key, words = case.failed
        letter = next((m for m in outcome.letters if m["error"]["key"] == key), None)
        assert letter is not None, f"no dead letter for {stream} {key}: {outcome.letters}"
        assert letter["stream"] == stream
        message = letter["error"]["message"]
        for word in words:
            assert word in message, f"{word!r} not in {message!r}"
        assert any(w in message for w in WHAT_TO_DO), f"no advice in {message!r}"
        error_lines = [x for x in outcome.stderr.splitlines() if "ERROR" in x and key in x]
        assert error_lines, outcome.stderr[-2000:]
        assert any(stream in x for x in error_lines)
        failed = sum(s["failed"] for s in streams.values())
        assert failed == len(outcome.letters), (streams, outcome.letters)
        (mail,) = outcome.mails
        assert f"key {key}: " in mail, mail
        row = {**row, "outcome": "dead-lettered", "error": message[:240]}
    elif case.skipped:
        # Kept to be re-driven while it waits for its project, not as a failure.
        assert [m["error"]["message"][:9] for m in outcome.letters] == ["waiting: "]
    else:
        assert outcome.letters == [], outcome.letters
        assert outcome.mails == [], outcome.mails
    for word in case.warning:
        assert any("WARNING" in x and word in x for x in outcome.stderr.splitlines()), word
    if case.warning:
        row["outcome"] = "written with a warning"
    if case.skipped:
        assert streams[good_stream]["skipped_reasons"] == {case.skipped: 1}
        row["outcome"] = f"skipped ({case.skipped})"
    figures.add(SECTIONS[outcome.schemas], name, **row)


@pytest.mark.parametrize(("name", "expected"), list(PROTOCOL.items()))
def test_protocol_slips_fail_the_record_not_the_run(
    name: str, expected: tuple[str, str, str, bool], outcomes: dict[str, Outcome], figures: Any
) -> None:
    """A record before its SCHEMA, or without its key: an ERROR naming the stream, the key (or
    the missing key field) and the fix; the good record after it is written."""
    stream, key, words, dead_lettered = expected
    outcome = outcomes[name]
    assert outcome.exit_code == 0, outcome.stderr[-3000:]
    assert "Traceback" not in outcome.stderr
    streams = outcome.summary["streams"]
    good = streams[GOOD_AFTER_SLIP[name]]
    assert good["created"] + good["updated"] >= 1, streams
    assert streams[stream]["failed"] == 1, streams
    (mail,) = outcome.mails
    assert words in mail, mail
    error_lines = [x for x in outcome.stderr.splitlines() if "ERROR" in x and key in x]
    assert any(stream in x and words in x for x in error_lines), outcome.stderr[-2000:]
    if dead_lettered:
        (letter,) = outcome.letters
        assert letter["stream"] == stream
        assert letter["error"]["key"].startswith(key)
        assert words in letter["error"]["message"]
        assert "replay" in letter["error"]["message"]
    else:
        assert outcome.letters == []
        (failure,) = outcome.summary["failures"]
        assert failure["key"] == key
        assert "Fix the tap" in failure["message"]
    figures.add(
        SECTIONS[outcome.schemas],
        name,
        target=name.split("/")[0],
        outcome="dead-lettered" if dead_lettered else "counted failed (no schema to replay with)",
        error=(letter["error"]["message"] if dead_lettered else failure["message"])[:240],
    )
