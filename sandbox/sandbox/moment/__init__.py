"""A local stand-in for Moment's public API 1.0 (``/api/1.0/companies/{companyCode}/{entity}``).

Modules: ``model`` (entity types, field rules, timestamps), ``repository`` (companies and their
records in the shared SQLite store), ``api`` (the emulated HTTP API), ``admin`` (the Moment part of
``/_sandbox/``), ``seed`` (deterministic Swedish demo data) and ``app`` (wiring).

Behaviour is labelled in comments: *documented* (Moment's help pages), *observed* (seen in public
clients of the real API) or *inferred* (our assumption; the sandbox is the contract until a real
account says otherwise).
"""
