"""The commands the plugins print carry the Meltano environment they ran in."""

from __future__ import annotations

import pytest
from sync_common import meltano_command


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        # `meltano --environment prod run …` (or MELTANO_ENVIRONMENT=prod in .env): prod again.
        ({"MELTANO_ENVIRONMENT": "prod"}, "meltano --environment prod invoke target-fortnox"),
        # Any name, not a hard-coded one (docs/SCALING.md: one environment per tenant).
        (
            {"MELTANO_ENVIRONMENT": "tenant-acme"},
            "meltano --environment tenant-acme invoke target-fortnox",
        ),
        # `meltano --no-environment …`: Meltano exports an empty name.
        ({"MELTANO_ENVIRONMENT": ""}, "meltano --no-environment invoke target-fortnox"),
        # Not started by Meltano: nothing to repeat.
        ({}, "meltano invoke target-fortnox"),
    ],
)
def test_the_command_names_the_environment_the_plugin_runs_in(
    environ: dict[str, str], expected: str
) -> None:
    assert meltano_command("invoke target-fortnox", environ) == expected


def test_it_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MELTANO_ENVIRONMENT", "prod")
    assert meltano_command("invoke target-fortnox:authorize") == (
        "meltano --environment prod invoke target-fortnox:authorize"
    )
    monkeypatch.setenv("MELTANO_ENVIRONMENT", "it's odd")
    assert meltano_command("state list") == "meltano --environment 'it'\"'\"'s odd' state list"
