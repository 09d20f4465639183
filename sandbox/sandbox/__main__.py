"""``python -m sandbox``: the ``sandbox`` command line (``sandbox.cli``)."""

from sandbox.cli import main

raise SystemExit(main())
