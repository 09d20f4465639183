"""singer-sdk's built-in target tests that apply to target-moment.

Run: ``cli_prints`` (about/version) and ``invalid_schema`` (a bad SCHEMA is refused).

Left out on purpose: ``record_before_schema`` and ``record_missing_key_property`` expect the SDK
to stop the whole run; target-moment fails such a record alone instead (sync-common's
``RecordGuard``: the issue's per-record contract), asserted by test_protocol_slips.

``multiple_state_messages`` is left out although state relay matters here: in singer-sdk 0.54.9
it cannot pass for any target (its runner parses STATE lines into dicts and the test compares them
with strings, and 0.54 emits state only when all sinks drain, i.e. once for that file). State relay
is asserted by test_replay (STATE after the records) and test_failures (no STATE on a failed run).

Left out, because they replay the SDK's own streams (users, accounts, test_* tables) whose
records a database target stores and an API target for two fixed streams cannot: array_data,
camelcase, camelcase_complex_schema, duplicate_records, encoded_string_data, no_primary_keys,
optional_attributes, record_missing_required_property, schema_no_properties, schema_updates,
pk_updates, special_chars_in_attributes, record_missing_fields. target-moment ignores streams it
does not write, so those would pass without testing anything; the same concerns (duplicates,
missing fields, invalid records) are covered on its own streams by test_replay/test_failures.
The built-in tests never reach Moment (no project_expenses records), so the API URL is a dummy.
"""

from __future__ import annotations

import tempfile

from singer_sdk.testing import SuiteConfig, get_target_test_class
from singer_sdk.testing.suites import SingerTestSuite
from singer_sdk.testing.target_tests import (
    TargetCliPrintsTest,
    TargetInvalidSchemaTest,
)
from target_moment.target import TargetMoment

APPLICABLE_TARGET_TESTS = SingerTestSuite(
    kind="target",
    tests=[
        TargetCliPrintsTest,
        TargetInvalidSchemaTest,
    ],
)

SAMPLE_CONFIG = {
    "api_url": "http://127.0.0.1:9/api/1.0",
    "company_code": "demo",
    "api_key": "sandbox-key",
    # A fresh directory per test session, so no earlier dead letters are retried here.
    "results_dir": tempfile.mkdtemp(prefix="target-moment-core-"),
}

TestTargetMoment = get_target_test_class(
    TargetMoment,
    config=SAMPLE_CONFIG,
    include_target_tests=False,
    custom_suites=[APPLICABLE_TARGET_TESTS],
    suite_config=SuiteConfig(),
)
