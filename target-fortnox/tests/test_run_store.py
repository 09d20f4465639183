"""target-fortnox's run store: beside the token store by default, the ledger merged between runs,
and the refusal to start where it would not outlive the worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest
from fortnox_client.run_store import run_store_settings
from sync_common import FileRunStore, PostgresRunStore
from target_fortnox.existing import FingerprintLedger
from target_fortnox.target import TargetFortnox

REMOTE_STATE = "postgresql+psycopg://meltano:pw@db.internal/meltano"


def test_the_run_store_follows_the_token_store(tmp_path: Path) -> None:
    token_file = tmp_path / "secrets" / "fortnox-token.json"
    folder = run_store_settings({"token_store_path": str(token_file)}).open({})
    assert isinstance(folder, FileRunStore)
    assert folder.root == tmp_path / "secrets" / "run-store"
    database = run_store_settings(
        {
            "token_store_url": "postgresql://f:pw@db/fortnox?tenant=acme&table=tokens_b",
            "tenant_id": 1234567,
        }
    ).open({"MELTANO_DATABASE_URI": REMOTE_STATE})
    assert isinstance(database, PostgresRunStore)
    assert (database.table, database.tenant) == ("tokens_b_run_store", "acme")
    own = run_store_settings(
        {"token_store_url": "postgresql://f:pw@db/fortnox", "run_store_path": str(tmp_path)}
    )
    assert own.url is None  # a folder chosen on purpose (a kept volume) wins
    assert own.path == tmp_path
    assert run_store_settings({"tenant_id": "1234567"}).tenant == "1234567"


def test_two_runs_keep_each_others_fingerprints(tmp_path: Path) -> None:
    first = FingerprintLedger(FileRunStore(tmp_path), "target-fortnox")
    second = FingerprintLedger(FileRunStore(tmp_path), "target-fortnox")
    first.put("customers", "1001", "a")
    second.put("customers", "1002", "b")
    second.put("invoices", "7", "c")
    first.save()
    second.save()  # a whole-document write of its own memory would drop 1001
    merged = FingerprintLedger(FileRunStore(tmp_path), "target-fortnox")
    assert merged.matches("customers", "1001", "a")
    assert merged.matches("customers", "1002", "b")
    assert merged.matches("invoices", "7", "c")


def test_refuses_to_start_with_a_local_run_store_when_state_is_remote(
    fortnox_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MELTANO_DATABASE_URI", REMOTE_STATE)
    monkeypatch.setenv("MELTANO_STATE_BACKEND_URI", "systemdb")
    with pytest.raises(click.ClickException, match="Refusing to start") as caught:
        TargetFortnox(config=fortnox_config)
    assert fortnox_config["run_store_path"] in caught.value.message
    assert "pw" not in caught.value.message
    TargetFortnox(config={**fortnox_config, "run_store_path_persists": True})
    monkeypatch.delenv("MELTANO_DATABASE_URI")
    with pytest.raises(click.ClickException, match="run_store_path_persists is false"):
        TargetFortnox(config={**fortnox_config, "run_store_path_persists": False})
