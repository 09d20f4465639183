"""The README's generated sections and meltano.yml agree with the code (no drift)."""

from __future__ import annotations

from pathlib import Path

import yaml
from target_moment.readme import render
from target_moment.target import TargetMoment

README = Path(__file__).parents[1] / "README.md"
MELTANO_YML = Path(__file__).parents[2] / "meltano.yml"


def test_readme_settings_and_contract_are_current() -> None:
    text = README.read_text(encoding="utf-8")
    assert render(text) == text, (
        "README.md is out of date: run `python -m target_moment.readme target-moment/README.md`"
    )
    assert "| `source_key` | string | yes |" in text


def test_every_setting_is_declared_in_meltano_yml_with_secrets_sensitive() -> None:
    meltano = yaml.safe_load(MELTANO_YML.read_text(encoding="utf-8"))
    (plugin,) = [p for p in meltano["plugins"]["loaders"] if p["name"] == "target-moment"]
    declared = {s["name"]: bool(s.get("sensitive")) for s in plugin["settings"]}
    own = TargetMoment.own_settings["properties"]
    assert set(own) == set(declared)
    secrets = {name for name, spec in own.items() if spec.get("secret")}
    assert secrets == {"api_key", "smtp_password", "run_store_url"}
    assert {name for name, sensitive in declared.items() if sensitive} == secrets
