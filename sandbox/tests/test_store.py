"""The SQLite document store both sandboxes persist in."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sandbox.store import Filter, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "data.db")


def test_put_get_replace_keeps_insertion_order(store: Store) -> None:
    store.put("customers", "2", {"n": 2}, modified="2026-01-02")
    store.put("customers", "1", {"n": 1}, modified="2026-01-01")
    store.put("customers", "2", {"n": 22}, modified="2026-01-03")
    assert store.get("customers", "2") == {"n": 22}
    assert [d["n"] for d in store.list("customers")] == [22, 1]
    assert [d["n"] for d in store.list("customers", order_by="modified")] == [1, 22]
    assert store.get("customers", "3") is None
    assert store.get("projects", "1") is None


def test_filters_paging_and_count(store: Store) -> None:
    with store.transaction():
        for i in range(1, 11):
            store.put("items", i, {"i": i, "name": f"Åsa {i}", "flag": i % 2 == 0, "opt": None})
    evens = [Filter("flag", "=", True)]
    assert store.count("items", evens) == 5
    assert [d["i"] for d in store.list("items", evens, limit=2, offset=2)] == [6, 8]
    assert [d["i"] for d in store.list("items", [Filter("i", ">=", 9)])] == [9, 10]
    assert [d["i"] for d in store.list("items", [Filter("name", "like", "åsa 1")])] == [1, 10]
    assert [d["i"] for d in store.list("items", [Filter("i", "in", [3, 4])])] == [3, 4]
    assert store.count("items", [Filter("i", "in", [])]) == 0
    assert store.count("items", [Filter("opt", "null")]) == 10
    assert [d["i"] for d in store.list("items", order_by="i", descending=True, limit=1)] == [10]
    with pytest.raises(ValueError, match="unknown filter operator"):
        Filter("i", "~", 1)


def test_transaction_rolls_back_on_error(store: Store) -> None:
    def write_then_fail() -> None:
        with store.transaction():
            store.put("items", "a", {"a": 1})
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert store.get("items", "a") is None


def test_data_survives_reopen(tmp_path: Path) -> None:
    first = Store(tmp_path / "data.db")
    first.put("customers", "1001", {"Name": "Ängby Konsult AB"})
    first.set_value("settings", {"ocr": True})
    first.close()
    again = Store(tmp_path / "data.db")
    assert again.get("customers", "1001") == {"Name": "Ängby Konsult AB"}
    assert again.get_value("settings") == {"ocr": True}


def test_number_series_is_atomic_under_threads(store: Store) -> None:
    numbers: list[int] = []
    lock = threading.Lock()

    def take() -> None:
        for _ in range(50):
            n = store.next_number("invoice", start=7001)
            with lock:
                numbers.append(n)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(numbers) == list(range(7001, 7201))
