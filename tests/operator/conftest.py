"""Fixtures of the operator-command tests (pre-flight, dry run, report through Meltano)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def private_run_dir(pipelines: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Give this module's Meltano calls their own `.meltano/run` (plugin config files).

    `meltano install` from another pytest session empties `.meltano/run/<plugin>`, deleting the
    config file of an invoke in flight (the same race tests/moment_to_fortnox/conftest.py
    documents). A private system directory linking the installed plugins avoids it.
    """
    sys_dir = tmp_path_factory.mktemp("meltano-sys")
    installed = ROOT / ".meltano"
    for kind in ("extractors", "loaders"):
        (sys_dir / kind).symlink_to(installed / kind, target_is_directory=True)
    pipelines.extra_env["MELTANO_SYS_DIR_ROOT"] = str(sys_dir)
