"""Make the repository root importable, so the tests can import the ``bench`` module (pytest runs
with ``--import-mode=importlib``, which puts no test folder on ``sys.path``)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
