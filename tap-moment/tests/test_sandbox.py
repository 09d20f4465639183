"""tap-moment against the Moment sandbox over real HTTP: order, increments, drafts, start_date."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moment_client import MomentClient, MomentSettings, MomentTransientError

RunTap = Any  # the run_tap fixture's callable (conftest cannot be imported under importlib mode)


def instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def moment(config: dict[str, Any]) -> MomentClient:
    return MomentClient(MomentSettings.from_config(config))


def test_streams_come_in_target_order_with_everything_on_a_first_run(
    sandbox_config: dict[str, Any], run_tap: RunTap
) -> None:
    run = run_tap(sandbox_config)
    assert run.stream_order == ["customers", "projects", "invoices"]
    client = moment(sandbox_config)
    for stream in ("customers", "projects"):
        expected = {r["id"] for r in client.list(stream)}
        assert {r["id"] for r in run.records[stream]} == expected
    for stream, records in run.records.items():
        stamps = [instant(r["lastModifiedDate"]) for r in records]
        assert stamps == sorted(stamps), f"{stream} not in lastModifiedDate order"
        assert run.bookmark(stream) == records[-1]["lastModifiedDate"]


def test_drafts_are_never_emitted(sandbox_config: dict[str, Any], run_tap: RunTap) -> None:
    all_invoices = list(moment(sandbox_config).list("invoices"))
    drafts = {i["id"] for i in all_invoices if i["invoiceState"] == "DRAFT"}
    finalised = {i["id"] for i in all_invoices if i["invoiceState"] == "FINALIZED"}
    assert drafts, "the seed should contain draft invoices for this test to mean anything"
    emitted = run_tap(sandbox_config, streams={"invoices"}).records["invoices"]
    assert {i["id"] for i in emitted} == finalised
    assert all(i["invoiceNumber"] is not None for i in emitted)
    assert all(isinstance(i["invoiceLines"], list) for i in emitted)


def test_second_run_emits_the_edited_customer_and_the_overlap_only(
    sandbox_config: dict[str, Any], run_tap: RunTap, moment_sandbox: Any
) -> None:
    first = run_tap(sandbox_config, streams={"customers"})
    customers = first.records["customers"]
    bookmark = first.bookmark("customers")
    assert bookmark is not None
    window_start = instant(bookmark) - timedelta(minutes=sandbox_config["lookback_minutes"])
    overlap = {
        c["customerNumber"] for c in customers if instant(c["lastModifiedDate"]) >= window_start
    }
    edited = customers[0]["customerNumber"]  # the oldest: outside the overlap
    assert edited not in overlap
    moment_sandbox.admin("PATCH", f"customers/{edited}", {"city": "Örebro"})

    second = run_tap(sandbox_config, state=first.state, streams={"customers"})
    emitted = {c["customerNumber"]: c for c in second.records["customers"]}
    assert set(emitted) == overlap | {edited}
    assert len(emitted) < len(customers)
    assert emitted[edited]["city"] == "Örebro"
    assert second.bookmark("customers") == emitted[edited]["lastModifiedDate"]

    third = run_tap(sandbox_config, state=second.state, streams={"customers"})
    # Nothing changed since: only the record at the bookmark comes again (never dropped).
    assert [c["customerNumber"] for c in third.records["customers"]] == [edited]


def test_start_date_is_honoured_on_a_first_run(
    sandbox_config: dict[str, Any], run_tap: RunTap
) -> None:
    projects = list(moment(sandbox_config).list("projects", {"sort": "lastModifiedDate,asc"}))
    start = projects[len(projects) // 2]["lastModifiedDate"]
    expected = {
        p["projectNumber"] for p in projects if instant(p["lastModifiedDate"]) >= instant(start)
    }
    assert 0 < len(expected) < len(projects)
    run = run_tap({**sandbox_config, "start_date": start}, streams={"projects"})
    assert {p["projectNumber"] for p in run.records["projects"]} == expected


def test_unselected_streams_make_no_requests(
    sandbox_config: dict[str, Any], run_tap: RunTap, moment_sandbox: Any
) -> None:
    since = moment_sandbox.admin("GET", "requests")["last"]
    run_tap(sandbox_config, streams={"projects"})
    paths = [r["path"] for r in moment_sandbox.admin("GET", f"requests?since={since}")["requests"]]
    assert paths, "the request log should show the projects requests"
    assert all(p.startswith("/api/1.0/companies/demo/projects") for p in paths), paths


def test_small_pages_read_every_record_once(
    sandbox_config: dict[str, Any], run_tap: RunTap
) -> None:
    run = run_tap({**sandbox_config, "page_size": 7}, streams={"customers"})
    numbers = [c["customerNumber"] for c in run.records["customers"]]
    assert len(numbers) == len(set(numbers)) == len(list(moment(sandbox_config).list("customers")))


def fast_retrying(config: dict[str, Any]) -> MomentClient:
    """The tap's client with millisecond backoff, so fault tests stay fast."""
    return MomentClient(MomentSettings.from_config({**config, "backoff_factor": 0.005}))


