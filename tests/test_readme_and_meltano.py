"""The README and meltano.yml stay true to what the plugins declare."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import readme_settings  # noqa: E402


def meltano_plugins() -> dict[str, dict[str, Any]]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    plugins = project["plugins"]["extractors"] + project["plugins"]["loaders"]
    return {p["name"]: p for p in plugins}


def test_readme_settings_tables_match_the_plugins() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "readme_settings.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("plugin", readme_settings.PLUGINS)
def test_meltano_yml_declares_exactly_the_plugin_settings(plugin: str) -> None:
    # singer-sdk's own settings (stream maps) may be declared too, for `meltano config` and env.
    declared = {
        s["name"]: s
        for s in meltano_plugins()[plugin]["settings"]
        if s["name"] not in readme_settings.SDK_BUILTINS
    }
    own = readme_settings.own_settings(plugin)
    assert set(declared) == set(own)
    for name, spec in own.items():
        assert bool(declared[name].get("sensitive")) == bool(spec.get("secret")), name


def test_readme_shows_the_two_commands_first() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_screen = text[: text.index("## Layout")]
    assert "make demo" in first_screen
    assert "make test" in first_screen
    assert "sandbox-client" in first_screen
    assert "sandbox-key" in first_screen


def test_jobs_and_schedules() -> None:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    jobs = {j["name"]: j["tasks"] for j in project["jobs"]}
    assert jobs == {
        "moment-to-fortnox": ["tap-moment target-fortnox"],
        "fortnox-expenses-to-moment": ["tap-fortnox-expenses target-moment"],
        # Data stacks (tests/stack): the taps into a warehouse, another tap into target-fortnox.
        "moment-to-warehouse": ["tap-moment target-postgres"],
        "fortnox-expenses-to-warehouse": ["tap-fortnox-expenses target-postgres"],
        "csv-customers-to-fortnox": ["tap-csv-folder target-fortnox"],
    }
    schedules = {s["job"]: s["interval"] for s in project["schedules"]}
    assert schedules["moment-to-fortnox"] == "*/5 * * * *"
    # 22:00 CET all year, written in UTC because Meltano's orchestrators read cron in UTC.
    assert schedules["fortnox-expenses-to-moment"] == "0 21 * * *"


def test_going_live_env_sets_every_notify_and_smtp_setting_of_every_plugin() -> None:
    """Each plugin mails its own failures: the `.env` of "Going live" sets all their settings."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    going_live = text[text.index("## Going live") :]
    going_live = going_live[: going_live.index("\n## ", 1)]
    assigned = {
        line.split("=", 1)[0]
        for block in going_live.split("```sh")[1:]
        for line in block.split("```", 1)[0].splitlines()
        if re.fullmatch(r"[A-Z][A-Z0-9_]*=.*", line.strip())
    }
    needed = {
        f"{plugin.upper().replace('-', '_')}_{name.upper()}"
        for plugin in readme_settings.PLUGINS
        for name in readme_settings.own_settings(plugin)
        if name == "notify_email" or name.startswith("smtp_")
    }
    assert len(needed) == 4 * 7  # all four plugins mail: notify_email and six smtp_ settings
    assert needed <= assigned, sorted(needed - assigned)
