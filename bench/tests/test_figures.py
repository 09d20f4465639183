"""The bench's arithmetic: request-log figures, state parsing, the RSS meter and the table."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from bench.harness import (
    AtOnce,
    Bench,
    RunResult,
    arrival,
    busiest_window,
    last_state,
    overlap_seconds,
    own_requests,
    sustained_rate,
    windows_at_the_limit,
)
from bench.rss import measure
from bench.run import render
from bench.scenarios import AtOnceFigures, Row, at_once_rows

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


def test_arrival_is_when_the_sandbox_limiter_counted_the_request() -> None:
    # Logged at 2.0 after 500 ms (first byte at 1.5), counted by the limiter at 1.7 (after the
    # token check): the limiter's instant is the one its window holds.
    assert arrival({**entry(2.0), "ms": 500.0, "arrived": 1.7}) == 1.7
    assert arrival({**entry(2.0), "ms": 500.0, "arrived": None}) == 1.5  # not counted (a 401)
    # Two requests 4.99 s apart by the limiter's clock are in one window, whatever the handling.
    log = [{**entry(0.0), "ms": 20.0, "arrived": 0.03}, {**entry(5.01), "arrived": 5.02}]
    assert busiest_window(log) == 2


def test_windows_at_the_limit_tell_a_paced_run_from_a_starved_one() -> None:
    # Paced: 10 per 5 s (the limit) for 3 windows; starved: 4 per 5 s.
    paced = [entry(w * 5.0 + i * 0.4) for w in range(3) for i in range(10)] + [entry(15.0)]
    starved = [entry(i * 1.25) for i in range(13)]
    assert windows_at_the_limit(paced, 10) == (3, 3)
    assert windows_at_the_limit(starved, 10) == (0, 3)
    assert windows_at_the_limit([], 10) == (0, 0)


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


def test_own_requests_keeps_one_process_share_of_a_shared_log_by_path() -> None:
    log = [
        entry(0, path="/3/customers"),
        entry(1, path="/3/supplierinvoices/7"),
        entry(2, method="PUT", path="/3/customers/1001"),
        entry(3, path="/3/projects"),
        entry(4, path="/oauth-v1/token"),
    ]
    assert [r["time"] for r in own_requests(log, ("/3/customers",))] == [0, 2]
    assert [r["time"] for r in own_requests(log, ("/3/supplierinvoices", "/3/projects"))] == [1, 3]


def test_overlap_is_the_span_both_logs_were_arriving_in() -> None:
    push = [entry(t) for t in (0.0, 4.0, 12.0)]
    expenses = [{**entry(3.0), "ms": 1000.0}, entry(9.0, status=429)]  # arrivals 2.0 and 9.0
    assert overlap_seconds(push, expenses) == 7.0  # 2.0 to 9.0; the refused request counts
    assert overlap_seconds(expenses, push) == 7.0
    assert overlap_seconds(push, [entry(20.0)]) == 0.0  # one after the other
    assert overlap_seconds(push, []) == 0.0


def at_once_run(
    push: list[dict[str, Any]], expenses: list[dict[str, Any]], *, failed: bool = False
) -> AtOnce:
    runs = [
        RunResult(seconds=1.0, requests=push, summary={"requests": {"rate_limited": 1}}),
        RunResult(seconds=1.0, requests=expenses, error="x: exited 1" if failed else ""),
    ]
    return AtOnce(runs, RunResult(seconds=1.0, requests=sorted(push + expenses, key=str)))


def test_at_once_figures_count_each_process_and_the_whole_period() -> None:
    # 10 requests per process over 6 s, side by side; one 429 for the push.
    push = [entry(i * 0.6, method="PUT") for i in range(9)] + [entry(5.5, status=429)]
    expenses = [entry(0.3 + i * 0.6, path="/3/supplierinvoices/1") for i in range(10)]
    figures = AtOnceFigures.of(at_once_run(push, expenses))
    assert (figures.push, figures.expenses, figures.total) == (10, 10, 20)
    assert (figures.push_refused, figures.expenses_refused, figures.refused) == (1, 0, 1)
    assert abs(figures.overlap - 5.2) < 1e-9  # 0.3 to 5.5
    assert figures.busiest == 17  # 0.3 .. 5.1 (< 5 s): 8 expenses + 9 push reads before 5.5
    assert (figures.summary_429s, figures.succeeded, figures.runs) == (1, 2, 2)
    assert figures.cell() == "1 + 0, 2 of 2 ok"
    assert "10 + 10 requests (push + expenses), 5.2 s overlap" in figures.evidence(10)
    assert figures.proves(limit=10)  # 20 ≥ 1.5 × 10, 5.2 s ≥ one window
    assert not figures.meets_goal(limit=10)  # a 429
    assert not figures.proves(limit=14)  # 20 < 21: both fit in about one window


def test_at_once_goal_needs_no_429_both_runs_ok_and_a_load_that_proves_it() -> None:
    push = [entry(i * 0.6, method="PUT") for i in range(10)]
    expenses = [entry(0.3 + i * 0.6, path="/3/supplierinvoices/1") for i in range(10)]
    assert AtOnceFigures.of(at_once_run(push, expenses)).meets_goal(limit=10)
    failed = AtOnceFigures.of(at_once_run(push, expenses, failed=True))
    assert failed.cell() == "0 + 0, 1 of 2 ok"
    assert not failed.meets_goal(limit=10)
    one_after_other = [entry(10.0 + i * 0.6, path="/3/supplierinvoices/1") for i in range(10)]
    late = AtOnceFigures.of(at_once_run(push, one_after_other))
    assert late.overlap == 0.0
    assert not late.meets_goal(limit=10)
    stray = at_once_run(push, expenses)
    stray.period.requests.append(entry(1.0, path="/3/articles"))  # made by neither run
    assert not AtOnceFigures.of(stray).proves(limit=10)


def test_at_once_rows_pass_only_ours_and_say_why() -> None:
    push = [entry(i * 0.6, method="PUT") for i in range(10)]
    expenses = [entry(0.3 + i * 0.6, path="/3/supplierinvoices/1") for i in range(10)]
    refused = [*push[:9], entry(5.4, status=429)]
    rows = at_once_rows(
        at_once_run(push, expenses), at_once_run(refused, expenses, failed=True), 10
    )
    assert [(r.ours, r.baseline, r.passed) for r in rows[:1]] == [
        ("0 + 0, 2 of 2 ok", "1 + 0, 1 of 2 ok", True)
    ]
    assert "2.0 × the limit" in rows[0].note
    assert "FAILED" in rows[0].note
    assert rows[1].passed is None


def test_bench_at_once_starts_the_runs_together_and_keeps_the_period_log(
    tmp_path: Path, monkeypatch: Any
) -> None:
    bench = Bench(tmp_path, limit=10)
    log = [entry(0, path="/3/customers"), entry(1, path="/3/supplierinvoices")]
    monkeypatch.setattr(bench, "log_seq", lambda: 0)
    monkeypatch.setattr(bench, "requests_since", lambda seq: list(log))
    both_started = threading.Barrier(2, timeout=30)  # broken if the runs ran one after the other

    def run(paths: tuple[str, ...]) -> RunResult:
        both_started.wait()
        return RunResult(seconds=0.0, requests=own_requests(log, paths))

    together = bench.at_once("both", lambda: run(("/3/customers",)), lambda: run(("/3/s",)))
    assert [r.total for r in together.runs] == [1, 1]
    assert together.period.total == 2
    assert together.succeeded == 2
    assert json.loads((tmp_path / "logs" / "both-requests.json").read_text()) == log
