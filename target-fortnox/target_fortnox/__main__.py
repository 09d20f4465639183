"""Run the target as ``python -m target_fortnox``."""

from target_fortnox.target import TargetFortnox

TargetFortnox.cli()
