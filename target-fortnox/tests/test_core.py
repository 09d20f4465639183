"""singer-sdk's built-in target tests (``get_target_test_class``).

The SDK's sample streams (``test_camelcase``, ``array_data`` ...) mean nothing to Fortnox, so the
target routes them to its skipping sink: these tests check the Singer contract (CLI, message
handling, schema and key checks, state passthrough), not Fortnox writes — the replay tests do that.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from singer_sdk.testing import get_target_test_class
from target_fortnox.target import TargetFortnox

SAMPLE_CONFIG = {
    "client_id": "sandbox-client",
    "client_secret": "sandbox-secret",
    "tenant_id": "1234567",
    # No sample stream reaches Fortnox; the run summary goes to a throw-away folder.
    "results_dir": tempfile.mkdtemp(prefix="target-fortnox-sdk-tests-"),
    "token_store_path": str(Path(tempfile.mkdtemp(prefix="target-fortnox-token-")) / "t.json"),
}

TestTargetFortnox = get_target_test_class(TargetFortnox, config=SAMPLE_CONFIG)
