"""The generated sections of README.md: the settings table and the input contract.

The settings rows come from ``target-moment --about --format=markdown`` (this target's own
settings, not the SDK's built-ins); the contract from ``schemas/*.json``. Rewrite them with
``python -m target_moment.readme README.md``; a test fails when the README has drifted.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

from target_moment.contract import markdown as contract_markdown
from target_moment.target import TargetMoment

SECTIONS = ("settings", "contract")


def settings_markdown() -> str:
    """The ``--about`` settings table, limited to target-moment's own settings."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        TargetMoment.print_about(output_format="markdown")
    own = set(TargetMoment.own_settings["properties"])
    rows = [
        line
        for line in out.getvalue().splitlines()
        if line.startswith("| ")
        and (line.split("|")[1].strip() in own or line.startswith("| Setting"))
    ]
    header, body = rows[0], rows[1:]
    return "\n".join([header, "|:--------|:--------:|:-------:|:------------|", *body]) + "\n"


def generated(section: str) -> str:
    return settings_markdown() if section == "settings" else contract_markdown()


def render(readme_text: str) -> str:
    """``readme_text`` with every generated section replaced by its current content."""
    for section in SECTIONS:
        pattern = re.compile(
            rf"(<!-- generated:{section} -->\n).*?(<!-- /generated:{section} -->)", re.DOTALL
        )
        match = pattern.search(readme_text)
        if match is None:
            raise ValueError(f"README has no <!-- generated:{section} --> section")
        readme_text = (
            readme_text[: match.end(1)] + generated(section) + readme_text[match.start(2) :]
        )
    return readme_text


def main(path: str) -> None:
    readme = Path(path)
    readme.write_text(render(readme.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "README.md")
