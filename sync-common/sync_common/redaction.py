"""Secret redaction: keeps tokens, keys and passwords out of logs and error texts.

Owns the ``SecretRedactingFilter`` logging filter, installed by ``install_secret_redaction`` on the
root logger and on every handler that exists at that time (a filter on a logger does not see
records propagated from child loggers; a filter on a handler does), and ``redact`` for strings
such as error messages. Each secret is replaced by ``***`` in its plain form, its URL-encoded
forms, and its base64 forms as they appear inside ``user:secret`` HTTP Basic credentials.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Final
from urllib.parse import quote, quote_plus

MASK: Final = "***"
# Shorter values ("1", "true", "dev") would mask ordinary words everywhere and are no secrets.
MIN_SECRET_LENGTH: Final = 6
# A base64 fragment shorter than this is too likely to occur by chance in ordinary text.
_MIN_BASE64_FRAGMENT: Final = 8


def secret_forms(secret: str) -> set[str]:
    """The spellings of ``secret`` that can reach a log: plain, URL-encoded and base64."""
    if len(secret) < MIN_SECRET_LENGTH:
        return set()
    forms = {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
    raw = secret.encode("utf-8")
    # In base64("user:secret") the secret starts at an unknown offset, so its encoding depends on
    # the user part. Base64 maps each 3-byte group to 4 characters independently, so for each of
    # the three possible alignments the whole groups inside the secret encode the same way
    # whatever surrounds them: masking those fragments hides the secret in any such string.
    for skip in range(3):
        body = raw[skip:]
        body = body[: len(body) - len(body) % 3]
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            fragment = encode(body).decode("ascii")
            if len(fragment) >= _MIN_BASE64_FRAGMENT:
                forms.add(fragment)
    return forms


@lru_cache(maxsize=32)
def _pattern(secrets: frozenset[str]) -> re.Pattern[str] | None:
    forms: set[str] = set()
    for secret in secrets:
        forms |= secret_forms(secret)
    if not forms:
        return None
    # Longest first, so a form is never half-masked by a shorter one it contains.
    return re.compile("|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True)))


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every form of every secret replaced by ``***``; empty/short values ignored."""
    pattern = _pattern(frozenset(s for s in secrets if s))
    return pattern.sub(MASK, text) if pattern else text


class SecretRedactingFilter(logging.Filter):
    """Rewrites each record so that its message, arguments and traceback hold no secret.

    The message is formatted once here (``msg % args``) and the result masked, because a secret
    can reach the text through any argument (a URL, a dict, an exception), not only a string one.
    """

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self._secrets: frozenset[str] = frozenset()
        self.add_secrets(secrets)

    @property
    def secrets_count(self) -> int:
        return len(self._secrets)

    def add_secrets(self, secrets: Iterable[str | None]) -> None:
        kept = {s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}
        self._secrets = self._secrets | kept

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A bad format string: logging would report it anyway; mask what we can see.
            message = f"{record.msg} {record.args}"
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
            # Formatters use exc_text when set; dropping exc_info keeps any formatter that
            # re-renders the exception itself (e.g. JSON ones) from printing it unmasked.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install_secret_redaction(
    secrets: Iterable[str | None], *, logger: logging.Logger | None = None
) -> SecretRedactingFilter:
    """Mask ``secrets`` in every log record from now on; idempotent, secrets accumulate.

    Installs one ``SecretRedactingFilter`` on the root logger (or ``logger``) and on every handler
    of every logger that exists now; calling it again adds secrets to the same filter and attaches
    it to handlers created since. Call it after logging is configured (e.g. in the plugin's
    ``__init__`` once the config is read).
    """
    root = logger or logging.getLogger()
    active = next((f for f in root.filters if isinstance(f, SecretRedactingFilter)), None)
    if active is None:
        active = SecretRedactingFilter()
        root.addFilter(active)
    active.add_secrets(secrets)
    for handler in _all_handlers(root):
        if active not in handler.filters:
            handler.addFilter(active)
    return active


def _all_handlers(root: logging.Logger) -> list[logging.Handler]:
    handlers = list(root.handlers)
    for candidate in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(candidate, logging.Logger):
            handlers.extend(candidate.handlers)
    return handlers
