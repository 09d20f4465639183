"""The README and meltano.yml stay true to what the plugins declare.

The settings tables and meltano.yml's settings: tests/test_plugin_settings.py.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import yaml
from moment_webhooks.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import plugin_settings  # noqa: E402


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
        for plugin in plugin_settings.PLUGINS
        for name in plugin_settings.own_settings(plugin)
        if name == "notify_email" or name.startswith("smtp_")
    }
    assert len(needed) == 4 * 7  # all four plugins mail: notify_email and six smtp_ settings
    assert needed <= assigned, sorted(needed - assigned)


def readme_cron_lines() -> list[tuple[str | None, str, list[str]]]:
    """Every job line of the README's ```cron blocks: (its CRON_TZ, the schedule, the argv after
    ``cd <project> &&`` without the output redirection)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines: list[tuple[str | None, str, list[str]]] = []
    for block in re.findall(r"```cron\n(.*?)```", text, flags=re.DOTALL):
        zone = None
        for line in block.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            if line.startswith("CRON_TZ="):
                zone = line.split("=", 1)[1].strip()
                continue
            fields = line.split(None, 5)
            command = fields[5].split("&&", 1)[1]
            argv = shlex.split(command)
            lines.append((zone, " ".join(fields[:5]), argv[: argv.index(">>")]))
    return lines


def test_readme_cron_lines_run_the_jobs_through_the_wrapper_in_utc_and_stockholm_time() -> None:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    jobs = {j["name"] for j in project["jobs"]}
    daily: dict[str | None, str] = {}
    lines = readme_cron_lines()
    assert lines
    for zone, when, argv in lines:
        assert argv[0].endswith("/moment-webhooks"), argv
        args = build_parser().parse_args(argv[1:])  # every option the README uses exists
        assert args.action == "run"
        job = shlex.split(args.command)
        assert job[:4] == ["meltano", "--environment", "prod", "run"], args.command
        assert job[4] in jobs
        if job[4] == "fortnox-expenses-to-moment":
            assert args.retries >= 1, "the daily job is tried again when it fails"
            daily[zone] = when
    # Both ways shown: 21:00 UTC (the default, as meltano.yml) and 22:00 in Stockholm.
    assert daily == {None: "0 21 * * *", "Europe/Stockholm": "0 22 * * *"}
