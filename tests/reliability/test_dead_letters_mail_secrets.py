"""Dead letters, the failure e-mail and secrets, through `meltano run` with DEBUG logging.

A Moment customer with a postal code Fortnox cannot take (Moment accepts it) and an invoice for
that customer fail; both go to the dead-letter file and one e-mail goes to `notify_email` through
a real local SMTP server. After the customer is corrected in Moment the next run retries the dead
letters first and both leave the file (the invoice is only reachable that way: the tap's bookmark
is already past it). No e-mail when all is well; a broken SMTP server does not fail the run; a
dead-letter file piped into the target replays it. Finally every output, file, state, system DB
and e-mail of the module is searched for every secret, including the tokens Fortnox issued.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
MELTANO = str(Path(sys.executable).parent / "meltano")
JOB = "moment-to-fortnox"
SECTION = "dead letters, e-mail, secrets"
SMTP_PASSWORD = "Smtp-Hemligt-9f3Kq"
NOTIFY = "ekonomi@byra.example.se"
OUTPUTS: list[str] = []
TOKENS: set[str] = set()


def mail_env(port: int) -> dict[str, str]:
    env: dict[str, str] = {}
    for plugin in ("TARGET_FORTNOX", "TAP_FORTNOX_EXPENSES", "TARGET_MOMENT"):
        env |= {
            f"{plugin}_NOTIFY_EMAIL": NOTIFY,
            f"{plugin}_SMTP_HOST": "127.0.0.1",
            f"{plugin}_SMTP_PORT": str(port),
            f"{plugin}_SMTP_STARTTLS": "false",
            f"{plugin}_SMTP_USERNAME": "mailer@byra.example.se",
            f"{plugin}_SMTP_PASSWORD": SMTP_PASSWORD,
        }
    return env


def debug_run(kit: Any, *jobs: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`meltano --log-level debug run`, plugins at DEBUG too; output kept for the secret scan."""
    result = kit.pipelines.meltano(
        "--log-level", "debug", "run", *jobs, check=False, LOGLEVEL="DEBUG", **env
    )
    OUTPUTS.extend([result.stdout, result.stderr])
    store = kit.pipelines.token_store
    if store.exists():
        grant = json.loads(store.read_text()).get("refresh_token_grant") or {}
        TOKENS.update(v for k, v in grant.items() if k in ("access_token", "refresh_token") and v)
    return result


@pytest.fixture(scope="module")
def mailing(kit: Any, smtp_server: Any) -> Any:
    kit.pipelines.extra_env.update(mail_env(smtp_server.port))
    # The seed refresh token the lead's fixture mints is a secret too.
    TOKENS.update(v for k, v in kit.pipelines.env().items() if k.endswith("_REFRESH_TOKEN"))
    return smtp_server


def test_no_email_when_all_is_well(kit: Any, mailing: Any) -> None:
    result = debug_run(kit, JOB, "fortnox-expenses-to-moment")
    assert result.returncode == 0, result.stderr[-3000:]
    assert kit.pipelines.last_summary("target-fortnox")["totals"]["failed"] == 0
    assert mailing.inbox.messages == []
    kit.figures.add(SECTION, "run without failures", emails=0)


def test_failed_records_are_dead_lettered_and_mailed_once(kit: Any, mailing: Any) -> None:
    moment = kit.pipelines.moment
    moment.admin(
        "POST",
        "customers",
        {"customerNumber": "8901", "name": "Lång Postkod AB", "postalCode": "211 22 MALMÖ C"},
    )
    invoice = moment.admin(
        "POST",
        "invoices",
        {
            "customer": {"customerNumber": "8901"},
            "invoiceLines": [
                {
                    "description": "Rådgivning",
                    "quantity": 1,
                    "unitPrice": 900,
                    "vatRate": 25,
                    "accountNumber": "3001",
                }
            ],
            "finalize": True,
        },
    )
    number = str(invoice["invoiceNumber"])
    result = debug_run(kit, JOB)
    assert result.returncode == 0, result.stderr[-3000:]
    letters = {(m["stream"], m["error"]["key"]): m for m in kit.dead_letters("target-fortnox")}
    assert set(letters) == {("customers", "8901"), ("invoices", number)}
    assert "postalCode" in letters[("customers", "8901")]["error"]["message"]
    assert "8901" in letters[("invoices", number)]["error"]["message"]
    assert "postalCode" in result.stderr
    assert len(mailing.inbox.messages) == 1
    mail = mailing.inbox.messages[0]
    assert mailing.inbox.recipients[0] == [NOTIFY]
    assert "target-fortnox" in mail["Subject"]
    body = mail.get_payload(decode=True).decode()
    assert "8901" in body
    assert number in body
    kit.figures.add(SECTION, "2 failed records", emails=1, dead_letters=2, subject=mail["Subject"])


