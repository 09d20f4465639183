"""The Fortnox sandbox: a local Fortnox API v3 with its OAuth2 server (``create_app`` in ``app``).

Modules: ``errors`` (ErrorInformation bodies and codes), ``formats`` (Fortnox's field formats and
valid characters), ``oauth`` (consent, tokens, bearer checks), ``ratelimit`` (the sliding window),
``settings`` (tenant settings), ``resources`` (the /3/ API), ``seed`` (demo data), ``admin``
(Fortnox-specific /_sandbox/ routes).
"""
