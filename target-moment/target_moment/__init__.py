"""target-moment: a Singer target that writes Fortnox project expenses into Moment, idempotently."""

from target_moment.target import TargetMoment

__all__ = ["TargetMoment"]
