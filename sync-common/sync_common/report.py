"""``sync-report``: the last runs of the plugins as a table, from the run summaries on disk.

Owns the command line around ``load_runs`` and ``render_runs_table``: which results folders to
read (several plugins may write to different ones), how many runs, which plugin, text or JSON, a
failures list so an operator sees what went wrong without opening the JSON files, and one
record's history (``--record invoices 7012``: when it was sent, with what outcome and what the
API answered), over the run files and their monthly archives (``sync_common.run_history``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from sync_common.run_history import RecordHistory, load_runs, record_history
from sync_common.run_summary import format_started, render_runs_table

DEFAULT_LIMIT = 10


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sync-report",
        description="Show the last runs (created/updated/unchanged/skipped/failed/conflict per "
        "stream, duration, 429s) from results_dir/runs/*.json.",
    )
    parser.add_argument(
        "--results-dir",
        action="append",
        metavar="DIR",
        help="a plugin's results_dir (repeatable; default output/)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"the last N runs over all folders (default {DEFAULT_LIMIT})",
    )
    parser.add_argument("--plugin", help="only runs of this plugin, e.g. target-fortnox")
    parser.add_argument("--json", action="store_true", help="print the runs as a JSON list")
    parser.add_argument(
        "--failures",
        action="store_true",
        help="also list the failed and conflicting records of the runs shown",
    )
    parser.add_argument(
        "--record",
        nargs=2,
        metavar=("STREAM", "KEY"),
        help="the history of one record over every run kept, e.g. --record invoices 7012: "
        "when it was sent, the outcome and what the API answered (exit 1 when no run has it)",
    )
    return parser


def collect_runs(
    results_dirs: Sequence[str], *, limit: int, plugin: str | None
) -> list[dict[str, Any]]:
    """Runs of every folder, oldest first by start time, the last ``limit``; duplicates once."""
    seen: set[tuple[str, str]] = set()
    runs: list[dict[str, Any]] = []
    for folder in results_dirs:
        for run in load_runs(folder, limit=limit, plugin=plugin):
            identity = (str(run.get("plugin")), str(run.get("run_id")))
            if identity not in seen:
                seen.add(identity)
                runs.append(run)
    runs.sort(key=lambda run: str(run.get("started_at") or ""))
    return runs[-limit:] if limit > 0 else []


def render_failures(runs: Sequence[dict[str, Any]]) -> str:
    lines: list[str] = []
    for run in runs:
        issues = [("failed", i) for i in run.get("failures") or []]
        issues += [("conflict", i) for i in run.get("conflicts") or []]
        for kind, issue in issues:
            lines.append(
                f"{run.get('run_id', '?')} {run.get('plugin', '?')} {kind} "
                f"{issue.get('stream')} {issue.get('key')}: {issue.get('message')}"
            )
    return "\n".join(lines) if lines else "no failed or conflicting records in these runs"


def render_history(history: RecordHistory) -> str:
    """One block per event: when, which plugin and run, the outcome, the detail, the answer."""
    lines = [f"{history.stream} {history.key}: {len(history.events)} event(s)"]
    for event in history.events:
        lines.append(
            f"{format_started(event.get('time'))}  {event.get('plugin')}  "
            f"{event.get('outcome')}  (run {event.get('run_id')})"
        )
        if event.get("detail"):
            lines.append(f"    {event['detail']}")
        if event.get("answer"):
            lines.append(f"    answer: {event['answer']}")
    if history.partial_runs:
        lines.append(
            f"{len(history.partial_runs)} run(s) listed only part of their {history.stream} "
            f"records (too many in one run), so this history may miss an event in: "
            + ", ".join(history.partial_runs)
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.limit < 0:
        print("sync-report: --limit must be 0 or more", file=sys.stderr)
        return 64
    folders = args.results_dir or ["output/"]
    if args.record:
        stream, key = args.record
        history = record_history(folders, stream, key)
        if args.plugin:
            history.events = [e for e in history.events if e.get("plugin") == args.plugin]
        if args.json:
            print(json.dumps(history.events, indent=2, ensure_ascii=False))
        elif history.events:
            print(render_history(history))
        else:
            print(
                f"no run in {', '.join(folders)} mentions {stream} {key} (unchanged records "
                "are counted, not listed: nothing was sent for them)"
            )
        return 0 if history.events else 1
    runs = collect_runs(folders, limit=args.limit, plugin=args.plugin)
    if args.json:
        print(json.dumps(runs, indent=2, ensure_ascii=False))
        return 0
    print(render_runs_table(runs))
    if args.failures:
        print()
        print(render_failures(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
