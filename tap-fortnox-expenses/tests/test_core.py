"""singer-sdk's built-in tap tests (discovery, sync, final state, schemas, attributes) against the
real Fortnox sandbox over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sandbox.launcher import SandboxProcess
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from tap_fortnox_expenses.tap import TapFortnoxExpenses

# The SDK builds its test class (and a tap, which validates this config) at import time, before
# the session's sandbox exists; the fixture below points this same dict at it before any sync.
SDK_TEST_CONFIG: dict[str, Any] = {
    "api_url": "http://sandbox.invalid/3",
    "token_url": "http://sandbox.invalid/oauth-v1/token",
    "client_id": "sandbox-client",
    "client_secret": "sandbox-secret",
    "tenant_id": "1234567",
    "max_requests_per_5s": 0,
}

BuiltInTapTests = get_tap_test_class(
    TapFortnoxExpenses,
    config=SDK_TEST_CONFIG,
    suite_config=SuiteConfig(max_records_limit=500),
    # Only this dict: a developer's TAP_FORTNOX_EXPENSES_* variables must not leak in.
    parse_env_config=False,
)


class TestTapFortnoxExpenses(BuiltInTapTests):  # type: ignore[misc,valid-type]
    @pytest.fixture(scope="class", autouse=True)
    def _sandbox_config(
        self, fortnox_sandbox: SandboxProcess, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        fortnox_sandbox.admin("POST", "seed", {"seed": 1})
        tmp = Path(tmp_path_factory.mktemp("sdk-tests"))
        SDK_TEST_CONFIG.update(
            api_url=f"{fortnox_sandbox.url}/3",
            token_url=f"{fortnox_sandbox.url}/oauth-v1/token",
            token_store_path=str(tmp / "fortnox-token.json"),
            results_dir=str(tmp / "output"),
        )
