"""singer-sdk's built-in tap tests, run against the Moment sandbox over real HTTP.

``get_tap_test_class`` fixes its config when the class is built, before the session's sandbox has a
URL, so the class is built with placeholder settings (enough for discovery, which needs no HTTP) and
its ``runner`` fixture is replaced by one that syncs against the sandbox fixture.
"""

from __future__ import annotations

from typing import Any

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from singer_sdk.testing.runners import TapTestRunner
from tap_moment.tap import TapMoment

PLACEHOLDER_CONFIG = {"company_code": "demo", "api_key": "placeholder"}
SUITE_CONFIG = SuiteConfig(max_records_limit=150)

_BuiltInTests: Any = get_tap_test_class(
    TapMoment,
    config=PLACEHOLDER_CONFIG,
    suite_config=SUITE_CONFIG,
    parse_env_config=False,
)


class TestTapMoment(_BuiltInTests):  # type: ignore[misc]
    """All built-in tap, stream and attribute tests (none left out)."""

    @pytest.fixture(scope="class")
    def runner(self, moment_sandbox: Any) -> TapTestRunner:
        moment_sandbox.admin("POST", "seed", {"seed": 1})
        runner = TapTestRunner(
            tap_class=TapMoment,
            config={
                "api_url": f"{moment_sandbox.url}/api/1.0",
                "company_code": "demo",
                "api_key": "sandbox-key",
            },
            suite_config=SUITE_CONFIG,
            parse_env_config=False,
        )
        runner.sync_all()
        return runner
