"""The generated section of README.md: the input contract.

The contract comes from ``schemas/*.json``. Rewrite it with
``python -m target_moment.readme README.md``; a test fails when the README has drifted. (The
settings table is written with every other copy of the settings by scripts/plugin_settings.py at
the repository root.)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from target_moment.contract import markdown as contract_markdown

PATTERN = re.compile(r"(<!-- generated:contract -->\n).*?(<!-- /generated:contract -->)", re.DOTALL)


def render(readme_text: str) -> str:
    """``readme_text`` with the input contract section replaced by its current content."""
    match = PATTERN.search(readme_text)
    if match is None:
        raise ValueError("README has no <!-- generated:contract --> section")
    return readme_text[: match.end(1)] + contract_markdown() + readme_text[match.start(2) :]


def main(path: str) -> None:
    """Regenerate the README at ``path`` in place."""
    readme = Path(path)
    readme.write_text(render(readme.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "README.md")
