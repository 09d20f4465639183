"""The README's generated contract agrees with the code (no drift); the settings are fixed."""

from __future__ import annotations

from pathlib import Path

from target_moment.readme import render
from target_moment.target import TargetMoment

README = Path(__file__).parents[1] / "README.md"


def test_readme_contract_is_current() -> None:
    text = README.read_text(encoding="utf-8")
    assert render(text) == text, (
        "README.md is out of date: run `python -m target_moment.readme target-moment/README.md`"
    )
    assert "| `source_key` | string | yes |" in text


def test_the_secret_settings() -> None:
    # The settings table (README) and meltano.yml's settings, with `sensitive`, are written and
    # checked by scripts/plugin_settings.py (tests/test_plugin_settings.py).
    own = TargetMoment.own_settings["properties"]
    secrets = {name for name, spec in own.items() if spec.get("secret")}
    assert secrets == {"api_key", "smtp_password", "run_store_url"}
