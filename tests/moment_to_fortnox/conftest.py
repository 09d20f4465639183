"""Fixtures of the Moment → Fortnox proofs that need sandboxes of their own (rate limit on).

`pipelines` (tests/conftest.py) is module scoped, so each test module here gets fresh sandboxes,
state backend, token store and results folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def private_run_dir(pipelines: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Give this module's runs their own `.meltano/run` (plugin config files) directory.

    `meltano install` empties `.meltano/run/<plugin>` of every plugin, so an install from another
    pytest session or xdist worker deletes the config file of a run in flight ("File at
    .meltano/run/tap-moment/tap.<uuid>.config.json was not found"). A private system directory
    that links the installed plugin environments and has its own `run` avoids that race.
    """
    sys_dir = tmp_path_factory.mktemp("meltano-sys")
    installed = ROOT / ".meltano"
    for kind in ("extractors", "loaders"):
        (sys_dir / kind).symlink_to(installed / kind, target_is_directory=True)
    pipelines.extra_env["MELTANO_SYS_DIR_ROOT"] = str(sys_dir)
