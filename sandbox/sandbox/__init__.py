"""Local stand-ins for the Fortnox and Moment APIs.

Two separate Flask applications (``sandbox.fortnox`` and ``sandbox.moment``) that reproduce the
behaviour of docs/FORTNOX-API.md and docs/MOMENT-API.md, kept in SQLite, with an admin API under
``/_sandbox/`` to seed data, change it as a user would, inject faults and read the request log.
The sandbox knows nothing of the plugins that talk to it.
"""

__version__ = "0.1.0"
