"""Fixtures for tap-moment tests: running the tap in-process and reading its Singer output."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from moment_client import MomentClient
from tap_moment.tap import TapMoment

SANDBOX_COMPANY = "demo"
SANDBOX_KEY = "sandbox-key"


@dataclass
class TapRun:
    """What one tap run wrote to stdout, split by message type."""

    messages: list[dict[str, Any]]
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    stream_order: list[str] = field(default_factory=list)  # streams in order of first RECORD
    state: dict[str, Any] = field(default_factory=dict)  # the last STATE value

    @classmethod
    def parse(cls, output: str) -> TapRun:
        run = cls(messages=[json.loads(line) for line in output.splitlines() if line.strip()])
        for message in run.messages:
            if message["type"] == "RECORD":
                stream = message["stream"]
                if stream not in run.records:
                    run.stream_order.append(stream)
                run.records.setdefault(stream, []).append(message["record"])
            elif message["type"] == "STATE":
                run.state = message["value"]
        return run

    def bookmark(self, stream: str) -> str | None:
        value = self.state.get("bookmarks", {}).get(stream, {}).get("replication_key_value")
        return str(value) if value is not None else None


def catalog_selecting(config: dict[str, Any], streams: set[str]) -> dict[str, Any]:
    """The discovered catalog with only ``streams`` selected."""
    catalog = TapMoment(config=config, parse_env_config=False).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


RunTap = Callable[..., TapRun]


@pytest.fixture(autouse=True)
def _results_in_tmp_path(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tap writes its run summary to results_dir (default output/, relative): keep the
    summaries of configs that do not set it in the test's own folder, not the repository's."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def run_tap() -> RunTap:
    """``run_tap(config, state=None, streams=None)``: sync in-process and parse the output."""

    def run(
        config: dict[str, Any],
        state: dict[str, Any] | None = None,
        streams: set[str] | None = None,
        client: MomentClient | None = None,
    ) -> TapRun:
        catalog = catalog_selecting(config, streams) if streams is not None else None
        tap = TapMoment(config=config, state=state, catalog=catalog, parse_env_config=False)
        if client is not None:
            tap.__dict__["moment_client"] = client  # pre-fills the cached_property
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                tap.sync_all()
        except Exception as exc:
            exc.tap_output = TapRun.parse(out.getvalue())  # type: ignore[attr-defined]
            raise
        return TapRun.parse(out.getvalue())

    return run


@pytest.fixture
def sandbox_config(moment_sandbox: Any) -> Iterator[dict[str, Any]]:
    """Tap config for the session's Moment sandbox, reseeded to its known seed-1 data.

    The sandbox is shared by the whole session: faults are cleared and the seed restored
    afterwards too, so later tests (other folders included) find what they expect.
    """
    moment_sandbox.admin("DELETE", "faults")
    moment_sandbox.admin("POST", "seed", {"seed": 1})
    yield {
        "api_url": f"{moment_sandbox.url}/api/1.0",
        "company_code": SANDBOX_COMPANY,
        "api_key": SANDBOX_KEY,
        "lookback_minutes": 5,
    }
    moment_sandbox.admin("DELETE", "faults")
    moment_sandbox.admin("POST", "seed", {"seed": 1})
