"""target-moment's run store: its own settings (it has no token store), and the refusal to start
where the dead letters would not outlive the worker."""

from __future__ import annotations

from typing import Any

import click
import pytest
from sync_common import FileRunStore, PostgresRunStore
from target_moment.target import TargetMoment


def test_the_run_store_is_results_dir_unless_set(target_config: dict[str, Any]) -> None:
    target = TargetMoment(config=target_config)
    assert isinstance(target.run_store, FileRunStore)
    assert str(target.run_store.root) == target_config["results_dir"]
    url = "postgresql://m:pw@db.internal/moment?tenant=acme"
    target = TargetMoment(config={**target_config, "run_store_url": url})
    assert isinstance(target.run_store, PostgresRunStore)
    assert (target.run_store.table, target.run_store.tenant) == ("run_store", "acme")


@pytest.mark.parametrize(
    "backend",
    [
        {"MELTANO_STATE_BACKEND_URI": "s3://bucket/meltano-state"},
        {"MELTANO_DATABASE_URI": "postgresql+psycopg://meltano:pw@db.internal/meltano"},
    ],
)
def test_refuses_a_folder_store_when_state_is_kept_elsewhere(
    target_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, backend: dict[str, str]
) -> None:
    for name, value in backend.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(click.ClickException, match="Refusing to start") as caught:
        TargetMoment(config=target_config)
    assert "run_store_url" in caught.value.message
    assert "pw" not in caught.value.message
    url = "postgresql://m:pw@db.internal/moment"
    TargetMoment(config={**target_config, "run_store_url": url})  # a database store is fine
    TargetMoment(config={**target_config, "run_store_path_persists": True})  # a kept volume
