"""TokenStore: seeding, rotation under the file lock, atomic private writes, clear auth errors."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from fortnox_client import FortnoxAuthError, FortnoxTokenUnavailable, TokenStore
from fortnox_client.token_store import write_private_json_atomically


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _store_with(path: Path, **entry: Any) -> None:
    write_private_json_atomically(path, {"version": 1, "refresh_token_grant": entry})


def test_seeds_from_setting_when_store_missing_and_writes_private_file(
    token_server: Any, store_path: Path, settings_factory: Any
) -> None:
    seed = token_server.mint_refresh_token()
    store = TokenStore(settings_factory(store_path, token_server.url, refresh_token=seed))

    token = store.access_token()

    saved = _read(store_path)["refresh_token_grant"]
    assert saved["access_token"] == token
    assert saved["refresh_token"] not in (None, seed)  # rotated and persisted
    assert saved["refresh_token"] in token_server.valid_refresh
    assert saved["tenant_id"] == "7654321"  # from the JWT claim
    assert store.tenant_id == "7654321"
    assert stat.S_IMODE(store_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store_path.parent.stat().st_mode) == 0o700
    assert [p["form"]["refresh_token"] for p in token_server.refresh_posts()] == [seed]
    assert not list(store_path.parent.glob("*.tmp"))


def test_setting_is_ignored_once_the_store_holds_a_chain(
    token_server: Any, store_path: Path, settings_factory: Any
) -> None:
    stored = token_server.mint_refresh_token()
    _store_with(store_path, access_token=None, expires_at=0, refresh_token=stored)
    spent_seed = "RT-already-used-seed"
    store = TokenStore(settings_factory(store_path, token_server.url, refresh_token=spent_seed))

    store.access_token()

    assert [p["form"]["refresh_token"] for p in token_server.refresh_posts()] == [stored]


def test_fresh_token_is_reused_and_near_expiry_is_refreshed(
    token_server: Any, store_path: Path, settings_factory: Any, jwt_factory: Any
) -> None:
    fresh = jwt_factory(expires_in=3600)
    _store_with(
        store_path,
        access_token=fresh,
        expires_at=time.time() + 3600,
        refresh_token=token_server.mint_refresh_token(),
    )
    settings = settings_factory(store_path, token_server.url)
    assert TokenStore(settings).access_token() == fresh
    assert token_server.posts == []

    # 30 s left is inside the 60 s margin: refresh before it can die mid-request.
    _store_with(
        store_path,
        access_token=fresh,
        expires_at=time.time() + 30,
        refresh_token=token_server.mint_refresh_token(),
    )
    assert TokenStore(settings).access_token() != fresh
    assert len(token_server.refresh_posts()) == 1


def test_short_lived_tokens_are_not_refreshed_before_every_request(
    token_server: Any, store_path: Path, settings_factory: Any, jwt_factory: Any
) -> None:
    # A 4-second token (issued now): the margin shrinks to a quarter of its life, 1 s,
    # so it is used while 3 s remain instead of being refreshed at once.
    now = time.time()
    short = jwt_factory(expires_in=4)
    _store_with(
        store_path,
        access_token=short,
        expires_at=now + 4,
        issued_at=now,
        refresh_token=token_server.mint_refresh_token(),
    )
    settings = settings_factory(store_path, token_server.url)
    assert TokenStore(settings).access_token() == short
    assert token_server.refresh_posts() == []

    # Within the last quarter of its life it is refreshed.
    _store_with(
        store_path,
        access_token=short,
        expires_at=now + 0.5,
        issued_at=now - 3.5,
        refresh_token=token_server.mint_refresh_token(),
    )
    assert TokenStore(settings).access_token() != short
    assert len(token_server.refresh_posts()) == 1


def test_invalid_grant_says_what_happened_and_what_to_do(
    token_server: Any, store_path: Path, settings_factory: Any
) -> None:
    spent = "RT-spent-0123456789"
    store = TokenStore(settings_factory(store_path, token_server.url, refresh_token=spent))

    with pytest.raises(FortnoxAuthError) as info:
        store.access_token()

    message = str(info.value)
    assert "invalid_grant" in message
    assert "already used or has expired" in message
    assert "authorise command" in message
    assert str(store_path) in message
    assert spent not in message
    assert "test-secret-value" not in message


def test_two_threads_refreshing_at_once_post_once_and_share_the_token(
    token_server: Any, store_path: Path, settings_factory: Any
) -> None:
    token_server.delay = 0.3  # the first refresh is still in flight when the second starts
    settings = settings_factory(
        store_path, token_server.url, refresh_token=token_server.mint_refresh_token()
    )
    # Separate stores, as in two plugins: only the file lock can keep them apart.
    stores = [TokenStore(settings), TokenStore(settings)]
    barrier = threading.Barrier(2)
    results: list[str] = []
    errors: list[BaseException] = []

    def refresh(store: TokenStore) -> None:
        barrier.wait()
        try:
            results.append(store.access_token())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=refresh, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    assert errors == []
    assert len(results) == 2
    assert results[0] == results[1]
    assert len(token_server.refresh_posts()) == 1
    assert _read(store_path)["refresh_token_grant"]["refresh_token"] in token_server.valid_refresh


_PROCESS_SCRIPT = """
import json, sys, time
from fortnox_client import FortnoxSettings, TokenStore
settings = FortnoxSettings.from_config(json.loads(sys.argv[1]))
start_at = float(sys.argv[2])
time.sleep(max(0.0, start_at - time.time()))
print(TokenStore(settings).access_token())
"""


def test_two_processes_refreshing_at_once_never_burn_the_chain(
    token_server: Any, store_path: Path
) -> None:
    token_server.delay = 0.3
    config = {
        "client_id": "test-client",
        "client_secret": "test-secret-value",
        "token_url": token_server.url,
        "token_store_path": str(store_path),
        "refresh_token": token_server.mint_refresh_token(),
    }
    # Both interpreters wake at the same instant, well after their (slow) imports.
    start_at = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _PROCESS_SCRIPT, json.dumps(config), str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=30) for p in procs]

    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    tokens = [out.strip() for out, _ in outputs]
    assert tokens[0] == tokens[1] != ""
    assert len(token_server.refresh_posts()) == 1
    saved = _read(store_path)["refresh_token_grant"]
    assert saved["access_token"] == tokens[0]
    assert saved["refresh_token"] in token_server.valid_refresh


def test_rotation_is_visible_to_the_next_store_and_the_chain_continues(
    token_server: Any, store_path: Path, settings_factory: Any
) -> None:
    settings = settings_factory(
        store_path, token_server.url, refresh_token=token_server.mint_refresh_token()
    )
    first = TokenStore(settings)
    token = first.access_token()
    second = TokenStore(settings)
    # A 401 on the token the second store is using forces a refresh with the rotated token.
    renewed = second.force_refresh(token)
    assert renewed != token
    posts = token_server.refresh_posts()
    assert len(posts) == 2
    assert posts[1]["form"]["refresh_token"] != posts[0]["form"]["refresh_token"]


def test_force_refresh_reuses_a_token_someone_else_already_rotated(
    token_server: Any, store_path: Path, settings_factory: Any
) -> None:
    settings = settings_factory(
        store_path, token_server.url, refresh_token=token_server.mint_refresh_token()
    )
    mine, theirs = TokenStore(settings), TokenStore(settings)
    old = mine.access_token()
    new = theirs.force_refresh(old)
    posts_before = len(token_server.refresh_posts())

    # ``mine`` got a 401 with ``old``; the store already holds ``new``: use it, post nothing.
    assert mine.force_refresh(old) == new
    assert len(token_server.refresh_posts()) == posts_before


@responses.activate
def test_lost_refresh_answer_is_posted_once_and_reported(
    store_path: Path, settings_factory: Any
) -> None:
    url = "https://apps.fortnox.test/oauth-v1/token"
    responses.post(url, body=requests.ConnectionError("Connection reset by peer"))
    store = TokenStore(settings_factory(store_path, url, refresh_token="RT-seed-secret"))

    with pytest.raises(FortnoxTokenUnavailable) as info:
        store.access_token()

    assert len(responses.calls) == 1
    assert "not retried" in str(info.value)
    assert "RT-seed-secret" not in str(info.value)
    assert not store_path.exists()  # nothing half-written; the seed is still the chain


def test_client_credentials_use_tenant_header_and_their_own_key(
    token_server: Any, store_path: Path, settings_factory: Any, jwt_factory: Any
) -> None:
    chain = token_server.mint_refresh_token()
    _store_with(store_path, access_token=None, expires_at=0, refresh_token=chain)
    store = TokenStore(settings_factory(store_path, token_server.url, tenant_id="1234567"))

    token = store.access_token()
    assert store.access_token() == token  # cached, one POST

    assert len(token_server.posts) == 1
    post = token_server.posts[0]
    assert post["form"] == {"grant_type": "client_credentials"}
    assert post["headers"].get("TenantId") == "1234567"
    document = _read(store_path)
    assert document["client_credentials"]["1234567"]["access_token"] == token
    assert "refresh_token" not in document["client_credentials"]["1234567"]
    # The refresh-token chain of the other mode is untouched.
    assert document["refresh_token_grant"]["refresh_token"] == chain
    assert store.tenant_id == "1234567"


def test_missing_refresh_token_names_both_ways_out(
    token_server: Any, store_path: Path, settings_factory: Any
) -> None:
    store = TokenStore(settings_factory(store_path, token_server.url))
    with pytest.raises(FortnoxAuthError, match=r"refresh_token setting is empty.*tenant_id"):
        store.access_token()
    assert token_server.posts == []


def test_corrupt_store_is_reported_without_its_content(
    token_server: Any, store_path: Path, settings_factory: Any
) -> None:
    store_path.parent.mkdir(parents=True)
    store_path.write_text('{"refresh_token_grant": {"refresh_token": "RT-secret-in-file"')
    store = TokenStore(settings_factory(store_path, token_server.url))
    with pytest.raises(FortnoxAuthError, match="not valid JSON") as info:
        store.access_token()
    assert "RT-secret-in-file" not in str(info.value)


def test_atomic_write_keeps_the_old_file_when_writing_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "store.json"
    write_private_json_atomically(path, {"generation": 1})

    def explode(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    # The temporary file is written, then its flush to disk fails (a full disk shows there).
    monkeypatch.setattr(os, "fsync", explode)
    with pytest.raises(OSError, match="disk full"):
        write_private_json_atomically(path, {"generation": 2})

    assert _read(path) == {"generation": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["store.json"]


def test_readers_never_see_a_torn_store_while_it_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    write_private_json_atomically(path, {"generation": 0, "padding": "x" * 20000})
    done = threading.Event()
    torn: list[str] = []
    seen: set[int] = set()

    def reader() -> None:
        while not done.is_set():
            text = path.read_text()
            try:
                seen.add(json.loads(text)["generation"])
            except ValueError:
                torn.append(text[:40])

    thread = threading.Thread(target=reader)
    thread.start()
    for generation in range(1, 60):
        write_private_json_atomically(path, {"generation": generation, "padding": "x" * 20000})
    done.set()
    thread.join(10)

    assert torn == []
    assert len(seen) > 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_tokens_never_reach_repr_or_logs(
    token_server: Any,
    store_path: Path,
    settings_factory: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seed = token_server.mint_refresh_token()
    settings = settings_factory(store_path, token_server.url, refresh_token=seed)
    store = TokenStore(settings)
    with caplog.at_level(logging.DEBUG):
        token = store.access_token()
    rotated = _read(store_path)["refresh_token_grant"]["refresh_token"]
    visible = caplog.text + repr(store) + repr(settings)
    for secret in (seed, token, rotated, "test-secret-value"):
        assert secret not in visible
    assert "Fortnox refresh_token token obtained" in caplog.text


@pytest.mark.parametrize(
    ("environment", "command"),
    [
        (None, "fortnox-auth authorize"),
        ("prod", "meltano --environment prod invoke target-fortnox:authorize"),
    ],
)
def test_a_new_consent_is_asked_for_with_a_command_that_runs_where_the_plugin_ran(
    token_server: Any,
    store_path: Path,
    settings_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    environment: str | None,
    command: str,
) -> None:
    """Inside `meltano --environment prod run` the message (which reaches the log and the failure
    e-mail) names the Meltano command of that environment, not `fortnox-auth`, which run bare
    has none of the project's settings."""
    if environment is None:
        monkeypatch.delenv("MELTANO_ENVIRONMENT", raising=False)
    else:
        monkeypatch.setenv("MELTANO_ENVIRONMENT", environment)
    store = TokenStore(settings_factory(store_path, token_server.url, refresh_token="RT-spent-1"))

    with pytest.raises(FortnoxAuthError) as info:
        store.access_token()

    assert f"run the authorise command ({command}:" in str(info.value)
