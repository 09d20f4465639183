"""The bench's arithmetic: request-log figures, state parsing, the RSS meter and the table."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.harness import RunResult, busiest_window, last_state, sustained_rate
from bench.rss import measure
from bench.run import render
from bench.scenarios import Row

ROOT = Path(__file__).resolve().parents[2]


def entry(
    t: float, status: int = 200, method: str = "GET", path: str = "/3/customers"
) -> dict[str, Any]:
    return {"time": t, "ms": 0.0, "status": status, "method": method, "path": path}


def test_sustained_rate_counts_accepted_requests_over_their_span() -> None:
    log = [entry(i * 0.1) for i in range(51)] + [entry(2.0, status=429)]
    assert abs(sustained_rate(log) - 10.0) < 1e-9  # 50 intervals of 0.1 s; the 429 left out


def test_sustained_rate_is_the_same_for_bursty_and_even_senders() -> None:
    # A limiter's bursts: 10 requests at the start of each 5 s window; and 2 per second evenly.
    bursty = [entry(w * 5.0 + i * 0.01) for w in range(3) for i in range(10)]
    even = [entry(i * 0.5) for i in range(31)]
    assert abs(sustained_rate(bursty) - 2.0) < 0.01
    assert abs(sustained_rate(even) - 2.0) < 1e-9


def test_sustained_rate_uses_arrival_not_answer_time() -> None:
    # Answers logged at 1.0, 1.6 and 3.0 s after 500, 100 and 500 ms: arrivals 0.5, 1.5, 2.5 s.
    log = [{**entry(1.0), "ms": 500.0}, {**entry(1.6), "ms": 100.0}, {**entry(3.0), "ms": 500.0}]
    assert abs(sustained_rate(log) - 1.0) < 1e-9


def test_busiest_window_is_the_most_arrivals_within_five_seconds() -> None:
    log = [entry(t) for t in (0.0, 1.0, 4.9, 5.0, 5.1, 9.95)]
    assert busiest_window(log) == 4  # 1.0, 4.9, 5.0, 5.1 (0.0 is 5 s before 5.0: out)
    assert busiest_window([entry(0.0, status=429)]) == 0


def test_run_result_splits_reads_writes_refusals_and_single_gets() -> None:
    run = RunResult(
        seconds=1.0,
        requests=[
            entry(0, path="/3/customers"),
            entry(1, path="/3/customers/1001"),
            entry(2, method="PUT", path="/3/customers/1001"),
            entry(3, status=429, method="POST", path="/3/customers"),
            entry(4, method="POST", path="/3/customers"),
            entry(5, path="/oauth-v1/token"),
        ],
        summary={"requests": {"rate_limited": 1}, "streams": {"customers": {"updated": 2}}},
    )
    assert (run.total, run.refused, run.writes, run.reads) == (5, 1, 2, 2)
    assert run.count("GET", "/3/customers", single=True) == 1
    assert run.count("GET", "/3/customers", single=False) == 1
    assert (run.summary_429s(), run.summary_total("updated")) == (1, 2)


def test_last_state_reads_tap_messages_and_bare_target_lines() -> None:
    tap = "\n".join(
        json.dumps(m)
        for m in (
            {"type": "STATE", "value": {"bookmarks": {"a": 1}}},
            {"type": "RECORD", "stream": "s", "record": {"bookmarks": 0}},
            {"type": "STATE", "value": {"bookmarks": {"a": 2}}},
        )
    )
    assert last_state(tap) == {"bookmarks": {"a": 2}}
    assert last_state('{"bookmarks": {"b": 1}}\n{"bookmarks": {"b": 2}}\n') == {
        "bookmarks": {"b": 2}
    }
    assert last_state("") == {}


def test_rss_meter_counts_records_and_reports_the_childs_peak() -> None:
    script = (
        "import json\n"
        "block = bytearray(64 * 1024 * 1024)\n"  # 64 MiB resident at the peak
        "for i in range(3):\n"
        "    print(json.dumps({'type': 'RECORD', 'stream': 's', 'record': {'i': i}}))\n"
        "print(json.dumps({'type': 'STATE', 'value': {}}))\n"
    )
    result = measure([sys.executable, "-c", script])
    assert result["records"] == 3
    assert result["exit_code"] == 0
    assert result["peak_rss_bytes"] >= 64 * 1024 * 1024


def test_rss_meter_cli_prints_one_json_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.rss", sys.executable, "-c", 'print(\'{"type":"RECORD"}\')'],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert json.loads(done.stdout)["records"] == 1


def test_table_shows_goal_ours_baseline_verdict_and_notes() -> None:
    rows = [
        Row("first load", "429 received", "0", "0", "58", True),
        Row("push", "requests per changed record", "≤ 1.05", "1.10", "1.2", False, "why"),
        Row("cpu", "records/s", "—", "5,000 /s", "200 /s", None),
    ]
    text = render(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["scenario", "figure", "goal", "ours", "baseline", "result"]
    assert [line.split()[-1] for line in lines[2:5]] == ["PASS", "FAIL", "info"]
    assert "[2] push / requests per changed record: why" in text
