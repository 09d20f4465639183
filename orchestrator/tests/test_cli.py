"""The command line's help text."""

from __future__ import annotations

from moment_fortnox_orchestrator.cli import _parser


def test_help_keeps_each_usage_example_on_its_own_line() -> None:
    text = _parser().format_help()
    lines = text.splitlines()
    for example in (
        "tenants",
        "init --max-concurrent-runs 4",
        "request-push acme",
        "local up|down",
    ):
        assert any(
            line.strip().startswith(f"moment-fortnox-orchestrator {example}") for line in lines
        ), f"usage example {example!r} run together with others in:\n{text}"