def test_transient_faults_are_retried_and_nothing_is_lost(
    sandbox_config: dict[str, Any], run_tap: RunTap, moment_sandbox: Any
) -> None:
    moment_sandbox.admin(
        "POST", "faults", {"kind": "status", "status": 503, "count": 2, "path": "/customers"}
    )
    client = fast_retrying(sandbox_config)
    run = run_tap(sandbox_config, streams={"customers"}, client=client)
    assert len(run.records["customers"]) == len(list(moment(sandbox_config).list("customers")))
    assert client.stats.retries == 2


def test_exhausted_retries_fail_the_run_before_the_bookmark_passes(
    sandbox_config: dict[str, Any], run_tap: RunTap, moment_sandbox: Any
) -> None:
    moment_sandbox.admin(
        "POST", "faults", {"kind": "status", "status": 503, "count": 50, "path": "/invoices"}
    )
    with pytest.raises(MomentTransientError, match="gave up after 5 attempts") as caught:
        run_tap(sandbox_config, client=fast_retrying(sandbox_config))
    partial = caught.value.tap_output  # type: ignore[attr-defined]
    assert partial.bookmark("customers") is not None  # finished streams keep their progress
    assert partial.bookmark("projects") is not None
    assert "invoices" not in partial.records
    assert partial.bookmark("invoices") is None


