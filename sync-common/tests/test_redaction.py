"""Secret redaction: every form of a secret is masked in log records and error strings."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from sync_common import SecretRedactingFilter, install_secret_redaction, redact

API_KEY = "mK3y/with+special=chars&åäö"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.payload.signature"


@pytest.fixture
def isolated_root() -> Iterator[logging.Logger]:
    """The root logger with one stream handler, restored afterwards (no filter leaks out)."""
    root = logging.getLogger()
    saved_filters, saved_handlers, saved_level = root.filters[:], root.handlers[:], root.level
    root.filters.clear()
    root.handlers.clear()
    root.setLevel(logging.DEBUG)
    yield root
    # pytest's own capture handlers live across tests: take our filters off every handler.
    for logger in [root, *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", []):
            for stale in [f for f in handler.filters if isinstance(f, SecretRedactingFilter)]:
                handler.removeFilter(stale)
    root.filters[:] = saved_filters
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def _attach(logger: logging.Logger) -> io.StringIO:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger.addHandler(handler)
    return buffer


def test_redact_masks_plain_url_encoded_and_basic_auth_forms() -> None:
    basic = base64.b64encode(f"apikey:{API_KEY}".encode()).decode()
    basic_other_user = base64.b64encode(f"client-1234:{API_KEY}".encode()).decode()
    text = (
        f"key={API_KEY} url=?key={quote(API_KEY, safe='')} "
        f"Authorization: Basic {basic} other: {basic_other_user}"
    )
    masked = redact(text, [API_KEY])
    assert API_KEY not in masked
    assert quote(API_KEY, safe="") not in masked
    assert basic not in masked
    assert basic_other_user not in masked
    assert masked.startswith("key=*** url=?key=***")
    # Around a masked fragment only the user part and at most 2 bytes of the secret either side
    # are left (the 3-byte base64 groups shared with what surrounds the secret).
    before, after = masked.split("Basic ")[1].split(" ")[0].split("***")
    assert len(before) <= len(base64.b64encode(b"apikey:")) + 4
    assert len(after) <= 4


def test_redact_skips_empty_and_short_values() -> None:
    assert redact("the value is abc and '' is empty", ["abc", "", None]) == (
        "the value is abc and '' is empty"
    )


def test_filter_on_root_masks_records_of_child_loggers(isolated_root: logging.Logger) -> None:
    buffer = _attach(isolated_root)
    install_secret_redaction([TOKEN, None, "x"])
    child = logging.getLogger("target_fortnox.sinks")
    child.info("refreshed token %s for %s", TOKEN, {"token": TOKEN})
    child.warning(f"inline {TOKEN}")
    output = buffer.getvalue()
    assert TOKEN not in output
    assert "target_fortnox.sinks refreshed token *** for {'token': '***'}" in output
    assert "inline ***" in output


def test_filter_is_on_handlers_of_non_propagating_loggers(isolated_root: logging.Logger) -> None:
    singer_logger = logging.getLogger("test_redaction.own_handler")
    singer_logger.propagate = False
    buffer = _attach(singer_logger)
    try:
        install_secret_redaction([API_KEY])
        singer_logger.error("calling with %s", API_KEY)
        assert buffer.getvalue() == "test_redaction.own_handler calling with ***\n"
    finally:
        singer_logger.handlers.clear()


def test_exception_text_is_masked(isolated_root: logging.Logger) -> None:
    buffer = _attach(isolated_root)
    install_secret_redaction([TOKEN])
    try:
        raise RuntimeError(f"token {TOKEN} rejected")
    except RuntimeError:
        logging.getLogger("x").exception("refresh failed")
    output = buffer.getvalue()
    assert "refresh failed" in output
    assert "RuntimeError: token *** rejected" in output
    assert TOKEN not in output


def test_install_is_idempotent_and_accumulates_secrets(isolated_root: logging.Logger) -> None:
    buffer = _attach(isolated_root)
    first = install_secret_redaction([TOKEN])
    second = install_secret_redaction([API_KEY, TOKEN])
    assert first is second
    assert [f for f in isolated_root.filters if isinstance(f, SecretRedactingFilter)] == [first]
    (own,) = [h for h in isolated_root.handlers if getattr(h, "stream", None) is buffer]
    assert own.filters == [first]
    assert first.secrets_count == 2
    logging.getLogger("y").info("%s %s", TOKEN, API_KEY)
    assert buffer.getvalue() == "y *** ***\n"


def test_handlers_added_later_get_the_filter_on_the_next_install(
    isolated_root: logging.Logger,
) -> None:
    install_secret_redaction([TOKEN])
    late = _attach(logging.getLogger("late.logger"))
    logging.getLogger("late.logger").propagate = False
    try:
        install_secret_redaction([])
        logging.getLogger("late.logger").info(TOKEN)
        assert late.getvalue() == "late.logger ***\n"
    finally:
        logging.getLogger("late.logger").handlers.clear()
        logging.getLogger("late.logger").propagate = True
