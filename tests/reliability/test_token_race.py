"""Two Fortnox plugins, two processes, one token store, short-lived access tokens: they refresh
at the same moments and the single-use refresh-token chain never ends in `invalid_grant`.

tap-fortnox-expenses (reading every supplier invoice) and target-fortnox (writing customers) run
at once, as the two scheduled jobs can, against a Fortnox sandbox whose access tokens live 3 s and
whose API answers each request 0.1 s late, so each run outlives several tokens. Every round starts
with all tokens expired, so both processes need a refresh in their first second.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sandbox.launcher import SandboxProcess

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
ROUNDS = 3
TOKEN_LIFETIME = "3"
SECTION = "token refresh race"


@pytest.fixture(scope="module")
def fortnox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    work = tmp_path_factory.mktemp("token-race")
    with SandboxProcess(
        "fortnox",
        work / "fortnox.db",
        seed=1,
        extra_args=["--max-requests-per-5s", "0", "--token-lifetime", TOKEN_LIFETIME],
    ) as sandbox:
        yield sandbox


def customers_input(first: int, count: int) -> str:
    schema = {
        "type": "SCHEMA",
        "stream": "customers",
        "key_properties": ["customerNumber"],
        "schema": {
            "type": "object",
            "properties": {
                "customerNumber": {"type": "string"},
                "name": {"type": "string"},
                "countryCode": {"type": "string"},
            },
        },
    }
    lines = [json.dumps(schema)]
    for n in range(first, first + count):
        record = {"customerNumber": str(n), "name": f"Kapplöpning {n} AB", "countryCode": "SE"}
        lines.append(json.dumps({"type": "RECORD", "stream": "customers", "record": record}))
    return "\n".join(lines) + "\n"


def test_two_plugins_refreshing_at_once_never_hit_invalid_grant(
    fortnox: SandboxProcess, tmp_path: Path, figures: Any
) -> None:
    seed = fortnox.admin("POST", "refresh-tokens", {})["refresh_token"]
    store = tmp_path / "shared-token.json"
    common = {
        "api_url": f"{fortnox.url}/3",
        "token_url": f"{fortnox.url}/oauth-v1/token",
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "refresh_token": seed,
        "token_store_path": str(store),
        "max_requests_per_5s": 0,
        "results_dir": str(tmp_path / "results"),
    }
    tap_config, target_config = tmp_path / "tap.json", tmp_path / "target.json"
    tap_config.write_text(json.dumps({**common, "lookback_days": 90}))
    target_config.write_text(json.dumps(common))
    fortnox.admin("POST", "faults", {"kind": "latency", "seconds": 0.1, "path": "^/3/"})
    first_seq = fortnox.admin("GET", "requests")["last"]
    for round_ in range(ROUNDS):
        fortnox.admin("POST", "tokens/expire")
        input_file = tmp_path / f"customers-{round_}.singer"
        input_file.write_text(customers_input(96000 + round_ * 100, 25))
        with input_file.open("rb") as stdin:
            # Both started back to back: each needs a fresh access token in its first second.
            tap = subprocess.Popen(
                [BIN / "tap-fortnox-expenses", "--config", tap_config],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            target = subprocess.Popen(
                [BIN / "target-fortnox", "--config", target_config],
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            _, tap_err = tap.communicate(timeout=180)
            _, target_err = target.communicate(timeout=180)
        for name, process, err in (("tap", tap, tap_err), ("target", target, target_err)):
            text = err.decode("utf-8", "replace")
            assert "invalid_grant" not in text, f"{name} round {round_}: {text[-3000:]}"
            assert process.returncode == 0, f"{name} round {round_}: {text[-3000:]}"
    fortnox.admin("DELETE", "faults")

    log = fortnox.admin("GET", f"requests?since={first_seq}")["requests"]
    token_calls = [r for r in log if r["path"].startswith("/oauth-v1/token")]
    refused = [r for r in token_calls if r["status"] != 200]
    expired_answers = [r for r in log if r["path"].startswith("/3/") and r["status"] == 401]
    assert not refused, refused
    # Each round: two expired-at-start refreshes shared through the store, plus mid-run ones.
    assert len(token_calls) >= ROUNDS, token_calls
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    figures.add(
        SECTION,
        "tap-fortnox-expenses and target-fortnox at once, one store, 3 s tokens",
        rounds=ROUNDS,
        token_refreshes=len(token_calls),
        api_401_answers=len(expired_answers),
        invalid_grant=0,
        token_store_mode="0600",
    )
