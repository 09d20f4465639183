"""The run store's two backends (a folder, a real PostgreSQL server) behind one interface, the dead
letters on each, two processes at once, the settings and the refusal rule."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sandbox.postgres import PASSWORD
from sync_common import (
    DeadLetters,
    FileRunStore,
    PostgresRunStore,
    RunStore,
    RunStoreNotPersistent,
    RunStoreSettings,
    dead_letters_path,
)
from sync_common.run_store import refuse_unless_persistent, remote_state_backend

SCHEMA = {"type": "object", "properties": {"customerNumber": {"type": "string"}}}
KEYS = ["customerNumber"]


@pytest.fixture(params=["file", "postgresql"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], RunStore]:
    """Makes stores on the same place (a folder, or this test's own tenant in one database):
    each call is a new instance, like another run of the plugin."""
    if request.param == "file":
        return lambda: FileRunStore(tmp_path / "run-store")
    pytest.importorskip("psycopg", reason="sync-common[postgres] (psycopg) not installed")
    server = request.getfixturevalue("postgres_server")
    url = server.url() + f"?tenant={request.node.name[:60]}"
    return lambda: PostgresRunStore(url)


def add(letters: DeadLetters, key: str, error: str = "Postnummer för långt") -> None:
    letters.add("customers", SCHEMA, KEYS, {"customerNumber": key}, key, error)


def keys(letters: DeadLetters) -> list[str]:
    return [letter.key for letter in letters.pending()]


def test_documents_append_rewrite_and_vanish(store_factory: Callable[[], RunStore]) -> None:
    store = store_factory()
    assert store.read("dead-letters/x.singer") == ""
    store.append("dead-letters/x.singer", "a\n")
    store_factory().append("dead-letters/x.singer", "b\n")
    assert store.read("dead-letters/x.singer") == "a\nb\n"
    with store.rewrite("dead-letters/x.singer") as document:
        assert document.text == "a\nb\n"
        document.text = "c\n"
    assert store_factory().read("dead-letters/x.singer") == "c\n"
    assert store.read("fingerprints/x.json") == ""  # documents are separate
    with store.rewrite("dead-letters/x.singer") as document:
        document.text = ""
    assert store_factory().read("dead-letters/x.singer") == ""
    # A failed rewrite leaves the document as it was.
    store.append("d", "kept\n")

    def die_mid_save() -> None:
        with store.rewrite("d") as document:
            document.text = "lost\n"
            raise RuntimeError("the run died mid-save")

    with pytest.raises(RuntimeError, match="mid-save"):
        die_mid_save()
    assert store.read("d") == "kept\n"
    store.close()


def test_dead_letters_survive_in_the_store_and_replay_the_same(
    store_factory: Callable[[], RunStore], tmp_path: Path
) -> None:
    first = DeadLetters(tmp_path / "results-1", "target-fortnox", store=store_factory())
    add(first, "1001")
    add(first, "1002")
    add(first, "1001", "again")  # replaced, attempts 2
    # A new run on an empty results_dir (a fresh worker) sees them: they are in the store.
    second = DeadLetters(tmp_path / "results-2", "target-fortnox", store=store_factory())
    assert [(x.key, x.attempts, x.error) for x in second.pending()] == [
        ("1002", 1, "Postnummer för långt"),
        ("1001", 2, "again"),
    ]
    assert not (tmp_path / "results-1").exists()
    assert not (tmp_path / "results-2").exists()
    assert second.resolve("customers", "1002")
    second.save()
    third = DeadLetters(tmp_path / "results-3", "target-fortnox", store=store_factory())
    assert keys(third) == ["1001"]
    # The stored text is the replayable Singer file, whatever the backend.
    lines = [json.loads(x) for x in third.store.read(third.name).splitlines()]
    assert [m["type"] for m in lines] == ["SCHEMA", "RECORD"]
    assert lines[1]["record"] == {"customerNumber": "1001"}
    third.resolve("customers", "1001")
    third.save()
    assert third.store.read(third.name) == ""
    assert len(DeadLetters(tmp_path, "target-fortnox", store=store_factory())) == 0


def test_two_runs_saving_keep_each_others_letters(
    store_factory: Callable[[], RunStore], tmp_path: Path
) -> None:
    seed = DeadLetters(tmp_path, "target-moment", store=store_factory())
    add(seed, "old-1")
    add(seed, "old-2")
    # Two runs start from the same letters...
    run_a = DeadLetters(tmp_path, "target-moment", store=store_factory())
    run_b = DeadLetters(tmp_path, "target-moment", store=store_factory())
    # ... A fails a new record and delivers old-1; B delivers old-2 and fails another.
    add(run_a, "a-1")
    run_a.resolve("customers", "old-1")
    add(run_b, "b-1")
    run_b.resolve("customers", "old-2")
    run_a.save()
    run_b.save()  # a whole-file rewrite of B's memory would drop a-1 and bring back old-1
    assert sorted(keys(DeadLetters(tmp_path, "target-moment", store=store_factory()))) == [
        "a-1",
        "b-1",
    ]
    assert sorted(keys(run_b)) == ["a-1", "b-1"]


WORKER = """
import sys
from sync_common import DeadLetters, FileRunStore, PostgresRunStore
kind, where, name = sys.argv[1:4]
store = FileRunStore(where) if kind == "file" else PostgresRunStore(where)
letters = DeadLetters(where + "-results", "target-fortnox", store=store)
schema = {"type": "object"}
for n in range(40):
    letters.add("customers", schema, ["customerNumber"], {"n": n}, f"{name}-{n}", "fel")
    if n % 2 == 0:
        letters.resolve("customers", f"old-{name}-{n}")
    if n % 5 == 4:
        letters.save()
letters.save()
"""


def test_two_processes_at_once_lose_nothing(
    store_factory: Callable[[], RunStore], tmp_path: Path
) -> None:
    store = store_factory()
    seed = DeadLetters(tmp_path, "target-fortnox", store=store)
    for name in ("p", "q"):
        for n in range(40):
            add(seed, f"old-{name}-{n}")
    if isinstance(store, FileRunStore):
        kind, where = "file", str(store.root)
    else:
        kind = "postgresql"
        where = store_url_of(store)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, kind, where, name],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("p", "q")
    ]
    for worker in workers:
        _, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
    final = DeadLetters(tmp_path, "target-fortnox", store=store_factory())
    expected = {f"{name}-{n}" for name in ("p", "q") for n in range(40)}
    expected |= {f"old-{name}-{n}" for name in ("p", "q") for n in range(1, 40, 2)}
    assert set(keys(final)) == expected
    assert len(final) == len(expected)  # one letter per key, every line whole


def store_url_of(store: PostgresRunStore) -> str:
    """The test URL back (with its password) for a worker process."""
    host, rest = store.display.split("@", 1)
    return f"{host}:{PASSWORD}@{rest}?tenant={store.tenant}"


def test_letters_of_the_old_results_dir_file_move_into_the_store(
    store_factory: Callable[[], RunStore], tmp_path: Path
) -> None:
    results = tmp_path / "output"
    old = DeadLetters(results, "target-fortnox")  # where earlier versions kept them
    add(old, "1031")
    old_file = dead_letters_path(results, "target-fortnox")
    assert old_file.exists()
    moved = DeadLetters(results, "target-fortnox", store=store_factory())
    assert keys(moved) == ["1031"]
    assert not old_file.exists()
    assert old_file.with_name(old_file.name + ".moved").exists()
    assert keys(DeadLetters(tmp_path / "fresh", "target-fortnox", store=store_factory())) == [
        "1031"
    ]


def test_tenants_and_tables_keep_postgres_documents_apart(postgres_server: Any) -> None:
    pytest.importorskip("psycopg", reason="sync-common[postgres] (psycopg) not installed")
    url = postgres_server.url()
    acme = PostgresRunStore(url + "?tenant=acme")
    other = PostgresRunStore(url + "?tenant=other")
    tabled = PostgresRunStore(url + "?tenant=acme&table=another_run_store")
    acme.append("n", "acme\n")
    assert other.read("n") == ""
    assert tabled.read("n") == ""
    assert "acme" in acme.where("n")
    assert PASSWORD not in acme.where("n")
    assert PASSWORD not in repr(acme)


def test_unreachable_database_names_the_url_without_its_password(tmp_path: Path) -> None:
    pytest.importorskip("psycopg", reason="sync-common[postgres] (psycopg) not installed")
    store = PostgresRunStore(f"postgresql://u:{PASSWORD}@127.0.0.1:1/db")
    with pytest.raises(RuntimeError, match="run_store_url") as caught:
        store.read("x")
    assert PASSWORD not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)


# -- settings and the refusal rule -------------------------------------------------------------


def test_settings_choose_the_backend(tmp_path: Path) -> None:
    plain = RunStoreSettings.from_config({}, default_path=tmp_path / "d")
    assert isinstance(plain.open({}), FileRunStore)
    assert plain.path == tmp_path / "d"
    path = RunStoreSettings.from_config({"run_store_path": str(tmp_path / "p")}, default_path="x")
    assert path.path == tmp_path / "p"
    inherited = RunStoreSettings.from_config(
        {},
        default_path="x",
        inherited_url="postgresql://u:p@h/db?tenant=acme",
        inherited_setting="token_store_url",
        inherited_table="fortnox_tokens_run_store",
    )
    store = inherited.open({})
    assert isinstance(store, PostgresRunStore)
    assert (store.table, store.tenant) == ("fortnox_tokens_run_store", "acme")
    own = RunStoreSettings.from_config(
        {"run_store_url": "postgresql://u:p@h/db"},
        default_path="x",
        inherited_url="postgresql://u:p@h/other",
        tenant="1234567",
    ).open({})
    assert isinstance(own, PostgresRunStore)
    assert (own.table, own.tenant) == ("run_store", "1234567")
    assert "p@" not in repr(inherited)
    with pytest.raises(ValueError, match="run_store_url must look like"):
        RunStoreSettings.from_config({"run_store_url": "mysql://h/db"}, default_path="x").open({})


@pytest.mark.parametrize(
    ("environ", "remote"),
    [
        ({}, None),
        ({"MELTANO_STATE_BACKEND_URI": "systemdb"}, None),
        ({"MELTANO_DATABASE_URI": "sqlite:////tmp/meltano.db"}, None),
        ({"MELTANO_STATE_BACKEND_URI": "file:///var/meltano/state"}, None),
        ({"MELTANO_DATABASE_URI": "postgresql+psycopg://m:pw@db/meltano"}, "system database"),
        ({"MELTANO_STATE_BACKEND_URI": "s3://bucket/state"}, "s3://bucket/state"),
        ({"MELTANO_STATE_BACKEND_URI": "gs://bucket/state"}, "gs://bucket"),
        ({"MELTANO_STATE_BACKEND_URI": "azure://container/p"}, "azure://container"),
        ({"MELTANO_STATE_BACKEND_URI": "postgresql://m:pw@db/meltano"}, "postgresql://m@db"),
    ],
)
def test_where_meltano_keeps_state(environ: dict[str, str], remote: str | None) -> None:
    found = remote_state_backend(environ)
    if remote is None:
        assert found is None
    else:
        assert found is not None
        assert remote in found
        assert "pw" not in found


def test_refusal_rule(tmp_path: Path) -> None:
    folder = FileRunStore(tmp_path / "run-store")
    remote = {"MELTANO_DATABASE_URI": "postgresql+psycopg://m:pw@db/meltano"}
    refuse_unless_persistent(folder, None, {})  # local state, local store: fine
    refuse_unless_persistent(folder, True, remote)  # a kept volume: fine
    with pytest.raises(RunStoreNotPersistent) as caught:
        refuse_unless_persistent(folder, None, remote)
    message = str(caught.value)
    assert "Refusing to start" in message
    assert str((tmp_path / "run-store").absolute()) in message
    assert "run_store_url" in message
    assert "run_store_path_persists" in message
    assert "pw" not in message
    with pytest.raises(RunStoreNotPersistent, match="run_store_path_persists is false"):
        refuse_unless_persistent(folder, False, {})
    # A database store is never refused.
    refuse_unless_persistent(PostgresRunStore("postgresql://u:p@h/db"), False, remote)
    # Settings from the environment arrive as text.
    settings = RunStoreSettings.from_config({"run_store_path_persists": "false"}, default_path="x")
    assert settings.persists is False
    with pytest.raises(RunStoreNotPersistent):
        settings.open({})
