"""The docs are self-contained: nothing cites a file outside the repository; what is cited exists.

A maintainer who clones the repository has only its files, so code comments, docstrings and docs
cite ``docs/...`` and the package READMEs (docs/ARCHITECTURE.md), never the design document or the
reference notes the project was built from. Checked over every file git tracks.
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()
TEXT_SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".cfg", ".txt", ".ini", ".singer"}
TEXT_NAMES = {"Makefile", "run"}

# Citations of files that are not in the repository: the design document (by name, or by its
# sections), the folder it lived in, and the reference notes (by folder or by file name).
OUTSIDE = re.compile(
    r"\bDESIGN\b"
    r"|\.\./shared\b|/work/shared\b"
    r"|\breference(?:/[\w.-]+|\s+§|\s+notes?\b)"
    r"|(?<![\w/-])(?:fortnox-api|moment-api|singer-meltano)\.md\b"
)
DOCS_PATH = re.compile(r"(?<![\w.-])docs/([\w.-]+\.md)\b")
# `docs/<page>.md, "Section"`, `[<page>.md](<page>.md), "Section"` or `<page>.md, "Section"`.
SECTION = re.compile(r"(?:docs/)?\b([A-Z][A-Z_-]+\.md)(?:\]\([^)\s]*\))?,\s*\"([^\"]+)\"")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")


@cache
def tracked() -> tuple[str, ...]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return tuple(
        name
        for name in out.splitlines()
        if (Path(name).suffix in TEXT_SUFFIXES or Path(name).name in TEXT_NAMES)
        and (ROOT / name).is_file()
    )


def text_of(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8", errors="replace")


def headings(doc: Path) -> list[str]:
    return [
        line.lstrip("#").strip()
        for line in doc.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    ]


def test_the_files_are_found() -> None:
    names = tracked()
    assert "docs/ARCHITECTURE.md" in names
    assert "target-fortnox/target_fortnox/sinks.py" in names


def test_nothing_cites_the_design_document_or_the_reference_notes() -> None:
    found = [
        f"{name}:{number}: {line.strip()}"
        for name in tracked()
        if name != THIS
        for number, line in enumerate(text_of(name).splitlines(), start=1)
        if OUTSIDE.search(line)
    ]
    assert not found, (
        "these lines cite files that are not in the repository; cite the docs/ page that holds "
        "the fact instead (docs/ARCHITECTURE.md lists them):\n" + "\n".join(found)
    )


def test_every_cited_docs_page_exists() -> None:
    missing = [
        f"{name}:{number}: docs/{page}"
        for name in tracked()
        for number, line in enumerate(text_of(name).splitlines(), start=1)
        for page in DOCS_PATH.findall(line)
        if not (ROOT / "docs" / page).is_file()
    ]
    assert not missing, "cited docs pages that do not exist:\n" + "\n".join(missing)


def test_every_cited_docs_section_exists() -> None:
    pages = {path.name: headings(path) for path in (ROOT / "docs").glob("*.md")}
    wrong = []
    for name in tracked():
        text = " ".join(text_of(name).split())  # a citation may be wrapped over two lines
        for page, section in SECTION.findall(text):
            if page not in pages:
                continue  # a README or another file of that name, not a docs page
            if not any(heading.startswith(section) for heading in pages[page]):
                wrong.append(f'{name}: docs/{page}, "{section}"')
    assert not wrong, "cited sections missing from their docs page:\n" + "\n".join(wrong)


def test_relative_markdown_links_resolve() -> None:
    broken = []
    for name in tracked():
        if not name.endswith(".md"):
            continue
        for target in MARKDOWN_LINK.findall(text_of(name)):
            path = target.split("#", 1)[0]
            if not path or re.match(r"^[a-z]+:", path):
                continue  # an anchor in the same page, or a URL
            if not (ROOT / name).parent.joinpath(path).exists():
                broken.append(f"{name}: {target}")
    assert not broken, "relative links to nothing:\n" + "\n".join(broken)