def test_cli_run_writes_singer_messages_and_a_bad_key_fails_cleanly(
    sandbox_config: dict[str, Any], tmp_path: Path
) -> None:
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(sandbox_config))
    ok = subprocess.run(
        [sys.executable, "-m", "tap_moment", "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    kinds = [json.loads(line)["type"] for line in ok.stdout.splitlines()]
    assert kinds.count("SCHEMA") == 3
    assert kinds[-1] == "STATE"

    wrong_key = "wrong-key-that-must-not-leak"
    config_file.write_text(json.dumps({**sandbox_config, "api_key": wrong_key}))
    bad = subprocess.run(
        [sys.executable, "-m", "tap_moment", "--config", str(config_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0
    assert "MomentAuthError" in bad.stderr
    assert "company_code" in bad.stderr
    assert wrong_key not in bad.stderr + bad.stdout


SWITCHES = ("modified_from_filter", "sort_tie_breaks")  # the Moment sandbox's list switches


class EditingWhileReading(MomentClient):
    """The tap's client, with Moment users editing customers between the tap's list pages.

    ``edits`` maps "after this many customer pages" to the customer numbers to edit then.
    """

    def __init__(self, config: dict[str, Any], sandbox: Any, edits: dict[int, list[str]]) -> None:
        super().__init__(MomentSettings.from_config(config))
        self.sandbox, self.edits, self.pages = sandbox, edits, 0

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        body = super()._request(method, path, **kwargs)
        params = kwargs.get("params") or {}
        if method == "GET" and path.endswith("/customers") and params.get("size") != 1:
            self.pages += 1
            for number in self.edits.get(self.pages, []):
                self.sandbox.admin("PATCH", f"customers/{number}", {"city": f"Edited {number}"})
        return body


@pytest.mark.parametrize(
    "switches",
    [{}, {"modified_from_filter": False, "sort_tie_breaks": False}],
    ids=["as-inferred", "filter-and-tie-breaks-ignored"],
)
def test_edits_during_a_read_never_make_the_tap_skip_a_record(
    sandbox_config: dict[str, Any],
    run_tap: RunTap,
    moment_sandbox: Any,
    switches: dict[str, bool],
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = {**sandbox_config, "page_size": 5}
    listed = list(moment(config).list("customers", {"sort": "lastModifiedDate,asc"}))
    order = [c["customerNumber"] for c in listed]
    assert len(order) == 30
    # A start inside the data (a server ignoring the filter sends the older rows too), so that
    # positions 9, 14, 19 and 24 end a page of 5 whether or not the server honours the filter.
    start = listed[5]["lastModifiedDate"]
    # Users edit records the tap has read, on the page boundaries, after pages 3 and 5: each edit
    # moves a record to the end, and offset paging then skips the record at the next boundary.
    edits = {3: [order[9], order[14]], 5: [order[19], order[24]]}
    client = EditingWhileReading(config, moment_sandbox, edits)
    moment_sandbox.admin("PATCH", "settings", switches)
    try:
        with caplog.at_level(logging.WARNING, logger="moment_client"):
            run = run_tap({**config, "start_date": start}, streams={"customers"}, client=client)
    finally:
        moment_sandbox.admin("PATCH", "settings", dict.fromkeys(SWITCHES, True))
    order = order[5:]  # from the start on

    emitted = run.records["customers"]
    numbers = [c["customerNumber"] for c in emitted]
    assert all(instant(c["lastModifiedDate"]) >= instant(start) for c in emitted)
    missed = sorted(set(order) - set(numbers))
    assert not missed, f"customers never read: {missed} ({len(numbers)} rows read)"
    ignored = [r for r in caplog.records if "does not honour the filter" in r.message]
    assert len(ignored) == (1 if switches else 0)
    last_version = {c["customerNumber"]: c for c in emitted}
    for number in edits[3] + edits[5]:
        assert last_version[number]["city"] == f"Edited {number}"
    stamps = [instant(c["lastModifiedDate"]) for c in emitted]
    assert stamps == sorted(stamps)
    now = [c["lastModifiedDate"] for c in moment(config).list("customers")]
    assert run.bookmark("customers") == max(now, key=instant)


@pytest.fixture
def switched(moment_sandbox: Any) -> Any:
    """Switch the session's Moment sandbox to the other behaviour; switched back afterwards."""

    def switch(**settings: Any) -> None:
        moment_sandbox.admin("PATCH", "settings", settings)

    yield switch
    switch(filters_ignored=False, project_state_spelling="upper", expense_path="projectExpenses")


def test_filters_ignored_by_moment_are_applied_here_and_said_once(
    sandbox_config: dict[str, Any],
    run_tap: RunTap,
    switched: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = run_tap(sandbox_config)
    honoured = run_tap(sandbox_config, state=first.state)
    assert "ignored the filter" not in caplog.text
    switched(filters_ignored=True)
    with caplog.at_level("WARNING"):
        ignored = run_tap(sandbox_config, state=first.state)
    # A Moment that ignores lastModifiedDateFrom answers every row; the tap still emits exactly
    # what it emits when Moment applies the filter (the lookback overlap only).
    for stream in ("customers", "projects", "invoices"):
        emitted = [r["id"] for r in ignored.records.get(stream, [])]
        assert emitted == [r["id"] for r in honoured.records.get(stream, [])], stream
        assert len(emitted) < len(first.records[stream]), stream
    assert ignored.state == honoured.state
    # Drafts come back with the ignored invoiceState filter, and are still never emitted.
    assert all(i["invoiceState"] == "FINALIZED" for i in ignored.records.get("invoices", []))
    warnings = [r.getMessage() for r in caplog.records if "ignored the filter" in r.getMessage()]
    assert len([w for w in warnings if "lastModifiedDateFrom on customers" in w]) == 1, warnings
    assert any("invoiceState on invoices" in w for w in warnings), warnings
    assert all("docs/MOMENT-API.md" in w for w in warnings)


def test_projects_in_moments_own_state_spelling_pass_the_taps_schema(
    sandbox_config: dict[str, Any], run_tap: RunTap, switched: Any
) -> None:
    import jsonschema

    switched(project_state_spelling="observed")
    run = run_tap(sandbox_config, streams={"projects"})
    schema = next(
        m["schema"] for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == "projects"
    )
    projects = run.records["projects"]
    assert {p["projectState"] for p in projects} == {"planned", "inProgress", "finished"}
    for project in projects:
        jsonschema.validate(project, schema)
