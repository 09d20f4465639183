"""The README's settings table is the one ``tap-moment --about --format=markdown`` prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def settings_table(markdown: str) -> list[str]:
    """The rows of the first table that starts with a ``| Setting`` header."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| Setting"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line.rstrip())
    return rows


def test_readme_settings_table_matches_about_output() -> None:
    about = subprocess.run(
        [sys.executable, "-m", "tap_moment", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    generated = settings_table(about)
    assert any(row.startswith("| api_key | True") for row in generated)
    assert settings_table(README.read_text(encoding="utf-8")) == generated, (
        "README settings table drifted: regenerate it from `tap-moment --about --format=markdown`"
    )
