"""Create a record without ever creating it twice, when the API may not answer a create.

A POST that went unanswered (timeout, reset, a 5xx after the request was sent) may or may not
have created the record; sending it again blindly could make two. Both targets follow one rule
(docs/ARCHITECTURE.md): after an ambiguous create, look the record up by its key; found, the
create landed and the caller compares what it holds; absent, the earlier POST left nothing, so
another POST is safe. After ``attempts`` unanswered creates that each left nothing,
``CreatesUnanswered`` says so and the caller fails the record or the run, as is its rule.

An API that refuses a create because the key exists already (Moment's 409) is looked up the same
way; if the look-up finds nothing the refusal itself is raised, as the caller must explain it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

Answer = TypeVar("Answer")

logger = logging.getLogger("sync_common.create_once")


class CreatesUnanswered(Exception):
    """Every create went unanswered and a look-up after each found nothing."""

    def __init__(self, what: str, attempts: int, last_error: BaseException) -> None:
        """Keep what was created, how often it was tried and the last error."""
        super().__init__(f"{what}: {attempts} creates unanswered, none landed: {last_error}")
        self.attempts = attempts
        self.last_error = last_error


@dataclass(frozen=True)
class CreateResult(Generic[Answer]):
    """What ``create_once`` ended with: the create's answer, or the record a look-up found."""

    created: Answer | None = None
    found: dict[str, Any] | None = None
    # True when the record was found after an unanswered create (it landed), not after a refusal.
    landed: bool = False


def create_once(
    what: str,
    create: Callable[[], Answer],
    look_up: Callable[[], dict[str, Any] | None],
    *,
    ambiguous: type[BaseException] | tuple[type[BaseException], ...],
    attempts: int,
    exists: type[BaseException] | tuple[type[BaseException], ...] = (),
    log: logging.Logger | Any = logger,
) -> CreateResult[Answer]:
    """Call ``create`` until it answers, looking the record up after each ambiguous failure.

    ``what`` names the record in log lines and errors (``"customers 1001"``). ``ambiguous`` are
    the errors after which the create may have landed, ``exists`` those that say the key exists.
    Raise ``CreatesUnanswered`` after ``attempts`` unanswered creates that left nothing.
    """
    last_error: BaseException | None = None
    for attempt in range(1, attempts + 1):
        try:
            return CreateResult(created=create())
        except exists:
            found = look_up()
            if found is None:
                raise
            return CreateResult(found=found)
        except ambiguous as exc:
            last_error = exc
            log.warning(
                "%s: the create may or may not have landed (attempt %d of %d: %s); looking it up "
                "before any retry",
                what,
                attempt,
                attempts,
                exc,
            )
            found = look_up()
            if found is not None:
                log.info("%s: the unanswered create landed", what)
                return CreateResult(found=found, landed=True)
    assert last_error is not None
    raise CreatesUnanswered(what, attempts, last_error)
