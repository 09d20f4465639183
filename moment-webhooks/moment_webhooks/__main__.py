"""``python -m moment_webhooks`` is the ``moment-webhooks`` console script."""

from moment_webhooks.cli import main

raise SystemExit(main())
