"""A tap's run as its target sees it: how the tap ended, told in the Singer stream.

When a tap fails, Meltano closes the target's input and the target ends normally: to the target
a failed tap looks like a short run, and its summary would read as a success. So our taps mark
their run in their output, and our targets read the marks:

- at the start: ``{"type": "STATE", "value": <the state the tap started from>,
  "tap_run": {"plugin": "tap-moment", "event": "started"}}``;
- at the end, after the run summary and the e-mail: ``"event": "completed"``, or ``"event":
  "failed"`` with ``"error"`` (the cause and what to do, secrets masked) and ``"alerted"`` (true
  when the tap's e-mail reached ``notify_email``, now or on an earlier run); ``"value"`` is the
  last state the tap had already sent, so the mark never moves a bookmark.

``tap_run`` is an extra top-level member of a STATE message, as the dead letters' ``error`` is of
a RECORD message: targets built on singer-sdk read ``value`` only and ignore it (the SDK's message
reader keeps no other member), so any target takes a marked stream. A target that knows the marks
(:class:`sync_common.RecordGuard`) tells from them whether the input ended early:

- ``failed``: the tap stopped with an error; the target's summary says so (``RunSummary.stop``)
  and the target e-mails it only when the tap's e-mail did not reach anyone (``alerted`` false);
- ``started`` without an end: the tap was stopped or killed before it could say anything (an
  OOM kill, ``kill -9``); the target's summary says the input ended early and e-mails it;
- no marks at all (a replayed dead-letter file, another tap): nothing can be told, nothing said.

A tap whose output pipe breaks (the target ended first and reports its own failure) and a tap
interrupted by a signal write no end and e-mail nothing: the cause is the target's or the
operator's, not the tap's.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Final

from sync_common.alerts import Alerts
from sync_common.config_schema import secret_setting_values
from sync_common.redaction import install_secret_redaction, redact
from sync_common.run_store import RunStoreNotPersistent, RunStoreSettings
from sync_common.run_summary import RunSummary

TAP_RUN_MEMBER: Final = "tap_run"
STARTED: Final = "started"
COMPLETED: Final = "completed"
FAILED: Final = "failed"


def describe_error(exc: BaseException) -> str:
    """An error as a run-level failure message: its type, message and notes."""
    notes = " ".join(getattr(exc, "__notes__", []) or [])
    return f"{type(exc).__name__}: {exc}" + (f" ({notes})" if notes else "")


def write_mark(plugin: str, event: str, state: Mapping[str, Any], **details: Any) -> None:
    """Write a marked STATE message to stdout, as singer-sdk's writer writes its messages."""
    message = {
        "type": "STATE",
        "value": dict(state),
        TAP_RUN_MEMBER: {"plugin": plugin, "event": event, **details},
    }
    sys.stdout.write(json.dumps(message, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


@contextmanager
def reported_tap_run(
    tap: Any,
    summary: RunSummary,
    run_store: RunStoreSettings,
    *,
    request_stats: Callable[[], Any] = lambda: None,
    explain: Callable[[BaseException], str] = describe_error,
) -> Iterator[None]:
    """Around a singer-sdk tap's ``sync_all``: secret redaction, the marks, summary and e-mail.

    The e-mail is sent by :class:`sync_common.Alerts`, its memory in ``run_store``, opened only when
    ``notify_email`` is set; a store that would not outlive the run ends the tap at once with
    the refusal's message, before anything is read.

    An exception propagates (the tap exits non-zero without a final STATE past the failure)
    after the summary is written, the e-mail decided and the ``failed`` mark written.
    ``request_stats`` returns the API client's counters (``requests``, ``retries``, and
    ``rate_limited`` if it counts them), or None when no client was made.
    """
    plugin = summary.plugin
    masked = secret_setting_values(tap.config_jsonschema, tap.config)
    install_secret_redaction(masked)
    try:
        alerts = Alerts.from_config(tap.config, run_store, secrets=masked)
    except RunStoreNotPersistent as exc:
        raise SystemExit(f"{plugin}: {exc}") from None
    last_state = _remember_sent_state(tap, copy.deepcopy(dict(tap.state or {})))
    write_mark(plugin, STARTED, last_state())
    ended: str | None = None
    cause = ""
    try:
        yield
        ended = COMPLETED
    except BrokenPipeError:
        summary.stop(
            "the target stopped reading this tap's output; its own report says why", count=False
        )
        raise
    except Exception as exc:
        cause = redact(explain(exc), masked)
        summary.stop(cause, count=not summary.has_failures)
        ended = FAILED
        raise
    except BaseException as exc:  # a signal or exit: someone stopped the run on purpose
        summary.stop(f"interrupted ({type(exc).__name__})", count=False)
        raise
    finally:
        stats = request_stats()
        if stats is not None:
            summary.add_client_stats(stats)
        summary.finish()
        result = alerts.after_run(summary)
        if ended is not None:
            details = {"error": cause, "alerted": result.reported} if ended == FAILED else {}
            with suppress(BrokenPipeError):
                write_mark(plugin, ended, last_state(), **details)


def _remember_sent_state(tap: Any, start: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    """Wrap the tap's message writer so the last STATE value it sent is known."""
    writer = tap.message_writer
    write = writer.write_message
    sent = {"value": start}

    def write_message(message: Any) -> None:
        write(message)
        if getattr(message, "type", None) == "STATE":  # singer-sdk's type is a str enum
            sent["value"] = copy.deepcopy(dict(message.value))

    writer.write_message = write_message
    return lambda: sent["value"]


@dataclass(frozen=True)
class TapStop:
    """How the tap feeding a target ended early.

    ``message`` is for the target's summary; ``alerted`` says whether the tap's own e-mail
    already reached someone.
    """

    message: str
    alerted: bool


class TapMarks:
    """What a target read of its tap's marks (module doc); ``stop()`` says how it ended."""

    def __init__(self) -> None:
        self.plugin: str | None = None
        self.event: str | None = None
        self.error = ""
        self.alerted = False

    def read(self, message: Mapping[str, Any]) -> None:
        """Note the mark of a STATE message, if it has one."""
        mark = message.get(TAP_RUN_MEMBER)
        if not isinstance(mark, Mapping) or mark.get("event") not in (STARTED, COMPLETED, FAILED):
            return
        self.plugin = str(mark.get("plugin") or "the tap")
        self.event = str(mark["event"])
        self.error = str(mark.get("error") or "")
        self.alerted = mark.get("alerted") is True

    def stop(self) -> TapStop | None:
        """None when the tap completed or left no marks; else why the input ended early."""
        after = "What it sent before that was written; the next run continues from the last "
        after += "bookmark saved."
        if self.event == FAILED:
            return TapStop(
                f"{self.plugin} failed, so this input ended early: {self.error} {after}",
                self.alerted,
            )
        if self.event == STARTED:
            return TapStop(
                f"the input ended early: {self.plugin} started but never said it ended (it was "
                f"stopped or killed before it could; see its log). {after}",
                False,
            )
        return None
