"""Every copy of the plugins' settings (READMEs, meltano.yml, hub/) is the one the plugins declare.

scripts/plugin_settings.py writes them all from each plugin's `--about --format=json`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
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


def test_readmes_meltano_yml_and_hub_match_the_plugins(capsys: pytest.CaptureFixture[str]) -> None:
    # In this process, so the tests below reuse the plugins' --about.
    assert plugin_settings.main(["--check"]) == 0, capsys.readouterr().out


def test_meltano_kinds_follow_the_json_schema_types() -> None:
    # tap-moment reads a date-time, which Meltano's date_iso8601 would turn into a date when
    # given a relative value; tap-fortnox-expenses reads a date.
    assert meltano_settings("tap-moment")["start_date"]["kind"] == "string"
    assert meltano_settings("tap-fortnox-expenses")["start_date"]["kind"] == "date_iso8601"
    assert plugin_settings.kind({"type": ["string"], "enum": ["a", "b"]}) == "options"
    assert plugin_settings.kind({"type": ["array", "null"]}) == "array"
    numbers = 0
    for plugin in plugin_settings.PLUGINS:
        declared = meltano_settings(plugin)
        for name, spec in plugin_settings.own_settings(plugin).items():
            assert bool(declared[name].get("sensitive")) == bool(spec.get("secret")), name
            if "number" in spec["type"]:
                # Not Meltano's decimal (scripts/plugin_settings.py, kind): see the next test.
                assert declared[name]["kind"] == "integer", (plugin, name)
                numbers += 1
    assert numbers == 6  # timeout everywhere, max_retry_seconds in both Fortnox plugins


def test_both_fortnox_plugins_describe_the_shared_settings_alike() -> None:
    # The Fortnox connection is worded once (fortnox_client.plugin_settings_schema), and the
    # run store's default once (fortnox_client.run_store.run_store_setting_overrides); a plugin
    # words only what is its own: what its run store holds.
    from fortnox_client import plugin_settings_schema

    tap = meltano_settings("tap-fortnox-expenses")
    target = meltano_settings("target-fortnox")
    for name, spec in plugin_settings_schema()["properties"].items():
        assert tap[name]["description"] == target[name]["description"] == spec["description"]
    assert tap["run_store_url"]["description"] == target["run_store_url"]["description"]
    tap_path, target_path = tap["run_store_path"], target["run_store_path"]
    assert tap_path["description"] != target_path["description"]
    assert tap_path["description"].endswith("(default: run-store/ beside token_store_path)")
    assert target_path["description"].endswith("(default: run-store/ beside token_store_path)")


def test_both_targets_describe_results_dir_and_dry_run_alike() -> None:
    # Both are read by sync_common.target_base.SyncTarget and declared beside it, once.
    fortnox, moment = meltano_settings("target-fortnox"), meltano_settings("target-moment")
    assert fortnox["results_dir"] == moment["results_dir"]
    for plugin, declared in (("target-fortnox", fortnox), ("target-moment", moment)):
        assert f"results_dir/plans/<time>-{plugin}.json" in declared["dry_run"]["description"]
    as_moment = fortnox["dry_run"]["description"].replace("fortnox", "moment")
    assert as_moment == moment["dry_run"]["description"]


def test_a_number_setting_from_the_environment_reaches_the_plugin(tmp_path: Path) -> None:
    """With `kind: decimal` Meltano 4.4 fails here: Decimal is not JSON serializable."""
    shutil.copy(plugin_settings.MELTANO_YML, tmp_path / "meltano.yml")
    env = {**os.environ, "TAP_MOMENT_TIMEOUT": "30", "TAP_MOMENT_MAX_TRIES": "3"}
    env = {k: v for k, v in env.items() if not k.startswith("MELTANO_")}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "meltano"), "config", "print", "tap-moment"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads(result.stdout)
    assert (config["timeout"], config["max_tries"]) == (30, 3)


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
    edited = edited.replace(
        "kind: integer\n        label: Page size", "kind: string\n        label: Page size", 1
    )
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
