"""``python -m tap_moment``: the same CLI as ``tap-moment``."""

from tap_moment.tap import TapMoment

TapMoment.cli()
