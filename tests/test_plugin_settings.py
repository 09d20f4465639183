"""Every copy of the plugins' settings (READMEs, meltano.yml, hub/) is the one the plugins declare.

scripts/plugin_settings.py writes them all from each plugin's `--about --format=json`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import plugin_settings  # noqa: E402


def meltano_settings(plugin: str) -> dict[str, dict[str, Any]]:
    """The settings meltano.yml declares for ``plugin``, by name."""
    project = yaml.safe_load(plugin_settings.MELTANO_YML.read_text(encoding="utf-8"))
    plugins = project["plugins"]["extractors"] + project["plugins"]["loaders"]
    (entry,) = [p for p in plugins if p["name"] == plugin]
    return {s["name"]: s for s in entry["settings"]}


def test_readmes_meltano_yml_and_hub_match_the_plugins() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "plugin_settings.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_meltano_kinds_follow_the_json_schema_types() -> None:
    # tap-moment reads a date-time, which Meltano's date_iso8601 would turn into a date when
    # given a relative value; tap-fortnox-expenses reads a date.
    assert meltano_settings("tap-moment")["start_date"]["kind"] == "string"
    assert meltano_settings("tap-fortnox-expenses")["start_date"]["kind"] == "date_iso8601"
    for plugin in plugin_settings.PLUGINS:
        declared = meltano_settings(plugin)
        assert declared["timeout"]["kind"] == "decimal", plugin  # seconds, fractions allowed
        assert declared["max_tries"]["kind"] == "integer", plugin
    assert plugin_settings.kind({"type": ["string"], "enum": ["a", "b"]}) == "options"
    assert plugin_settings.kind({"type": ["array", "null"]}) == "array"


def test_rewriting_meltano_yml_touches_only_the_settings_blocks() -> None:
    text = plugin_settings.MELTANO_YML.read_text(encoding="utf-8")
    # A hand edit elsewhere (another pip_url, a comment), a stale description, a kind written
    # by hand, a setting the plugin no longer has and a lost required group.
    edited = (
        text.replace(
            "-e ${MELTANO_PROJECT_ROOT}/tap-moment\n",
            "-e ${MELTANO_PROJECT_ROOT}/tap-moment[extra]\n      # a comment of the operator\n",
        )
        .replace('description: "Moment company code: the', 'description: "Old text: the', 1)
        .replace(
            "      - name: page_size\n",
            "      - name: gone\n        kind: string\n      - name: page_size\n",
            1,
        )
        .replace("        - [client_id, client_secret]\n", "", 1)
    )
    edited = edited.replace("kind: decimal", "kind: integer")
    assert edited != text
    restored = plugin_settings.meltano_yml(edited)
    expected = text.replace(
        "-e ${MELTANO_PROJECT_ROOT}/tap-moment\n",
        "-e ${MELTANO_PROJECT_ROOT}/tap-moment[extra]\n      # a comment of the operator\n",
    )
    assert restored == expected
    # Everything but the plugins' settings is as it was written (jobs, environments, commands).
    before, after = yaml.safe_load(text), yaml.safe_load(restored)
    for key in ("environments", "jobs", "schedules"):
        assert after[key] == before[key]
