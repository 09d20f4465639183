"""`make demo`: seeded sandboxes, both jobs, a result table; the second run moves nothing new."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[1]
PORTS = ("--fortnox-port", "0", "--moment-port", "0")  # any free ports: no clash with a demo


def run_demo(workdir: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_", "TARGET_", "MELTANO_"))}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "demo.py"), "--workdir", str(workdir), *PORTS],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout


def counts(output: str, plugin: str, stream: str) -> tuple[int, int, int]:
    """created, updated, failed of a stream in the demo's result table."""
    table = output[output.index("What moved") :]
    block = table[table.index(plugin) :]
    row = re.search(
        rf"^\S*\s*(?:{plugin}\s+)?{stream}\s+(\d+)\s+(\d+)\s+\d+\s+\d+\s+(\d+)", block, re.M
    )
    assert row, f"no {plugin}/{stream} row in:\n{table}"
    return int(row[1]), int(row[2]), int(row[3])


def sandbox_processes(workdir: Path) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(workdir) in cmdline and "sandbox" in cmdline:
            found.append(cmdline)
    return found


def test_demo_moves_everything_once_and_leaves_no_process(
    meltano_installed: None, tmp_path: Path
) -> None:
    first = run_demo(tmp_path)
    assert "Moment sandbox" in first
    assert "Fortnox sandbox" in first
    created, _, failed = counts(first, "target-fortnox", "customers")
    assert (created, failed) == (30, 0)
    created, _, failed = counts(first, "target-moment", "project_expenses")
    assert created > 0
    assert failed == 0
    assert sandbox_processes(tmp_path) == []
    # The demo launches Meltano as the project's launchers do (README "Hardening"): the run
    # folder, where Meltano writes the plugins' config files with their secrets, is private.
    assert stat.S_IMODE((ROOT / ".meltano" / "run").stat().st_mode) == 0o700

    second = run_demo(tmp_path)
    for plugin, stream in (
        ("target-fortnox", "customers"),
        ("target-fortnox", "projects"),
        ("target-fortnox", "invoices"),
        ("target-moment", "project_expenses"),
    ):
        assert counts(second, plugin, stream) == (0, 0, 0), (plugin, stream)
    assert sandbox_processes(tmp_path) == []
