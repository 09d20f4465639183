"""``python -m target_moment``: the same as the ``target-moment`` command."""

from target_moment.target import TargetMoment

TargetMoment.cli()
