"""PreflightCommand: settings read from both sides, secrets redacted, exit codes 0/1/2."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from sync_operator import CheckResult, PreflightCommand, PreflightReport

COMMAND = PreflightCommand(
    prog="demo-preflight",
    description="Check both systems.",
    settings_label="demo settings",
    env_prefix="DEMO_PLUGIN",
    moment_env_prefix="DEMO_MOMENT",
)


class NoSettings(Exception):
    pass


def loader(settings: Mapping[str, dict[str, Any]]) -> Any:
    """A config loader over fixed settings per env prefix; a prefix without any: NoSettings."""

    def load(sources: Sequence[str] | None, *, env_prefix: str) -> dict[str, Any]:
        if env_prefix not in settings:
            raise NoSettings(f"no {env_prefix}_* variables")
        return dict(settings[env_prefix])

    return load


class LoggingPreflight:
    """Logs the Moment key (as a careless check might) and fails when told to."""

    def __init__(self, plugin: Mapping[str, Any], moment: Mapping[str, Any]) -> None:
        self.plugin, self.moment = plugin, moment

    def run(self) -> PreflightReport:
        logging.getLogger("demo").warning("key in use: %s", self.moment["api_key"])
        report = PreflightReport("demo")
        status = "fail" if self.plugin.get("broken") else "pass"
        report.add(CheckResult("token", status, f"checked {self.moment['company_code']}"))
        return report


def run(argv: list[str], settings: Mapping[str, dict[str, Any]]) -> int:
    return COMMAND.main(
        argv, load_config=loader(settings), config_error=NoSettings, connect=LoggingPreflight
    )


def test_ready_and_blocked_exit_codes_with_the_report_as_json_and_secrets_redacted(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    moment = {"company_code": "acme", "api_key": "moment-secret-123"}
    assert run(["--json"], {"DEMO_PLUGIN": {}, "DEMO_MOMENT": moment}) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ready"] is True
    assert data["checks"][0]["detail"] == "checked acme"
    assert "key in use" in caplog.text
    assert "moment-secret-123" not in caplog.text
    assert run([], {"DEMO_PLUGIN": {"broken": True}, "DEMO_MOMENT": moment}) == 1
    assert "NOT READY" in capsys.readouterr().out


def test_missing_moment_settings_name_the_variables_to_set(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run([], {"DEMO_PLUGIN": {}}) == 2
    err = capsys.readouterr().err
    assert err.startswith("demo-preflight: No Moment settings: set DEMO_MOMENT_COMPANY_CODE")
    # The other plugin's prefix can be overridden, and the message follows it.
    assert run(["--moment-env-prefix", "OTHER"], {"DEMO_PLUGIN": {}}) == 2
    assert "OTHER_API_KEY" in capsys.readouterr().err


def test_settings_that_cannot_make_clients_exit_2_with_the_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def refuse(plugin: Mapping[str, Any], moment: Mapping[str, Any]) -> LoggingPreflight:
        raise ValueError("client_id is required")

    settings = {"DEMO_PLUGIN": {}, "DEMO_MOMENT": {}}
    code = COMMAND.main([], load_config=loader(settings), config_error=NoSettings, connect=refuse)
    assert code == 2
    assert capsys.readouterr().err == "demo-preflight: client_id is required\n"