def test_next_run_retries_dead_letters_first(kit: Any, mailing: Any) -> None:
    kit.pipelines.moment.admin("PATCH", "customers/8901", {"postalCode": "211 22"})
    mailing.inbox.clear()
    result = debug_run(kit, JOB)
    assert result.returncode == 0, result.stderr[-3000:]
    assert kit.dead_letters("target-fortnox") == []
    assert not kit.pipelines.dead_letters_file("target-fortnox").exists()
    kit.oracle.assert_fortnox_mirrors_moment()
    assert mailing.inbox.messages == []
    kit.figures.add(SECTION, "corrected in Moment, next run", dead_letters_left=0, emails=0)


def test_broken_smtp_does_not_fail_the_run_and_the_file_replays(
    kit: Any, mailing: Any, tmp_path: Path
) -> None:
    kit.pipelines.moment.admin(
        "POST",
        "customers",
        {"customerNumber": "8902", "name": "Trasig Post AB", "postalCode": "12345678901"},
    )
    closed = {k: "1" for k in mail_env(0) if k.endswith("_SMTP_PORT")}  # nothing listens on 1
    result = debug_run(kit, JOB, **closed)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [m["error"]["key"] for m in kit.dead_letters("target-fortnox")] == ["8902"]

    # Replay by hand: correct the record in the file, pipe the file into the target.
    letters_file = kit.pipelines.dead_letters_file("target-fortnox")
    lines = [json.loads(x) for x in letters_file.read_text().splitlines() if x]
    for message in lines:
        if message["type"] == "RECORD":
            message["record"]["postalCode"] = "123 45"
    kit.pipelines.moment.admin("PATCH", "customers/8902", {"postalCode": "123 45"})
    replay = tmp_path / "replay.singer"
    replay.write_text("\n".join(json.dumps(m, ensure_ascii=False) for m in lines) + "\n")
    with replay.open() as stdin:
        invoked = subprocess.run(
            [MELTANO, "invoke", "target-fortnox"],
            cwd=ROOT,
            env=kit.pipelines.env(LOGLEVEL="DEBUG"),
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )
    OUTPUTS.extend([invoked.stdout, invoked.stderr])
    assert invoked.returncode == 0, invoked.stderr[-3000:]
    assert not letters_file.exists()
    assert "8902" in kit.oracle.fortnox_numbers("customers")
    kit.figures.add(SECTION, "SMTP unreachable; replay by pipe", run_exit=0, replayed=1)


def test_no_secret_anywhere(kit: Any, mailing: Any) -> None:
    store = kit.pipelines.token_store
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    secrets = {
        "client secret": "sandbox-secret",
        "Moment API key": "sandbox-key",
        "SMTP password": SMTP_PASSWORD,
    }
    secrets |= {f"token {i}": t for i, t in enumerate(sorted(TOKENS))}
    assert len(TOKENS) >= 3, "expected the seed, a rotated refresh token and an access token"
    workdir = kit.pipelines.workdir
    places: dict[str, bytes] = {f"output {i}": o.encode() for i, o in enumerate(OUTPUTS)}
    for path in [
        *(workdir / "results").rglob("*"),
        *kit.pipelines.run_store.rglob("*"),  # dead letters and the fingerprint ledger
        *(workdir / "state").rglob("*"),
        workdir / "meltano.db",
    ]:
        if path.is_file():
            places[str(path)] = path.read_bytes()
    places |= {f"e-mail {i}": raw for i, raw in enumerate(mailing.inbox.raw)}
    leaks = [
        f"{name} in {place}"
        for place, data in places.items()
        for name, value in secrets.items()
        if value.encode() in data
    ]
    assert not leaks, leaks
    kit.figures.add(
        SECTION,
        "secret scan at DEBUG",
        secrets_checked=len(secrets),
        places_scanned=len(places),
        leaks=0,
        token_store_mode="0600",
    )
