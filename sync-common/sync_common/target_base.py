"""What both targets do around their records: one run's lifecycle, in one place.

``SyncTarget`` is a mixin for a singer-sdk ``Target`` (put it before ``Target`` in the bases; it
includes ``RecordGuard``). It owns, for target-fortnox and target-moment alike:

- the start of a run: secrets redacted from logging before any request or log line could carry
  them, and the run store opened before any record (a run whose dead letters would not outlive
  it must not start: ``RunStoreNotPersistent`` becomes a clean command-line error);
- dry-run STATE suppression: a dry run wrote nothing, so the tap's bookmark must not move past
  its records (tap-fortnox-expenses does not emit an unchanged invoice again, so the next real
  run would skip what was only planned);
- the end of input: the target's own replay of dead letters (``replay_at_end_of_input``), the
  SDK's drain, then ``finish_run``;
- the end of a run, once (``finish_run``): a run-level error or a tap that ended early stops the
  summary, the client's request figures are added, the plan is written (dry run) or the dead
  letters and other run files saved, the summary finished; then, whatever failed before, the
  failure e-mail and digest (``sync_common.alerts``), the client and the run store closed.

Each target says what is its own through the hooks below (its summary, client, plan, files).
Duck-typed against the SDK's ``Target`` (``config``, ``logger``) like ``RecordGuard``, so that
sync-common imports no singer-sdk (click, which singer-sdk brings, is imported where used).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from sync_common.alerts import Alerts
from sync_common.config_schema import secret_setting_values
from sync_common.dead_letters import DeadLetter, DeadLetters
from sync_common.redaction import install_secret_redaction
from sync_common.run_store import RunStore, RunStoreNotPersistent
from sync_common.run_summary import RecordIssue, RunSummary
from sync_common.singer_input import RecordGuard, is_keyless_letter_key
from sync_common.tap_run import describe_error

DEFAULT_RESULTS_DIR = "output/"


def target_settings_schema(plugin: str) -> dict[str, Any]:
    """``results_dir`` and ``dry_run``, which :class:`SyncTarget` reads, as a JSON-schema fragment.

    For ``sync_common.plugin_config_schema``; ``plugin`` names the target in the plan's file name.
    """
    return {
        "type": "object",
        "properties": {
            "results_dir": {
                "type": ["string", "null"],
                "default": DEFAULT_RESULTS_DIR,
                "description": "Where run summaries and dry-run plans are written (need not "
                "outlive the worker)",
            },
            "dry_run": {
                "type": ["boolean", "null"],
                "default": False,
                "description": "Plan without writing: reads only, prints what would be created, "
                "updated, left unchanged or in conflict, saves it as "
                f"results_dir/plans/<time>-{plugin}.json, and emits no STATE",
            },
        },
    }


class Action(StrEnum):
    """What a target decides to do (or, in a dry run, would do) with one record."""

    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"


def replayable_letters(
    dead_letters: DeadLetters, stream: str, summary: RunSummary, log: logging.Logger | Any
) -> list[DeadLetter]:
    """Return the pending dead letters of ``stream`` that a replay can write.

    A letter of a record that came without its key stays in the file and counts failed again: it
    cannot succeed until someone sets the key (in the source, or in the file, and replays it).
    """
    letters: list[DeadLetter] = []
    for letter in dead_letters.pending(stream):
        if is_keyless_letter_key(letter.key):
            log.error("%s %s: still without its key: %s", stream, letter.key, letter.error)
            summary.fail(stream, letter.key, letter.error)
        else:
            letters.append(letter)
    if letters:
        log.info("%s: retrying %d dead letter(s) before new records", stream, len(letters))
    return letters


class SyncTarget(RecordGuard):
    """Mixin for a singer-sdk ``Target``: start, dry-run STATE, end of input and end of a run."""

    # Provided by singer_sdk.Target; declared for type checkers only.
    config: Mapping[str, Any]
    config_jsonschema: ClassVar[dict[str, Any]]

    # The stream a run-level error is counted on in the summary (``RunSummary.stop``).
    stop_stream: ClassVar[str] = "run"
    # Whether conflicts are e-mailed (new ones at once, then in the daily digest).
    mail_conflicts: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Start the run: redact secrets, then open the run store before any record."""
        super().__init__(*args, **kwargs)
        self._run_finished = False
        install_secret_redaction(self.secret_values())
        try:
            self.run_store: RunStore = self.open_run_store()
        except RunStoreNotPersistent as exc:
            import click

            raise click.ClickException(str(exc)) from None

    # --- what each target says of itself -------------------------------------------------------

    def open_run_store(self) -> RunStore:
        """Open the run store this target's settings name."""
        raise NotImplementedError

    @property
    def run_summary(self) -> RunSummary:
        """Return the run's summary (created on first use)."""
        raise NotImplementedError

    def run_client(self) -> Any | None:
        """Return the run's API client if the run made one (for its figures and to close it)."""
        return None

    def write_plan(self) -> None:
        """Write and print the dry-run plan."""
        raise NotImplementedError

    def save_run_files(self) -> None:
        """Save what a real run keeps: dead letters, ledgers."""
        raise NotImplementedError

    def replay_at_end_of_input(self) -> None:
        """Replay dead letters that no new record of their stream has triggered yet."""

    def settings_schema(self) -> Mapping[str, Any]:
        """Return the settings schema whose secret settings are redacted and masked."""
        return self.config_jsonschema

    # --- shared ----------------------------------------------------------------------------------

    @property
    def dry_run(self) -> bool:
        """Tell whether this run only plans (setting ``dry_run``)."""
        return bool(self.config.get("dry_run", False))

    @property
    def results_dir(self) -> Path:
        """Return the folder of run summaries and dry-run plans (setting ``results_dir``)."""
        return Path(self.config.get("results_dir") or DEFAULT_RESULTS_DIR)

    def secret_values(self) -> list[str]:
        """Return the values of the secret settings, for redaction and masking."""
        return secret_setting_values(dict(self.settings_schema()), self.config)

    def _write_state_message(self, state: dict[str, Any]) -> None:
        # A dry run wrote nothing, so the bookmark must not move past its records.
        if self.dry_run:
            self.logger.info("dry run: STATE not emitted")
            return
        super()._write_state_message(state)  # type: ignore[misc]

    def process_endofpipe(self) -> None:
        """Replay what is left of the dead letters, drain, then finish the run."""
        try:
            self.replay_at_end_of_input()
            super().process_endofpipe()  # type: ignore[misc]
        except BaseException as exc:
            self.finish_run(exc)
            raise
        self.finish_run(None)

    def finish_run(self, error: BaseException | None = None) -> None:
        """End the run once: summary, plan or files, e-mail, close.

        Called at the end of input, or by a sink when a run-level error (auth, transient after
        retries) is about to stop the run; then before STATE, which is never written for it.
        """
        if self._run_finished:
            return
        self._run_finished = True
        summary = self.run_summary
        reported_elsewhere: list[RecordIssue] = []
        client = self.run_client()
        try:
            if error is not None:
                summary.stop(f"{describe_error(error)} (no state emitted)", stream=self.stop_stream)
            elif (tap_stop := self.tap_marks.stop()) is not None:
                # The tap failed or was killed: this input ended early (sync_common.tap_run).
                issue = summary.stop(tap_stop.message)
                if tap_stop.alerted and issue is not None:
                    reported_elsewhere.append(issue)
            if client is not None:
                summary.add_client_stats(client.stats)
            if self.dry_run:
                self.write_plan()
            else:
                self.save_run_files()
            summary.finish()
        finally:
            Alerts.from_config(self.config, self.run_store, secrets=self.secret_values()).after_run(
                summary, mail_conflicts=self.mail_conflicts, reported_elsewhere=reported_elsewhere
            )
            close = getattr(client, "close", None)
            if callable(close):
                close()
            self.run_store.close()
