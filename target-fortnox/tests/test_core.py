"""singer-sdk's built-in target tests (``get_target_test_class``).

The SDK's sample streams (``test_camelcase``, ``array_data`` ...) mean nothing to Fortnox, so the
target routes them to its skipping sink: these tests check the Singer contract (CLI, message
handling, schema checks, state passthrough), not Fortnox writes — the replay tests do that.

Left out on purpose: ``record_before_schema`` and ``record_missing_key_property`` expect the SDK
to stop the whole run; target-fortnox fails such a record alone instead (sync-common's
``RecordGuard``: the per-record contract of issue 6), asserted by test_protocol_slips.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from singer_sdk.testing import get_target_test_class
from singer_sdk.testing.suites import SingerTestSuite, target_tests
from singer_sdk.testing.target_tests import (
    TargetRecordBeforeSchemaTest,
    TargetRecordMissingKeyProperty,
)
from target_fortnox.target import TargetFortnox

SAMPLE_CONFIG = {
    "client_id": "sandbox-client",
    "client_secret": "sandbox-secret",
    "tenant_id": "1234567",
    # No sample stream reaches Fortnox; the run summary goes to a throw-away folder.
    "results_dir": tempfile.mkdtemp(prefix="target-fortnox-sdk-tests-"),
    "token_store_path": str(Path(tempfile.mkdtemp(prefix="target-fortnox-token-")) / "t.json"),
}

PER_RECORD_INSTEAD = (TargetRecordBeforeSchemaTest, TargetRecordMissingKeyProperty)
APPLICABLE_TARGET_TESTS = SingerTestSuite(
    kind="target",
    tests=[test for test in target_tests.tests if test not in PER_RECORD_INSTEAD],
)

TestTargetFortnox = get_target_test_class(
    TargetFortnox,
    config=SAMPLE_CONFIG,
    include_target_tests=False,
    custom_suites=[APPLICABLE_TARGET_TESTS],
)
